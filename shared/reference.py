"""Reference data (the item catalogue, the holiday calendar) as replicated records on the bus.

Design (issue 8):

- **One RabbitMQ stream keeps every version** (`<prefix>.reference`, `x-queue-type: stream`, no
  age or length retention, so no version is ever dropped). Why a stream and not a snapshot RPC: no
  service owns the catalogue (city IT does); a stream answers even when every service is down, keeps
  every version in one order that every reader sees alike, and a new instance reads it from the start
  by itself, with no file and no manual step.
- **Records**: one message per loaded file, `{"kind": "catalog"|"calendar", "version": <catalogue
  version> or <year>, "sha256", "text": <the file's text>, "loaded_at", "loaded_by"}` (`RecordSchema`,
  a tolerant reader: unknown fields are ignored). The active catalogue is the last catalogue record in
  stream order; a year's calendar is the last calendar record of that year. All instances read the same
  order, so they agree.
- **Loading the same file twice is one version**: the CLI reads the stream first and publishes nothing
  when the same kind+version+sha256 is there already; the same catalogue version with other text is
  refused (`Book.check`). Readers store idempotently by (kind, version, sha256) too.
- **Every service that needs it keeps every version in its own database** (`reference_records`, with
  the stream offset it has read up to in `reference_cursor`; tables in `shared.db`). At setup
  `Reference.catch_up` consumes the stream from the stored offset (or `first`) until it is idle, before
  the registry declares queues (so the active catalogue's departments get theirs); then
  `Reference.follow` keeps consuming live in a managed thread of the platform. A new calendar year calls
  `on_calendar` (intake recounts provisional deadlines).
- The shipped sample catalogue is published by the bus set-up step (`tongban bus declare`) only while
  the stream holds no catalogue: a service never falls back to a file silently. With no catalogue,
  `/health` is degraded and intake refuses new cases with 503.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.catalog import Catalog, CatalogError, parse_catalog, parse_catalog_shared
from shared.logging import get_logger
from shared.workdays import HolidayFileError, WorkingCalendar, YearCalendar, parse_holiday_file

log = get_logger(__name__)

CATALOG, CALENDAR, STAFF = "catalog", "calendar", "staff"
# staff: the portal's token revocations (shared.tokens.Revocations as text), the last record in force
KINDS = (CATALOG, CALENDAR, STAFF)
OFFSET_HEADER = "x-stream-offset"


def stream_name(prefix: str) -> str:
    return f"{prefix}.reference"


# the message types the portal publishes records as (its outbox, the events exchange), and their routing keys
PORTAL_RECORD_TYPES = {"staff.revocations": "staff.revocations.city", "reference.loaded": "reference.loaded.city"}


def bind_staff_records(conn, prefix: str) -> None:
    """Route the portal's records (token revocations; catalogues and calendars city IT loads at its admin page),
    published through its outbox on the events exchange, into the stream. Declared by the bus set-up and by
    the portal, whose broker user alone may bind it."""
    from kombu import Exchange

    channel = conn.default_channel
    stream_queue(prefix)(channel).declare()
    Exchange(f"{prefix}.events", "topic", durable=True)(channel).declare()
    for type_ in PORTAL_RECORD_TYPES:
        channel.queue_bind(stream_name(prefix), f"{prefix}.events", f"{type_}.#")


def record_message(record: Record, producer: str = "portal"):
    """A record as the portal's outgoing message and its routing key (shared.store.Tx.publish): in the stream
    once the transaction that decided it commits."""
    from shared import contracts

    type_ = "staff.revocations" if record.kind == STAFF else "reference.loaded"
    payload = {"kind": record.kind, "version": record.version, "sha256": record.sha256, "text": record.text,
               "loaded_at": record.loaded_at, "loaded_by": record.loaded_by}
    return contracts.make_message(type_, record.kind, 0, payload, producer=producer), PORTAL_RECORD_TYPES[type_]


def stream_queue(prefix: str, offset="first"):
    """The deployment's reference stream as a kombu queue; consuming starts at `offset`."""
    from kombu import Queue

    # no x-max-age / x-max-length-bytes: a stream keeps everything unless told otherwise
    return Queue(stream_name(prefix), durable=True, queue_arguments={"x-queue-type": "stream"},
                 consumer_arguments={"x-stream-offset": offset})


# --- the record contract ------------------------------------------------------------------------

class RecordError(ValueError):
    """A record on the stream that cannot be read (skipped, never fatal: a stream cannot dead-letter)."""


class RecordSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # tolerant reader: fields added later are ignored

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    version = fields.String(required=True, validate=validate.Length(1, 64))
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    text = fields.String(required=True)
    loaded_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    loaded_by = fields.String(load_default="unknown")


@dataclass(frozen=True)
class Record:
    kind: str
    version: str
    sha256: str
    text: str
    loaded_at: datetime
    loaded_by: str = "unknown"
    offset: int | None = None  # where it sits in the stream (None until read from it)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.kind, self.version, self.sha256

    def to_wire(self) -> bytes:
        body = RecordSchema().dump(self)
        return json.dumps(body, ensure_ascii=False).encode("utf-8")


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_record(kind: str, text: str, loaded_by: str | None = None, now: datetime | None = None) -> Record:
    """A record for a file's text, validated as its kind (CatalogError / HolidayFileError if not)."""
    if kind == CATALOG:
        version = parse_catalog(text).version
    elif kind == CALENDAR:
        version = str(parse_holiday_text(text).year)
    elif kind == STAFF:
        from shared.tokens import Revocations

        Revocations.from_text(text)  # readable, or ValueError here rather than in every reader
        version = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S%f")
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return Record(kind, version, sha256_of(text), text, now or datetime.now(UTC),
                  loaded_by or _who())


def decode(body, offset: int | None = None) -> Record:
    try:
        raw = json.loads(body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body)
        if isinstance(raw, dict) and raw.get("type") in PORTAL_RECORD_TYPES:  # the portal's, via its outbox
            raw = raw.get("payload")
        data = RecordSchema().load(raw)
    except (ValueError, TypeError, ValidationError) as exc:
        raise RecordError(f"not a reference record: {exc}") from None
    if sha256_of(data["text"]) != data["sha256"]:
        raise RecordError(f"{data['kind']} {data['version']}: sha256 does not match the text")
    return Record(offset=offset, **data)


def parse_holiday_text(text: str) -> YearCalendar:
    # a trailing newline makes parse_holiday_file read it as YAML text, never as a path
    return parse_holiday_file(text if "\n" in text else text + "\n")


def _who() -> str:
    try:
        user = os.getlogin()
    except OSError:
        user = os.environ.get("USER") or "unknown"
    return f"{user}@{socket.gethostname()}"


# --- version bookkeeping (pure) -----------------------------------------------------------------

class Conflict(ValueError):
    """The same catalogue version with other text: a changed catalogue needs a new version."""


class Book:
    """Every record read, in stream order; answers what is active. No I/O."""

    def __init__(self, records: Iterable[Record] = ()):
        self.records: list[Record] = []
        self._keys: set[tuple[str, str, str]] = set()
        for r in records:
            self.add(r)

    def add(self, record: Record) -> bool:
        """Keep a record; False when the same kind+version+sha256 is there already (one version)."""
        if record.key in self._keys:
            return False
        self._keys.add(record.key)
        self.records.append(record)
        return True

    def has(self, record: Record) -> bool:
        return record.key in self._keys

    def check(self, record: Record) -> bool:
        """Whether `record` is new; raises Conflict for a catalogue version already loaded with other text.

        A calendar year loaded again with other text is a corrected notice: it replaces the year."""
        if self.has(record):
            return False
        if record.kind == CATALOG:
            for r in self.of(CATALOG):
                if r.version == record.version:
                    raise Conflict(f"catalogue version {record.version} is already loaded with other content "
                                   f"(loaded {r.loaded_at:%Y-%m-%d %H:%M} by {r.loaded_by}); "
                                   "give the new catalogue a new version")
        return True

    def of(self, kind: str) -> list[Record]:
        return [r for r in self.records if r.kind == kind]

    def catalog_versions(self) -> list[str]:
        """Catalogue versions in the order they were first loaded."""
        seen: dict[str, None] = {}
        for r in self.of(CATALOG):
            seen.setdefault(r.version, None)
        return list(seen)

    def active_catalog(self) -> Record | None:
        """The last catalogue record in stream order (None while no catalogue was ever loaded)."""
        catalogs = self.of(CATALOG)
        return catalogs[-1] if catalogs else None

    def catalog(self, version: str) -> Record | None:
        """The first record of a version (a later one with other text was refused by the CLI)."""
        return next((r for r in self.of(CATALOG) if r.version == str(version)), None)

    def calendar_years(self) -> dict[int, Record]:
        """Each year's calendar: its last record in stream order."""
        years: dict[int, Record] = {}
        for r in self.of(CALENDAR):
            if r.version.isdigit():
                years[int(r.version)] = r
        return years


class Catalogs:
    """The catalogue versions a service holds: `active()` for new cases, `get(version)` for a case's own.

    Never falls back: a case's version is there (every version is kept), and asking for one that is
    not is an error, not the active catalogue in disguise."""

    def __init__(self, book: Book | None = None):
        self.book = book or Book()
        self._parsed: dict[str, Catalog] = {}
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.book.active_catalog() is not None

    def versions(self) -> list[str]:
        return self.book.catalog_versions()

    def active_version(self) -> str | None:
        r = self.book.active_catalog()
        return r.version if r else None

    def active(self) -> Catalog:
        r = self.book.active_catalog()
        if r is None:
            raise NoCatalog("no catalogue has been loaded on this deployment yet; city IT loads one with "
                            "`tongban catalog load FILE` (or `tongban bus declare` publishes the sample)")
        return self._parse(r)

    def get(self, version: str) -> Catalog:
        r = self.book.catalog(version)
        if r is None:
            known = ", ".join(self.versions()) or "none"
            raise CatalogError(f"unknown catalogue version {version} (known: {known})")
        return self._parse(r)

    def _parse(self, r: Record) -> Catalog:
        with self._lock:
            catalog = self._parsed.get(r.version)
            if catalog is None:
                catalog = self._parsed[r.version] = parse_catalog_shared(r.text)
            return catalog


class NoCatalog(CatalogError):
    """The deployment has no catalogue yet."""


def calendar_of(book: Book, calendar: WorkingCalendar | None = None) -> WorkingCalendar:
    """A working calendar with the book's years on top of the packaged rule (updated in place if given)."""
    calendar = calendar if calendar is not None else WorkingCalendar()
    for year, r in sorted(book.calendar_years().items()):
        try:
            calendar.load_year(parse_holiday_text(r.text))
        except HolidayFileError as exc:  # validated by the CLI; a bad one is skipped, not fatal
            log.warning("reference.bad_calendar", year=year, error=str(exc))
    return calendar


# --- the stream on the broker -------------------------------------------------------------------

class StreamClient:
    """Reads and publishes the deployment's reference stream (the CLI, the bus set-up step)."""

    IDLE = 0.5  # seconds of quiet that end a read: RabbitMQ 3.10 tells no stream's end (its message count is 0)

    def __init__(self, amqp_url: str, prefix: str, idle: float = IDLE, connect_timeout: float = 10.0):
        self.amqp_url = amqp_url
        self.prefix = prefix
        self.idle = idle
        self.connect_timeout = connect_timeout

    def declare(self, conn) -> None:
        stream_queue(self.prefix)(conn.default_channel).declare()

    def read(self, offset="first") -> list[Record]:
        """Every record from `offset` on, in stream order (unreadable ones are logged and skipped)."""
        from kombu import Connection

        records: list[Record] = []
        with Connection(self.amqp_url, connect_timeout=self.connect_timeout) as conn:
            self.declare(conn)
            read_until_idle(conn, self.prefix, offset, self.idle, lambda r, _raw_offset: records.append(r))
        return records

    def book(self) -> Book:
        return Book(self.read())

    def catalogs(self) -> Catalogs:
        return Catalogs(self.book())

    def calendar(self) -> WorkingCalendar:
        return calendar_of(self.book())

    def load(self, kind: str, text: str, loaded_by: str | None = None) -> tuple[Record, bool]:
        """Publish a file's record unless the stream has it already; (record, published).

        Raises CatalogError / HolidayFileError for an invalid file, Conflict for a catalogue version
        already loaded with other text."""
        record = make_record(kind, text, loaded_by)
        if not self.book().check(record):
            return record, False
        self.publish(record)
        return record, True

    def publish(self, record: Record) -> None:
        """Append a record, confirmed by the broker before this returns."""
        from kombu import Connection, Producer

        with Connection(self.amqp_url, connect_timeout=self.connect_timeout,
                        transport_options={"confirm_publish": True}) as conn:
            self.declare(conn)
            Producer(conn.default_channel).publish(
                record.to_wire(), exchange="", routing_key=stream_name(self.prefix), delivery_mode=2,
                content_type="application/json", content_encoding="utf-8", retry=False,
                headers={"tongban-kind": record.kind, "tongban-version": record.version})


def read_until_idle(conn, prefix: str, offset, idle: float, on_record: Callable[[Record, int], None]) -> int | None:
    """Consume the stream from `offset` until no message came for `idle` seconds; returns the next offset
    to read from (None if nothing was read). `on_record(record, offset)` is called in stream order."""
    from kombu import Consumer

    channel = conn.channel()
    try:
        channel.basic_qos(0, 200, False)  # a stream needs a prefetch limit
        last: list[int] = []

        def got(body, message):
            off = int((message.headers or {}).get(OFFSET_HEADER, -1))
            try:
                record = decode(message.body, off)
            except RecordError as exc:
                log.warning("reference.unreadable", offset=off, error=str(exc))
            else:
                on_record(record, off)
            message.ack()
            last[:] = [off]

        with Consumer(channel, queues=[stream_queue(prefix, offset)], callbacks=[got], no_ack=False,
                      accept=None, on_decode_error=None):
            _drain_until_idle(conn, idle)
        return last[0] + 1 if last else None
    finally:
        try:
            channel.close()
        except Exception:  # the connection goes with it
            pass


def _drain_until_idle(conn, idle: float) -> None:
    while True:
        try:
            conn.drain_events(timeout=idle)
        except TimeoutError:
            return


# --- a service's copy ---------------------------------------------------------------------------

class Reference:
    """A service's replica of the reference stream: every record in its database, the catalogue
    versions (`catalogs`) and the working calendar (`calendar`) in memory.

    The platform calls `catch_up(store)` at setup (before it declares the registry) and runs `follow`
    in a managed thread. `on_calendar(store)` is called after a new calendar year was stored."""

    def __init__(self, settings, needs_catalog: bool = True, idle: float | None = None,
                 on_calendar: Callable | None = None):
        self.settings = settings
        self.needs_catalog = needs_catalog
        self.idle = idle if idle is not None else float(settings.extra.get("reference_idle", 0.5))
        self.on_calendar = on_calendar
        self.catalogs = Catalogs()
        self.calendar = WorkingCalendar()
        self.next_offset: int | None = None
        self._lock = threading.Lock()
        self._revocations = None

    def revocations(self):
        """The token revocations in force (shared.tokens.Revocations): the stream's last staff record."""
        from shared.tokens import Revocations

        if self._revocations is None:
            staff = self.book.of(STAFF)
            try:
                self._revocations = Revocations.from_text(staff[-1].text) if staff else Revocations()
            except (ValueError, TypeError, AttributeError):
                log.warning("reference.staff_unreadable", version=staff[-1].version)
                self._revocations = Revocations()
        return self._revocations

    @property
    def book(self) -> Book:
        return self.catalogs.book

    # -- from the database ---------------------------------------------------------------------
    def load_stored(self, store) -> None:
        from shared.db import load_reference

        records, self.next_offset = load_reference(store.engine)
        for r in records:
            self.book.add(r)
        self._revocations = None
        calendar_of(self.book, self.calendar)

    def _take(self, store, record: Record, offset: int) -> bool:
        """Store one record read from the stream; True if it changed what the service holds."""
        from shared.db import store_reference

        with self._lock:
            store_reference(store.engine, record, offset)
            self.next_offset = offset + 1
            if not self.book.add(record):
                return False
            if record.kind == STAFF:
                self._revocations = None  # read again on the next check
            if record.kind == CALENDAR:
                calendar_of(Book([record]), self.calendar)
            log.info("reference.record", kind=record.kind, version=record.version, offset=offset,
                     sha256=record.sha256[:12])
            return True

    # -- from the stream -----------------------------------------------------------------------
    def catch_up(self, store) -> None:
        """What is stored, then the stream from where it was left until it is idle."""
        from kombu import Connection

        self.load_stored(store)
        calendars = []
        with Connection(self.settings.service_amqp_url, connect_timeout=10) as conn:
            stream_queue(self.settings.bus_prefix)(conn.default_channel).declare()

            def take(record, offset):
                if self._take(store, record, offset) and record.kind == CALENDAR:
                    calendars.append(record)

            read_until_idle(conn, self.settings.bus_prefix, self._offset(), self.idle, take)
        log.info("reference.caught_up", next_offset=self.next_offset, catalog=self.catalogs.active_version(),
                 versions=len(self.catalogs.versions()), years=sorted(self.calendar.loaded_years))
        if calendars:
            self._calendar_changed(store)

    def _offset(self):
        return self.next_offset if self.next_offset is not None else "first"

    def follow(self, store, stopping: Callable[[], bool]) -> None:
        """Consume the stream live until `stopping()`; reconnects after a broker outage."""
        from kombu import Connection, Consumer

        while not stopping():
            try:
                with Connection(self.settings.service_amqp_url, connect_timeout=10) as conn:
                    channel = conn.channel()
                    channel.basic_qos(0, 200, False)

                    def got(body, message):
                        off = int((message.headers or {}).get(OFFSET_HEADER, -1))
                        try:
                            record = decode(message.body, off)
                        except RecordError as exc:
                            log.warning("reference.unreadable", offset=off, error=str(exc))
                            with self._lock:
                                self.next_offset = off + 1
                        else:
                            if self._take(store, record, off) and record.kind == CALENDAR:
                                self._calendar_changed(store)
                        message.ack()

                    queue = stream_queue(self.settings.bus_prefix, self._offset())
                    with Consumer(channel, queues=[queue], callbacks=[got], no_ack=False, accept=None):
                        while not stopping():
                            try:
                                conn.drain_events(timeout=0.5)
                            except TimeoutError:
                                continue
            except Exception as exc:  # the broker went away: read on from the stored offset
                if stopping():
                    return
                log.warning("reference.follow_failed", error=str(exc) or exc.__class__.__name__)
                time.sleep(1.0)

    def _calendar_changed(self, store) -> None:
        if self.on_calendar is None:
            return
        try:
            self.on_calendar(store)
        except Exception:  # a recount that failed is tried again with the next year, or at restart
            log.exception("reference.on_calendar_failed")

    def health(self) -> str:
        if self.needs_catalog and not self.catalogs.ready:
            return "error: no catalogue loaded on this deployment (tongban catalog load FILE)"
        return "ok"
