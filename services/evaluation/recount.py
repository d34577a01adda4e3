"""The read models recounted from evaluation's stored case events (case_events), for an operator who doubts a
figure and for the tests: the case read model behind the supervision board (case_views) and the monthly
figures' case counters (figure_counts: received and its kinds, completed, on time, working days to finish).

The live models are moved one event at a time as the events arrive — in any order, several at once, some
twice. A recount takes each case's stored events at once, in the case's own order (case version, then the
time it happened, a deadline move after the step of the same version that caused it), so it does not
depend on the order, the concurrency or the redeliveries the live models met: where the two differ, the
incremental upkeep lost or doubled something. Nothing is written. Ratings and complaints are not case
events: their counters (ratings, satisfied, bad, rectified, follow-ups, complaints) are not recounted here.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.evaluation import domain
from services.evaluation import figures_rules as rules
from services.evaluation.models import CaseEvent, CaseView
from services.evaluation.models_figures import FigureCount
from shared.auth import town_of_case
from shared.workdays import WorkingCalendar

# what the case read model holds, besides its key and when it was last touched
VIEW_FIELDS = ("version", "accepting_town", "handling_town", "department", "departments", "item_code", "item_name",
               "kind", "status", "first_responder", "via_agent", "village", "accepted_at", "deadline",
               "paused_since", "completed_on", "outcome", "on_time")
# the counters case events move (the rest are the ratings' and complaints')
CASE_MEASURES = frozenset({"received", *(f"received_{k}" for k in rules.KINDS), "completed", "on_time",
                           "finish_days", "finish_counted"})


def _order(e: CaseEvent):
    return (e.case_version, e.occurred_at, e.type == "case.deadline_moved", e.id)


def events_by_case(session: Session) -> dict[str, list[CaseEvent]]:
    """Every stored event, by case, each case's in its own order."""
    cases: dict[str, list[CaseEvent]] = defaultdict(list)
    for e in session.scalars(sa.select(CaseEvent).order_by(CaseEvent.id)):
        cases[e.case_number].append(e)
    return {n: sorted(es, key=_order) for n, es in cases.items()}


# --- the case read model ------------------------------------------------------------------------------------

def case_view(case_number: str, events: list[CaseEvent]) -> dict | None:
    """The case read model's fields from one case's events (None: none of them is about the case's state)."""
    view: dict | None = None
    for e in events:
        data = e.data or {}
        if view is None:
            if domain.case_view_changes(e.type, data, e.occurred_at, e.case_version) is None:
                continue
            town = data.get("accepting_town") or town_of_case(case_number)
            if town is None:
                continue
            view = {f: None for f in VIEW_FIELDS} | {"accepting_town": town, "departments": [], "version": 0}
        known = None if view["version"] == 0 else {"version": view["version"], "paused_since": view["paused_since"],
                                                   "status": view["status"]}
        changes = domain.case_view_changes(e.type, data, e.occurred_at, e.case_version, known)
        if changes:
            view.update(changes)
    return view


def case_views(session: Session) -> dict[str, dict]:
    """Every case's read model, recounted."""
    return {n: v for n, es in events_by_case(session).items() if (v := case_view(n, es)) is not None}


def stored_case_views(session: Session) -> dict[str, dict]:
    """The live case read model, in the same shape."""
    return {v.case_number: {f: getattr(v, f) for f in VIEW_FIELDS} for v in session.scalars(sa.select(CaseView))}


# --- the monthly figures' case counters ------------------------------------------------------------------------

def _day(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def case_counts(case_number: str, events: list[CaseEvent], calendar: WorkingCalendar) -> Counter:
    """What one case adds to the counters: (month, dimension, town, key, office, measure) -> value."""
    received = None  # (attribution without offices, kind, month)
    offices: list[str] = []
    clock_started: date | None = None
    completed = None  # (completed_on, on_time, accepting town)

    def add_office(department, handling_town):
        o = rules.office(department, handling_town)
        if o not in offices:
            offices.append(o)

    for e in events:
        d = e.data or {}
        status = d.get("status")
        if e.type == "case.accepted" and received is None:
            accepting, handling = d["accepting_town"], d.get("handling_town")
            received = (dict(window=accepting, town=rules.responsible_town(accepting, handling),
                             staff=d.get("first_responder"), village=d.get("village")),
                        rules.reception_kind(d.get("kind"), status), rules.month_key(e.occurred_at))
            if d.get("department"):
                add_office(d["department"], handling)
            if rules.clock_runs(status):
                clock_started = rules.day_of(e.occurred_at)
        elif e.type == "case.updated":
            if received is None and status == "consulted":
                town = d["accepting_town"]
                received = (dict(window=town, town=town, staff=None, village=None), "consultation",
                            rules.month_key(e.occurred_at))
            elif received is not None and clock_started is None and rules.clock_runs(status):
                clock_started = rules.day_of(e.occurred_at)  # 补办件: the materials are complete
        elif e.type in ("case.routed", "case.escalated"):
            for department in d.get("departments") or []:
                add_office(department, d.get("handling_town"))
        elif e.type == "case.completed" and completed is None:
            completed = (_day(d["completed_on"]), bool(d["on_time"]), d["accepting_town"], d.get("department"))

    out: Counter = Counter()
    if received is None and completed is None:
        return out
    if received is not None:
        who, kind, month = received
        attribution = rules.Attribution(**who, offices=tuple(offices))
        out.update(rules.deltas(attribution.rows(), {"received": 1, f"received_{kind}": 1}, month))
    else:  # completed with no acceptance heard: counted for the accepting town's window
        accepting = completed[2]
        attribution = rules.Attribution(window=accepting, town=accepting, offices=tuple(offices))
    if completed is not None:
        completed_on, on_time = completed[0], completed[1]
        days = rules.working_days_to_finish(calendar, clock_started, completed_on) if clock_started else None
        out.update(rules.deltas(attribution.rows(), {
            "completed": 1, "on_time": int(on_time), "finish_days": days or 0, "finish_counted": int(days is not None),
        }, rules.month_key(completed_on)))
    return out


def figure_counts(session: Session, calendar: WorkingCalendar) -> dict[tuple, int]:
    """Every case counter, recounted (only those that are not 0)."""
    total: Counter = Counter()
    for number, events in events_by_case(session).items():
        total.update(case_counts(number, events, calendar))
    return {k: v for k, v in total.items() if v}


def stored_figure_counts(session: Session) -> dict[tuple, int]:
    """The live case counters, in the same shape (only those that are not 0)."""
    C = FigureCount
    rows = session.execute(sa.select(C.month, C.dimension, C.town, C.key, C.office, C.measure, C.value)
                           .where(C.measure.in_(sorted(CASE_MEASURES)))).all()
    return {tuple(r[:6]): r[6] for r in rows if r[6]}


def differences(live: dict, recounted: dict) -> list[tuple]:
    """(key, live, recounted) wherever they differ, field by field for the case views; sorted."""
    out = []
    for key in sorted(set(live) | set(recounted), key=str):
        a, b = live.get(key), recounted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [((key, f), a.get(f), b.get(f)) for f in VIEW_FIELDS if _norm(a.get(f)) != _norm(b.get(f))]
        elif _norm(a) != _norm(b):
            out.append((key, a, b))
    return out


def _norm(value):
    if isinstance(value, datetime):
        return value.timestamp()
    return value
