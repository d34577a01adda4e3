"""The supervision board's storage (督办看板): open cases counted per office, department, deadline and clock
state, kept in step with the case read model, and the board's page of the most urgent open cases.

The counts move in the same transaction as the case view they count: ORM events on CaseView compare the
view's count rows before and after each insert or update and add the difference with atomic upserts. The
board then sums a few thousand count rows instead of loading every open case (a city has a million), and the
page of cases is an index scan of the open cases in deadline order (a partial index on the open statuses).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, attributes, mapped_column

from services.evaluation import supervision_rules as rules
from services.evaluation.models import Base, CaseEvent, CaseView
from services.evaluation.models_supervision import Where
from shared import db
from shared.workdays import today_in_shanghai

_KEY_FIELDS = ("status", "accepting_town", "handling_town", "department", "departments", "kind", "deadline",
               "paused_since")
_OPEN = [str(s) for s in rules.OPEN_STATUSES]
_RUNNING = [str(s) for s in rules.RUNNING_STATUSES]


class BoardCount(Base):
    """Open cases of one board row (see supervision_rules.BoardKey); rows at 0 stay and are skipped."""

    __tablename__ = "board_counts"

    accepting_town: Mapped[str] = mapped_column(sa.String(9), primary_key=True)
    handling_town: Mapped[str] = mapped_column(sa.String(9), primary_key=True)
    department: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    lead: Mapped[bool] = mapped_column(sa.Boolean, primary_key=True)
    deadline: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    instant: Mapped[bool] = mapped_column(sa.Boolean, primary_key=True)
    stopped: Mapped[bool] = mapped_column(sa.Boolean, primary_key=True)
    cases: Mapped[int] = mapped_column(sa.Integer, nullable=False)


_COLUMNS = ("accepting_town", "handling_town", "department", "lead", "deadline", "instant", "stopped")


def add_counts(connection, changes: Counter) -> None:
    """Add each change to its count row, creating it first; rows in key order (two transactions moving the
    same rows lock them in the same order)."""
    rows = [{**dict(zip(_COLUMNS, (k.accepting_town, k.handling_town, k.department, k.lead, k.deadline,
                                    k.instant, k.stopped), strict=True)), "cases": n}
            for k, n in sorted(changes.items()) if n]
    db.add_to_counters(connection, BoardCount.__table__, _COLUMNS, "cases", rows)


def _keys(values: dict) -> tuple[rules.BoardKey, ...]:
    return rules.board_keys(**values)


def _current(view: CaseView) -> dict:
    return {f: getattr(view, f) for f in _KEY_FIELDS}


@event.listens_for(CaseView, "after_insert")
def _counted_on_insert(_mapper, connection, view: CaseView) -> None:
    add_counts(connection, Counter(_keys(_current(view))))


@event.listens_for(CaseView, "before_update")
def _counted_on_update(_mapper, connection, view: CaseView) -> None:
    before, unknown = {}, False
    for f in _KEY_FIELDS:
        h = attributes.get_history(view, f)
        if h.deleted:
            before[f] = h.deleted[0]
        elif h.unchanged:
            before[f] = h.unchanged[0]
        else:
            unknown = True  # set without being loaded first: the row says what it was
    if unknown:
        row = connection.execute(sa.select(*(getattr(CaseView, f) for f in _KEY_FIELDS))
                                 .where(CaseView.case_number == view.case_number)).one()
        before = dict(zip(_KEY_FIELDS, row, strict=True))
    old, new = _keys(before), _keys(_current(view))
    if old != new:
        changes = Counter(new)
        changes.subtract(Counter(old))
        add_counts(connection, changes)


@event.listens_for(CaseView, "before_delete")
def _counted_on_delete(_mapper, connection, view: CaseView) -> None:
    changes = Counter()
    changes.subtract(Counter(_keys(_current(view))))
    add_counts(connection, changes)


class DecisionCount(Base):
    """Decisions by people per office and Shanghai day: the forecast's recent decision rate (rule decisions of
    instant cases take no one's time and are not counted)."""

    __tablename__ = "decision_counts"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    office: Mapped[str] = mapped_column(sa.String(9), primary_key=True)
    department: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    decisions: Mapped[int] = mapped_column(sa.Integer, nullable=False)


def decision_counted(type_: str, data: dict | None, occurred_at) -> dict | None:
    """The decision count row a stored case event adds one to, or None."""
    data = data or {}
    if type_ != "case.decided" or str(data.get("decided_by", "")).startswith("rule:") or not data.get("department"):
        return None
    return {"day": today_in_shanghai(occurred_at), "department": data["department"],
            "office": data.get("handling_town") or data.get("accepting_town"), "decisions": 1}


@event.listens_for(CaseEvent, "after_insert")
def _decision_counted(_mapper, connection, case_event: CaseEvent) -> None:
    row = decision_counted(case_event.type, case_event.data, case_event.occurred_at)
    if row is not None:
        db.add_to_counters(connection, DecisionCount.__table__, ("day", "office", "department"), "decisions", [row])


class DecisionCounts:
    def __init__(self, session: Session):
        self.s = session

    def since(self, first_day: date, last_day: date) -> dict[tuple[str, str], int]:
        """Decisions per (office, department) from `first_day` to `last_day`, both counted."""
        D = DecisionCount
        q = (sa.select(D.office, D.department, sa.func.sum(D.decisions))
             .where(D.day >= first_day, D.day <= last_day).group_by(D.office, D.department))
        return {(office, dept): int(n) for office, dept, n in self.s.execute(q)}


@dataclass(frozen=True)
class CountRow:
    office: str  # the town whose department decides, or "city"
    department: str
    lead: bool
    deadline: date
    instant: bool
    stopped: bool
    cases: int


class BoardCounts:
    """The count rows, summed per office, department, deadline and clock state within what a board shows."""

    def __init__(self, session: Session):
        self.s = session

    def rows(self, where: Where) -> list[CountRow]:
        """`where.department`: the rows of that department (lead or joint: a department's board counts its
        joint cases), else the lead rows (each case once). The forecast takes the lead rows of either (a case
        queues at its lead department)."""
        B = BoardCount
        office = sa.func.coalesce(sa.func.nullif(B.handling_town, ""), B.accepting_town)
        q = sa.select(office, B.department, B.lead, B.deadline, B.instant, B.stopped, sa.func.sum(B.cases)) \
            .where(B.cases > 0).group_by(office, B.department, B.lead, B.deadline, B.instant, B.stopped)
        q = q.where(B.department == where.department) if where.department is not None else q.where(B.lead)
        if where.town is not None:
            q = q.where(sa.or_(B.accepting_town == where.town, B.handling_town == where.town))
        if where.office is not None:
            q = q.where(office == where.office)
        return [CountRow(*r) for r in self.s.execute(q)]

    def recount(self) -> Counter:
        """What the rows should hold, from the case views (for checks and repairs)."""
        out = Counter()
        q = sa.select(*(getattr(CaseView, f) for f in _KEY_FIELDS)).where(CaseView.status.in_(_OPEN))
        for row in self.s.execute(q):
            out.update(_keys(dict(zip(_KEY_FIELDS, row, strict=True))))
        return out

    def held(self) -> Counter:
        B = BoardCount
        q = sa.select(*(getattr(B, c) for c in _COLUMNS), B.cases).where(B.cases != 0)
        return Counter({rules.BoardKey(*r[:-1]): r[-1] for r in self.s.execute(q)})


class BoardPage:
    """The open cases in board order (red, then yellow, then green; by deadline, none last; by case number),
    a page of them: one index scan per colour, stopped after the page is full."""

    def __init__(self, session: Session):
        self.s = session

    def cases(self, where: Where, today: date, yellow_last: date, limit: int) -> list[CaseView]:
        V = CaseView
        running = sa.and_(V.paused_since.is_(None), V.status.in_(_RUNNING))
        red = sa.and_(running, V.deadline < today)
        yellow = sa.and_(running, V.deadline >= today, V.deadline <= yellow_last,
                         sa.or_(V.kind.is_(None), V.kind != "instant"))
        green = sa.not_(sa.or_(sa.and_(red, V.deadline.is_not(None)), sa.and_(yellow, V.deadline.is_not(None))))
        out: list[CaseView] = []
        for colour_filter, nulls_last in ((red, False), (yellow, False), (green, True)):
            if len(out) >= limit:
                break
            q = sa.select(V).where(V.status.in_(_OPEN), colour_filter)
            q = self._scoped(q, where)
            order = V.deadline.asc().nulls_last() if nulls_last else V.deadline.asc()
            out.extend(self.s.scalars(q.order_by(order, V.case_number).limit(limit - len(out))))
        return out

    def queued(self, office: str, department: str, deadline: date, *, offset: int, limit: int) -> list[str]:
        """Case numbers of an office's queue (clock running, lead department) due on one day, in queue order."""
        V = CaseView
        q = (sa.select(V.case_number)
             .where(V.status.in_(_RUNNING), V.paused_since.is_(None), V.deadline == deadline,
                    V.department == department, sa.func.coalesce(V.handling_town, V.accepting_town) == office)
             .order_by(V.case_number).offset(offset).limit(limit))
        return list(self.s.scalars(q))

    @staticmethod
    def _scoped(q, where: Where):
        V = CaseView
        if where.town is not None:
            q = q.where(sa.or_(V.accepting_town == where.town, V.handling_town == where.town))
        if where.department is not None:
            # lead or joint: the JSON list as text holds the code in quotes (codes are checked: [a-z0-9_-])
            quoted = '%"' + where.department.replace("_", "\\_") + '"%'
            q = q.where(sa.or_(V.department == where.department,
                               sa.cast(V.departments, sa.Text).like(quoted, escape="\\")))
        if where.office is not None:
            q = q.where(sa.func.coalesce(V.handling_town, V.accepting_town) == where.office)
        return q
