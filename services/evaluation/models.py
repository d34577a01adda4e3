"""Every case event, as evaluation saw it: storage behind a small repository."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared import db


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
