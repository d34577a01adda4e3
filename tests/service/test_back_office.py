"""The back office through the real broker: AB posts and their failovers, scope, claims, the steps a
department asks of the window (more materials, special procedure, the one extension) and superseded items."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kombu import Connection, Exchange, Queue
from prometheus_client.parser import text_string_to_metric_families

from tests.support import TOWN_A, TOWN_B, wait_for

APPROVAL = "approval-renshe"
OFFICE = f"department:renshe@{TOWN_A}"


@pytest.fixture
def running(city):
    city.start("intake-320583101", APPROVAL)
    return city


class Probe:
    """A queue of our own on the events exchange: what the services publish, read with kombu."""

    def __init__(self, city, routing_key: str):
        self.conn = Connection(city.amqp_url)
        self.queue = Queue(f"{city.prefix}.probe.{uuid.uuid4().hex[:6]}",
                           Exchange(f"{city.prefix}.events", type="topic", durable=True),
                           routing_key=routing_key, durable=False)
        self.bound = self.queue(self.conn.default_channel)
        self.bound.declare()
        self.seen: list[dict] = []

    def drain(self) -> list[dict]:
        while (msg := self.bound.get(no_ack=True)) is not None:
            self.seen.append(json.loads(msg.body))
        return self.seen

    def wait(self, predicate, what: str) -> dict:
        return wait_for(lambda: next((m for m in self.drain() if predicate(m)), None), what=what)

    def close(self):
        self.bound.delete()
        self.conn.close()


@pytest.fixture
def probe(running):
    p = Probe(running, "case.department.#")
    yield p
    p.close()


def _tokens(city):
    return {name: city.token("approver", OFFICE, name) for name in ("zhang", "li", "zhao", "qian")} | {
        "wang": city.token("department_head", OFFICE, "wang")}


def _item_of(city, number, token, newer_than=0):
    def find():
        r = city.call("GET", APPROVAL, "/work-items?status=all", token)
        assert r.status_code == 200, r.text
        body = r.json()
        return next((i for i in body["items"] + body["paused"]
                     if i["case_number"] == number and i["case_version"] > newer_than), None)
    return wait_for(find, what=f"work item for {number}")


def _post(city, path, token, body=None):
    return city.call("POST", APPROVAL, path, token, body)


def _fallbacks(city) -> float:
    text = city.call("GET", APPROVAL, "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tongban_ab_head_fallback_total" and sample.labels == {"department": "renshe"}:
                return sample.value
    raise AssertionError("tongban_ab_head_fallback_total{department=renshe} is not exported")


def _away(city, head, holder, reason):
    now = datetime.now(UTC)
    return city.call("POST", APPROVAL, f"/posts/{TOWN_A}/absences", head,
                     {"holder": holder, "from": (now - timedelta(hours=1)).isoformat(),
                      "to": (now + timedelta(days=2)).isoformat(), "reason": reason})


def test_ab_failover_to_b_then_to_the_head_when_both_are_away(any_city):
    """On SQLite and on PostgreSQL: absences are compared as instants on both."""
    city = any_city
    city.start("intake-320583101", APPROVAL)
    t = _tokens(city)
    r = city.call("PUT", APPROVAL, f"/posts/{TOWN_A}", t["wang"], {"a": "zhang", "b": "li"})
    assert r.status_code == 200, r.text
    assert r.json()["head"] == "wang", "the head setting the post is its fallback"
    assert r.json()["on_duty"] == {"holder": "zhang", "role": "A", "because": None}
    assert _fallbacks(city) == 0

    first = city.submit("RS-0001").json()["case_number"]
    assert _item_of(city, first, t["zhang"])["assignee"] == "zhang", "A present: A gets the work"

    r = _away(city, t["wang"], "zhang", "年休假")
    assert r.status_code == 201, r.text
    assert r.json()["moved_work_items"] == [_item_of(city, first, t["zhang"])["id"]]
    assert _item_of(city, first, t["li"])["assignee"] == "li", "A's open work moved to B"
    second = city.submit("RS-0001").json()["case_number"]
    item = _item_of(city, second, t["li"])
    assert item["assignee"] == "li", "A away: new work goes to B"
    history = city.call("GET", APPROVAL, f"/work-items/{item['id']}", t["li"]).json()["history"]
    assert [h["action"] for h in history] == ["receive", "handover"]
    assert history[1]["data"] == {"from": "zhang", "to": "li", "role": "B"} and "年休假" in history[1]["reason"]
    assert all(h["idempotency_key"] for h in history)
    handovers = city.call("GET", APPROVAL, f"/posts/{TOWN_A}/handovers", t["li"]).json()["handovers"]
    assert [(h["case_number"], h["from"], h["to"], h["role"]) for h in handovers] == [
        (first, "zhang", "li", "B"), (second, "zhang", "li", "B")]
    assert all("年休假" in h["reason"] and h["at"] for h in handovers)
    assert _fallbacks(city) == 0, "B holding the post is no head fallback"

    r = _away(city, t["wang"], "li", "参加培训")
    assert r.status_code == 201, r.text
    assert sorted(r.json()["moved_work_items"]) == sorted(
        [_item_of(city, first, t["wang"])["id"], item["id"]]), "B's open work moved to the head"
    third = city.submit("RS-0001").json()["case_number"]
    assert _item_of(city, third, t["wang"])["assignee"] == "wang", "both away: the head"
    assert wait_for(lambda: _fallbacks(city) == 3, what="three head fallbacks counted")
    posts = city.call("GET", APPROVAL, "/posts", t["zhao"]).json()["posts"]
    assert posts[0]["on_duty"]["holder"] == "wang" and {a["holder"] for a in posts[0]["absences"]} == {"zhang", "li"}
    stats = city.stats(APPROVAL)
    assert (stats["handovers"], stats["head_fallbacks"], stats["pending"]) == (5, 3, 3)

    # work never goes to an absent person, and a present holder's work is not taken from them
    assert _post(city, f"/work-items/{item['id']}/claim", t["li"]).status_code == 409, "li is away"
    r = _post(city, f"/work-items/{item['id']}/claim", t["zhao"])
    assert r.status_code == 409 and "held by wang" in r.json()["message"]
    r = _post(city, f"/work-items/{item['id']}/decision", t["zhao"], {"outcome": "approved"})
    assert r.status_code == 409 and "wang" in r.json()["message"]
    r = _post(city, f"/work-items/{item['id']}/decision", t["wang"], {"outcome": "approved"})
    assert r.status_code == 200 and r.json()["decided_by"] == "wang"


def test_claims_conflict_unless_the_holder_is_away(running):
    city = running
    t = _tokens(city)
    number = city.submit("RS-0001").json()["case_number"]
    item = _item_of(city, number, t["zhao"])
    assert item["assignee"] is None, "no post for the office: unassigned, anyone of it may claim"
    r = _post(city, f"/work-items/{item['id']}/claim", t["zhao"])
    assert r.status_code == 200 and r.json()["assignee"] == "zhao"
    assert _post(city, f"/work-items/{item['id']}/claim", t["zhao"]).status_code == 200, "claiming one's own again"
    r = _post(city, f"/work-items/{item['id']}/claim", t["qian"])
    assert r.status_code == 409 and "held by zhao" in r.json()["message"]
    r = _post(city, f"/work-items/{item['id']}/decision", t["qian"], {"outcome": "approved"})
    assert r.status_code == 409, "only the holder decides"
    mine = city.call("GET", APPROVAL, "/work-items?assignee=me", t["zhao"]).json()["items"]
    assert [i["id"] for i in mine] == [item["id"]]
    assert city.call("GET", APPROVAL, "/work-items?assignee=me", t["qian"]).json()["items"] == []
    assert city.call("GET", APPROVAL, "/work-items?status=lost", t["qian"]).status_code == 400

    # zhao becomes a post holder and goes away: the item may now be claimed by someone present
    assert city.call("PUT", APPROVAL, f"/posts/{TOWN_A}", t["wang"], {"a": "zhao", "b": "li"}).status_code == 200
    now = datetime.now(UTC)
    r = city.call("POST", APPROVAL, f"/posts/{TOWN_A}/absences", t["wang"],
                  {"holder": "zhao", "from": (now + timedelta(days=1)).isoformat(),
                   "to": (now + timedelta(days=2)).isoformat(), "reason": "明天开会"})
    assert r.status_code == 201 and r.json()["moved_work_items"] == [], "an absence to come moves nothing yet"
    assert _post(city, f"/work-items/{item['id']}/claim", t["qian"]).status_code == 409
    r = city.call("POST", APPROVAL, f"/posts/{TOWN_A}/absences", t["wang"],
                  {"holder": "zhao", "from": now.isoformat(), "to": now.isoformat(), "reason": "x"})
    assert r.status_code == 400 and "after" in r.json()["message"]
    assert _away(city, t["wang"], "qian", "病假").status_code == 400, "qian holds no post"
    assert _away(city, t["wang"], "zhao", "病假").status_code == 201
    r = city.call("GET", APPROVAL, f"/work-items/{item['id']}", t["qian"]).json()
    assert r["assignee"] == "li", "zhao's open work went to B"
    r = _post(city, f"/work-items/{item['id']}/decision", t["li"], {
        "outcome": "approved", "result_number": "RS-2026-0001", "valid_until": "2031-12-31"})
    assert r.status_code == 200, r.text
    assert (r.json()["result_number"], r.json()["valid_until"]) == ("RS-2026-0001", "2031-12-31")
    done = wait_for(lambda: (c := city.case(number))["status"] == "completed" and c, what="completed")
    assert done["result_number"] == "RS-2026-0001"


def test_another_town_or_department_cannot_see_claim_decide_or_manage(running):
    city = running
    t = _tokens(city)
    number = city.submit("RS-0001").json()["case_number"]
    item_id = _item_of(city, number, t["zhao"])["id"]
    other_town = city.token("approver", f"department:renshe@{TOWN_B}", "zhou")
    other_dept = city.token("approver", f"department:minzheng@{TOWN_A}", "wu")
    city_level = city.token("approver", "department:renshe", "zheng")
    other_head = city.token("department_head", f"department:renshe@{TOWN_B}", "feng")
    for token in (other_town, other_dept, city_level):
        for path, body in ((f"/work-items/{item_id}/claim", None),
                           (f"/work-items/{item_id}/decision", {"outcome": "approved"}),
                           (f"/work-items/{item_id}/materials",
                            {"materials": [{"name": "劳动合同"}], "reason": "核实"}),
                           (f"/work-items/{item_id}/procedure", {"procedure": "听证", "reason": "听证"}),
                           (f"/work-items/{item_id}/extension", {"days": 2, "reason": "需征求意见"})):
            r = _post(city, path, token, body)
            # a work item out of scope answers exactly like one that does not exist
            assert (r.status_code, r.json()) == (404, {"error": "not_found", "message": f"no work item {item_id}"})
        assert city.call("GET", APPROVAL, f"/work-items/{item_id}", token).status_code == 404
    assert city.call("GET", APPROVAL, "/work-items", other_town).json()["items"] == []
    assert city.call("GET", APPROVAL, "/work-items", other_dept).status_code == 404
    assert _post(city, f"/work-items/{item_id}/extension/approve", other_head).status_code == 404
    assert city.call("PUT", APPROVAL, f"/posts/{TOWN_A}", other_head, {"a": "x1", "b": "x2"}).status_code == 403
    assert city.call("PUT", APPROVAL, f"/posts/{TOWN_A}", t["zhao"], {"a": "x1", "b": "x2"}).status_code == 403
    assert city.call("PUT", APPROVAL, "/posts/city", t["wang"], {"a": "x1", "b": "x2"}).status_code == 403
    assert city.call("GET", APPROVAL, f"/posts/{TOWN_A}/handovers", other_town).status_code == 404
    r = city.call("PUT", APPROVAL, "/posts/city", city.token("city_admin", "city", "it"), {"a": "x1", "b": "x2"})
    assert r.status_code == 400 and "head" in r.json()["message"], "city IT names the head"
    r = city.call("PUT", APPROVAL, f"/posts/{TOWN_A}", t["wang"], {"a": "x1", "b": "x1"})
    assert r.status_code == 400 and "different" in r.json()["message"]
    assert city.call("PUT", APPROVAL, "/posts/nowhere", t["wang"], {"a": "x1", "b": "x2"}).status_code == 400
    assert _away(city, t["wang"], "x1", "年休假").status_code == 404, "no post yet"
    assert city.stats(APPROVAL)["pending"] == 1, "nothing happened to the item"


def test_more_materials_from_the_back_office_and_the_superseded_item(running, probe):
    city = running
    t = _tokens(city)
    number = city.submit("RS-0001").json()["case_number"]
    old = _item_of(city, number, t["zhao"])
    r = _post(city, f"/work-items/{old['id']}/materials", t["zhao"],
              {"materials": [{"name": "劳动合同"}, {"code": "bank", "name": "银行流水"}], "reason": "需核实用工关系"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["assignee"]) == ("waiting_materials", "zhao")
    asked = probe.wait(lambda m: m["payload"]["action"] == "request_materials", "request_materials published")
    assert asked["case_number"] == number and asked["case_version"] == old["case_version"]
    assert asked["payload"]["materials"] == [{"code": None, "name": "劳动合同"}, {"code": "bank", "name": "银行流水"}]
    assert (asked["payload"]["work_item_id"], asked["payload"]["by"]) == (old["id"], "zhao")
    listing = city.call("GET", APPROVAL, "/work-items", t["zhao"]).json()
    assert listing["items"] == [] and [i["id"] for i in listing["paused"]] == [old["id"]]
    r = _post(city, f"/work-items/{old['id']}/decision", t["zhao"], {"outcome": "approved"})
    assert r.status_code == 409 and "materials" in r.json()["message"]

    back = wait_for(lambda: (c := city.case(number))["status"] == "pending_materials" and c, what="back at window")
    codes = [m["code"] for m in back["missing_materials"]]
    assert "bank" in codes and len(codes) == 2
    assert city.act(number, "supplement", {"materials": codes}).status_code == 200
    new = _item_of(city, number, t["zhao"], newer_than=old["case_version"])
    assert new["assignee"] == "zhao", "the holder of the older version keeps the case"
    stale = city.call("GET", APPROVAL, f"/work-items/{old['id']}", t["zhao"]).json()
    assert (stale["status"], stale["superseded_by"]) == ("superseded", new["id"])
    assert stale["history"][-1]["action"] == "supersede"

    r = _post(city, f"/work-items/{old['id']}/decision", t["zhao"], {"outcome": "approved"})
    assert r.status_code == 409 and "superseded" in r.json()["message"]
    assert r.json()["details"]["superseded_by"] == new["id"]
    assert _post(city, f"/work-items/{old['id']}/claim", t["zhao"]).status_code == 409
    r = _post(city, f"/work-items/{new['id']}/decision", t["zhao"], {"outcome": "approved"})
    assert r.status_code == 200 and r.json()["case_version"] == new["case_version"]
    done = wait_for(lambda: (c := city.case(number))["status"] == "completed" and c, what="completed")
    assert done["outcome"] == "approved"
    stats = city.stats(APPROVAL)
    assert (stats["received"], stats["superseded"], stats["decided"], stats["waiting_materials"]) == (2, 1, 1, 0)


def test_special_procedure_and_the_one_extension(running, probe):
    city = running
    t = _tokens(city)
    number = city.submit("RS-0001").json()["case_number"]
    item = _item_of(city, number, t["zhao"])
    r = _post(city, f"/work-items/{item['id']}/procedure", t["zhao"], {"procedure": "现场勘察", "reason": "需现场核实"})
    assert r.status_code == 200 and (r.json()["status"], r.json()["procedure"]) == ("paused", "现场勘察")
    started = probe.wait(lambda m: m["payload"]["action"] == "start_procedure", "start_procedure published")
    assert started["payload"]["procedure"] == "现场勘察" and started["case_version"] == 1
    wait_for(lambda: city.case(number)["status"] == "paused", what="the case's clock stopped")
    assert _post(city, f"/work-items/{item['id']}/procedure", t["zhao"],
                 {"procedure": "听证", "reason": "again"}).status_code == 409
    assert _post(city, f"/work-items/{item['id']}/decision", t["zhao"], {"outcome": "approved"}).status_code == 409
    r = _post(city, f"/work-items/{item['id']}/procedure/end", t["zhao"], {"reason": "勘察完毕"})
    assert r.status_code == 200 and r.json()["status"] == "pending"
    probe.wait(lambda m: m["payload"]["action"] == "end_procedure", "end_procedure published")
    wait_for(lambda: city.case(number)["status"] == "in_review", what="the case's clock runs again")

    r = _post(city, f"/work-items/{item['id']}/extension", t["zhao"], {"days": 3, "reason": "需征求相关部门意见"})
    assert r.status_code == 200 and r.json()["extension"]["status"] == "requested"
    assert _post(city, f"/work-items/{item['id']}/extension/approve", t["zhao"]).status_code == 403, "heads approve"
    assert _post(city, f"/work-items/{item['id']}/extension", t["zhao"],
                 {"days": 1, "reason": "again"}).status_code == 409
    assert not any(m["payload"]["action"] == "extend" for m in probe.drain()), "nothing leaves before the head approves"
    r = _post(city, f"/work-items/{item['id']}/extension/approve", t["wang"])
    assert r.status_code == 200 and r.json()["extension"]["approved_by"] == "wang"
    extend = probe.wait(lambda m: m["payload"]["action"] == "extend", "extend published")
    assert (extend["payload"]["days"], extend["payload"]["approved_by"], extend["payload"]["by"]) == (3, "wang", "zhao")
    wait_for(lambda: city.case(number)["extended_days"] == 3, what="the centre extended the deadline")
    r = _post(city, f"/work-items/{item['id']}/extension", t["zhao"], {"days": 1, "reason": "再延一次"})
    assert r.status_code == 409 and "at most once" in r.json()["message"]
    assert _post(city, f"/work-items/{item['id']}/extension/approve", t["wang"]).status_code == 409
    case = city.case(number)

    def ledger_told_all():  # the ledger's deadline follows each step it took (case.deadline_moved)
        seen = city.call("GET", APPROVAL, f"/work-items/{item['id']}", t["zhao"]).json()
        return seen if [h["data"]["step"] for h in seen["history"] if h["action"] == "deadline_moved"] == [
            "pause", "resume", "extend"] else None
    seen = wait_for(ledger_told_all, what="the ledger's three deadline moves on the work item")
    assert seen["deadline"] == case["deadline"]
    history = [h for h in seen["history"] if h["action"] != "deadline_moved"]
    assert [h["action"] for h in history] == ["receive", "claim", "start_procedure", "end_procedure",
                                              "request_extension", "approve_extension"]
    assert history[2]["reason"] == "需现场核实" and history[5]["actor"] == "wang"
    assert len({h["idempotency_key"] for h in seen["history"]}) == len(seen["history"])
