"""Work items of one department: storage behind a small repository."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared import db
from shared.vocabulary import OPEN_WORK_STATUSES


class Base(db.Base):
    """The approval database's tables: the shared declarative base, this database's own metadata."""

    __abstract__ = True
    metadata = db.service_metadata()


class WorkItem(Base):
    __tablename__ = "work_items"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False, index=True)
    case_version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    department: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    handling_town: Mapped[str] = mapped_column(sa.String(9), nullable=False, index=True)
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    item_code: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    item_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    deadline: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False, index=True)
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    result_number: Mapped[str | None] = mapped_column(sa.String(100))
    decided_by: Mapped[str | None] = mapped_column(sa.String(64))
    decided_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    assignee: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    valid_until: Mapped[date | None] = mapped_column(sa.Date)  # the approval's validity (approval's own record)
    procedure: Mapped[str | None] = mapped_column(sa.String(20))  # the special procedure running, if paused
    requested_materials: Mapped[list | None] = mapped_column(sa.JSON)
    superseded_by: Mapped[int | None] = mapped_column(sa.Integer)  # the item of the newer case version
    # what the ledger said the department may still ask for when it routed the work (None: not told)
    extension_days_max: Mapped[int | None] = mapped_column(sa.Integer)
    # the case version whose deadline the item shows: the routed one, then each case.deadline_moved applied
    # (None on items from before it was kept: read as case_version)
    deadline_version: Mapped[int | None] = mapped_column(sa.Integer)
    # the town agent who relayed escalated work (上报件): the decision goes back through them
    relayed_by: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (sa.UniqueConstraint("case_number", "case_version", "department"),)


class WorkAction(Base):
    """Append-only history of a work item: who, when, what, why."""

    __tablename__ = "work_actions"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    work_item_id: Mapped[int] = mapped_column(sa.ForeignKey("work_items.id"), nullable=False, index=True)
    action: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    actor: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)
    idempotency_key: Mapped[str] = mapped_column(sa.String(100), nullable=False, unique=True)


class Post(Base):
    """An office's AB post (AB岗): key (department, handling town or "city")."""

    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    handling_town: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    a: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    b: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    head: Mapped[str | None] = mapped_column(sa.String(64))
    updated_by: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)

    __table_args__ = (sa.UniqueConstraint("department", "handling_town"),)


class Absence(Base):
    """A holder away (leave, training, meeting) over [starts_at, ends_at)."""

    __tablename__ = "absences"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    handling_town: Mapped[str] = mapped_column(sa.String(9), nullable=False)  # the office that recorded it
    holder: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    starts_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False, index=True)
    reason: Mapped[str] = mapped_column(sa.Text, nullable=False)
    recorded_by: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class Handover(Base):
    """Work that went to someone else than it would have: who, from whom, when, why."""

    __tablename__ = "handovers"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    handling_town: Mapped[str] = mapped_column(sa.String(9), nullable=False, index=True)
    work_item_id: Mapped[int] = mapped_column(sa.ForeignKey("work_items.id"), nullable=False, index=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    from_holder: Mapped[str | None] = mapped_column(sa.String(64))
    to_holder: Mapped[str | None] = mapped_column(sa.String(64))  # None: back to the office, unassigned
    to_role: Mapped[str] = mapped_column(sa.String(10), nullable=False)  # A, B, head, office, claim
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    actor: Mapped[str] = mapped_column(sa.String(64), nullable=False)


class Extension(Base):
    """The one extension (延期) of a case in this department: asked by an approver, approved by the head."""

    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    department: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    work_item_id: Mapped[int] = mapped_column(sa.ForeignKey("work_items.id"), nullable=False)
    days: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    reason: Mapped[str] = mapped_column(sa.Text, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)  # requested | approved | refused
    requested_by: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    approved_by: Mapped[str | None] = mapped_column(sa.String(64))
    approved_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    refused_reason: Mapped[str | None] = mapped_column(sa.Text)  # the ledger's reason, when it refused
    refused_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.UniqueConstraint("case_number", "department"),)  # at most once, in the database too


OPEN_STATUSES = OPEN_WORK_STATUSES


class WorkItems:
    """Repository over work items for one transaction's session."""

    def __init__(self, session: Session):
        self.s = session

    def get(self, item_id: int) -> WorkItem | None:
        return self.s.get(WorkItem, item_id, with_for_update=True)

    def find(self, case_number: str, case_version: int, department: str) -> WorkItem | None:
        return self.s.scalars(sa.select(WorkItem).where(
            WorkItem.case_number == case_number, WorkItem.case_version == case_version,
            WorkItem.department == department)).first()

    def add(self, item: WorkItem) -> None:
        self.s.add(item)
        self.s.flush()

    def open_for_case(self, case_number: str, department: str) -> list[WorkItem]:
        """The case's open items here, locked: an approver deciding one at this moment (who holds its lock)
        finishes first, and the item, decided by then, is no longer among them. Unlocked, withdrawing or
        superseding it wrote over the decision already published (a decision the books then missed)."""
        return list(self.s.scalars(sa.select(WorkItem).where(
            WorkItem.case_number == case_number, WorkItem.department == department,
            WorkItem.status.in_(OPEN_STATUSES)).order_by(WorkItem.id)
            .with_for_update().execution_options(populate_existing=True)))

    def newest_version(self, case_number: str, department: str) -> int | None:
        return self.s.scalar(sa.select(sa.func.max(WorkItem.case_version)).where(
            WorkItem.case_number == case_number, WorkItem.department == department))

    def open_held_by(self, holders: set[str]) -> list[WorkItem]:
        if not holders:
            return []
        return list(self.s.scalars(sa.select(WorkItem).where(
            WorkItem.assignee.in_(holders), WorkItem.status.in_(OPEN_STATUSES)).order_by(WorkItem.id)
            .with_for_update()))

    def log(self, item: WorkItem, action: str, actor: str, at: datetime, key: str,
            reason: str | None = None, data: dict | None = None) -> None:
        self.s.add(WorkAction(work_item_id=item.id, action=action, actor=actor, at=at, reason=reason,
                              data=data or {}, idempotency_key=key))

    def history(self, item_id: int) -> list[WorkAction]:
        return list(self.s.scalars(sa.select(WorkAction).where(WorkAction.work_item_id == item_id)
                                   .order_by(WorkAction.id)))

    def worklist(self, towns: set[str] | None, statuses: tuple[str, ...] | None, limit: int,
                 assignee: str | None = None, unassigned: bool = False) -> list[WorkItem]:
        q = sa.select(WorkItem).order_by(WorkItem.deadline, WorkItem.id)
        if towns is not None:
            q = q.where(WorkItem.handling_town.in_(towns))
        if statuses:
            q = q.where(WorkItem.status.in_(statuses))
        if assignee:
            q = q.where(WorkItem.assignee == assignee)
        if unassigned:
            q = q.where(WorkItem.assignee.is_(None))
        return list(self.s.scalars(q.limit(limit)))

    def counts(self) -> dict:
        rows = self.s.execute(sa.select(WorkItem.status, WorkItem.outcome, sa.func.count())
                              .group_by(WorkItem.status, WorkItem.outcome)).all()
        out = {"received": 0, "pending": 0, "decided": 0, "withdrawn": 0, "approved": 0, "refused": 0,
               "paused": 0, "waiting_materials": 0, "superseded": 0}
        for status, outcome, n in rows:
            out["received"] += n
            out[status] = out.get(status, 0) + n
            if outcome:
                out[outcome] += n
        handovers = self.s.execute(sa.select(Handover.to_role, sa.func.count()).group_by(Handover.to_role)).all()
        out["handovers"] = sum(n for _, n in handovers)
        out["head_fallbacks"] = sum(n for role, n in handovers if role == "head")
        out["extensions"] = self.s.scalar(sa.select(sa.func.count()).select_from(Extension)
                                          .where(Extension.status == "approved"))
        return out

    # --- posts, absences, handovers, extensions ------------------------------------------------------

    def post(self, department: str, town: str) -> Post | None:
        return self.s.scalars(sa.select(Post).where(Post.department == department,
                                                    Post.handling_town == town)).first()

    def posts(self, department: str, towns: set[str] | None) -> list[Post]:
        q = sa.select(Post).where(Post.department == department).order_by(Post.handling_town)
        if towns is not None:
            q = q.where(Post.handling_town.in_(towns))
        return list(self.s.scalars(q))

    def add_absence(self, absence: Absence) -> None:
        self.s.add(absence)
        self.s.flush()

    def absences_not_over(self, now: datetime, holders: set[str] | None = None) -> list[Absence]:
        """Absences still running or to come at `now` (UTC); the rules decide which cover a moment."""
        q = sa.select(Absence).where(Absence.ends_at > now).order_by(Absence.starts_at, Absence.id)
        if holders is not None:
            q = q.where(Absence.holder.in_(holders))
        return list(self.s.scalars(q))

    def absences_of_office(self, town: str, limit: int = 100) -> list[Absence]:
        return list(self.s.scalars(sa.select(Absence).where(Absence.handling_town == town)
                                   .order_by(Absence.starts_at.desc(), Absence.id.desc()).limit(limit)))

    def add_handover(self, handover: Handover) -> None:
        self.s.add(handover)

    def handovers(self, town: str, limit: int = 200) -> list[Handover]:
        return list(self.s.scalars(sa.select(Handover).where(Handover.handling_town == town)
                                   .order_by(Handover.id).limit(limit)))

    def extension(self, case_number: str, department: str) -> Extension | None:
        return self.s.scalars(sa.select(Extension).where(Extension.case_number == case_number,
                                                         Extension.department == department)
                              .with_for_update()).first()

    def add_extension(self, extension: Extension) -> None:
        self.s.add(extension)
        self.s.flush()

    def action_count(self, item_id: int) -> int:
        return self.s.scalar(sa.select(sa.func.count()).select_from(WorkAction)
                             .where(WorkAction.work_item_id == item_id))
