"""The outbox relay: windows of outbox rows published with their confirms outstanding.

One round (`OutboxRelay.relay_once`):

1. claim up to `window` due rows in one short transaction (a lease: other relays skip them);
2. publish them all on one channel in confirm mode of a long-lived py-amqp connection
   (mandatory, persistent, the stored JSON text as the body) — no database transaction is open;
3. read basic.ack / basic.nack (either may settle many tags at once) and basic.return (no queue took
   the message; it comes before that message's ack) until every publish is settled or time is up;
4. mark the acked rows published in one UPDATE; returned rows wait with a backoff as unroutable;
   nacked and unsettled rows are tried again later.

A row is marked published only after its ack, so a crash anywhere publishes it again (consumers
are idempotent) and never loses it. A broker error drops the connection; the next round reconnects.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import amqp
import eventlet
from amqp import spec
from amqp.exceptions import AMQPError, ChannelError
from kombu.utils.url import parse_url

from shared.logging import get_logger
from shared.store import OutboxRow, Store

log = get_logger(__name__)

_BROKER_ERRORS = (AMQPError, OSError, ConnectionError)


def amqp_connection(url: str, connect_timeout: float = 5.0, **kwargs) -> amqp.Connection:
    """A py-amqp connection (not yet connected) from an amqp:// URL as kombu reads it."""
    parts = parse_url(url)
    host = parts.get("hostname") or "localhost"
    port = parts.get("port") or (5671 if parts.get("transport") == "amqps" else 5672)
    vhost = parts.get("virtual_host") or "/"
    return amqp.Connection(host=f"{host}:{port}", userid=parts.get("userid") or "guest",
                           password=parts.get("password") or "guest", virtual_host=vhost,
                           ssl=parts.get("transport") == "amqps", connect_timeout=connect_timeout,
                           **kwargs)


@dataclass
class WindowResult:
    """What became of one window of rows."""

    acked: list[OutboxRow] = field(default_factory=list)
    returned: list[OutboxRow] = field(default_factory=list)  # unroutable: no queue took them
    nacked: list[OutboxRow] = field(default_factory=list)
    unsettled: list[OutboxRow] = field(default_factory=list)  # no answer in time, or the broker went away
    error: str | None = None
    refused: bool = False  # the broker closed the channel over one of the publishes (403 access, 404 exchange)


class _Window:
    """The bookkeeping of one window's publishes: delivery tag -> row, and what the broker said."""

    def __init__(self):
        self.pending: dict[int, OutboxRow] = {}
        self.returned_ids: set[str] = set()
        self.result = WindowResult()

    def settle(self, delivery_tag: int, multiple: bool, acked: bool) -> None:
        tags = [t for t in self.pending if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            row = self.pending.pop(tag, None)
            if row is None:
                continue  # a tag of an earlier, abandoned window
            if row.message_id in self.returned_ids:
                self.result.returned.append(row)
            elif acked:
                self.result.acked.append(row)
            else:
                self.result.nacked.append(row)

    def abandon(self, error: str | None = None) -> WindowResult:
        self.result.unsettled.extend(self.pending[t] for t in sorted(self.pending))
        self.pending.clear()
        if error:
            self.result.error = error
        return self.result


class OutboxRelay:
    """Moves one store's outbox to the broker. Not shared between green threads: one relay, one loop."""

    def __init__(self, store: Store, amqp_url: str, metrics=None, window: int = 500,
                 confirm_timeout: float = 10.0, lease_seconds: float = 30.0, connect_timeout: float = 5.0,
                 name: str = "relay"):
        self.store = store
        self.amqp_url = amqp_url
        self.metrics = metrics
        self.window = window
        self.confirm_timeout = confirm_timeout
        self.lease_seconds = max(lease_seconds, confirm_timeout * 2)
        self.connect_timeout = connect_timeout
        self.name = name
        self._conn: amqp.Connection | None = None
        self._channel = None
        self._tag = 0  # the last delivery tag used on the channel (confirm mode numbers publishes from 1)
        self._current: _Window | None = None
        self._retry_connect_at = 0.0
        self._connect_failures = 0
        self.more_due = False  # the last round took a full window (or is finding a refused row): go on at once
        # after the broker refused one publish of a window (it closes the channel, not saying which),
        # the next rounds take one row each, so the refused row waits alone and the others leave
        self._single_rounds = 0
        # after a full window, the next one is claimed while this one's confirms are awaited
        self._prefetch = None  # the green thread claiming it

    # --- the broker connection --------------------------------------------------------------------

    def _connect(self) -> bool:
        """Have an open confirm-mode channel; False while the broker is away (with a growing pause)."""
        if self._channel is not None:
            return True
        if time.monotonic() < self._retry_connect_at:
            return False
        conn = amqp_connection(self.amqp_url, connect_timeout=self.connect_timeout)
        try:
            conn.connect()
            channel = conn.channel()
            channel.confirm_select()
        except _BROKER_ERRORS as exc:
            _close_quietly(conn)
            self._connect_failures += 1
            pause = min(30.0, 0.5 * 2 ** min(self._connect_failures - 1, 6))
            self._retry_connect_at = time.monotonic() + pause
            self._count_failure("broker", 1)
            log.warning("outbox.broker_unavailable", error=str(exc) or exc.__class__.__name__,
                        retry_in_seconds=pause)
            return False
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self._conn, self._channel, self._tag = conn, channel, 0
        if self._connect_failures:
            log.info("outbox.broker_back", after_failures=self._connect_failures)
        self._connect_failures = 0
        return True

    def _drop(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            _close_quietly(conn)

    def abort(self) -> None:
        """Drop the connection without a word (on kill); claimed rows come back when their lease ends."""
        self._drop()

    def close(self) -> None:
        """Close the connection politely (on stop); rows claimed ahead are given back."""
        try:
            self._release_prefetched()
        except Exception:  # they come back when their lease ends
            log.warning("outbox.release_failed")
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                with eventlet.Timeout(self.confirm_timeout, False):
                    conn.close()
            except Exception:
                pass
            _close_quietly(conn)

    @property
    def connected(self) -> bool:
        return self._channel is not None

    # --- the broker's answers (called from drain_events) --------------------------------------------

    def _on_ack(self, delivery_tag, multiple):
        if self._current is not None:
            self._current.settle(delivery_tag, multiple, acked=True)

    def _on_nack(self, delivery_tag, multiple):
        if self._current is not None:
            self._current.settle(delivery_tag, multiple, acked=False)

    def _on_return(self, exc, exchange, routing_key, message):
        if self._current is not None:
            message_id = (getattr(message, "properties", None) or {}).get("message_id")
            if message_id:
                self._current.returned_ids.add(message_id)

    # --- one round ------------------------------------------------------------------------------------

    def relay_once(self, limit: int | None = None) -> int:
        """Publish one window of due rows; returns how many the broker acked (0: nothing to do or no broker)."""
        self.more_due = False
        if not self._connect():
            self._release_prefetched()
            return 0
        size = 1 if self._single_rounds > 0 else (limit or self.window)
        rows = self._take_prefetched(size)
        if rows is None:
            rows = self.store.claim_outbox(size, self.lease_seconds)
        self._single_rounds = max(0, self._single_rounds - 1) if rows else 0
        if not rows:
            return 0
        # a full window: likely more is due; claim it while the broker confirms this one
        ahead = len(rows) >= size and self._single_rounds == 0
        result = self.publish_window(rows, after_write=(lambda: self._prefetch_next(size)) if ahead else None)
        self._record(result)
        self.more_due = len(rows) >= size or self._single_rounds > 0 or self._prefetch is not None
        return len(result.acked)

    def _prefetch_next(self, size: int) -> None:
        self._prefetch = (size, eventlet.spawn(self.store.claim_outbox, size, self.lease_seconds))

    def _take_prefetched(self, size: int) -> list[OutboxRow] | None:
        """The rows claimed ahead, if they were claimed for a window of this size (else given back)."""
        if self._prefetch is None:
            return None
        (claimed_for, thread), self._prefetch = self._prefetch, None
        try:
            rows = thread.wait()
        except Exception:
            log.exception("outbox.claim_failed")
            return None
        if claimed_for != size:
            self.store.release_outbox(r.id for r in rows)
            return None
        return rows

    def _release_prefetched(self) -> None:
        self._take_prefetched(size=-1)  # a size never asked for: the rows are given back

    def publish_window(self, rows: list[OutboxRow], after_write=None) -> WindowResult:
        """Publish `rows` with confirms outstanding and wait until each is settled or the time is up
        (`after_write()` is called once every frame is sent, before the wait)."""
        window = self._current = _Window()
        tagged = 0  # rows given a delivery tag (the rest never left)
        try:
            channel = self._channel
            transport = self._conn.transport
            # frames are gathered and sent some 64 KB at a time instead of one send per message (and
            # basic_publish would poll the socket for connection.blocked before each message too)
            chunks: list[bytes] = []
            real_write = transport._write
            transport._write = lambda data: chunks.append(bytes(data))  # frame_writer reuses its buffer
            size = 0
            try:
                for row in rows:
                    message = amqp.Message(row.body.encode("utf-8"), content_type="application/json",
                                           content_encoding="utf-8", delivery_mode=2, message_id=row.message_id)
                    channel.send_method(spec.Basic.Publish, "Bssbb",
                                        (0, row.exchange, row.routing_key, True, False), message)
                    self._tag += 1
                    window.pending[self._tag] = row
                    tagged += 1
                    size += len(chunks[-1])
                    if size >= 65536:
                        with transport.having_timeout(self.confirm_timeout):
                            real_write(b"".join(chunks))
                        chunks.clear()
                        size = 0
                if chunks:
                    with transport.having_timeout(self.confirm_timeout):
                        real_write(b"".join(chunks))
            finally:
                transport._write = real_write
            if after_write is not None:
                after_write()
            deadline = time.monotonic() + self.confirm_timeout
            while window.pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._drop()  # a broker that does not answer in time is not to be trusted further
                    return window.abandon(f"no confirm within {self.confirm_timeout:g} s")
                try:
                    self._conn.drain_events(timeout=remaining)
                except TimeoutError:
                    continue
            return window.result
        except _BROKER_ERRORS as exc:
            self._drop()
            # what was acked before the error stays acked; the rest goes again later
            result = window.abandon(f"{exc.__class__.__name__}: {exc}")
            result.refused = isinstance(exc, ChannelError)
            result.unsettled.extend(rows[tagged:])
            return result
        finally:
            self._current = None

    def _record(self, result: WindowResult) -> None:
        """Write down what the broker said: published, unroutable, or to be tried again."""
        if result.acked:
            self.store.mark_published(r.id for r in result.acked)
            if self.metrics is not None:
                self.metrics.outbox_published.inc(len(result.acked))
        for row in result.returned:
            log.error("outbox.unroutable", routing_key=row.routing_key, exchange=row.exchange,
                      message_id=row.message_id, case_number=row.case_number(), attempts=row.attempts + 1)
        for routing_key in sorted({r.routing_key for r in result.returned}):
            self.store.mark_failed([r for r in result.returned if r.routing_key == routing_key],
                                   f"unroutable: {routing_key}")
        self._count_failure("unroutable", len(result.returned))
        if result.nacked:
            log.warning("outbox.nacked", count=len(result.nacked), first_message_id=result.nacked[0].message_id)
            self.store.mark_failed(result.nacked, "nacked by the broker")
            self._count_failure("nack", len(result.nacked))
        if result.unsettled and result.refused and len(result.unsettled) > 1:
            # one of them was refused: try each alone, at once, to find which
            log.warning("outbox.publish_refused", error=result.error, suspects=len(result.unsettled))
            self.store.release_outbox(r.id for r in result.unsettled)
            self._single_rounds = len(result.unsettled)
        elif result.unsettled and result.refused:
            (row,) = result.unsettled
            log.error("outbox.refused", error=result.error, routing_key=row.routing_key, exchange=row.exchange,
                      message_id=row.message_id, case_number=row.case_number(), attempts=row.attempts + 1)
            self.store.mark_failed(result.unsettled, f"refused: {result.error}")
            self._count_failure("refused", 1)
        elif result.unsettled:
            log.warning("outbox.publish_failed", error=result.error, unsettled=len(result.unsettled),
                        first_message_id=result.unsettled[0].message_id)
            self.store.mark_failed(result.unsettled, result.error or "not confirmed")
            self._count_failure("broker", len(result.unsettled))

    def _count_failure(self, reason: str, n: int) -> None:
        if n and self.metrics is not None:
            self.metrics.outbox_failures.labels(reason=reason).inc(n)


def _close_quietly(conn: amqp.Connection) -> None:
    """Drop a connection without the closing handshake (it may be dead already)."""
    try:
        conn.collect()
    except Exception:
        pass


class BrokerProbe:
    """A long-lived connection that answers "is the broker there?" with one round trip (a passive
    declare of the events exchange) instead of a new connection per question; it also reads queue
    depths for the dead-letter gauge. Used from the health thread only."""

    def __init__(self, amqp_url: str, exchange: str, timeout: float = 3.0):
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.timeout = timeout
        self._conn: amqp.Connection | None = None
        self._channel = None

    def _ensure_channel(self):
        if self._conn is None:
            conn = amqp_connection(self.amqp_url, connect_timeout=self.timeout)
            try:
                conn.connect()
            except BaseException:
                _close_quietly(conn)
                raise
            self._conn = conn
        if self._channel is None or not self._channel.is_open:
            self._channel = self._conn.channel()
        return self._channel

    def _round_trip(self, fn):
        try:
            with eventlet.Timeout(self.timeout, TimeoutError(f"no answer within {self.timeout:g} s")):
                return fn(self._ensure_channel())
        except AMQPError as exc:
            if getattr(exc, "code", None) == 404:  # a channel error closes only the channel
                self._channel = None
            else:
                self.drop()
            raise
        except BaseException:
            self.drop()
            raise

    def check(self) -> None:
        """Raise unless the broker answers on the connection and knows the events exchange."""
        self._round_trip(lambda ch: ch.exchange_declare(self.exchange, "topic", passive=True))

    def queue_depth(self, name: str) -> int:
        _name, count, _consumers = self._round_trip(lambda ch: ch.queue_declare(name, passive=True))
        return count

    def drop(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            _close_quietly(conn)

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                with eventlet.Timeout(self.timeout, False):
                    conn.close()
            except Exception:
                pass
            _close_quietly(conn)
