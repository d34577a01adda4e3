"""The back office's rules without a broker: who holds the work (AB岗), the one extension, decisions,
the steps of a work item, and urgency. The last tests run the desk on a SQLite file (no broker)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from prometheus_client import CollectorRegistry

from services.approval import domain
from services.approval.domain import Absence, Post
from shared.auth import Principal, Scope
from shared.clock import ManualClock
from shared.contracts import make_message

T = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # Tuesday 3 Nov 2026, 10:00 in Shanghai
POST = Post(a="zhang", b="li", head="wang")


def away(holder, reason="年休假", start=T - timedelta(hours=1), end=T + timedelta(days=1)):
    return Absence(holder, start, end, reason)


# --- who gets the work at time T ---------------------------------------------------------------------

def test_a_present_gets_the_work_without_a_handover():
    got = domain.assign(POST, [away("li")], T)
    assert (got.holder, got.role, got.handover, got.head_fallback) == ("zhang", "A", False, False)


def test_a_away_b_holds_the_post_with_a_handover_from_a():
    got = domain.assign(POST, [away("zhang", "参加培训")], T)
    assert (got.holder, got.role, got.handover_from) == ("li", "B", "zhang")
    assert got.handover and not got.head_fallback
    assert "zhang" in got.reason and "参加培训" in got.reason


def test_both_away_the_head_falls_back():
    got = domain.assign(POST, [away("zhang", "病假"), away("li", "会议")], T)
    assert (got.holder, got.role, got.handover_from) == ("wang", "head", "zhang")
    assert got.head_fallback
    assert "病假" in got.reason and "会议" in got.reason


def test_everybody_away_leaves_the_work_with_the_office_never_with_an_absent_person():
    got = domain.assign(POST, [away("zhang"), away("li"), away("wang")], T)
    assert got.holder is None and got.role is None
    assert got.handover and not got.head_fallback
    assert "nobody of the post is present" in got.reason


def test_no_post_configured_leaves_the_work_unassigned():
    got = domain.assign(None, [away("zhang")], T)
    assert got == domain.Assignment(None, None)
    assert not got.handover


def test_a_current_holder_is_kept_while_present_and_replaced_when_away():
    assert domain.assign(POST, [], T, current="li") == domain.Assignment("li", "B")
    assert domain.assign(POST, [], T, current="zhao") == domain.Assignment("zhao", None)  # a claimant
    moved = domain.assign(POST, [away("li", "事假")], T, current="li")
    assert (moved.holder, moved.role, moved.handover_from) == ("zhang", "A", "li")
    assert "事假" in moved.reason
    to_b = domain.assign(POST, [away("zhang"), away("zhao", "出差")], T, current="zhao")
    assert (to_b.holder, to_b.handover_from) == ("li", "zhao") and "出差" in to_b.reason
    released = domain.assign(None, [away("zhao")], T, current="zhao")
    assert released.holder is None and released.handover_from == "zhao"


def test_an_absence_is_half_open_from_inclusive_to_exclusive():
    gone = away("zhang", start=T, end=T + timedelta(hours=2))
    assert domain.assign(POST, [gone], T).holder == "li", "away from the first instant of `from`"
    assert domain.assign(POST, [gone], T - timedelta(microseconds=1)).holder == "zhang"
    assert domain.assign(POST, [gone], T + timedelta(hours=2) - timedelta(microseconds=1)).holder == "li"
    assert domain.assign(POST, [gone], T + timedelta(hours=2)).holder == "zhang", "back at `to`"


def test_plain_dates_and_naive_times_are_shanghai():
    leave = domain.absence("zhang", date(2026, 11, 2), date(2026, 11, 5), "年休假 2-4 Nov")
    shanghai = timezone(timedelta(hours=8))
    assert leave.start == datetime(2026, 11, 2, tzinfo=shanghai)
    assert leave.covers(datetime(2026, 11, 4, 23, 59, 59, tzinfo=shanghai))
    assert not leave.covers(datetime(2026, 11, 5, 0, 0, tzinfo=shanghai)), "back on the 5th"
    assert not leave.covers(datetime(2026, 11, 1, 23, 59, 59, tzinfo=shanghai))
    meeting = domain.absence("li", datetime(2026, 11, 3, 14, 0), datetime(2026, 11, 3, 16, 0), "会议")
    assert meeting.start == datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
    aware = domain.absence("li", datetime(2026, 11, 3, 6, 0, tzinfo=UTC), T + timedelta(days=1), "培训")
    assert aware.start.tzinfo == UTC and aware.start.hour == 6


def test_an_absence_needs_a_reason_and_an_end_after_its_start():
    with pytest.raises(domain.DecisionRejected, match="after"):
        domain.absence("zhang", T, T, "会议")
    with pytest.raises(domain.DecisionRejected, match="after"):
        domain.absence("zhang", T, T - timedelta(hours=1), "会议")
    with pytest.raises(domain.DecisionRejected, match="reason"):
        domain.absence("zhang", T, T + timedelta(hours=1), "  ")


def test_a_post_has_two_different_holders_and_a_separate_head():
    assert domain.check_post("zhang", "li", "wang") == POST
    with pytest.raises(domain.DecisionRejected, match="different"):
        domain.check_post("zhang", "zhang", "wang")
    with pytest.raises(domain.DecisionRejected, match="fallback"):
        domain.check_post("zhang", "li", "li")
    with pytest.raises(domain.DecisionRejected, match="staff id"):
        domain.check_post("zhang san", "li", "wang")
    assert domain.valid_office("city") and domain.valid_office("320583101")
    assert not domain.valid_office("32058310") and not domain.valid_office("town")


# --- claiming and acting ---------------------------------------------------------------------------------

def test_claims():
    assert domain.check_claim("pending", None, "zhao", [], T) == "take"
    assert domain.check_claim("paused", "zhao", "zhao", [], T) == "held"
    with pytest.raises(domain.NotYours, match="held by zhang"):
        domain.check_claim("pending", "zhang", "zhao", [], T)
    assert domain.check_claim("pending", "zhang", "zhao", [away("zhang")], T) == "takeover"
    with pytest.raises(domain.NotYours, match="away"):
        domain.check_claim("pending", None, "zhao", [away("zhao")], T)
    with pytest.raises(domain.ItemClosed, match="superseded"):
        domain.check_claim("superseded", None, "zhao", [], T, superseded_by=9)
    with pytest.raises(domain.AlreadyDecided):
        domain.check_claim("decided", None, "zhao", [], T)


def test_who_may_act_on_an_item():
    domain.check_actor(None, "zhao", is_head=False)
    domain.check_actor("zhao", "zhao", is_head=False)
    domain.check_actor("zhang", "wang", is_head=True)
    with pytest.raises(domain.NotYours, match="claim it first"):
        domain.check_actor("zhang", "zhao", is_head=False)


# --- decisions and the steps of an item ---------------------------------------------------------------------

def test_decision_checks():
    domain.check_decision("pending", "approved", None)
    domain.check_decision("pending", "approved", None, valid_until=date(2031, 1, 1), today=date(2026, 11, 3))
    with pytest.raises(domain.DecisionRejected, match="reason"):
        domain.check_decision("pending", "refused", "  ")
    with pytest.raises(domain.AlreadyDecided, match="refused"):
        domain.check_decision("decided", "approved", None, current_outcome="refused")
    with pytest.raises(domain.ItemClosed, match=r"superseded.*work item 12"):
        domain.check_decision("superseded", "approved", None, superseded_by=12)
    with pytest.raises(domain.ItemClosed, match="withdrawn"):
        domain.check_decision("withdrawn", "approved", None)
    with pytest.raises(domain.NotNow, match="materials"):
        domain.check_decision("waiting_materials", "approved", None)
    with pytest.raises(domain.NotNow, match="procedure"):
        domain.check_decision("paused", "approved", None)
    with pytest.raises(domain.DecisionRejected, match="only an approval"):
        domain.check_decision("pending", "refused", "不符合条件", valid_until=date(2031, 1, 1))
    with pytest.raises(domain.DecisionRejected, match="before today"):
        domain.check_decision("pending", "approved", None, valid_until=date(2026, 11, 2), today=date(2026, 11, 3))
    assert issubclass(domain.ItemClosed, domain.Conflicting) and issubclass(domain.AlreadyDecided, domain.Conflicting)


@pytest.mark.parametrize("status, step, after", [
    ("pending", "request_materials", "waiting_materials"),
    ("pending", "start_procedure", "paused"),
    ("paused", "end_procedure", "pending"),
    ("paused", "request_extension", "paused"),
    ("pending", "approve_extension", "pending"),
    ("waiting_materials", "claim", "waiting_materials"),
])
def test_steps_allowed(status, step, after):
    assert domain.next_status(status, step) == after


@pytest.mark.parametrize("status, step, error", [
    ("paused", "start_procedure", domain.NotNow),
    ("pending", "end_procedure", domain.NotNow),
    ("waiting_materials", "request_materials", domain.NotNow),
    ("waiting_materials", "request_extension", domain.NotNow),
    ("superseded", "end_procedure", domain.ItemClosed),
    ("withdrawn", "claim", domain.ItemClosed),
    ("decided", "request_materials", domain.AlreadyDecided),
])
def test_steps_refused(status, step, error):
    with pytest.raises(error):
        domain.next_status(status, step)


def test_materials_are_told_all_at_once_each_named_once():
    assert domain.check_materials([{"name": " 劳动合同 "}, {"code": "bank", "name": "银行流水"}]) == [
        {"code": None, "name": "劳动合同"}, {"code": "bank", "name": "银行流水"}]
    with pytest.raises(domain.DecisionRejected, match="at least one"):
        domain.check_materials([])
    with pytest.raises(domain.DecisionRejected, match="twice"):
        domain.check_materials([{"name": "劳动合同"}, {"code": None, "name": "劳动合同"}])
    with pytest.raises(domain.DecisionRejected, match="name"):
        domain.check_materials([{"name": "  "}])


def test_the_extension_at_most_once():
    domain.check_extension_request(None, 5, "需征求意见")
    asked = domain.ExtensionState("requested", 5, "zhang")
    with pytest.raises(domain.ExtensionTaken, match="at most once"):
        domain.check_extension_request(asked, 3, "again")
    with pytest.raises(domain.ExtensionTaken):
        domain.check_extension_request(domain.ExtensionState("approved", 5, "zhang"), 3, "again")
    with pytest.raises(domain.DecisionRejected, match="reason"):
        domain.check_extension_request(None, 5, " ")
    domain.check_extension_approval(asked)
    with pytest.raises(domain.NotNow, match="no extension"):
        domain.check_extension_approval(None)
    with pytest.raises(domain.ExtensionTaken, match="already approved"):
        domain.check_extension_approval(domain.ExtensionState("approved", 5, "zhang"))


def test_an_extension_is_asked_within_what_the_routed_work_allows():
    """The ledger owns the rule; the desk checks a request against what the routed work says."""
    domain.check_extension_request(None, 15, "需征求意见", days_max=15)
    with pytest.raises(domain.DecisionRejected, match="1 to 15") as refused:
        domain.check_extension_request(None, 30, "太久", days_max=15)
    assert refused.value.details == {"days": ["1 to 15"]}
    with pytest.raises(domain.ExtensionTaken, match="at most once"):
        domain.check_extension_request(None, 3, "again", days_max=0)
    domain.check_extension_request(None, 30, "not told: the ledger decides", days_max=None)
    # refused by the ledger: asked again is allowed; approving checks the bound too
    domain.check_extension_request(domain.ExtensionState("refused", 30, "zhang"), 10, "再申请", days_max=15)
    with pytest.raises(domain.NotNow):
        domain.check_extension_approval(domain.ExtensionState("refused", 30, "zhang"))
    with pytest.raises(domain.DecisionRejected):
        domain.check_extension_approval(domain.ExtensionState("requested", 30, "zhang"), days_max=15)


# --- urgency -------------------------------------------------------------------------------------------------

def test_urgency_orders_overdue_first_then_fewest_days_then_arrival():
    items = [(3, date(2026, 11, 6), 1), (-1, date(2026, 11, 2), 7), (0, date(2026, 11, 3), 5),
             (3, date(2026, 11, 6), 0), (1, date(2026, 11, 4), 2)]
    ranked = sorted(items, key=lambda i: domain.urgency_key(*i))
    assert [i[2] for i in ranked] == [7, 5, 2, 0, 1]


def test_status_filters():
    assert domain.parse_status_filter(None) == domain.OPEN
    assert domain.parse_status_filter("all") is None
    assert domain.parse_status_filter("decided,superseded") == ("decided", "superseded")
    with pytest.raises(domain.DecisionRejected, match="status"):
        domain.parse_status_filter("lost")


# --- the desk on a SQLite file (no broker) -------------------------------------------------------------------

TOWN = "320583101"


@pytest.fixture
def desk_and_store(tmp_path):
    from pathlib import Path

    from services.approval.service import VERSIONS
    from services.approval.usecases import Desk
    from shared.store import Store
    from shared.workdays import WorkingCalendar

    store = Store(f"sqlite:///{tmp_path / 'approval.db'}", Path(VERSIONS), "x.events")
    store.migrate()
    desk = Desk(department="renshe", instance="approval-renshe", clock=ManualClock(T), calendar=WorkingCalendar())
    yield desk, store
    store.dispose()


def _route(desk, store, number, deadline, version=1, auto=False):
    msg = make_message("case.routed", number, version, {
        "accepting_town": TOWN, "handling_town": TOWN, "item_code": "RS-0001", "item_name": "就业登记",
        "department": "renshe", "kind": "promised", "deadline": deadline, "auto_decide": auto,
        "lead_department": "renshe", "departments": ["renshe"]}, producer="test")
    with store.transaction() as tx:
        return desk.receive(tx, msg)


def _who(role, subject, scope=f"department:renshe@{TOWN}"):
    return Principal(subject=subject, role=role, scope=Scope.parse(scope), expires_at=2**40, issued_at=0)


def test_worklist_by_urgency_with_paused_items_apart(desk_and_store):
    desk, store = desk_and_store
    for n, due in (("320583101-C-late", date(2026, 11, 10)), ("320583101-C-soon", date(2026, 11, 4)),
                   ("320583101-C-over", date(2026, 11, 2)), ("320583101-C-mid", date(2026, 11, 6))):
        assert _route(desk, store, n, due) == "ok"
    approver = _who("approver", "zhao")
    with store.transaction() as tx:
        mid = next(i for i in desk.worklist(tx, approver, {})["items"] if i["case_number"] == "320583101-C-mid")
        desk.start_procedure(tx, approver, mid["id"], {"procedure": "现场勘察", "reason": "需现场核实"})
    with store.transaction() as tx:
        listing = desk.worklist(tx, approver, {})
    assert [(i["case_number"], i["days_left"]) for i in listing["items"]] == [
        ("320583101-C-over", -1), ("320583101-C-soon", 1), ("320583101-C-late", 5)]
    assert [(i["case_number"], i["status"], i["paused"]) for i in listing["paused"]] == [
        ("320583101-C-mid", "paused", True)]
    assert listing["items"][0]["overdue"] is True and listing["items"][1]["overdue"] is False


def test_head_fallback_is_counted_once_the_transaction_commits(desk_and_store):
    desk, store = desk_and_store
    registry = CollectorRegistry()
    desk.bind_metrics(registry)
    desk.bind_metrics(registry)  # binding twice to the same registry is harmless

    def count():
        return registry.get_sample_value("tongban_ab_head_fallback_total", {"department": "renshe"})

    assert count() == 0
    head = _who("department_head", "wang")
    with store.transaction() as tx:
        desk.set_post(tx, head, TOWN, {"a": "zhang", "b": "li", "head": None})
        for holder in ("zhang", "li"):
            desk.add_absence(tx, head, TOWN, {"holder": holder, "from_": T - timedelta(hours=1),
                                              "to": T + timedelta(days=2), "reason": "培训"})
    assert _route(desk, store, "320583101-C-both-away", date(2026, 11, 9)) == "ok"
    assert count() == 1
    try:
        with store.transaction() as tx:
            desk.receive(tx, make_message("case.routed", "320583101-C-never", 1, {
                "accepting_town": TOWN, "handling_town": TOWN, "item_code": "RS-0001", "item_name": "就业登记",
                "department": "renshe", "kind": "promised", "deadline": date(2026, 11, 9), "auto_decide": False,
                "lead_department": "renshe", "departments": ["renshe"]}, producer="test"))
            raise RuntimeError("the handler failed after assigning")
    except RuntimeError:
        pass
    assert count() == 1, "a rolled-back assignment is not counted"
    with store.transaction() as tx:
        items = desk.worklist(tx, head, {})["items"]
    assert [(i["case_number"], i["assignee"]) for i in items] == [("320583101-C-both-away", "wang")]


def test_the_ledgers_refusal_shows_on_the_work_item(desk_and_store):
    """Work routed by an older centre says nothing of the limit: the head approves 30 days, the ledger
    (20 statutory, 5 promised) refuses, and the item shows it with the ledger's reason."""
    desk, store = desk_and_store
    number = "320583101-20261102-00001"
    assert _route(desk, store, number, date(2026, 11, 9)) == "ok"
    zhao, wang = _who("approver", "zhao"), _who("department_head", "wang")
    with store.transaction() as tx:
        item_id = desk.worklist(tx, zhao, {})["items"][0]["id"]
        desk.request_extension(tx, zhao, item_id, {"days": 30, "reason": "需征求意见"})
        desk.approve_extension(tx, wang, item_id)
        desk.start_procedure(tx, zhao, item_id, {"procedure": "听证", "reason": "听证"})
    for step, reason in (("extend", "an extension is 1 to 15 working days for this item"),
                         ("start_procedure", "a case in status 'paused' does not allow 'pause'")):
        refusal = make_message("case.step_refused", number, 1, {
            "accepting_town": TOWN, "handling_town": TOWN, "department": "renshe", "work_item_id": item_id,
            "step": step, "reason": reason, "days": 30 if step == "extend" else None}, producer="intake")
        with store.transaction() as tx:
            assert desk.on_step_refused(tx, refusal) == "ok"
    with store.transaction() as tx:
        view = desk.detail(tx, desk.visible_item(tx, zhao, item_id))
    assert (view["extension"]["status"], view["extension"]["refused_reason"]) == (
        "refused", "an extension is 1 to 15 working days for this item")
    assert [s["step"] for s in view["refused_steps"]] == ["extend", "start_procedure"]
    assert view["status"] == "pending" and view["procedure"] is None, "the refused procedure is undone here"
    with store.transaction() as tx:  # asked again, within what the ledger allows
        desk.request_extension(tx, zhao, item_id, {"days": 10, "reason": "再申请"})
        assert desk.detail(tx, desk.visible_item(tx, zhao, item_id))["extension"]["status"] == "requested"
    with store.transaction() as tx, pytest.raises(Exception) as foreign:
        desk.visible_item(tx, _who("approver", "zhou", "department:renshe@320583102"), item_id)
    assert type(foreign.value).__name__ == "NotVisible" and str(foreign.value) == f"no work item {item_id}"


def _deadline_moved(number, version, deadline, action="extend", paused_since=None):
    return make_message("case.deadline_moved", number, version, {
        "accepting_town": TOWN, "handling_town": TOWN, "department": "renshe", "deadline": deadline,
        "deadline_provisional": False, "paused_since": paused_since, "action": action, "reason": "窗口延期"},
        producer=f"intake-{TOWN}")


def test_the_ledgers_deadline_moves_the_work_item_once_per_case_version(desk_and_store):
    """The ledger owns the deadline: the item follows it, ranks by it, keeps it in its history, and a message
    about an older case version than the one it shows (overtaken, redelivered) changes nothing."""
    desk, store = desk_and_store
    number, other = "320583101-20261102-00003", "320583101-20261102-00004"
    assert _route(desk, store, number, date(2026, 11, 9)) == "ok"
    assert _route(desk, store, other, date(2026, 11, 12)) == "ok"
    zhao = _who("approver", "zhao")
    with store.transaction() as tx:
        assert desk.on_deadline_moved(tx, _deadline_moved(number, 3, date(2026, 11, 20))) == "ok"
    with store.transaction() as tx:  # the pause of version 2 arrives late: older than what the item shows
        assert desk.on_deadline_moved(tx, _deadline_moved(number, 2, date(2026, 11, 9), "pause",
                                                          paused_since=date(2026, 11, 3))) == "stale"
        assert desk.on_deadline_moved(tx, _deadline_moved(number, 3, date(2026, 11, 20))) == "stale"
    with store.transaction() as tx:
        listing = desk.worklist(tx, zhao, {})
        item_id = next(i["id"] for i in listing["items"] if i["case_number"] == number)
        view = desk.detail(tx, desk.visible_item(tx, zhao, item_id))
    assert [i["case_number"] for i in listing["items"]] == [other, number], "ranked by the ledger's deadline"
    assert view["deadline"] == date(2026, 11, 20) and view["days_left"] == 13
    moved = [h for h in view["history"] if h["action"] == "deadline_moved"]
    assert len(moved) == 1 and moved[0]["actor"] == "ledger" and moved[0]["reason"] == "窗口延期"
    assert moved[0]["data"] == {"from": "2026-11-09", "to": "2026-11-20", "provisional": False,
                                "paused_since": None, "step": "extend", "case_version": 3}
    with store.transaction() as tx:  # news of work not here yet waits (retried) instead of being lost
        with pytest.raises(Exception, match="no work item") as early:
            desk.on_deadline_moved(tx, _deadline_moved("320583101-20261102-00099", 2, date(2026, 11, 20)))
    assert type(early.value).__name__ == "WorkNotYetArrived"


def test_the_response_schemas_say_what_the_desk_answers(desk_and_store):
    import json

    from services.approval.schemas import PostsSchema, StatsSchema, WorkItemDetailSchema, WorklistSchema

    desk, store = desk_and_store
    assert _route(desk, store, "320583101-20261102-00002", date(2026, 11, 9)) == "ok"
    head, ops = _who("department_head", "wang"), _who("service", "ops", "city")
    roundtrip = lambda v: json.loads(json.dumps(v, default=str))  # noqa: E731
    with store.transaction() as tx:
        desk.set_post(tx, head, TOWN, {"a": "zhang", "b": "li", "head": None})
        listing = desk.worklist(tx, head, {})
        WorklistSchema().load(roundtrip(listing))
        item_id = listing["items"][0]["id"]
        desk.request_extension(tx, head, item_id, {"days": 3, "reason": "需征求意见"})
        WorkItemDetailSchema().load(roundtrip(desk.detail(tx, desk.visible_item(tx, head, item_id))))
        PostsSchema().load(roundtrip(desk.posts(tx, head)))
        StatsSchema().load(roundtrip(desk.stats(tx, ops)))
