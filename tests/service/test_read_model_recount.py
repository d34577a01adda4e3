"""The read models behind the supervision board (case_views) and the monthly report (figure_counts) agree
with a recount from evaluation's stored case events (services.evaluation.recount), field by field, after a
mixed fortnight at a window with a manual clock: instant cases, promised ones decided on time, late or
refused, an incomplete one completed days later, a returned one, a consultation, a village station's
submission, a special procedure paused and resumed, more materials asked by the back office and supplied, a
joint case half decided, and cases left open. Evaluation takes the events as they come (several at once).
Plus the recount's own rules on a hand-made case (no broker)."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from types import SimpleNamespace

import eventlet
import pytest

from services.evaluation import recount
from services.evaluation.models_board import BoardCounts
from shared.bus import consumer_counts
from shared.clock import ManualClock
from shared.platform import Platform
from shared.vocabulary import OPEN_CASE_STATUSES
from shared.workdays import WorkingCalendar
from tests.support import TOWN_A, VALID_ID, VALID_PHONE, City, wait_for

INTAKE = f"intake-{TOWN_A}"
VILLAGE = f"{TOWN_A}001"
RS = ["idcard", "form"]  # RS-0001: renshe at the town, promised
RS_0008 = ["idcard", "form", "receipt"]
MZ_0009 = ["idcard", "disability", "apply", "bank"]  # joint: minzheng with canlian (not served here)
AUTHORISATION = {"by": "李四", "matters": "代为申请就业登记", "signed_at": "2026-11-02T09:00:00+08:00",
                 "method": "手写签名"}


@pytest.fixture
def pg_city(tmp_path, postgres, amqp_url):
    c = City(amqp_url=amqp_url, data_dir=tmp_path / "data", backend="postgres", postgres=postgres)
    yield c
    c.close()


def _platform(city, instance) -> Platform:
    return city.cluster.platform(instance)


def _quiet(city) -> bool:
    """No message left to leave an outbox, none waiting for evaluation."""
    backlog = sum(_platform(city, r.settings.instance).store.outbox_backlog() for r in city.cluster.running)
    return backlog == 0 and city.queue_depth(city.queue("evaluation", "events")) == 0


@pytest.mark.full  # long; the chaos run's books stay in CI
def test_the_board_and_the_report_agree_with_a_recount_of_the_events(pg_city):
    city = pg_city
    clock = ManualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))  # Monday 2 Nov 2026, 09:00 in Shanghai
    city.start(INTAKE, "approval-minzheng", "approval-renshe", "agent", "evaluation", build={"clock": clock})
    wait_for(lambda: all(consumer_counts(city.amqp_url, [q])[q] for q in
                         [city.queue(f"approval-{d}", "work") for d in ("minzheng", "renshe")]), what="departments")

    def submit(code, materials, **extra):
        r = city.submit(code, materials=materials, **extra)
        assert r.status_code == 201, r.text
        return r.json()["case_number"]

    def step(number, name, body=None, token=None):
        r = city.act(number, name, body, token=token)
        assert r.status_code == 200, (name, r.text)
        return r.json()

    def status(number, wanted):
        return wait_for(lambda: city.case(number)["status"] == wanted, what=f"{number} {wanted}")

    instant = [submit("MZ-0001", ["idcard", "photo"]) for _ in range(3)]
    on_time, late, refused, left_open = (submit("RS-0001", RS) for _ in range(4))
    incomplete = submit("RS-0001", ["idcard"])
    submit("RS-0001", RS, return_reason="申请人不属于灵活就业人员")
    submit("MZ-0012", [])  # a consultation
    paused = submit("RS-0008", RS_0008)
    asked = submit("RS-0001", RS)
    joint = submit("MZ-0009", MZ_0009)
    r = city.call("POST", "agent", "/station/submissions", city.token("agent", f"village:{VILLAGE}", "agent-cb"),
                  {"item_code": "RS-0001", "materials": RS, "authorisation": AUTHORISATION,
                   "applicant": {"name": "李四", "id_number": VALID_ID, "phone": VALID_PHONE}},
                  headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    step(paused, "pause", {"procedure": "现场勘察", "reason": "核实经营场所"})
    for number in instant:
        status(number, "completed")

    # the back office asks for more materials: back at the window, supplied the next day
    token = city.approver("renshe", TOWN_A)
    item = wait_for(lambda: next((i for i in city.call("GET", "approval-renshe", "/work-items", token).json()["items"]
                                  if i["case_number"] == asked), None), what="the work item")
    r = city.call("POST", "approval-renshe", f"/work-items/{item['id']}/materials", token,
                  {"materials": [{"code": "bank", "name": "银行流水"}], "reason": "需核实收入"})
    assert r.status_code == 200, r.text
    status(asked, "pending_materials")

    clock.advance(days=1)  # Tuesday
    step(incomplete, "supplement", {"materials": ["form"]})  # the clock starts today
    step(asked, "supplement", {"materials": ["bank"]})
    city.decide("minzheng", joint, TOWN_A)  # the joint case waits for canlian
    clock.advance(days=1)  # Wednesday
    step(paused, "resume")
    city.decide("renshe", on_time, TOWN_A)
    city.decide("renshe", refused, TOWN_A, outcome="refused", reason="参保信息与实际不符")
    for number in (on_time, refused):  # the window closes them today, before the clock moves on
        status(number, "completed")
    clock.advance(days=8)  # Thursday 12 Nov: past the deadlines
    city.decide("renshe", late, TOWN_A)
    city.decide("renshe", incomplete, TOWN_A)
    for number in (late, incomplete):
        status(number, "completed")
    # the re-routed version reaches the department: decided there
    wait_for(lambda: any(i["case_number"] == asked and i["case_version"] > item["case_version"]
                         for i in city.call("GET", "approval-renshe", "/work-items", token).json()["items"]),
             what="the supplied case's new work item")
    city.decide("renshe", asked, TOWN_A)
    status(asked, "completed")

    wait_for(lambda: _quiet(city), what="every event recorded")
    eventlet.sleep(0.5)
    wait_for(lambda: _quiet(city), what="every event recorded")

    evaluation = _platform(city, "evaluation")
    calendar = evaluation.reference.calendar
    with evaluation.store.read() as session:
        events = recount.events_by_case(session)
        views, live_views = recount.case_views(session), recount.stored_case_views(session)
        counts, live_counts = recount.figure_counts(session, calendar), recount.stored_figure_counts(session)
    assert len(events) == 14 and len(views) == 14, sorted(events)
    assert recount.differences(live_views, views) == []
    assert recount.differences(live_counts, counts) == []

    # what the figures hold is what happened: the month's window row and the board's open cases
    window = {m: v for (month, dim, _t, key, office, m), v in counts.items()
              if (month, dim, key, office) == ("2026-11", "window", TOWN_A, "")}
    assert (window["received"], window["completed"], window["on_time"]) == (14, 8, 5)
    assert (window["received_instant"], window["received_promised"], window["received_supplement"],
            window["received_returned"], window["received_consultation"], window["received_joint"]) == \
        (3, 7, 1, 1, 1, 1)
    assert views[late]["outcome"] == "approved" and views[refused]["outcome"] == "refused"
    assert views[incomplete]["on_time"] is False and views[on_time]["on_time"] is True
    open_cases = {n for n, v in views.items() if v["status"] in {str(s) for s in OPEN_CASE_STATUSES}}
    board = city.call("GET", "evaluation", "/board", city.token("supervisor", "city", "supervisor-1")).json()
    assert {c["case_number"] for c in board["cases"]} == open_cases
    assert open_cases >= {left_open, paused, joint}
    assert {c["case_number"]: c["deadline"] for c in board["cases"]} == \
        {n: views[n]["deadline"].isoformat() for n in open_cases}
    # the board's counts (moved with each view written) are what the views, recounted, put in them
    with evaluation.store.read() as session:
        boards = BoardCounts(session)
        assert boards.held() == boards.recount() and sum(boards.recount().values()) >= len(open_cases)
    assert board["open_cases"] == len(open_cases) == sum(o["total"] for o in board["offices"])
    assert sum(board["counts"][c] for c in ("red", "yellow", "green")) == len(open_cases)
    assert board["counts"]["paused"] == sum(c["paused"] for c in board["cases"])


# --- the recount's rules on a hand-made case (no broker) ------------------------------------------------------

def _event(i, type_, version, at, **data):
    return SimpleNamespace(id=i, case_number="320583101-20261102-00001", type=type_, case_version=version,
                           occurred_at=at, data={"accepting_town": TOWN_A, **data})


def test_a_recount_follows_the_case_version_not_the_order_things_arrived_in():
    monday, tuesday = datetime(2026, 11, 2, 1, tzinfo=UTC), datetime(2026, 11, 3, 1, tzinfo=UTC)
    thursday = datetime(2026, 11, 5, 1, tzinfo=UTC)
    events = [  # as they arrived: the completion first, the deadline move before the pause that caused it
        _event(5, "case.completed", 4, thursday, department="renshe", kind="promised", outcome="approved",
               on_time=True, completed_on="2026-11-05", deadline="2026-11-10"),
        _event(1, "case.accepted", 1, monday, handling_town=TOWN_A, department="renshe", item_code="RS-0001",
               item_name="x", kind="promised", status="pending_materials", deadline=None, first_responder="clerk-1"),
        _event(3, "case.deadline_moved", 3, tuesday, deadline="2026-11-10", paused_since="2026-11-03"),
        _event(2, "case.updated", 2, tuesday, status="in_review", deadline="2026-11-09"),
        _event(4, "case.updated", 3, tuesday, status="paused", deadline="2026-11-09"),
        _event(6, "case.routed", 2, tuesday, handling_town=TOWN_A, departments=["renshe"], deadline="2026-11-09"),
    ]
    ordered = sorted(events, key=recount._order)
    assert [e.id for e in ordered] == [1, 2, 6, 4, 3, 5]
    view = recount.case_view(events[0].case_number, ordered)
    assert (view["status"], view["version"], view["deadline"], view["completed_on"]) == \
        ("completed", 4, date(2026, 11, 10), date(2026, 11, 5))
    assert view["paused_since"] is None and view["first_responder"] == "clerk-1"
    counts = recount.case_counts(events[0].case_number, ordered, WorkingCalendar())
    window = {k[5]: v for k, v in counts.items() if k[1:5] == ("window", TOWN_A, TOWN_A, "")}
    # a 补办件 received on Monday, its clock started on Tuesday, done on Thursday: two working days
    assert window == {"received": 1, "received_supplement": 1, "completed": 1, "on_time": 1, "finish_days": 2,
                      "finish_counted": 1}
    office = {k[5] for k in counts if k[4] == f"renshe@{TOWN_A}" and k[1] == "department"}
    assert office == set(window)
