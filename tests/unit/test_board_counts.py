"""The supervision board from its counts and a page of the most urgent cases says what the case views say
case by case: the board's colours, counts per office and order are those of `standing` applied to every open
case, however the views were written (inserted, moved on, closed, a joint department added). SQLite, no broker."""
from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from services.evaluation import supervision_rules as rules
from services.evaluation.models import CaseView
from services.evaluation.models_board import BoardCounts
from services.evaluation.supervision import SupervisionConfig, Supervisor
from shared import auth
from shared.clock import ManualClock
from shared.store import Store
from shared.workdays import WorkingCalendar

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 4)  # a Wednesday
CALENDAR = WorkingCalendar()
STATUSES = ["in_review", "initial_review", "paused", "pending_materials", "completed", "returned"]
TOWNS = ["320583101", "320583102"]


def _principal(role="supervisor", scope="city"):
    return auth.Principal("p", role, auth.Scope.parse(scope), 2**31, 0)


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path}/evaluation.db", ROOT / "services/evaluation/migrations/versions", "x")
    s.migrate()
    yield s
    s.dispose()


def _random_values(rng: random.Random) -> dict:
    status = rng.choice(STATUSES)
    return {"accepting_town": rng.choice(TOWNS), "handling_town": rng.choice([None, None, *TOWNS, "city"]),
            "department": rng.choice(["minzheng", "renshe", None]),
            "departments": rng.choice([[], ["minzheng"], ["minzheng", "canlian"], ["renshe", "yi_bao"]]),
            "kind": rng.choice(["instant", "promised", "joint", None]), "status": status,
            "deadline": rng.choice([None, *(TODAY + timedelta(days=d) for d in range(-6, 12))]),
            "paused_since": TODAY - timedelta(days=2) if status == "paused" and rng.random() < 0.8 else None}


def _expected(views: list[CaseView], keep) -> tuple[dict, dict, list]:
    """The board as the case-by-case rules make it: counts, per office, the urgency order."""
    counts = {c: 0 for c in rules.COLOURS} | {"paused": 0}
    offices, order = {}, []
    for v in views:
        if v.status not in rules.OPEN_STATUSES or not keep(v):
            continue
        s = rules.standing(CALENDAR, TODAY, deadline=v.deadline, status=v.status, paused_since=v.paused_since,
                           kind=v.kind)
        counts[s.colour] += 1
        counts["paused"] += s.clock_stopped
        o = offices.setdefault((rules.office_town(v.accepting_town, v.handling_town), v.department or ""),
                               {"red": 0, "yellow": 0, "green": 0})
        o[s.colour] += 1
        order.append((rules.urgency_key(s.colour, v.deadline, v.case_number), v.case_number))
    return counts, offices, [n for _, n in sorted(order)]


def test_the_board_from_counts_and_a_page_agrees_with_the_cases_one_by_one(store):
    rng = random.Random(12)
    with store.transaction() as tx:  # written case by case, as the consumer writes them
        for i in range(300):
            tx.session.add(CaseView(case_number=f"320583101-20261101-{i:05d}", version=1,
                                    updated_at=datetime(2026, 11, 1, tzinfo=UTC), **_random_values(rng)))
    with store.transaction() as tx:  # then moved on: new deadlines, statuses, towns, departments; some closed
        for v in tx.session.query(CaseView).all():
            if rng.random() < 0.6:
                for field, value in _random_values(rng).items():
                    if rng.random() < 0.5:
                        setattr(v, field, value)
    with store.transaction() as tx:
        gone = tx.session.query(CaseView).first()
        tx.session.delete(gone)

    supervisor = Supervisor(clock=ManualClock(datetime(2026, 11, 4, 2, tzinfo=UTC)), calendar=CALENDAR,
                            config=SupervisionConfig(), instance="evaluation")
    with store.transaction() as tx:
        views = tx.session.query(CaseView).all()
        boards = BoardCounts(tx.session)
        assert boards.held() == boards.recount()
        for query, keep in (({}, lambda v: True),
                            ({"town": TOWNS[1]}, lambda v: TOWNS[1] in (v.accepting_town, v.handling_town)),
                            ({"department": "minzheng"},
                             lambda v: v.department == "minzheng" or "minzheng" in v.departments)):
            counts, offices, order = _expected(views, keep)
            board = supervisor.board(tx, _principal(), {**query, "limit": "1000"})
            assert board["counts"] == counts, query
            assert board["open_cases"] == len(order) > 20
            assert [c["case_number"] for c in board["cases"]] == order, query
            page = supervisor.board(tx, _principal(), {**query, "limit": "7"})
            assert [c["case_number"] for c in page["cases"]] == order[:7]
            if "department" not in query:  # a department's board counts its joint cases under its own name
                assert {(o["town"], o["department"]): {c: o[c] for c in ("red", "yellow", "green")}
                        for o in board["offices"]} == offices


def test_a_department_head_sees_the_counts_of_their_office_only(store):
    with store.transaction() as tx:
        for i, (town, handling) in enumerate([(TOWNS[0], None), (TOWNS[1], TOWNS[0]), (TOWNS[1], None)]):
            tx.session.add(CaseView(case_number=f"c{i}", version=1, accepting_town=town, handling_town=handling,
                                    department="renshe", departments=["renshe"], kind="promised",
                                    status="in_review", deadline=TODAY - timedelta(days=1),
                                    updated_at=datetime(2026, 11, 1, tzinfo=UTC)))
    supervisor = Supervisor(clock=ManualClock(datetime(2026, 11, 4, 2, tzinfo=UTC)), calendar=CALENDAR,
                            config=SupervisionConfig(), instance="evaluation")
    with store.transaction() as tx:
        board = supervisor.board(tx, _principal("department_head", f"department:renshe@{TOWNS[0]}"), {})
    assert board["counts"]["red"] == 2 and [c["case_number"] for c in board["cases"]] == ["c0", "c1"]


def test_yellow_until_is_the_last_deadline_with_at_most_the_yellow_days_left():
    wednesday = TODAY
    assert rules.yellow_until(CALENDAR, wednesday, 1) == date(2026, 11, 5)  # Thursday: 1 working day left
    friday = date(2026, 11, 6)
    assert rules.yellow_until(CALENDAR, friday, 1) == date(2026, 11, 9)  # over the weekend, Monday has 1 left
    for today in (wednesday, friday):
        last = rules.yellow_until(CALENDAR, today, 1)
        for d in range(0, 10):
            deadline = today + timedelta(days=d)
            expected = rules.standing(CALENDAR, today, deadline=deadline, status="in_review", kind="promised")
            assert rules.bucket_colour(deadline=deadline, instant=False, stopped=False, today=today,
                                       yellow_last=last) == expected.colour, deadline


def test_the_limit_is_checked():
    from services.evaluation.supervision import _limit
    from shared.errors import RuleViolation
    assert _limit(None) == 100 and _limit("5") == 5
    for bad in ("0", "1001", "x", "-1"):
        with pytest.raises(RuleViolation):
            _limit(bad)
