"""Escalated cases (上报件) through the town agent: 初审 at the town, relayed to the city department, decided
there, brought back to the town's ledger, which tells the applicant. Every hop on the case's timeline."""
from __future__ import annotations

from datetime import date, datetime

from shared.catalog import load_catalog
from shared.clock import Clock
from shared.workdays import WorkingCalendar
from tests.support import TOWN_A, TOWN_B, wait_for


class CityDeadlineClock(Clock):
    """Real time, but the town agent's "today" may be moved past a city deadline (the list's overdue)."""

    today_is: date | None = None

    def today(self) -> date:
        return self.today_is or super().today()


def _required(code: str) -> list[str]:
    return [m["code"] for m in load_catalog().item(code)["materials"] if m["required"]]


def test_escalated_case_through_the_town_agent_to_the_city_and_back(city):
    clock = CityDeadlineClock()
    city.start(f"intake-{TOWN_A}", "approval-minzheng")
    city.start("agent", build={"clock": clock})
    agent, other_town = city.town_agent(TOWN_A), city.town_agent(TOWN_B)

    number = city.submit("MZ-0003", materials=_required("MZ-0003")).json()["case_number"]
    short = city.submit("SF-0001", materials=_required("SF-0001")).json()["case_number"]  # 5 working days
    for n in (number, short):
        assert city.act(n, "initial-review").json()["status"] == "in_review"

    # after 初审 the work waits for the town agent, with the city's deadline: nothing reached the city yet
    esc = city.escalation(number, status="awaiting_relay")
    case = city.case(number)
    assert (esc["deadline"], esc["reviewed_by"], esc["departments"]) == (case["deadline"], "clerk-1", ["minzheng"])
    assert esc["days_left"] > 0 and not esc["overdue"]
    city_approver = city.approver("minzheng", None)
    assert city.call("GET", "approval-minzheng", "/work-items", city_approver).json()["items"] == []

    # overdue first: the town agent's today is one working day past the short case's city deadline
    short_deadline = date.fromisoformat(city.escalation(short, status="awaiting_relay")["deadline"])
    clock.today_is = WorkingCalendar().add_working_days(short_deadline, 1).date
    listed = city.call("GET", "agent", "/escalations", agent).json()["escalations"]
    assert [(e["case_number"], e["overdue"]) for e in listed] == [(short, True), (number, False)]
    assert listed[0]["days_left"] == -1 and listed[1]["days_left"] > 0
    clock.today_is = None

    # another town's agent cannot tell it exists; a clerk may not use the town agent's API
    assert city.call("GET", "agent", f"/escalations/{number}", other_town).status_code == 404
    assert city.call("POST", "agent", f"/escalations/{number}/relay", other_town).status_code == 404
    assert city.call("GET", "agent", "/escalations", other_town).json()["escalations"] == []
    assert city.call("GET", "agent", "/escalations", city.token("clerk", f"town:{TOWN_A}")).status_code == 403
    # nothing to return before the city decided
    assert city.call("POST", "agent", f"/escalations/{number}/return", agent).status_code == 409

    relayed = city.relay_escalation(number)
    assert relayed["status"] == "relayed" and relayed["relayed_by"] == "town-agent-101"
    assert city.call("POST", "agent", f"/escalations/{number}/relay", agent).status_code == 409, "relayed once"
    wait_for(lambda: any(h["action"] == "relay" for h in city.case(number)["history"]), what="relay at the ledger")

    # the city department's approver sees it, relayed by the town agent, and decides
    decided = city.decide("minzheng", number, None, "approved")
    assert decided["relayed_by"] == "town-agent-101"
    esc = city.escalation(number, status="decided")
    assert esc["decisions"][0]["outcome"] == "approved" and esc["decisions"][0]["decided_by"] == "approver-minzheng"
    listed = city.call("GET", "agent", "/escalations?status=decided", agent).json()["escalations"]
    assert [e["case_number"] for e in listed] == [number]
    # the city's decision does not close the case: the town agent has not brought it back yet
    assert city.case(number)["status"] == "in_review"

    returned = city.return_escalation(number)
    assert returned["status"] == "returned"
    assert [h["hop"] for h in returned["hops"]] == ["escalated", "relayed", "decided", "returned"]
    assert [h["by"] for h in returned["hops"]] == ["clerk-1", "town-agent-101", "approver-minzheng",
                                                    "town-agent-101"]
    done = wait_for(lambda: (c := city.case(number))["status"] == "completed" and c, what="case completed")
    assert done["outcome"] == "approved" and any(n["kind"] == "result" for n in done["notices"])
    assert [e["case_number"] for e in city.call("GET", "agent", "/escalations", agent).json()["escalations"]] \
        == [short], "a returned escalation is no longer in flight"

    # the timeline: every hop with who and when, in order, the notices among them
    hops = [(e["action"], e["actor"]) for e in done["timeline"]
            if e["action"] in ("accept_for_initial_review", "pass_initial_review", "relay", "city_decision",
                               "return_decision", "decide") or e["action"] == "notice"]
    assert hops == [("accept_for_initial_review", "clerk-1"), ("notice", "clerk-1"),
                    ("pass_initial_review", "clerk-1"), ("relay", "town-agent-101"),
                    ("city_decision", "approver-minzheng"), ("return_decision", "town-agent-101"),
                    ("decide", "approver-minzheng"), ("notice", "clerk-1")]
    notices = [e for e in done["timeline"] if e["action"] == "notice"]
    assert [n["notice_kind"] for n in notices] == ["acceptance", "result"]
    times = [datetime.fromisoformat(e["at"]) for e in done["timeline"]]
    assert times == sorted(times)
    # a redelivered hop changes nothing: the ledger's history holds each once
    assert [e["action"] for e in done["history"]].count("relay") == 1
