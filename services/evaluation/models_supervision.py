"""Deadline supervision's tables: the warnings (督办) and the supervision notices (督办通知)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.evaluation.models import Base, CaseView
from shared import db
from shared.vocabulary import OPEN_CASE_STATUSES


@dataclass(frozen=True)
class Where:
    """Which records a list shows: those of a town (accepted or handled there), of a department, of an office
    (the town whose department decides, or "city"); None: any."""

    town: str | None = None
    department: str | None = None
    office: str | None = None

    def apply(self, q, model):
        if self.town is not None:
            q = q.where(sa.or_(model.accepting_town == self.town, model.handling_town == self.town))
        if self.department is not None:
            q = q.where(model.department == self.department)
        if self.office is not None:
            q = q.where(sa.func.coalesce(model.handling_town, model.accepting_town) == self.office)
        return q


class SupervisionWarning(Base):
    """One warning: raised once per case, colour and deadline (the unique key makes a second watcher, or a
    restart, raise nothing twice). Open until the case closes, its deadline moves or a red takes over."""

    __tablename__ = "supervision_warnings"
    __table_args__ = (sa.UniqueConstraint("case_number", "colour", "deadline"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False, index=True)
    colour: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    deadline: Mapped[date] = mapped_column(sa.Date, nullable=False)
    rule: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    working_days_left: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False, index=True)
    handling_town: Mapped[str | None] = mapped_column(sa.String(9))
    department: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    # the person responsible evaluation knows: the window's first responder (首问负责人); the department's
    # part is named by its code (its A post holder is approval's knowledge)
    first_responder: Mapped[str | None] = mapped_column(sa.String(100))
    item_name: Mapped[str | None] = mapped_column(sa.String(200))
    raised_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), index=True)
    resolution: Mapped[str | None] = mapped_column(sa.String(30))


class SupervisionNotice(Base):
    """督办通知: a red warning escalated to the department head and the town's (or city's) supervisor."""

    __tablename__ = "supervision_notices"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    warning_id: Mapped[int] = mapped_column(sa.ForeignKey("supervision_warnings.id"), nullable=False, unique=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False, index=True)
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    handling_town: Mapped[str | None] = mapped_column(sa.String(9))
    department: Mapped[str | None] = mapped_column(sa.String(40))
    department_head: Mapped[str | None] = mapped_column(sa.String(60))  # the scope: department:<code>[@<town>]
    supervisor: Mapped[str] = mapped_column(sa.String(20), nullable=False)  # town:<code> or city
    text: Mapped[str] = mapped_column(sa.String(500), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class Warnings:
    def __init__(self, session: Session):
        self.s = session

    def raise_once(self, **values) -> SupervisionWarning | None:
        """Insert the warning unless its (case, colour, deadline) exists; the new row, or None. One INSERT that
        does nothing on a conflict: two watchers at once cannot both raise it (the second waits, then finds it)."""
        insert = db.dialect_insert(self.s)
        t = SupervisionWarning.__table__
        done = self.s.execute(insert(t).values(**values).on_conflict_do_nothing(
            index_elements=["case_number", "colour", "deadline"]))
        if done.rowcount != 1:
            return None
        return self.s.scalars(sa.select(SupervisionWarning).where(
            SupervisionWarning.case_number == values["case_number"], SupervisionWarning.colour == values["colour"],
            SupervisionWarning.deadline == values["deadline"])).one()

    def unresolved(self) -> list[SupervisionWarning]:
        return list(self.s.scalars(sa.select(SupervisionWarning).where(SupervisionWarning.resolved_at.is_(None))
                                   .order_by(SupervisionWarning.id).with_for_update()))

    def keys_of_open_cases(self) -> set[tuple[str, str, date]]:
        """(case, colour, deadline) of every warning of a case still open: what is raised already."""
        q = (sa.select(SupervisionWarning.case_number, SupervisionWarning.colour, SupervisionWarning.deadline)
             .join(CaseView, CaseView.case_number == SupervisionWarning.case_number)
             .where(CaseView.status.in_([str(s) for s in OPEN_CASE_STATUSES])))
        return {(c, col, d) for c, col, d in self.s.execute(q).all()}

    def listed(self, where: Where, *, case_number: str | None = None, colour: str | None = None,
               open_only: bool = False, limit: int = 500) -> list[SupervisionWarning]:
        q = where.apply(sa.select(SupervisionWarning), SupervisionWarning)
        if case_number:
            q = q.where(SupervisionWarning.case_number == case_number)
        if colour:
            q = q.where(SupervisionWarning.colour == colour)
        if open_only:
            q = q.where(SupervisionWarning.resolved_at.is_(None))
        return list(self.s.scalars(q.order_by(SupervisionWarning.raised_at.desc(), SupervisionWarning.id.desc())
                                   .limit(limit)))

    def open_counts(self) -> list[tuple[str, str, str | None, str | None, int]]:
        """(colour, accepting town, handling town, department, count) of the open warnings."""
        w = SupervisionWarning
        q = (sa.select(w.colour, w.accepting_town, w.handling_town, w.department, sa.func.count())
             .where(w.resolved_at.is_(None)).group_by(w.colour, w.accepting_town, w.handling_town, w.department))
        return [tuple(r) for r in self.s.execute(q).all()]


class SupervisionNotices:
    def __init__(self, session: Session):
        self.s = session

    def add(self, notice: SupervisionNotice) -> None:
        self.s.add(notice)

    def listed(self, where: Where, limit: int = 500) -> list[SupervisionNotice]:
        return list(self.s.scalars(where.apply(sa.select(SupervisionNotice), SupervisionNotice)
                                   .order_by(SupervisionNotice.issued_at.desc(), SupervisionNotice.id.desc())
                                   .limit(limit)))
