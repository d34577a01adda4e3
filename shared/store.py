"""A service's database: transactions that carry their outgoing messages (outbox) and the
ids of the messages they handled (inbox), so state and messages never part ways.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from shared.contracts import Message
from shared.db import inbox_table, make_engine, migrate, outbox_table


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Tx:
    """One unit of work: the ORM session plus the outbox and inbox of the same transaction."""

    def __init__(self, session: Session, exchange: str):
        self.session = session
        self._exchange = exchange
        self.published = 0
        self.after_commit_calls: list = []

    def after_commit(self, fn) -> None:
        """Run `fn()` once this transaction has committed (a side effect outside the database, such as
        an SMS, is recorded first and made after). An exception from `fn` fails the message handling."""
        self.after_commit_calls.append(fn)

    def publish(self, message: Message, routing_key: str, exchange: str | None = None) -> None:
        """Queue a message to leave when, and only if, this transaction commits."""
        self.session.execute(outbox_table.insert().values(
            message_id=message.message_id, exchange=exchange or self._exchange, routing_key=routing_key,
            body=json.dumps(message.to_wire(), ensure_ascii=False), created_at=utcnow(), attempts=0,
        ))
        self.published += 1

    def first_time(self, consumer: str, message: Message) -> bool:
        """Record that `consumer` handles this message; False if it already did (a redelivery)."""
        seen = self.session.execute(
            sa.select(inbox_table.c.message_id).where(
                inbox_table.c.consumer == consumer, inbox_table.c.message_id == message.message_id)
        ).first()
        if seen:
            return False
        self.session.execute(inbox_table.insert().values(
            consumer=consumer, message_id=message.message_id, message_type=message.type,
            case_number=message.case_number, handled_at=utcnow()))
        return True


@dataclass
class OutboxRow:
    id: int
    message_id: str
    exchange: str
    routing_key: str
    body: dict
    attempts: int


class Store:
    """Engine, migrations and transactions of one service instance."""

    def __init__(self, url: str, versions_dir: Path, exchange: str):
        self.url = url
        self.versions_dir = Path(versions_dir)
        self.exchange = exchange
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.on_commit_with_messages = None  # the relay sets this to be woken promptly

    def migrate(self) -> None:
        migrate(self.engine, self.versions_dir)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        session = self._sessions()
        tx = Tx(session, self.exchange)
        try:
            with session.begin():
                yield tx
        finally:
            session.close()
        if tx.published and self.on_commit_with_messages:
            self.on_commit_with_messages()
        for fn in tx.after_commit_calls:
            fn()

    @contextmanager
    def read(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
        finally:
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()

    # --- outbox, for the relay ------------------------------------------------------------------

    def due_outbox(self, limit: int = 100) -> list[OutboxRow]:
        now = utcnow()
        t = outbox_table
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.id, t.c.message_id, t.c.exchange, t.c.routing_key, t.c.body, t.c.attempts)
                .where(t.c.published_at.is_(None))
                .where(sa.or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now))
                .order_by(t.c.id).limit(limit)
            ).all()
        return [OutboxRow(r.id, r.message_id, r.exchange, r.routing_key, json.loads(r.body), r.attempts)
                for r in rows]

    def mark_published(self, row_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(outbox_table.update().where(outbox_table.c.id == row_id)
                         .values(published_at=utcnow()))

    def mark_failed(self, row: OutboxRow, error: str) -> None:
        # back off up to a minute, so one unroutable message does not spin the relay
        delay = min(60.0, 0.5 * (2 ** min(row.attempts, 7)))
        with self.engine.begin() as conn:
            conn.execute(outbox_table.update().where(outbox_table.c.id == row.id).values(
                attempts=row.attempts + 1, last_error=error[:2000],
                next_attempt_at=utcnow() + timedelta(seconds=delay)))

    def outbox_backlog(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(outbox_table)
                                .where(outbox_table.c.published_at.is_(None))).scalar_one()
