"""Work items of one department: storage behind a small repository."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from shared.db import NAMING_CONVENTION
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


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
        return list(self.s.scalars(sa.select(WorkItem).where(
            WorkItem.case_number == case_number, WorkItem.department == department,
            WorkItem.status == "pending")))

    def log(self, item: WorkItem, action: str, actor: str, at: datetime, key: str,
            reason: str | None = None, data: dict | None = None) -> None:
        self.s.add(WorkAction(work_item_id=item.id, action=action, actor=actor, at=at, reason=reason,
                              data=data or {}, idempotency_key=key))

    def history(self, item_id: int) -> list[WorkAction]:
        return list(self.s.scalars(sa.select(WorkAction).where(WorkAction.work_item_id == item_id)
                                   .order_by(WorkAction.id)))

    def worklist(self, towns: set[str] | None, status: str | None, limit: int) -> list[WorkItem]:
        q = sa.select(WorkItem).order_by(WorkItem.deadline, WorkItem.id)
        if towns is not None:
            q = q.where(WorkItem.handling_town.in_(towns))
        if status:
            q = q.where(WorkItem.status == status)
        return list(self.s.scalars(q.limit(limit)))

    def counts(self) -> dict:
        rows = self.s.execute(sa.select(WorkItem.status, WorkItem.outcome, sa.func.count())
                              .group_by(WorkItem.status, WorkItem.outcome)).all()
        out = {"received": 0, "pending": 0, "decided": 0, "withdrawn": 0, "approved": 0, "refused": 0}
        for status, outcome, n in rows:
            out["received"] += n
            out[status] = out.get(status, 0) + n
            if outcome:
                out[outcome] += n
        return out
