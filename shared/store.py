"""A service's database: transactions that carry their outgoing messages (outbox) and the
ids of the messages they handled (inbox), so state and messages never part ways.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import eventlet
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, sessionmaker

from shared.contracts import Message
from shared.db import inbox_table, make_engine, migrate, outbox_table


def utcnow() -> datetime:
    return datetime.now(UTC)


class Tx:
    """One unit of work: the ORM session plus the outbox and inbox of the same transaction."""

    def __init__(self, session: Session, exchange: str):
        self.session = session
        self._exchange = exchange
        self.after_commit_calls: list = []
        self._outbox: list[dict] = []  # written in one statement just before the commit

    @property
    def published(self) -> int:
        return len(self._outbox)

    def after_commit(self, fn) -> None:
        """Run `fn()` once this transaction has committed (a side effect outside the database, such as
        an SMS, is recorded first and made after). An exception from `fn` fails the message handling."""
        self.after_commit_calls.append(fn)

    def publish(self, message: Message, routing_key: str, exchange: str | None = None) -> None:
        """Queue a message to leave when, and only if, this transaction commits."""
        self._outbox.append(dict(
            message_id=message.message_id, exchange=exchange or self._exchange, routing_key=routing_key,
            body=json.dumps(message.to_wire(), ensure_ascii=False), created_at=utcnow(), attempts=0))

    def write_outbox(self) -> None:
        """The transaction's messages, in the order published, in one INSERT (called before the commit)."""
        if self._outbox:
            self.session.execute(outbox_table.insert(), self._outbox)

    def first_time(self, consumer: str, message: Message) -> bool:
        """Record that `consumer` handles this message; False if it already did (a redelivery).

        One INSERT that does nothing on a conflict: no read first, and two concurrent deliveries of one
        message cannot both pass (the second waits for the first's row, then finds it)."""
        return self.session.execute(_INBOX_INSERT, {
            "consumer": consumer, "message_id": message.message_id, "message_type": message.type,
            "case_number": message.case_number, "handled_at": utcnow()}).rowcount == 1


# as text, the same for PostgreSQL and SQLite: SQLAlchemy caches its compiled form (a dialect's insert with
# ON CONFLICT has no cache key and was compiled again for every message handled)
_INBOX_INSERT = sa.text(
    "INSERT INTO inbox (consumer, message_id, message_type, case_number, handled_at) "
    "VALUES (:consumer, :message_id, :message_type, :case_number, :handled_at) ON CONFLICT DO NOTHING"
).bindparams(sa.bindparam("handled_at", type_=inbox_table.c.handled_at.type))


@dataclass
class OutboxRow:
    id: int
    message_id: str
    exchange: str
    routing_key: str
    body: str  # the JSON text as stored: published as it is, never decoded and encoded again
    attempts: int

    def case_number(self) -> str | None:
        """For logging a row that could not leave (decodes the body; not on the publishing path)."""
        try:
            return json.loads(self.body).get("case_number")
        except (ValueError, AttributeError):
            return None


@dataclass
class OutboxHealth:
    """What /health needs to know about the outbox, from one query."""

    backlog: int  # rows not yet published
    oldest_created_at: datetime | None  # of the oldest row not yet published
    unroutable: int  # rows waiting because no queue took them last time


def backoff_seconds(attempts: int) -> float:
    """How long a row waits after its `attempts`-th failed try (up to a minute)."""
    return min(60.0, 0.5 * (2 ** min(max(attempts, 1) - 1, 7)))


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
                tx.write_outbox()
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
    #
    # A relay claims a window of due rows in one short transaction (PostgreSQL: FOR UPDATE SKIP
    # LOCKED, so relays sharing a database take disjoint windows), leasing them by moving their
    # next_attempt_at ahead; it publishes with no transaction open, then marks the acked rows in one
    # statement. A relay that dies mid-window leaves its rows to be claimed again when the lease ends.

    def claim_outbox(self, limit: int = 500, lease_seconds: float = 30.0) -> list[OutboxRow]:
        """Lease up to `limit` due rows, oldest first, to the caller for `lease_seconds`."""
        now = utcnow()
        t = outbox_table
        due = (sa.select(t.c.id)
               .where(t.c.published_at.is_(None))
               .where(sa.or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now))
               .order_by(t.c.id).limit(limit)
               .with_for_update(skip_locked=True))  # SQLite: no locking clause (one writer at a time)
        claim = (t.update().where(t.c.id.in_(due.scalar_subquery()))
                 .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
                 .returning(t.c.id, t.c.message_id, t.c.exchange, t.c.routing_key, t.c.body, t.c.attempts))
        with self.engine.begin() as conn:
            rows = conn.execute(claim).all()
        return sorted((OutboxRow(r.id, r.message_id, r.exchange, r.routing_key, r.body, r.attempts)
                       for r in rows), key=lambda r: r.id)

    def due_outbox(self, limit: int = 100) -> list[OutboxRow]:
        """Due rows, oldest first, without claiming them (inspection; the relay claims)."""
        now = utcnow()
        t = outbox_table
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.id, t.c.message_id, t.c.exchange, t.c.routing_key, t.c.body, t.c.attempts)
                .where(t.c.published_at.is_(None))
                .where(sa.or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now))
                .order_by(t.c.id).limit(limit)
            ).all()
        return [OutboxRow(r.id, r.message_id, r.exchange, r.routing_key, r.body, r.attempts) for r in rows]

    def mark_published(self, row_ids) -> int:
        """Mark rows the broker acked as published, in one statement; returns how many."""
        ids = [row_ids] if isinstance(row_ids, int) else list(row_ids)
        if not ids:
            return 0
        t = outbox_table
        if self.engine.dialect.name == "postgresql":  # one array parameter instead of one per id
            where = t.c.id == sa.any_(sa.bindparam("ids", ids, type_=postgresql.ARRAY(sa.Integer)))
        else:
            where = t.c.id.in_(ids)
        with self.engine.begin() as conn:
            conn.execute(t.update().where(where).values(published_at=utcnow(), next_attempt_at=None))
        return len(ids)

    def release_outbox(self, row_ids) -> None:
        """Give claimed rows back at once (due again now), without counting a failed try."""
        ids = list(row_ids)
        if ids:
            with self.engine.begin() as conn:
                conn.execute(outbox_table.update().where(outbox_table.c.id.in_(ids))
                             .where(outbox_table.c.published_at.is_(None)).values(next_attempt_at=None))

    def mark_failed(self, rows, error: str) -> None:
        """Rows that did not leave: try again after a backoff that grows with their attempts (up to a
        minute), so one unroutable message does not spin the relay. One statement per attempt count."""
        rows = [rows] if isinstance(rows, OutboxRow) else list(rows)
        by_attempts: dict[int, list[int]] = {}
        for row in rows:
            by_attempts.setdefault(row.attempts, []).append(row.id)
        if not by_attempts:
            return
        now = utcnow()
        t = outbox_table
        with self.engine.begin() as conn:
            for attempts, ids in by_attempts.items():
                conn.execute(t.update().where(t.c.id.in_(ids)).where(t.c.published_at.is_(None)).values(
                    attempts=attempts + 1, last_error=error[:2000],
                    next_attempt_at=now + timedelta(seconds=backoff_seconds(attempts + 1))))

    # --- retention --------------------------------------------------------------------------------
    #
    # Published outbox rows (notice texts with contact details) and inbox rows are not kept for ever.
    # Deleted in batches, each its own short transaction, so a purge never holds locks for long or
    # blocks the relay; an unpublished row is never deleted, whatever its age.

    def purge_outbox(self, published_before: datetime, batch: int = 1000) -> int:
        """Delete outbox rows published before `published_before`; returns how many."""
        t = outbox_table
        due = (sa.select(t.c.id).where(t.c.published_at.is_not(None)).where(t.c.published_at < published_before)
               .order_by(t.c.id).limit(batch))
        return self._purge_batches(lambda: t.delete().where(t.c.id.in_(due.scalar_subquery())), batch)

    def purge_inbox(self, handled_before: datetime, batch: int = 1000) -> int:
        """Delete inbox rows of messages handled before `handled_before`; returns how many."""
        t = inbox_table
        due = sa.select(t.c.consumer, t.c.message_id).where(t.c.handled_at < handled_before).limit(batch)
        return self._purge_batches(lambda: t.delete().where(sa.tuple_(t.c.consumer, t.c.message_id).in_(due)),
                                   batch)

    def _purge_batches(self, statement, batch: int) -> int:
        total = 0
        while True:
            with self.engine.begin() as conn:
                n = conn.execute(statement()).rowcount
            total += n
            if n < batch:
                return total
            eventlet.sleep(0)  # let requests and handlers run between batches

    def outbox_backlog(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(outbox_table)
                                .where(outbox_table.c.published_at.is_(None))).scalar_one()

    def outbox_health(self) -> OutboxHealth:
        """Backlog, the oldest unsent row's time and the rows waiting as unroutable, in one query."""
        t = outbox_table
        unroutable = sa.func.coalesce(sa.func.sum(
            sa.case((t.c.last_error.like("unroutable:%"), 1), else_=0)), 0)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sa.func.count(), sa.func.min(t.c.created_at), unroutable)
                               .where(t.c.published_at.is_(None))).one()
        oldest = row[1]
        if isinstance(oldest, str):  # SQLite hands back text from an aggregate
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:  # SQLite keeps no zone; we store UTC
            oldest = oldest.replace(tzinfo=UTC)
        return OutboxHealth(int(row[0]), oldest, int(row[2]))
