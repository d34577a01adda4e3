"""One case end to end through the real broker, on SQLite and on PostgreSQL."""
from tests.support import TOWN_A, TOWN_B, wait_for


def test_instant_case_is_decided_by_rule_and_reaches_every_service(any_city):
    city = any_city
    city.start()
    r = city.submit("MZ-0001", TOWN_A)
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["kind"] == "instant" and case["status"] == "in_review"
    assert case["applicant"]["id_number"] == "110105********002X"
    number = case["case_number"]
    assert number.startswith(f"{TOWN_A}-")

    done = wait_for(lambda: (c := city.case(number))["status"] == "completed" and c, what="case completed")
    assert done["outcome"] == "approved"
    assert done["result_number"] == f"MINZHENG-{number}"
    assert done["version"] == 2
    assert [h["action"] for h in done["history"]] == ["accept", "decide"]
    assert done["history"][1]["actor"] == "rule:instant"
    assert done["completed_on"] == done["deadline"], "an instant case finishes the same working day"

    deliveries = wait_for(lambda: len(d := city.listed("notify", f"/cases/{number}/deliveries", "deliveries")) == 2
                          and d,
                          what="two notices")
    assert {d["notice_kind"] for d in deliveries} == {"acceptance", "result"}
    assert all(number in d["text"] for d in deliveries)
    assert [n["kind"] for n in done["notices"]] == ["acceptance", "result"]

    events = wait_for(lambda: len(e := city.listed("evaluation", f"/cases/{number}/events", "events")) >= 8 and e,
                      what="every case event recorded")
    assert {e["type"] for e in events} == {"case.accepted", "case.decided", "case.updated", "case.completed",
                                           "notice.issued", "notice.sent"}
    assert all("contact" not in e["data"] for e in events), "evaluation keeps no contact details"


def test_promised_case_waits_for_the_approver(any_city):
    city = any_city
    city.start()
    r = city.submit("RS-0001", TOWN_B)
    assert r.status_code == 201, r.text
    number = r.json()["case_number"]
    approver = city.token("approver", f"department:renshe@{TOWN_B}", "approver-7")

    items = wait_for(lambda: city.call("GET", "approval-renshe", "/work-items", approver).json()["items"],
                     what="work item at the department")
    assert [i["case_number"] for i in items] == [number]
    assert city.case(number, TOWN_B)["status"] == "in_review", "nobody has decided yet"

    d = city.call("POST", "approval-renshe", f"/work-items/{items[0]['id']}/decision", approver,
                  {"outcome": "refused", "reason": "参保信息与实际不符"})
    assert d.status_code == 200, d.text
    done = wait_for(lambda: (c := city.case(number, TOWN_B))["status"] == "completed" and c, what="closed")
    assert done["outcome"] == "refused" and done["reason"] == "参保信息与实际不符"
    assert done["history"][-1]["actor"] == "approver-7"

    again = city.call("POST", "approval-renshe", f"/work-items/{items[0]['id']}/decision", approver,
                      {"outcome": "approved"})
    assert again.status_code == 409, "a decision sent twice is refused, and changes nothing"
    assert city.case(number, TOWN_B)["outcome"] == "refused"
    stats = wait_for(lambda: (s := city.stats("evaluation"))["cases_by_event"].get("case.completed") == 1 and s,
                     what="evaluation saw the completion")
    assert stats["cases_by_event"]["case.accepted"] == 1
