"""Escalated cases (上报件) through the town agent, without a broker: the town agent's rules, its use cases on
SQLite, the ledger's side (case.escalated instead of case.routed, the hops, the timeline) and the desk's
(relayed work decided back through the town agent). What leaves is read from each outbox."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.agent import escalation_domain as rules
from services.agent.usecases import TownAgent
from services.intake import domain as intake_domain
from services.intake import views
from services.intake.service import VERSIONS as INTAKE_VERSIONS
from services.intake.usecases import Window
from shared.auth import Principal, Scope
from shared.catalog import SAMPLE_CATALOG
from shared.clock import ManualClock
from shared.contracts import decode, make_message
from shared.errors import NotAllowedNow, NotVisible, RuleViolation
from shared.reference import Book, Catalogs, make_record
from shared.store import Store, outbox_table
from shared.workdays import WorkingCalendar

TOWN, OTHER = "320583101", "320583102"
MONDAY = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
APPLICANT = {"type": "person", "name": "张三", "id_number": "11010519491231002X", "phone": "13812345678",
             "channel": "sms", "town": None}
MZ3 = ["idcard", "hukou", "apply", "income"]


def _who(role="clerk", scope=f"town:{TOWN}", subject="clerk-1"):
    return Principal(subject=subject, role=role, scope=Scope.parse(scope), expires_at=2**40, issued_at=0)


def _sent(store) -> list[tuple[str, str, dict]]:
    with store.read() as session:
        rows = session.execute(sa.select(outbox_table.c.exchange, outbox_table.c.routing_key, outbox_table.c.body)
                               .order_by(outbox_table.c.id)).all()
    return [(exchange, key, json.loads(body)) for exchange, key, body in rows]


# --- the rules ------------------------------------------------------------------------------------------

def test_a_newer_routing_replaces_the_work_older_and_same_are_ignored():
    assert rules.escalated_news(None, None, 3) == "new"
    assert rules.escalated_news(3, "relayed", 3) == "duplicate"
    assert rules.escalated_news(5, "awaiting_relay", 3) == "stale"
    assert rules.escalated_news(3, "relayed", 5) == "replace"
    assert rules.escalated_news(3, "returned", 5) == "stale", "a returned case is done"


def test_decisions_are_news_only_for_the_relayed_version_and_its_departments():
    assert rules.decision_news(3, "relayed", ["a"], {}, 3, "a") == "ok"
    assert rules.decision_news(3, "relayed", ["a"], {}, 2, "a") == "stale"
    assert rules.decision_news(3, "relayed", ["a"], {}, 3, "b") == "stale"
    assert rules.decision_news(3, "awaiting_relay", ["a"], {}, 3, "a") == "stale", "not relayed: not decided"
    assert rules.decision_news(3, "decided", ["a", "b"], {"a": {}}, 3, "a") == "duplicate"


def test_the_outcome_is_known_by_the_ledgers_joint_rule():
    assert not rules.outcome_known(["a", "b"], {"a": {"outcome": "approved"}})
    assert rules.outcome_known(["a", "b"], {"a": {"outcome": "approved"}, "b": {"outcome": "approved"}})
    assert rules.outcome_known(["a", "b"], {"b": {"outcome": "refused"}}), "one refusal refuses"


def test_relay_once_and_return_only_when_decided():
    rules.check_relay("awaiting_relay")
    for status in ("relayed", "decided", "returned", "closed"):
        with pytest.raises(NotAllowedNow):
            rules.check_relay(status)
    rules.check_return("decided")
    for status in ("awaiting_relay", "relayed", "returned", "closed"):
        with pytest.raises(NotAllowedNow):
            rules.check_return(status)
    assert [s for s in rules.STATUSES if rules.closes_on_completion(s)] == ["awaiting_relay", "relayed", "decided"]


def test_the_list_puts_overdue_first_then_by_deadline():
    rows = [(3, date(2026, 11, 20), "c"), (-1, date(2026, 11, 3), "b"), (None, date(2026, 11, 1), "r"),
            (0, date(2026, 11, 5), "d"), (-4, date(2026, 10, 28), "a")]
    assert [r[2] for r in sorted(rows, key=lambda r: rules.list_key(*r))] == ["a", "b", "r", "d", "c"]
    assert rules.parse_status(None) == rules.IN_FLIGHT
    assert rules.parse_status("returned,closed") == ("returned", "closed")
    with pytest.raises(RuleViolation):
        rules.parse_status("lost")


def test_the_timeline_merges_actions_and_notices_by_time():
    t = datetime(2026, 11, 2, 1, 0)
    actions = [{"seq": 1, "action": "accept_for_initial_review", "actor": "clerk", "at": t},
               {"seq": 2, "action": "relay", "actor": "agent", "at": (t + timedelta(hours=2)).replace(tzinfo=UTC)},
               {"seq": 3, "action": "pass_initial_review", "actor": "clerk", "at": t + timedelta(hours=1)}]
    notices = [{"id": 9, "kind": "acceptance", "title": "受理通知书", "issued_at": t, "issued_by": "clerk"}]
    line = intake_domain.timeline(actions, notices)
    assert [(e["action"], e["actor"]) for e in line] == [
        ("accept_for_initial_review", "clerk"), ("notice", "clerk"), ("pass_initial_review", "clerk"),
        ("relay", "agent")], "by time (aware or naive UTC alike); at one instant the step before its notice"
    assert line[1]["notice_kind"] == "acceptance" and line[1]["notice_id"] == 9


# --- the ledger's side ---------------------------------------------------------------------------------

@pytest.fixture
def window(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'intake.db'}", Path(INTAKE_VERSIONS), "x.events")
    store.migrate()
    w = Window(town=TOWN, instance=f"intake-{TOWN}",
               catalogs=Catalogs(Book([make_record("catalog", SAMPLE_CATALOG.read_text("utf-8"))])),
               calendar=WorkingCalendar(), clock=ManualClock(MONDAY), work_exchange="x.work")
    w.store = store
    yield w
    store.dispose()


def _escalated_case(w) -> str:
    body = {"item_code": "MZ-0003", "materials": MZ3, "applicant": dict(APPLICANT)}
    with w.store.transaction() as tx:
        number = w.submit(tx, body, _who(), None)[0].case_number
    w.clock.advance(minutes=30)
    with w.store.transaction() as tx:
        w.pass_initial_review(tx, w.case_for_step(tx, _who(), number), "clerk-2")
    return number


def test_initial_review_escalates_to_the_town_agent_instead_of_routing(window):
    number = _escalated_case(window)
    sent = _sent(window.store)
    assert not [k for _, k, _ in sent if k.startswith("case.routed")], "nothing goes straight to the city"
    (exchange, _key, body), = [s for s in sent if s[1] == f"case.escalated.{TOWN}"]
    assert exchange == "x.events" and body["case_number"] == number
    p = body["payload"]
    assert (p["departments"], p["reviewed_by"], p["handling_town"]) == (["minzheng"], "clerk-2", "city")
    with window.store.read() as session:
        from services.intake.models import Ledger
        assert body["case_version"] == Ledger(session).get(number).routed_version


def test_a_review_case_of_an_escalated_item_still_routes_directly(window):
    body = {"item_code": "MZ-0003", "materials": MZ3, "applicant": dict(APPLICANT)}
    with window.store.transaction() as tx:
        number = window.submit(tx, body, _who(), None)[0].case_number
    with window.store.transaction() as tx:
        window.return_case(tx, window.case_for_step(tx, _who(), number), "clerk-1", "不符合条件")
    with window.store.transaction() as tx:
        window.request_review(tx, window.case_for_step(tx, _who(), number), "clerk-1", "申请复核")
    keys = [k for _, k, _ in _sent(window.store)]
    assert "case.routed.minzheng.city" in keys and not [k for k in keys if k.startswith("case.escalated")]


def _decision(number, version, type_="escalation.returned", **extra):
    payload = {"accepting_town": TOWN, "handling_town": "city", "department": "minzheng", "outcome": "approved",
               "result_number": "MZ-1", "decided_by": "wang", "work_item_id": 4, **extra}
    if type_ == "escalation.returned":
        payload |= {"decided_at": MONDAY + timedelta(hours=3), "returned_by": "agent-1",
                    "returned_at": MONDAY + timedelta(hours=4)}
    return make_message(type_, number, version, payload, producer="agent")


def test_the_town_agents_hops_land_on_the_timeline_then_the_decision_applies(window):
    number = _escalated_case(window)
    version = next(b["case_version"] for _, k, b in _sent(window.store) if k.startswith("case.escalated"))
    relayed = make_message("escalation.relayed", number, version, {
        "accepting_town": TOWN, "departments": ["minzheng"], "relayed_by": "agent-1",
        "relayed_at": MONDAY + timedelta(hours=1)}, producer="agent")
    with window.store.transaction() as tx:
        assert window.record_relay(tx, relayed) == "ok"
        assert window.record_relay(tx, make_message(relayed.type, number, version, relayed.payload,
                                                    producer="agent")) == "duplicate"
    window.clock.advance(hours=5)
    with window.store.transaction() as tx:
        assert window.apply_returned(tx, _decision(number, version)) == "ok"
        assert window.apply_returned(tx, _decision(number, version)) == "stale", "completed: nothing again"
    with window.store.transaction() as tx:
        view = views.case_detail(window, tx, _who(), number)
    assert view["status"] == "completed" and view["outcome"] == "approved"
    assert [(e["action"], e["actor"]) for e in view["timeline"]] == [
        ("accept_for_initial_review", "clerk-1"), ("notice", "clerk-1"), ("pass_initial_review", "clerk-2"),
        ("relay", "agent-1"), ("city_decision", "wang"), ("return_decision", "agent-1"), ("decide", "wang"),
        ("notice", "clerk-1")]
    assert [e.get("notice_kind") for e in view["timeline"] if e["action"] == "notice"] == ["acceptance", "result"]
    # a relay heard late (after the return) is still recorded, in any status
    with window.store.transaction() as tx:
        late = make_message("escalation.relayed", number, version + 1, relayed.payload, producer="agent")
        assert window.record_relay(tx, late) == "ok"


def test_a_decision_the_old_way_still_closes_an_escalated_case(window):
    number = _escalated_case(window)
    version = next(b["case_version"] for _, k, b in _sent(window.store) if k.startswith("case.escalated"))
    with window.store.transaction() as tx:
        assert window.apply_decision(tx, _decision(number, version, "case.decided")) == "ok"
    with window.store.transaction() as tx:
        assert views.case_detail(window, tx, _who(), number)["status"] == "completed"


# --- the town agent ------------------------------------------------------------------------------------

@pytest.fixture
def agent(tmp_path):
    from services.agent.service import VERSIONS

    store = Store(f"sqlite:///{tmp_path / 'agent.db'}", Path(VERSIONS), "x.events")
    store.migrate()
    a = TownAgent(clock=ManualClock(MONDAY), calendar=WorkingCalendar(), instance="agent", work_exchange="x.work")
    a.store = store
    yield a
    store.dispose()


def _escalated(number, version, deadline, departments=("minzheng",), town=TOWN):
    return make_message("case.escalated", number, version, {
        "accepting_town": town, "handling_town": "city", "item_code": "MZ-0003", "item_name": "低保",
        "kind": "escalated", "deadline": deadline, "auto_decide": False, "lead_department": departments[0],
        "departments": list(departments), "extension_days_max": 10, "reviewed_by": "clerk-1"}, producer="intake")


def _city_decides(number, version, department="minzheng", outcome="approved"):
    return make_message("escalation.decided", number, version, {
        "accepting_town": TOWN, "handling_town": "city", "department": department, "outcome": outcome,
        "reason": None if outcome == "approved" else "不符合", "result_number": None, "decided_by": "wang",
        "work_item_id": 4}, producer="approval-minzheng", occurred_at=MONDAY)


def test_the_town_agent_relays_once_and_returns_once_decided(agent):
    ta = _who("town_agent", subject="agent-1")
    with agent.store.transaction() as tx:
        assert agent.on_escalated(tx, _escalated("N1", 3, date(2026, 11, 30))) == "ok"
    with agent.store.transaction() as tx:
        with pytest.raises(NotAllowedNow):
            agent.return_(tx, ta, "N1")
    with agent.store.transaction() as tx:
        view = agent.relay(tx, ta, "N1")
    assert view["status"] == "relayed" and [h["hop"] for h in view["hops"]] == ["escalated", "relayed"]
    routed, hop = _sent(agent.store)
    assert routed[:2] == ("x.work", "case.routed.minzheng.city")
    message = decode(routed[2])
    assert (message.case_version, message.payload["relayed_by"], message.payload["department"]) == (
        3, "agent-1", "minzheng")
    assert hop[:2] == ("x.events", f"escalation.relayed.{TOWN}") and hop[2]["payload"]["relayed_by"] == "agent-1"
    with agent.store.transaction() as tx:
        with pytest.raises(NotAllowedNow):
            agent.relay(tx, ta, "N1")
    with agent.store.transaction() as tx:
        assert agent.on_decided(tx, _city_decides("N1", 2)) == "stale"
        assert agent.on_decided(tx, _city_decides("N1", 3)) == "ok"
        assert agent.on_decided(tx, _city_decides("N1", 3)) == "duplicate"
    agent.clock.advance(hours=1)
    with agent.store.transaction() as tx:
        view = agent.return_(tx, ta, "N1")
    assert view["status"] == "returned" and [h["by"] for h in view["hops"]] == ["clerk-1", "agent-1", "wang",
                                                                                 "agent-1"]
    returned = decode(_sent(agent.store)[-1][2])
    assert returned.type == "escalation.returned" and returned.case_version == 3
    assert (returned.payload["decided_by"], returned.payload["returned_by"]) == ("wang", "agent-1")
    assert returned.payload["returned_at"] - returned.payload["decided_at"] == timedelta(hours=1)
    with agent.store.transaction() as tx:
        assert agent.on_completed(tx, make_message("case.completed", "N1", 5, {
            "accepting_town": TOWN, "department": "minzheng", "item_name": "低保", "kind": "escalated",
            "outcome": "approved", "completed_on": date(2026, 11, 2), "deadline": None, "on_time": True},
            producer="intake")) == "not_ours", "a returned escalation stays returned"


def test_a_joint_escalation_waits_for_every_department_or_one_refusal(agent):
    with agent.store.transaction() as tx:
        agent.on_escalated(tx, _escalated("J1", 3, date(2026, 11, 30), ("minzheng", "canlian")))
        agent.relay(tx, _who("town_agent"), "J1")
        agent.on_decided(tx, _city_decides("J1", 3, "minzheng"))
        assert agent.detail(tx, _who("town_agent"), "J1")["status"] == "relayed"
        agent.on_decided(tx, _city_decides("J1", 3, "canlian", "refused"))
        assert agent.detail(tx, _who("town_agent"), "J1")["status"] == "decided"


def test_a_newer_routing_waits_for_relay_again_and_closing_elsewhere_closes(agent):
    with agent.store.transaction() as tx:
        agent.on_escalated(tx, _escalated("N2", 3, date(2026, 11, 30)))
        agent.relay(tx, _who("town_agent"), "N2")
        assert agent.on_escalated(tx, _escalated("N2", 7, date(2026, 12, 4))) == "ok"
        assert agent.on_escalated(tx, _escalated("N2", 3, date(2026, 11, 30))) == "stale"
        view = agent.detail(tx, _who("town_agent"), "N2")
        assert (view["status"], view["case_version"], view["deadline"], view["relayed_by"]) == (
            "awaiting_relay", 7, date(2026, 12, 4), None)
        assert agent.on_completed(tx, make_message("case.completed", "N2", 9, {
            "accepting_town": TOWN, "department": "minzheng", "item_name": "低保", "kind": "escalated",
            "outcome": "refused", "reason": "x", "completed_on": date(2026, 11, 2), "deadline": None,
            "on_time": True}, producer="intake")) == "closed"
        assert agent.detail(tx, _who("town_agent"), "N2")["status"] == "closed"


def test_the_list_is_the_towns_overdue_first_and_hides_other_towns(agent):
    with agent.store.transaction() as tx:
        agent.on_escalated(tx, _escalated("LATE", 1, date(2026, 11, 20)))
        agent.on_escalated(tx, _escalated("OVER", 1, date(2026, 10, 30)))  # a Friday: 1 working day ago
        agent.on_escalated(tx, _escalated("SOON", 1, date(2026, 11, 4)))
        agent.on_escalated(tx, _escalated("ELSEWHERE", 1, date(2026, 10, 1), town=OTHER))
    with agent.store.transaction() as tx:
        listing = agent.listing(tx, _who("town_agent"), {})
        assert [(e["case_number"], e["days_left"], e["overdue"]) for e in listing["escalations"]] == [
            ("OVER", -1, True), ("SOON", 2, False), ("LATE", 14, False)]
        assert len(agent.listing(tx, _who("supervisor", "city"), {})["escalations"]) == 4
        assert agent.listing(tx, _who("town_agent"), {"status": "returned"})["escalations"] == []
        with pytest.raises(NotVisible):
            agent.detail(tx, _who("town_agent"), "ELSEWHERE")
        with pytest.raises(NotVisible):
            agent.listing(tx, _who("town_agent", scope="department:minzheng"), {})


# --- the desk -------------------------------------------------------------------------------------------

def test_relayed_work_is_decided_back_through_the_town_agent(tmp_path):
    from services.approval.service import VERSIONS
    from services.approval.usecases import Desk

    store = Store(f"sqlite:///{tmp_path / 'approval.db'}", Path(VERSIONS), "x.events")
    store.migrate()
    desk = Desk(department="minzheng", instance="approval-minzheng", clock=ManualClock(MONDAY),
                calendar=WorkingCalendar())
    approver = _who("approver", "department:minzheng", "wang")
    try:
        for number, relayed_by in ((f"{TOWN}-R1", "agent-1"), (f"{TOWN}-D1", None)):
            with store.transaction() as tx:
                desk.receive(tx, make_message("case.routed", number, 3, {
                    "accepting_town": TOWN, "handling_town": "city", "item_code": "MZ-0003", "item_name": "低保",
                    "department": "minzheng", "kind": "escalated", "deadline": date(2026, 11, 30),
                    "auto_decide": False, "lead_department": "minzheng", "departments": ["minzheng"],
                    "relayed_by": relayed_by}, producer="agent"))
        with store.transaction() as tx:
            items = {i["case_number"]: i for i in desk.worklist(tx, approver, {})["items"]}
            assert items[f"{TOWN}-R1"]["relayed_by"] == "agent-1" and items[f"{TOWN}-D1"]["relayed_by"] is None
            for number in (f"{TOWN}-R1", f"{TOWN}-D1"):
                desk.decide(tx, approver, items[number]["id"], {"outcome": "approved"})
        keys = [k for _, k, _ in _sent(store)]
        assert keys == [f"escalation.decided.minzheng.{TOWN}", f"case.decided.minzheng.{TOWN}"]
    finally:
        store.dispose()
