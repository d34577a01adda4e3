"""Contacts, the cases notify has heard of, and the delivery log: storage behind small repositories."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared import db


class Base(db.Base):
    """The notify database's tables: the shared declarative base, this database's own metadata."""

    __abstract__ = True
    metadata = db.service_metadata()


class Contact(Base):
    """How to reach the applicant of a case; kept only here, where notices need it."""

    __tablename__ = "contacts"

    case_number: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    phone: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    channel: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    email: Mapped[str | None] = mapped_column(sa.String(200))


class KnownCase(Base):
    """A case a centre opened (case.accepted, or case.updated for a consultation): notices for it may go out."""

    __tablename__ = "known_cases"

    case_number: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    heard_from: Mapped[str] = mapped_column(sa.String(40), nullable=False)  # the message type that told us
    heard_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class Delivery(Base):
    """One notice to one applicant on one channel, sent at most once.

    status: queued -> sending -> sent | in_doubt, or sending -> failed (the channel did not send) -> sending …,
    or -> dead_lettered (failed for good: on the last retry, or refused for good) and a new row on the next
    channel (`fallback_of` names the row it replaces); an EMS waybill is `recorded` (nothing is sent).
    The row is committed as `sending` before the channel is called; its id is the channel's idempotency key.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False, index=True)
    notice_kind: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    notice_id: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    channel: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    # who and what it goes to, as the notice named them (the case's contact may change later)
    recipient: Mapped[str | None] = mapped_column(sa.String(20))
    accepting_town: Mapped[str | None] = mapped_column(sa.String(9))
    case_version: Mapped[int | None] = mapped_column(sa.Integer)
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    sending_since: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    channel_status: Mapped[str | None] = mapped_column(sa.String(40))  # what the channel answered
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    title: Mapped[str | None] = mapped_column(sa.String(200))  # the notice's title (e-mail subject, templates)
    fallback_of: Mapped[int | None] = mapped_column(sa.Integer)  # the delivery on the channel that failed for good
    segments: Mapped[int | None] = mapped_column(sa.Integer)  # SMS: parts the operator bills
    dead_letter_reason: Mapped[str | None] = mapped_column(sa.Text)  # why this channel failed for good
    tracking_number: Mapped[str | None] = mapped_column(sa.String(20))  # EMS: the waybill (UPU S10)

    # one row per notice and channel: a notice is sent once per channel however often its event comes
    __table_args__ = (sa.UniqueConstraint("case_number", "notice_id", "channel"),)


def insert_ignoring_duplicates(session: Session, model, values: dict, key: list[str]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL (two workers may hear of a case at once)."""
    session.execute(db.dialect_insert(session)(model).values(**values).on_conflict_do_nothing(index_elements=key))


class KnownCases:
    def __init__(self, session: Session):
        self.s = session

    def get(self, case_number: str) -> KnownCase | None:
        return self.s.get(KnownCase, case_number)

    def record(self, case_number: str, accepting_town: str, heard_from: str, at: datetime) -> KnownCase:
        """The case as first heard of (an existing record is kept as it is)."""
        insert_ignoring_duplicates(self.s, KnownCase, {
            "case_number": case_number, "accepting_town": accepting_town, "heard_from": heard_from,
            "heard_at": at}, ["case_number"])
        return self.s.get(KnownCase, case_number, populate_existing=True)


class Deliveries:
    def __init__(self, session: Session):
        self.s = session

    def contact(self, case_number: str) -> Contact | None:
        return self.s.get(Contact, case_number)

    def save_contact(self, contact: Contact) -> None:
        """Insert or update the case's contact; a known e-mail address is never overwritten with none. Two notices
        of one case queued at once (the window's first, with the address, retried beside a later one without
        it) each read the contact before the other wrote it: a plain merge let the later one blank the address."""
        insert = db.dialect_insert(self.s)(Contact).values(
            case_number=contact.case_number, accepting_town=contact.accepting_town, name=contact.name,
            phone=contact.phone, channel=contact.channel, email=contact.email)
        self.s.execute(insert.on_conflict_do_update(index_elements=[Contact.case_number], set_={
            "accepting_town": insert.excluded.accepting_town, "name": insert.excluded.name,
            "phone": insert.excluded.phone, "channel": insert.excluded.channel,
            "email": sa.func.coalesce(insert.excluded.email, Contact.email)}))
        known = self.s.identity_map.get(self.s.identity_key(Contact, contact.case_number))
        if known is not None:  # read earlier in this transaction: read it again
            self.s.expire(known)

    def find(self, case_number: str, notice_id: int, for_update: bool = False) -> Delivery | None:
        """The notice's first delivery (on the channel first chosen; fallbacks hang from it)."""
        q = sa.select(Delivery).where(Delivery.case_number == case_number, Delivery.notice_id == notice_id,
                                      Delivery.fallback_of.is_(None)).order_by(Delivery.id)
        if for_update:
            q = q.with_for_update()
        return self.s.scalars(q).first()

    def chain(self, case_number: str, notice_id: int) -> list[Delivery]:
        """Every delivery of one notice, first to last (each channel at most once)."""
        return list(self.s.scalars(sa.select(Delivery).where(Delivery.case_number == case_number,
                                                             Delivery.notice_id == notice_id)
                                   .order_by(Delivery.id)))

    def on_channel(self, case_number: str, notice_id: int, channel: str) -> Delivery | None:
        return self.s.scalars(sa.select(Delivery).where(Delivery.case_number == case_number,
                                                        Delivery.notice_id == notice_id,
                                                        Delivery.channel == channel)).first()

    def get(self, delivery_id: int, for_update: bool = False) -> Delivery | None:
        return self.s.get(Delivery, delivery_id, with_for_update=for_update, populate_existing=True)

    def add(self, delivery: Delivery) -> None:
        self.s.add(delivery)
        self.s.flush()

    def claim(self, delivery_id: int, claimable: tuple[str, ...], now: datetime) -> bool:
        """Take the delivery for sending; False if it is not waiting to be sent (someone else has it)."""
        result = self.s.execute(
            sa.update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status.in_(claimable))
            .values(status="sending", attempts=Delivery.attempts + 1, sending_since=now)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    def sending(self, for_update: bool = False) -> list[Delivery]:
        q = sa.select(Delivery).where(Delivery.status == "sending").order_by(Delivery.id)
        return list(self.s.scalars(q.with_for_update() if for_update else q))

    def for_case(self, case_number: str) -> list[Delivery]:
        return list(self.s.scalars(sa.select(Delivery).where(Delivery.case_number == case_number)
                                   .order_by(Delivery.id)))

    def counts(self, town: str | None = None) -> dict:
        """Sent notices by kind, every delivery by status, and by channel and status; only a town's cases if
        given."""
        where = [] if town is None else [Delivery.accepting_town == town]
        sent = self.s.execute(sa.select(Delivery.notice_kind, sa.func.count())
                              .where(Delivery.status == "sent", *where).group_by(Delivery.notice_kind)).all()
        statuses = self.s.execute(sa.select(Delivery.status, sa.func.count()).where(*where)
                                  .group_by(Delivery.status)).all()
        channels = self.s.execute(sa.select(Delivery.channel, Delivery.status, sa.func.count()).where(*where)
                                  .group_by(Delivery.channel, Delivery.status)).all()
        by_channel: dict = {}
        for channel, status, n in channels:
            by_channel.setdefault(channel, {})[status] = n
        return {"by_kind": {kind: n for kind, n in sent}, "by_status": {status: n for status, n in statuses},
                "by_channel": by_channel}
