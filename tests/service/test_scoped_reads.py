"""Scoped reads, beyond the access matrix (tests/service/access_matrix.py: who gets which answer from every
endpoint, foreign callers answered as for a missing record): what the owners of records see in them, and that
personal numbers typed into free text come back masked.
"""
from __future__ import annotations

import pytest

from tests.support import TOWN_A, TOWN_B, VALID_ID, VALID_PHONE, wait_for

AGENT = "agent-a"  # the village agent who submits the case (village 001 of town A)


def test_each_scope_still_sees_its_own(city):
    """The owners of the records see them, with their contents and in their figures."""
    city.start("intake-320583101", "approval-minzheng", "agent", "notify", "evaluation")
    r = city.submit("MZ-0001", TOWN_A, via_agent=AGENT, in_person=False)
    assert r.status_code == 201, r.text
    number = r.json()["case_number"]
    wait_for(lambda: city.call("GET", "agent", "/replies", city.ops).json()["replies"], what="a reply owed")
    wait_for(lambda: len(city.call("GET", "evaluation", f"/cases/{number}/events", city.ops).json()
                         .get("events", [])) >= 8, what="events recorded")
    supervisor_a = city.token("supervisor", f"town:{TOWN_A}", "sup-a")
    agent = city.token("agent", f"village:{TOWN_A}001", AGENT)
    assert [x["case_number"] for x in city.call("GET", "agent", "/replies", agent).json()["replies"]] == [number]
    assert [x["case_number"] for x in city.call("GET", "agent", "/replies", supervisor_a).json()["replies"]] \
        == [number]
    assert city.call("GET", "agent", "/stats", supervisor_a).json()["replies_owed"] == 1
    events = city.call("GET", "evaluation", f"/cases/{number}/events", supervisor_a)
    assert events.status_code == 200 and len(events.json()["events"]) >= 8
    assert all("sms_text" not in e["data"] and "contact" not in e["data"] for e in events.json()["events"])
    assert city.call("GET", "evaluation", "/stats", supervisor_a).json()["cases_by_event"]["case.accepted"] == 1
    assert city.call("GET", "notify", f"/cases/{number}/deliveries", supervisor_a).status_code == 200
    assert city.call("GET", "notify", "/stats", supervisor_a).json()["total"] >= 1
    # town B's supervisor sees town B's (empty) figures, not the city's
    supervisor_b = city.token("supervisor", f"town:{TOWN_B}", "sup-b")
    assert city.call("GET", "agent", "/stats", supervisor_b).json() == {
        "replies_owed": 0, "replies_made": 0, "agent_cases": 0, "station": {"by_status": {}, "by_mode": {}},
        "escalations": {"by_status": {}}}
    assert city.call("GET", "evaluation", "/stats", supervisor_b).json() == {"cases_by_event": {}}
    assert city.call("GET", "agent", "/replies", supervisor_b).json() == {"replies": []}


@pytest.mark.parametrize("path", ["/cases", "/cases/{number}"])
def test_a_phone_number_typed_into_a_reason_comes_back_masked(city, path):
    city.start("intake-320583101")
    body = {"item_code": "MZ-0001", "materials": ["idcard", "photo"],
            "applicant": {"name": f"张三{VALID_ID}", "id_number": VALID_ID, "phone": VALID_PHONE},
            "return_reason": "不予受理：请致电13912345678或138-1234-5678，单位91350100M000100Y43"}
    r = city.call("POST", "intake-320583101", "/cases", city.token("clerk", f"town:{TOWN_A}", "clerk-1"), body)
    assert r.status_code in (200, 201), r.text
    number = r.json()["case_number"]
    got = city.call("GET", "intake-320583101", path.format(number=number), city.token("clerk", f"town:{TOWN_A}"))
    assert got.status_code == 200, got.text
    text = got.text
    assert number in text
    for raw in ("13912345678", "138-1234-5678", VALID_ID, VALID_PHONE, "91350100M000100Y43"):
        assert raw not in text, f"{raw} came back unmasked from GET {path}"
    assert "139****5678" in text and "138-****-5678" in text and "9135**********0Y43" in text
