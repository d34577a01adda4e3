"""Contacts and the delivery log: storage behind a small repository."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from shared.db import NAMING_CONVENTION
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Contact(Base):
    """How to reach the applicant of a case; kept only here, where notices need it."""

    __tablename__ = "contacts"

    case_number: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    phone: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    channel: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    email: Mapped[str | None] = mapped_column(sa.String(200))


class Delivery(Base):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False, index=True)
    notice_kind: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    notice_id: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    channel: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)

    __table_args__ = (sa.UniqueConstraint("case_number", "notice_id"),)


class Deliveries:
    def __init__(self, session: Session):
        self.s = session

    def contact(self, case_number: str) -> Contact | None:
        return self.s.get(Contact, case_number)

    def save_contact(self, contact: Contact) -> None:
        self.s.merge(contact)

    def exists(self, case_number: str, notice_id: int) -> bool:
        return self.s.scalars(sa.select(Delivery.id).where(
            Delivery.case_number == case_number, Delivery.notice_id == notice_id)).first() is not None

    def add(self, delivery: Delivery) -> None:
        self.s.add(delivery)
        self.s.flush()

    def for_case(self, case_number: str) -> list[Delivery]:
        return list(self.s.scalars(sa.select(Delivery).where(Delivery.case_number == case_number)
                                   .order_by(Delivery.id)))

    def counts(self) -> dict:
        rows = self.s.execute(sa.select(Delivery.notice_kind, sa.func.count()).group_by(Delivery.notice_kind)).all()
        return {kind: n for kind, n in rows}
