"""The window's use cases on a SQLite file with a manual clock: no broker. What leaves is read from the
outbox, as the relay would send it."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.intake import views
from services.intake.models import Ledger
from services.intake.schemas import CaseDetailSchema, CaseListSchema, StatsSchema
from services.intake.service import VERSIONS
from services.intake.usecases import Window
from shared.auth import Principal, Scope
from shared.catalog import SAMPLE_CATALOG
from shared.clock import ManualClock
from shared.contracts import make_message
from shared.errors import NotAllowedNow, NotPermitted, NotVisible, RuleViolation
from shared.reference import Book, Catalogs, make_record
from shared.store import Store, outbox_table
from shared.web import error_status
from shared.workdays import WorkingCalendar

TOWN, OTHER = "320583101", "320583102"
MONDAY = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
APPLICANT = {"type": "person", "name": "张三", "id_number": "11010519491231002X", "phone": "13812345678",
             "channel": "sms", "town": None}


def _who(role="clerk", scope=f"town:{TOWN}", subject="clerk-1"):
    return Principal(subject=subject, role=role, scope=Scope.parse(scope), expires_at=2**40, issued_at=0)


@pytest.fixture
def window(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'intake.db'}", Path(VERSIONS), "x.events")
    store.migrate()
    w = Window(town=TOWN, instance=f"intake-{TOWN}",
               catalogs=Catalogs(Book([make_record("catalog", SAMPLE_CATALOG.read_text("utf-8"))])),
               calendar=WorkingCalendar(), clock=ManualClock(MONDAY), work_exchange="x.work")
    w.store = store
    yield w
    store.dispose()


def _open(w, item="RS-0001", materials=("idcard", "form"), **extra):
    body = {"item_code": item, "materials": list(materials), "applicant": dict(APPLICANT), **extra}
    with w.store.transaction() as tx:
        case, created = w.submit(tx, body, _who(), None)
        assert created
        return case.case_number


def _step(w, number, step, *args, who=None):
    with w.store.transaction() as tx:
        case = w.case_for_step(tx, who or _who(), number)
        return views.case_view(w, tx, getattr(w, step)(tx, case, (who or _who()).subject, *args), with_history=True)


def _sent(w) -> list[tuple[str, dict]]:
    with w.store.read() as session:
        rows = session.execute(sa.select(outbox_table.c.routing_key, outbox_table.c.body)
                               .order_by(outbox_table.c.id)).all()
    return [(key, json.loads(body)) for key, body in rows]


def _department_asks(w, number, action, version=1, **payload):
    return make_message("case.department", number, version, {
        "accepting_town": TOWN, "handling_town": TOWN, "department": "renshe", "work_item_id": 7,
        "action": action, "by": "zhao", "reason": "需要", **payload}, producer="approval-renshe")


def test_opening_stores_and_publishes_the_domains_whole_decision(window):
    number = _open(window)
    with window.store.transaction() as tx:
        view = views.case_detail(window, tx, _who(), number)
    assert (view["status"], view["deadline"].isoformat(), view["kind"]) == ("in_review", "2026-11-09", "promised")
    assert view["applicant"]["phone"] == "138****5678"
    sent = [key for key, _ in _sent(window)]
    assert sent == [f"case.accepted.{TOWN}", f"case.routed.renshe.{TOWN}", f"notice.issued.{TOWN}"]
    routed = _sent(window)[1][1]["payload"]
    assert routed["extension_days_max"] == 15, "20 statutory − 5 promised working days"
    CaseDetailSchema().load(json.loads(json.dumps(view, default=str)))  # the response schema says it all


def test_domain_errors_are_types_the_edge_maps_once(window):
    with pytest.raises(RuleViolation) as unknown:
        _open(window, materials=("idcard", "passport"))
    assert error_status(unknown.value) == (400, "bad_request") and unknown.value.details == {"materials": ["passport"]}
    number = _open(window, materials=("idcard",))  # incomplete: pending materials
    with pytest.raises(NotAllowedNow) as clash:
        _step(window, number, "pause", "听证", "x")
    assert error_status(clash.value) == (409, "conflict") and clash.value.details["status"] == "pending_materials"
    with pytest.raises(NotVisible) as hidden:
        _step(window, number, "return_case", "x", who=_who(scope=f"town:{OTHER}"))
    assert error_status(hidden.value) == (404, "not_found") and hidden.value.message == f"no case {number}"
    with pytest.raises(NotPermitted):
        window.require_town_scope(_who(scope=f"town:{OTHER}"))


def test_supplement_after_the_back_office_asked_runs_the_clock_on_once(window):
    number = _open(window)
    with window.store.transaction() as tx:
        assert window.on_department_step(tx, _department_asks(window, number, "request_materials",
                                                              materials=[{"name": "劳动合同"}])) == "ok"
    window.clock.advance(days=7)  # five working days waiting for the applicant
    view = _step(window, number, "supplement", ["renshe-1"])
    assert view["status"] == "in_review" and view["deadline"].isoformat() == "2026-11-16"
    assert [n["kind"] for n in view["notices"]] == ["promise", "one_time_notice", "promise"]


def test_pause_and_resume_by_http_and_bus_are_the_same_steps(window):
    a, b = _open(window), _open(window)
    _step(window, a, "pause", "现场勘察", "核实")
    with window.store.transaction() as tx:
        asked = _department_asks(window, b, "start_procedure", procedure="现场勘察")
        assert window.on_department_step(tx, asked) == "ok"
    window.clock.advance(days=7)
    resumed_http = _step(window, a, "resume")
    with window.store.transaction() as tx:  # the department asks on the version routed to it
        assert window.on_department_step(tx, _department_asks(window, b, "end_procedure")) == "ok"
        resumed_bus = views.case_view(window, tx, window.visible_case(tx, _who(), b))
    with window.store.transaction() as tx:
        assert window.on_department_step(tx, _department_asks(window, b, "end_procedure", version=2)) == "stale"
    assert resumed_http["deadline"] == resumed_bus["deadline"] and resumed_http["deadline"].isoformat() == "2026-11-16"


def test_the_ledger_refuses_a_department_step_and_tells_the_department(window):
    number = _open(window)
    supervisor = _who("supervisor", "city", "sup-1")
    with window.store.transaction() as tx:
        window.extend(tx, window.case_for_step(tx, supervisor, number), "sup-1", 3, "窗口延期")
    before = len(_sent(window))
    with window.store.transaction() as tx:
        outcome = window.on_department_step(tx, _department_asks(window, number, "extend", days=10,
                                                                 approved_by="wang"))
    assert outcome == "refused"
    (key, refusal), = _sent(window)[before:]
    assert key == f"case.step_refused.renshe.{TOWN}"
    assert (refusal["payload"]["step"], refusal["payload"]["work_item_id"], refusal["payload"]["days"]) == (
        "extend", 7, 10)
    assert "at most once" in refusal["payload"]["reason"]
    with window.store.transaction() as tx:
        view = views.case_detail(window, tx, _who(), number)
    assert view["extended_days"] == 3 and [h["action"] for h in view["history"]].count("extend") == 1
    with window.store.transaction() as tx:  # too many days: refused with the rule's words
        other = _open(window)
        assert window.on_department_step(tx, _department_asks(window, other, "extend", days=30,
                                                              approved_by="wang")) == "refused"
    assert "1 to 15" in _sent(window)[-1][1]["payload"]["reason"]


def test_the_ledger_tells_each_undecided_department_when_it_moves_the_deadline(window):
    """The ledger owns the deadline: a pause and an extension after routing reach, in the same transaction
    (the outbox), every department of the joint case still to decide, never one that has decided."""
    number = _open(window, item="MZ-0009", materials=("idcard", "disability", "apply", "bank"))
    routed = {b["payload"]["department"] for k, b in _sent(window) if k.startswith("case.routed.")}
    assert routed == {"minzheng", "canlian"} and not [k for k, _ in _sent(window) if "deadline_moved" in k]
    with window.store.transaction() as tx:
        assert window.apply_decision(tx, make_message("case.decided", number, 1, {
            "accepting_town": TOWN, "handling_town": TOWN, "department": "minzheng", "outcome": "approved",
            "result_number": "MZ-1", "decided_by": "li", "work_item_id": 3}, producer="approval-minzheng")) == "ok"
    supervisor = _who("supervisor", "city", "sup-1")
    before = len(_sent(window))
    extended = _step(window, number, "extend", 3, "窗口延期", who=supervisor)
    (key, moved), = [(k, b) for k, b in _sent(window)[before:] if k.startswith("case.deadline_moved.")]
    assert key == f"case.deadline_moved.canlian.{TOWN}", "the department that decided hears nothing"
    assert moved["case_version"] == extended["version"] and moved["type"] == "case.deadline_moved"
    assert moved["payload"] | {"reason": None} == {
        "accepting_town": TOWN, "handling_town": TOWN, "department": "canlian", "action": "extend",
        "deadline": extended["deadline"].isoformat(), "deadline_provisional": extended["deadline_provisional"],
        "paused_since": None, "reason": None}
    window.clock.advance(days=1)
    before = len(_sent(window))
    paused = _step(window, number, "pause", "现场勘察", "核实", who=supervisor)
    [(key, moved)] = [(k, b) for k, b in _sent(window)[before:] if k.startswith("case.deadline_moved.")]
    assert key == f"case.deadline_moved.canlian.{TOWN}" and moved["case_version"] == paused["version"]
    assert (moved["payload"]["action"], moved["payload"]["paused_since"]) == ("pause", "2026-11-03")


def test_every_step_that_moves_the_clock_after_routing_tells_the_department(window):
    """A single department's case: pause, resume, more materials and the clock running again each reach it."""
    number = _open(window)
    _step(window, number, "pause", "听证", "听证")
    window.clock.advance(days=7)
    _step(window, number, "resume")
    with window.store.transaction() as tx:
        assert window.on_department_step(tx, _department_asks(window, number, "request_materials",
                                                              materials=[{"name": "劳动合同"}])) == "ok"
    window.clock.advance(days=7)
    _step(window, number, "supplement", ["renshe-1"])
    moved = [(k, b) for k, b in _sent(window) if k.startswith("case.deadline_moved.")]
    assert {k for k, _ in moved} == {f"case.deadline_moved.renshe.{TOWN}"}
    assert [(b["payload"]["action"], b["payload"]["paused_since"], b["payload"]["deadline"]) for _, b in moved] == [
        ("pause", "2026-11-02", "2026-11-09"), ("resume", None, "2026-11-16"),
        ("request_materials", "2026-11-09", "2026-11-16"), ("complete_materials", None, "2026-11-23")]
    versions = [b["case_version"] for _, b in moved]
    assert versions == sorted(set(versions)), "each one a newer case version: the desk orders them so"


def test_reads_are_scoped(window):
    _open(window)
    with window.store.transaction() as tx:
        listing = views.case_list(window, tx, _who(), {})
        CaseListSchema().load(json.loads(json.dumps(listing, default=str)))
        StatsSchema().load(views.stats(window, tx, _who("supervisor", f"town:{TOWN}")))
        for read in (lambda p: views.stats(window, tx, p), lambda p: views.ledger_check(window, tx, p),
                     lambda p: views.case_list(window, tx, p, {})):
            with pytest.raises(NotVisible):
                read(_who("supervisor", f"town:{OTHER}"))


def _decided(number, department, outcome, by, reason=None):
    return make_message("case.decided", number, 1, {
        "accepting_town": TOWN, "handling_town": TOWN, "department": department, "outcome": outcome,
        "reason": reason, "result_number": None, "decided_by": by, "work_item_id": 3},
        producer=f"approval-{department}")


def test_a_decision_after_another_department_refused_the_joint_case_is_kept_not_applied(window):
    """联办: one department's refusal closes the case; another's decision made meanwhile changes nothing, but it
    was made: the timeline keeps it once (late_decision) and the stats count it. The refusing department's own
    decision delivered again is not a late one."""
    number = _open(window, item="MZ-0009", materials=("idcard", "disability", "apply", "bank"))
    with window.store.transaction() as tx:
        assert window.apply_decision(tx, _decided(number, "canlian", "refused", "zhao", "不符合条件")) == "ok"
    for message in (_decided(number, "minzheng", "approved", "li"),
                    _decided(number, "canlian", "refused", "zhao", "不符合条件")):
        for _ in range(2):  # each delivered twice
            with window.store.transaction() as tx:
                assert window.apply_decision(tx, message) == "stale"
    with window.store.transaction() as tx:
        view = views.case_view(window, tx, window.case_for_step(tx, _who(), number), with_history=True)
        stats = Ledger(tx.session).counts()
    assert (view["status"], view["outcome"]) == ("completed", "refused")
    late = [e for e in view["history"] if e["action"] == "late_decision"]
    assert [(e["actor"], e["data"]["department"], e["data"]["outcome"]) for e in late] == [
        ("li", "minzheng", "approved")]
    assert stats["late_decisions"] == 1
