"""One owner per rule, through the real broker: the case's ledger decides the extension, and a refusal
comes back to the department's work item with its reason. And scoped reads: what a caller may not see
answers exactly like what does not exist."""
from __future__ import annotations

import pytest

from tests.support import TOWN_A, TOWN_B, City, wait_for

APPROVAL = "approval-renshe"
OFFICE = f"department:renshe@{TOWN_A}"


def _item_of(city, instance, number, token):
    def find():
        body = city.call("GET", instance, "/work-items?status=all", token).json()
        return next((i for i in body["items"] + body["paused"] if i["case_number"] == number), None)
    return wait_for(find, what=f"work item for {number} at {instance}")


def _extension_refused(city, instance, item_id, token):
    def refused():
        item = city.call("GET", instance, f"/work-items/{item_id}", token).json()
        return item if (item["extension"] or {}).get("status") == "refused" else None
    return wait_for(refused, what="the ledger's refusal on the work item")


def test_the_ledger_refuses_an_extension_and_the_work_item_shows_why(city):
    city.start("intake-320583101", APPROVAL)
    zhao, wang = city.token("approver", OFFICE, "zhao"), city.token("department_head", OFFICE, "wang")
    number = city.submit("RS-0001").json()["case_number"]  # 20 statutory, 5 promised working days
    item = _item_of(city, APPROVAL, number, zhao)
    assert item["extension_days_max"] == 15, "the routed work says what the back office may still ask for"

    # 30 days is more than the ledger allows: the approver hears it at once, nothing is sent
    r = city.call("POST", APPROVAL, f"/work-items/{item['id']}/extension", zhao, {"days": 30, "reason": "需征求意见"})
    assert r.status_code == 400 and "1 to 15" in r.json()["message"], r.text

    # meanwhile the centre extends the case itself: what the desk was told is out of date
    supervisor = city.token("supervisor", "city", "supervisor-1")
    assert city.act(number, "extension", {"days": 3, "reason": "窗口延期"}, token=supervisor).status_code == 200
    r = city.call("POST", APPROVAL, f"/work-items/{item['id']}/extension", zhao, {"days": 10, "reason": "需征求意见"})
    assert r.status_code == 200, r.text
    r = city.call("POST", APPROVAL, f"/work-items/{item['id']}/extension/approve", wang)
    assert r.status_code == 200 and r.json()["extension"]["status"] == "approved"

    refused = _extension_refused(city, APPROVAL, item["id"], zhao)
    assert "at most once" in refused["extension"]["refused_reason"]
    assert refused["refused_steps"][-1]["step"] == "extend"
    assert refused["history"][-1]["action"] == "step_refused" and refused["history"][-1]["actor"] == "ledger"
    assert "at most once" in refused["history"][-1]["reason"]
    case = city.case(number)
    assert case["extended_days"] == 3, "the ledger kept its own extension, and nothing else"
    assert [h["action"] for h in case["history"]].count("extend") == 1


def test_the_ledgers_extension_moves_the_work_items_deadline(city):
    """The ledger owns the deadline: a supervisor extends the case at the window, and the department's
    work item shows (and ranks by) the new deadline, with the ledger's step in its history."""
    city.start("intake-320583101", APPROVAL)
    zhao = city.token("approver", OFFICE, "zhao")
    number = city.submit("RS-0001").json()["case_number"]
    item = _item_of(city, APPROVAL, number, zhao)
    before = city.case(number)["deadline"]
    assert item["deadline"] == before
    supervisor = city.token("supervisor", "city", "supervisor-1")
    r = city.act(number, "extension", {"days": 3, "reason": "窗口延期"}, token=supervisor)
    assert r.status_code == 200, r.text
    after = city.case(number)["deadline"]
    assert after != before

    def moved():
        seen = city.call("GET", APPROVAL, f"/work-items/{item['id']}", zhao).json()
        return seen if seen["deadline"] == after else None
    seen = wait_for(moved, what="the ledger's new deadline on the work item")
    entry = next(h for h in seen["history"] if h["action"] == "deadline_moved")
    assert (entry["actor"], entry["reason"], entry["data"]["step"]) == ("ledger", "窗口延期", "extend")
    assert (entry["data"]["from"], entry["data"]["to"]) == (before, after)
    listed = _item_of(city, APPROVAL, number, zhao)
    assert listed["deadline"] == after and listed["status"] == "pending"


@pytest.fixture
def joint_city(tmp_path):
    c = City(amqp_url="amqp://guest:guest@127.0.0.1:5672//", data_dir=tmp_path / "data",
             departments=("minzheng", "canlian"))
    yield c
    c.close()


def test_a_joint_cases_second_department_hears_the_ledger_refuse(joint_city):
    city = joint_city
    city.start("intake-320583101", "approval-minzheng", "approval-canlian")
    number = city.submit("MZ-0009", materials=["idcard", "disability", "apply"]).json()["case_number"]  # 20 / 10
    heads = {d: city.token("department_head", f"department:{d}@{TOWN_A}", f"head-{d}") for d in ("minzheng", "canlian")}
    items = {d: _item_of(city, f"approval-{d}", number, heads[d]) for d in heads}
    assert {d: i["extension_days_max"] for d, i in items.items()} == {"minzheng": 10, "canlian": 10}
    for dept, days in (("minzheng", 3), ("canlian", 2)):
        path = f"/work-items/{items[dept]['id']}/extension"
        assert city.call("POST", f"approval-{dept}", path, heads[dept],
                         {"days": days, "reason": "需联合核查"}).status_code == 200
        assert city.call("POST", f"approval-{dept}", path + "/approve", heads[dept]).status_code == 200
        if dept == "minzheng":
            wait_for(lambda: city.case(number)["extended_days"] == 3, what="the first department's extension")
    refused = _extension_refused(city, "approval-canlian", items["canlian"]["id"], heads["canlian"])
    assert "at most once" in refused["extension"]["refused_reason"]
    first = city.call("GET", "approval-minzheng", f"/work-items/{items['minzheng']['id']}", heads["minzheng"]).json()
    assert first["extension"]["status"] == "approved" and first["refused_steps"] == []
    assert city.case(number)["extended_days"] == 3


def test_reads_out_of_scope_answer_like_missing_records(city):
    city.start("intake-320583101")
    number = city.submit("RS-0001").json()["case_number"]
    mine, foreign = city.token("clerk", f"town:{TOWN_A}"), city.token("clerk", f"town:{TOWN_B}")
    missing = number[:-5] + "99999"
    seen = city.call("GET", "intake-320583101", f"/cases/{number}", foreign)
    absent = city.call("GET", "intake-320583101", f"/cases/{missing}", mine)
    assert (seen.status_code, absent.status_code) == (404, 404)
    assert seen.json() == {"error": "not_found", "message": f"no case {number}"}
    assert absent.json() == {"error": "not_found", "message": f"no case {missing}"}
    notice_id = city.case(number)["notices"][0]["id"]
    r = city.call("GET", "intake-320583101", f"/cases/{number}/notices/{notice_id}.pdf", foreign)
    assert (r.status_code, r.json()) == (404, {"error": "not_found", "message": f"no case {number}"})
    other_supervisor = city.token("supervisor", f"town:{TOWN_B}")
    for path in ("/stats", "/ledger/verify", "/cases"):
        r = city.call("GET", "intake-320583101", path, other_supervisor)
        assert (r.status_code, r.json()["error"]) == (404, "not_found"), path
    own_supervisor = city.token("supervisor", f"town:{TOWN_A}")
    assert city.call("GET", "intake-320583101", "/stats", own_supervisor).json()["cases"] == 1
    assert city.call("GET", "intake-320583101", "/ledger/verify", own_supervisor).json() == {"cases": 1, "broken": {}}
