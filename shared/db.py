"""Storage plumbing: an engine per service instance, Alembic migrations on start, outbox and inbox tables.

SQLite (one file per instance) is the embedded default; PostgreSQL by URL. Under eventlet,
psycopg2 must be made cooperative (psycogreen), or one query would stall the whole service.
"""
from __future__ import annotations

import functools
import os
from datetime import datetime
from pathlib import Path

import eventlet.semaphore
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

_psycopg_patched = False


def _make_psycopg_green() -> None:
    global _psycopg_patched
    if _psycopg_patched:
        return
    try:
        import eventlet.patcher
    except ImportError:  # pragma: no cover - eventlet is a dependency
        return
    if eventlet.patcher.is_monkey_patched("socket"):
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
        _psycopg_patched = True


def _env_count(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def make_engine(url: str) -> Engine:
    """An engine fit for a nameko service on eventlet."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # one connection: sqlite3 blocks the OS thread while it waits for a lock, which under
        # eventlet would stall every greenlet; a single pooled connection makes waiting cooperative
        engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60,
                                  connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql"):
        _make_psycopg_green()
        # every instance's pool counts against the server's max_connections (100 by default): a host running
        # many instances on one server sizes them down (TONGBAN_DB_POOL_SIZE, TONGBAN_DB_MAX_OVERFLOW)
        return sa.create_engine(url, pool_size=_env_count("TONGBAN_DB_POOL_SIZE", 5),
                                max_overflow=_env_count("TONGBAN_DB_MAX_OVERFLOW", 5), pool_pre_ping=True)
    return sa.create_engine(url)


def migrate(engine: Engine, versions_dir: Path) -> None:
    """Bring the instance's database to the newest schema (Alembic upgrade heads)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("version_locations", str(versions_dir))
    cfg.set_main_option("path_separator", "os")
    # Alembic's `context` is one module-wide proxy: instances starting at once in one process take turns
    with _MIGRATING, engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # replicas of one instance (other processes, other pods) share its database and start at once:
            # they take turns too, each waiting for the one before to commit (else two would create the
            # same tables and all but one fail at start). The lock ends with the transaction.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")


# a green lock, held across I/O: an OS lock would stop the one thread every instance runs on
_MIGRATING = eventlet.semaphore.Semaphore(1)
# PostgreSQL's advisory lock key for migrations (any fixed number; per database, as advisory locks are)
_MIGRATION_LOCK = 0x7467_6D69  # "tgmi"


# constraint names known in advance, so migrations can drop and alter them (SQLite batch mode needs it)
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> sa.MetaData:
    """A MetaData for one database's tables, with the naming convention."""
    return sa.MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    """The one declarative base of every service's models.

    Each service's database holds only its own tables, and `create_all`, Alembic's autogenerate
    (scripts/new_migration.py compares a service's migrations with `models.Base.metadata`) and the
    column checks read a service's tables from its metadata: one MetaData shared by all would make a
    service's next migration create the other services' tables. So each service's models.py derives
    one abstract class from this base with a MetaData of its own (`service_metadata()`) and maps its
    tables on that:

        class Base(shared.db.Base):
            __abstract__ = True
            metadata = service_metadata()
    """

    metadata = service_metadata()  # holds no table: a model mapped on this base directly is refused below
    type_annotation_map = {datetime: sa.DateTime(timezone=True)}  # timestamps are stored in UTC, with their zone

    def __init_subclass__(cls, **kwargs):
        if not cls.__dict__.get("__abstract__") and cls.metadata is Base.metadata:
            raise TypeError(f"{cls.__name__}: map tables on the service's own abstract base (see shared.db.Base), "
                            "so that its database holds only its own tables")
        super().__init_subclass__(**kwargs)


# --- the tables every service has: written only through shared.store -------------------------

plumbing_metadata = service_metadata()

outbox_table = sa.Table(
    "outbox", plumbing_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), nullable=False, unique=True),
    sa.Column("exchange", sa.String(200), nullable=False),
    sa.Column("routing_key", sa.String(255), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_outbox_unpublished", "published_at", "id"),
)

inbox_table = sa.Table(
    "inbox", plumbing_metadata,
    sa.Column("consumer", sa.String(200), primary_key=True),
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("message_type", sa.String(100), nullable=False),
    sa.Column("case_number", sa.String(64), nullable=True),
    sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
)


def create_plumbing_tables(op) -> None:
    """Called from each service's first migration: outbox and inbox, as defined above."""
    plumbing_metadata.create_all(op.get_bind())


# --- reference data (shared.reference): every catalogue and calendar record read from the stream ----
# Their own metadata, created by each reference-reading service's migration (`create_reference_tables`),
# not by the first migration: databases made before them get them through that migration too.

reference_metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

reference_records_table = sa.Table(
    "reference_records", reference_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("loaded_by", sa.String(200), nullable=False),
    sa.Column("stream_offset", sa.BigInteger, nullable=False),  # stream order: the active one is the last
    sa.UniqueConstraint("kind", "version", "sha256"),  # the same file loaded twice is one version
)

reference_cursor_table = sa.Table(
    "reference_cursor", reference_metadata,
    sa.Column("stream", sa.String(200), primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),  # where reading goes on after a restart
)

_CURSOR = "reference"


def create_reference_tables(op) -> None:
    reference_metadata.create_all(op.get_bind())


def drop_reference_tables(op) -> None:
    reference_metadata.drop_all(op.get_bind())


def load_reference(engine: Engine):
    """The stored records in stream order, and the offset to read on from (None: from the start)."""
    from shared.reference import Record

    t, c = reference_records_table, reference_cursor_table
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.stream_offset, t.c.id)).mappings().all()
        offset = conn.execute(sa.select(c.c.next_offset).where(c.c.stream == _CURSOR)).scalar()
    records = [Record(kind=r["kind"], version=r["version"], sha256=r["sha256"], text=r["text"],
                      loaded_at=r["loaded_at"], loaded_by=r["loaded_by"], offset=r["stream_offset"]) for r in rows]
    return records, offset


def dialect_insert(bind):
    """The INSERT construct of the bind's dialect, the one with ON CONFLICT (PostgreSQL and SQLite: the suite
    runs on these two). `bind`: an engine, a connection or a session."""
    name = (bind.get_bind() if hasattr(bind, "get_bind") else bind).dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the suite runs on these two
        raise RuntimeError(f"no INSERT … ON CONFLICT for {name}")
    return insert


def add_to_counters(bind, table: sa.Table, key: tuple[str, ...], value: str, rows: list[dict]) -> None:
    """Add each row's `value` to the counter row of its `key` columns, creating it first, in one statement
    (concurrent transactions add, never overwrite). PostgreSQL and SQLite share the upsert's syntax; the
    statement is text made once per table and number of rows, so SQLAlchemy caches its compiled form (a
    dialect's insert with ON CONFLICT has no cache key: it was compiled again for every message)."""
    for first in range(0, len(rows), 500):  # within SQLite's limit of bound parameters
        chunk = rows[first:first + 500]
        stmt = _counter_upsert(table, key, value, len(chunk))
        bind.execute(stmt, {f"{c}_{i}": row[c] for i, row in enumerate(chunk) for c in (*key, value)})


@functools.lru_cache(maxsize=512)
def _counter_upsert(table: sa.Table, key: tuple[str, ...], value: str, n: int):
    columns = (*key, value)
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join("(" + ", ".join(f":{c}_{i}" for c in columns) + ")" for i in range(n))
    sql = (f'INSERT INTO "{table.name}" ({names}) VALUES {values} '
           f'ON CONFLICT ({", ".join(chr(34) + c + chr(34) for c in key)}) '
           f'DO UPDATE SET "{value}" = "{table.name}"."{value}" + excluded."{value}"')
    return sa.text(sql).bindparams(*(sa.bindparam(f"{c}_{i}", type_=table.c[c].type)
                                     for i in range(n) for c in columns))


def store_reference(engine: Engine, record, offset: int) -> bool:
    """Keep a record (once per kind, version and sha256) and move the cursor past it, in one transaction."""
    t, c = reference_records_table, reference_cursor_table
    insert = dialect_insert(engine)
    with engine.begin() as conn:
        new = conn.execute(insert(t).values(
            kind=record.kind, version=record.version, sha256=record.sha256, text=record.text,
            loaded_at=record.loaded_at, loaded_by=record.loaded_by, stream_offset=offset,
        ).on_conflict_do_nothing()).rowcount == 1
        moved = insert(c).values(stream=_CURSOR, next_offset=offset + 1)
        conn.execute(moved.on_conflict_do_update(index_elements=[c.c.stream],
                                                 set_={"next_offset": sa.func.max(c.c.next_offset, offset + 1)}
                                                 if engine.dialect.name == "sqlite" else
                                                 {"next_offset": sa.func.greatest(c.c.next_offset, offset + 1)}))
    return new
