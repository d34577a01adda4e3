"""Retention: a service's timer purges published outbox rows and inbox rows past the retention period,
in batches, and never an unsent row; on SQLite and PostgreSQL."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from shared.config import Settings
from shared.db import inbox_table, make_engine, outbox_table
from tests.support import wait_for

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


def _outbox(label: str, published_at, created_at, next_attempt_at=None) -> dict:
    return {"message_id": f"{label}-{uuid.uuid4().hex[:12]}", "exchange": "nowhere", "routing_key": "retention.test",
            "body": "{}", "created_at": created_at, "published_at": published_at, "attempts": 0,
            "next_attempt_at": next_attempt_at}


def _inbox(label: str, handled_at) -> dict:
    return {"consumer": "retention-test", "message_id": f"{label}-{uuid.uuid4().hex[:12]}",
            "message_type": "case.accepted", "case_number": None, "handled_at": handled_at}


def _left(engine) -> tuple[list[str], list[str]]:
    with engine.connect() as conn:
        out = [r[0].split("-")[0] for r in conn.execute(sa.select(outbox_table.c.message_id)
                                                        .where(outbox_table.c.routing_key == "retention.test"))]
        inb = [r[0].split("-")[0] for r in conn.execute(sa.select(inbox_table.c.message_id)
                                                        .where(inbox_table.c.consumer == "retention-test"))]
    return sorted(out), sorted(inb)


def test_a_timer_purges_old_published_and_handled_rows_and_keeps_unsent_ones(any_city):
    city = any_city
    city.start("agent", retention_interval=0.3, retention_batch=2)  # batches of two: several transactions
    engine = make_engine(city.settings("agent").db_url)
    try:
        with engine.begin() as conn:
            conn.execute(outbox_table.insert(), [
                *[_outbox("oldsent", NOW - 8 * DAY, NOW - 8 * DAY) for _ in range(5)],
                _outbox("newsent", NOW - 6 * DAY, NOW - 6 * DAY),
                # never sent, whatever its age (leased far ahead, so the relay leaves it alone here)
                _outbox("unsent", None, NOW - 30 * DAY, next_attempt_at=NOW + 365 * DAY),
            ])
            conn.execute(inbox_table.insert(), [*[_inbox("oldseen", NOW - 8 * DAY) for _ in range(3)],
                                                _inbox("newseen", NOW - 6 * DAY)])
        wait_for(lambda: _left(engine) == (["newsent", "unsent"], ["newseen"]), timeout=30,
                 what="old published and handled rows purged")
        metrics = city.call("GET", "agent", "/metrics").text
        purged = {line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith("tongban_retention_purged_total{")}
        assert purged['table="outbox"'] >= 5 and purged['table="inbox"'] >= 3, purged
    finally:
        engine.dispose()


def test_inbox_rows_outlive_every_retry_window():
    """However short the retention, a handled message's inbox row stays while the message may come again."""
    s = Settings(service="agent", instance="agent", outbox_retention_days=0.001)
    assert s.inbox_retention_seconds > sum(s.retry_delays) + s.delivery_limit * s.relay_lease
    slow = s.with_(retry_delays=(60.0, 86400.0 * 3))
    assert slow.inbox_retention_seconds > 3 * 86400
    assert Settings(service="agent", instance="agent").inbox_retention_seconds == 7 * 86400
