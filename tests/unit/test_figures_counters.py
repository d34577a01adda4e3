"""The monthly counters moved by recorded events (Recorder.record and its figures hook) and by the ratings and
complaints hooks, on SQLite and PostgreSQL, without a broker: a test month's cases of every kind, on time and
late, a joint case whose second department is learned when it is routed, repeats that count once, ratings
with a void and a rectification, complaints; then the report, narrowed by town and by department."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.evaluation import figures
from services.evaluation.figures import ComplaintFacts, RatingFacts
from services.evaluation.service import VERSIONS
from services.evaluation.usecases import Recorder
from shared.clock import ManualClock
from shared.contracts import make_message
from shared.store import Store

A, B = "320583101", "320583102"
VILLAGE = f"{A}001"


def at(day: int, month: int = 11, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour - 8, 0, tzinfo=UTC)  # Shanghai hour -> UTC


def accepted(n: str, kind="promised", status="in_review", dept="minzheng", handling=A, staff="clerk-1",
             village=None, town=A):
    return ("case.accepted", n, {"accepting_town": town, "handling_town": handling, "item_code": "MZ-0001",
                                 "item_name": "某事项", "department": dept, "kind": kind, "status": status,
                                 "deadline": date(2026, 11, 20), "first_responder": staff, "via_agent": None,
                                 "village": village})


def completed(n: str, on: date, on_time=True, dept="minzheng", kind="promised", town=A):
    return ("case.completed", n, {"accepting_town": town, "department": dept, "item_name": "某事项", "kind": kind,
                                  "outcome": "approved", "completed_on": on, "deadline": date(2026, 11, 20),
                                  "on_time": on_time})


def updated(n: str, status: str, town=A):
    return ("case.updated", n, {"accepting_town": town, "action": "x", "status": status, "deadline": None})


def routed(n: str, departments, handling=A):
    return ("case.routed", n, {"accepting_town": A, "handling_town": handling, "item_code": "NY-0001",
                               "item_name": "联办事项", "department": departments[0], "kind": "joint",
                               "deadline": date(2026, 11, 30), "auto_decide": False,
                               "lead_department": departments[0], "departments": list(departments)})


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('evaluation') / 'evaluation.db'}"
    else:
        url = request.getfixturevalue("postgres").new("evaluation")
    s = Store(url, VERSIONS, "test.events")
    s.migrate()
    _fill(s)
    yield s
    s.dispose()


def _record(store, recorder, event, occurred_at, version=1):
    type_, number, payload = event
    with store.transaction() as tx:
        recorder.record(tx, make_message(type_, number, version, payload, "test", occurred_at=occurred_at))


def n(i: int, town: str = A, day: str = "20261102") -> str:
    return f"{town}-{day}-{i}"


def _fill(store):
    rec = Recorder(clock=ManualClock(at(30)))
    events = [
        (accepted(n(1)), at(2)), (completed(n(1), date(2026, 11, 6)), at(6)),  # 4 working days, on time
        (accepted(n(2), kind="instant"), at(2)), (completed(n(2), date(2026, 11, 2), kind="instant"), at(2, hour=15)),
        # 补办件: the clock starts on the 4th when the materials are complete; late
        (accepted(n(3), status="pending_materials"), at(2)), (updated(n(3), "in_review"), at(4)),
        (completed(n(3), date(2026, 11, 10), on_time=False), at(10)),
        # 联办件: renshe is learned from the routing; handled by its two offices in town A
        (accepted(n(4), kind="joint", dept="nongye", staff="clerk-2"), at(3)), (routed(n(4), ["nongye", "renshe"]),
                                                                                  at(3)),
        (accepted(n(5), status="returned", staff="clerk-2"), at(3)),  # 退回件
        (updated(n(6), "consulted"), at(3)),  # 咨询
        # 全城通办: accepted at A for a resident of B, handled by B's renshe office; via a village agent
        (accepted(n(7), dept="renshe", handling=B, staff="agent-cb", village=VILLAGE), at(5)),
        (completed(n(7), date(2026, 11, 5), dept="renshe"), at(5, hour=16)),
        # received in October, completed in November
        (accepted(n(8, day="20261030")), at(30, month=10)), (completed(n(8, day="20261030"), date(2026, 11, 3)),
                                                             at(3)),
        # a city bureau's case accepted at B
        (accepted(n(9, B), dept="gongan", handling="city", staff="clerk-b", town=B), at(9)),
    ]
    for event, moment in events:
        _record(store, rec, event, moment, version=2 if event[0] == "case.completed" else 1)
    # the same acceptance and completion again under other message ids (a producer's retry): counted once
    _record(store, rec, accepted(n(1)), at(2))
    _record(store, rec, completed(n(1), date(2026, 11, 6)), at(6), version=2)
    _record(store, rec, routed(n(4), ["nongye", "renshe"]), at(3))

    with store.transaction() as tx:
        assert figures.on_rating(tx, RatingFacts("r1", 1, at(6), case_number=n(1)))
        assert figures.on_rating(tx, RatingFacts("r2", 4, at(7), case_number=n(1), staff="clerk-1"))
        assert figures.on_rating(tx, RatingFacts("r3", 5, at(7), case_number=n(2)))
        assert figures.on_rating(tx, RatingFacts("r4", 2, at(8), case_number=n(7), department="renshe"))
        assert not figures.on_rating(tx, RatingFacts("r1", 1, at(6), case_number=n(1))), "once per rating"
    with store.transaction() as tx:
        assert figures.on_rating_voided(tx, "r3") and not figures.on_rating_voided(tx, "r3")
        assert figures.on_rectification_closed(tx, "r2") and not figures.on_rectification_closed(tx, "r2")
        assert not figures.on_rectification_closed(tx, "r1"), "a good rating has nothing to rectify"
        assert not figures.on_rating_voided(tx, "no-such-rating")
        assert figures.on_rating(tx, RatingFacts("r2-follow", 2, at(20), case_number=n(1), follow_up=True))
        assert figures.on_complaint(tx, ComplaintFacts("c1", at(12), case_number=n(1)))
        assert figures.on_complaint(tx, ComplaintFacts("c2", at(12), town=A, window=A, staff="clerk-2"))
        assert not figures.on_complaint(tx, ComplaintFacts("c1", at(12), case_number=n(1)))
        assert figures.on_complaint(tx, ComplaintFacts("c3", at(1, month=12), case_number=n(2)))  # December


def _report(store, month="2026-11", town=None, dept=None):
    with store.read() as session:
        report = figures.monthly_report(session, month, town, dept)
    return {d["dimension"]: {(r["key"]): r for r in d["rows"]} for d in report["dimensions"]}


def test_every_figure_of_window_a(store):
    w = _report(store)["window"][A]
    assert w["received"] == 7
    assert (w["promised"], w["instant"], w["supplement"], w["joint"], w["returned"], w["consultation"],
            w["escalated"], w["review"]) == (2, 1, 1, 1, 1, 1, 0, 0)
    # completed in November: 1 (4 days), 2 (0), 3 (4, late), 7 (0), 8 (Oct 30 -> Nov 3: 2 days)
    assert (w["completed"], w["on_time"], w["late"], w["on_time_rate"], w["avg_days"]) == (5, 4, 1, 80.0, 2.0)
    # ratings: r1 (1), r2 (4, rectified), r4 (2); r3 voided; the follow-up apart
    assert (w["ratings"], w["satisfied"], w["bad"], w["satisfaction_rate"]) == (3, 2, 1, 66.67)
    assert (w["rectified"], w["rectification_rate"], w["complaints"]) == (1, 100.0, 2)
    october = _report(store, "2026-10")["window"][A]
    assert (october["received"], october["completed"], october["complaints"]) == (1, 0, 0)
    assert _report(store, "2026-12")["window"][A]["complaints"] == 1


def test_staff_village_town_and_department_rows(store):
    r = _report(store)
    assert set(r["staff"]) == {"clerk-1", "clerk-2", "agent-cb", "clerk-b"}
    c1 = r["staff"]["clerk-1"]
    assert (c1["received"], c1["completed"], c1["late"], c1["ratings"], c1["bad"], c1["complaints"]) == (3, 4, 1, 2,
                                                                                                          1, 1)
    assert r["staff"]["clerk-2"]["complaints"] == 1 and r["staff"]["clerk-2"]["received"] == 2
    assert r["village"][VILLAGE]["received"] == 1 and r["village"][VILLAGE]["satisfied"] == 1
    # the town that handles: B handles case 7; A the rest it accepted; B's city case counts for B
    assert r["town"][B]["received"] == 2 and r["town"][A]["received"] == 6
    assert r["town"][B]["town"] == B and r["window"][B]["received"] == 1
    dept = r["department"]
    assert set(dept) == {f"minzheng@{A}", f"nongye@{A}", f"renshe@{A}", f"renshe@{B}", "gongan@city"}
    assert dept[f"renshe@{A}"]["joint"] == 1 and dept[f"nongye@{A}"]["joint"] == 1, "both offices of the joint case"
    assert dept[f"renshe@{B}"]["completed"] == 1 and dept[f"renshe@{B}"]["ratings"] == 1
    assert dept["gongan@city"]["town"] == "city" and dept["gongan@city"]["received"] == 1
    m = dept[f"minzheng@{A}"]
    assert (m["received"], m["completed"], m["bad"], m["rectified"]) == (4, 4, 1, 1)  # 1, 2, 3, 5 (+8 in Oct)


def test_narrowed_to_a_town_or_a_department(store):
    a = _report(store, town=A)
    assert set(a["window"]) == {A} and set(a["town"]) == {A} and "clerk-b" not in a["staff"]
    assert set(a["department"]) == {f"minzheng@{A}", f"nongye@{A}", f"renshe@{A}"}
    renshe = _report(store, dept="renshe")
    assert renshe["window"][A]["received"] == 2, "the joint case and case 7, each once"
    assert set(renshe["department"]) == {f"renshe@{A}", f"renshe@{B}"} and renshe["town"][B]["received"] == 1
    office = _report(store, dept=f"renshe@{B}")
    assert office["window"][A]["received"] == 1 and set(office["department"]) == {f"renshe@{B}"}
    assert office["village"][VILLAGE]["received"] == 1 and office["staff"]["agent-cb"]["satisfied"] == 1
    assert _report(store, dept="weijian")["window"] == {}


def test_the_files_match_the_json(store):
    import csv
    import io

    from openpyxl import load_workbook

    with store.read() as session:
        report = figures.monthly_report(session, "2026-11")
    rows = list(csv.reader(io.StringIO(figures.render_csv(report).decode("utf-8-sig"))))
    assert rows[0][:5] == ["月份", "维度", "代码", "名称", "镇(街道)"] and rows[0][5] == "受理总数"
    window_row = next(r for r in rows if r[1] == "窗口" and r[2] == A)
    expected = [report_row for d in report["dimensions"] if d["dimension"] == "window"
                for report_row in d["rows"] if report_row["key"] == A][0]
    assert window_row[5:] == ["" if expected[k] is None else str(expected[k]) for k in figures.rules.COLUMNS]
    wb = load_workbook(io.BytesIO(figures.render_xlsx(report)))
    assert wb.sheetnames == ["村", "窗口", "人员", "乡镇", "部门"]
    ws = wb["窗口"]
    assert ws["A1"].value == "便民服务月度统计表（2026年11月）" and ws.freeze_panes == "A4"
    cells = next([c.value for c in r] for r in ws.iter_rows(min_row=4) if r[0].value == A)
    assert cells[3:] == [expected[k] for k in figures.rules.COLUMNS]


def test_notices_heard_and_ratings_are_counted_once_committed(store):
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    counted = figures.Figures(
        notices=Counter("notices_heard", "x", ["channel", "outcome"], registry=registry),
        ratings=Counter("ratings", "x", ["level"], registry=registry),
        ratings_voided=Counter("ratings_voided", "x", ["level"], registry=registry))
    rec = Recorder(clock=ManualClock(at(30)), figures=counted)
    sent = make_message("notice.sent", n(1), 3, {"accepting_town": A, "notice_kind": "result", "channel": "sms",
                                                  "delivery_id": 7}, "notify", occurred_at=at(6))
    with store.transaction() as tx:
        rec.record(tx, sent)
        assert registry.get_sample_value("notices_heard_total", {"channel": "sms", "outcome": "sent"}) is None
    assert registry.get_sample_value("notices_heard_total", {"channel": "sms", "outcome": "sent"}) == 1.0
    with store.transaction() as tx:
        counted.on_rating(tx, RatingFacts("m-1", 4, at(9), case_number=n(2)))
        counted.on_rating_voided(tx, "m-1")
    assert registry.get_sample_value("ratings_total", {"level": "4"}) == 1.0
    assert registry.get_sample_value("ratings_voided_total", {"level": "4"}) == 1.0
    assert _report(store)["window"][A]["ratings"] == 3, "counted and taken back"
