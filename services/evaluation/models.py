"""Every case event, as evaluation saw it: storage behind a small repository."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared import db
from shared.vocabulary import OPEN_CASE_STATUSES

_OPEN_SQL = "status IN (" + ", ".join(f"'{s}'" for s in OPEN_CASE_STATUSES) + ")"


class Base(db.Base):
    """The evaluation database's tables: the shared declarative base, this database's own metadata."""

    __abstract__ = True
    metadata = db.service_metadata()


class CaseEvent(Base):
    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False, index=True)
    type: Mapped[str] = mapped_column(sa.String(100), nullable=False, index=True)
    case_version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    producer: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    data: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)


class CaseView(Base):
    """One case as evaluation knows it from the bus (a read model: supervision, ratings and the monthly
    figures all start here). Each event moves it forward; an older case version never moves it back."""

    __tablename__ = "case_views"
    # the board's page reads the open cases in deadline order (models_board.BoardPage)
    __table_args__ = (sa.Index("ix_case_views_open_deadline", "deadline", "case_number",
                               postgresql_where=sa.text(_OPEN_SQL), sqlite_where=sa.text(_OPEN_SQL)),)

    case_number: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)  # the newest case version applied
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False, index=True)
    handling_town: Mapped[str | None] = mapped_column(sa.String(9))  # "city" for a city bureau's case
    department: Mapped[str | None] = mapped_column(sa.String(40), index=True)  # the lead department
    departments: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    item_code: Mapped[str | None] = mapped_column(sa.String(40))
    item_name: Mapped[str | None] = mapped_column(sa.String(200))
    kind: Mapped[str | None] = mapped_column(sa.String(20))
    status: Mapped[str | None] = mapped_column(sa.String(30), index=True)
    first_responder: Mapped[str | None] = mapped_column(sa.String(100))  # 首问负责人 (the window's staff)
    via_agent: Mapped[str | None] = mapped_column(sa.String(100))
    village: Mapped[str | None] = mapped_column(sa.String(12))
    accepted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    deadline: Mapped[date | None] = mapped_column(sa.Date, index=True)
    paused_since: Mapped[date | None] = mapped_column(sa.Date)  # the clock stopped on this day (None: it runs)
    completed_on: Mapped[date | None] = mapped_column(sa.Date)
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    on_time: Mapped[bool | None] = mapped_column(sa.Boolean)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class CaseViews:
    """The case read model's storage."""

    def __init__(self, session: Session):
        self.s = session

    def get(self, case_number: str, for_update: bool = False) -> CaseView | None:
        q = sa.select(CaseView).where(CaseView.case_number == case_number)
        return self.s.scalars(q.with_for_update() if for_update else q).first()

    def add(self, view: CaseView) -> None:
        self.s.add(view)

    def get_or_create(self, case_number: str, accepting_town: str, now) -> CaseView:
        """The case's row, locked; made first if missing. Two first events of one case handled at once (the
        acceptance and a deadline move) both get here: the INSERT that does nothing on a conflict lets the
        second wait for the first's row instead of failing on the primary key."""
        self.s.execute(db.dialect_insert(self.s)(CaseView).values(
            case_number=case_number, accepting_town=accepting_town, departments=[], version=0,
            updated_at=now).on_conflict_do_nothing(index_elements=["case_number"]))
        return self.get(case_number, for_update=True)

    def warnable(self, last_deadline: date, also: set[str]) -> list[CaseView]:
        """Open cases that may stand warned now: the clock running and the deadline on or before
        `last_deadline` (the partial index on the open cases' deadlines finds them), and the open cases
        among `also` (those with a warning not yet over). Not every open case: a city has a million."""
        open_ = CaseView.status.in_([str(x) for x in OPEN_CASE_STATUSES])
        q = sa.select(CaseView).where(open_, CaseView.deadline <= last_deadline)
        rows = {v.case_number: v for v in self.s.scalars(q)}
        rest = sorted(also - set(rows))
        for i in range(0, len(rest), 1000):
            q = sa.select(CaseView).where(open_, CaseView.case_number.in_(rest[i:i + 1000]))
            rows.update((v.case_number, v) for v in self.s.scalars(q))
        return list(rows.values())


class Events:
    def __init__(self, session: Session):
        self.s = session

    def add(self, event: CaseEvent) -> None:
        self.s.add(event)

    def for_case(self, case_number: str) -> list[CaseEvent]:
        return list(self.s.scalars(sa.select(CaseEvent).where(CaseEvent.case_number == case_number)
                                   .order_by(CaseEvent.occurred_at, CaseEvent.id)))

    def cases_by_type(self, town: str | None = None) -> dict[str, int]:
        """Cases per event type; only those a town accepted if given (a case number starts with it)."""
        q = sa.select(CaseEvent.type, sa.func.count(sa.distinct(CaseEvent.case_number))).group_by(CaseEvent.type)
        if town is not None:
            q = q.where(CaseEvent.case_number.startswith(f"{town}-", autoescape=True))
        rows = self.s.execute(q).all()
        return {t: n for t, n in rows}


# each part of evaluation keeps its tables in a module of its own, on this Base (好差评 and complaints;
# deadline supervision; the monthly figures): imported here, so that the metadata holds every table
from services.evaluation import (  # noqa: E402, I001
    models_figures,  # noqa: F401
    models_ratings,  # noqa: F401
    models_supervision,  # noqa: F401
)


# the board's counts move with every case view written, whoever writes it: their ORM events are registered here
from services.evaluation import models_board  # noqa: E402,F401
