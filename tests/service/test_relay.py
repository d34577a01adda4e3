"""The outbox relay on the real broker, SQLite and PostgreSQL: windows of publishes with confirms
outstanding, every row exactly once, unroutable rows kept, relays sharing a database never overlap."""
from __future__ import annotations

import json
import socket
import uuid
from datetime import timedelta
from pathlib import Path

import amqp
import eventlet
import pytest
import sqlalchemy as sa

from shared.bus import Topology
from shared.db import outbox_table
from shared.metrics import ServiceMetrics
from shared.relay import OutboxRelay, amqp_connection
from shared.store import Store, utcnow

VERSIONS = Path(__file__).resolve().parents[2] / "services" / "evaluation" / "migrations" / "versions"
RK = "relaytest.sent.320583101"


class Bus:
    """A throw-away events exchange with a sink queue we bind ourselves, read with basic.get."""

    def __init__(self, amqp_url: str):
        self.amqp_url = amqp_url
        self.topology = Topology(f"r{uuid.uuid4().hex[:10]}")
        self.exchange = self.topology.events.name
        self.conn = amqp_connection(amqp_url)
        self.conn.connect()
        self.ch = self.conn.channel()
        self.ch.exchange_declare(self.exchange, "topic", durable=True, auto_delete=False)
        self.queues: list[str] = []
        self.sink = self.bind("relaytest.#")

    def bind(self, routing_key: str) -> str:
        name = f"{self.exchange}.sink{len(self.queues)}"
        self.ch.queue_declare(name, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"})
        self.ch.queue_bind(name, self.exchange, routing_key)
        self.queues.append(name)
        return name

    def drain(self, queue: str | None = None) -> list:
        got = []
        while (msg := self.ch.basic_get(queue or self.sink, no_ack=True)) is not None:
            got.append(msg)
        return got

    def close(self):
        for name in self.queues:
            self.ch.queue_delete(name)
        self.ch.exchange_delete(self.exchange)
        self.conn.close()


@pytest.fixture
def bus(amqp_url):
    b = Bus(amqp_url)
    yield b
    b.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path, postgres):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'relay.db'}"
    return postgres.new("relay")


def make_store(url: str, bus: Bus) -> Store:
    store = Store(url, VERSIONS, bus.exchange)
    store.migrate()
    return store


def add_rows(store: Store, n: int, routing_key: str = RK, start: int = 0) -> list[str]:
    """Outbox rows as a transaction writes them (JSON text, one message id each)."""
    ids = []
    with store.transaction() as tx:
        for i in range(start, start + n):
            message_id = uuid.uuid4().hex
            body = json.dumps({"message_id": message_id, "case_number": f"C-{i}", "n": i, "text": "受理"},
                              ensure_ascii=False)
            tx.session.execute(outbox_table.insert().values(
                message_id=message_id, exchange=store.exchange, routing_key=routing_key, body=body,
                created_at=utcnow(), attempts=0))
            ids.append(message_id)
    return ids


def outbox(store: Store) -> dict[str, sa.Row]:
    with store.engine.connect() as conn:
        return {r.message_id: r for r in conn.execute(sa.select(outbox_table))}


def relay_until_empty(relay: OutboxRelay, rounds: int = 100) -> int:
    sent = 0
    for _ in range(rounds):
        n = relay.relay_once()
        if not n and not relay.store.due_outbox(1):
            return sent
        sent += n
    raise AssertionError("the relay did not empty the outbox")


def sample(metrics: ServiceMetrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_few_hundred_rows_are_published_once_in_order_and_marked(db_url, bus, amqp_url):
    store = make_store(db_url, bus)
    metrics = ServiceMetrics("relaytest")
    relay = OutboxRelay(store, amqp_url, metrics, window=120)
    try:
        ids = add_rows(store, 300)
        assert relay_until_empty(relay) == 300
        got = bus.drain()
        assert [m.properties["message_id"] for m in got] == ids, "each once, in the order written"
        rows = outbox(store)
        for m in got:
            props = m.properties
            assert props["content_type"] == "application/json" and props["content_encoding"] == "utf-8"
            assert props["delivery_mode"] == 2
            assert m.body == rows[props["message_id"]].body, "the stored JSON text, as it is"
        assert all(r.published_at is not None and r.attempts == 0 for r in rows.values())
        assert store.outbox_health().backlog == 0
        assert sample(metrics, "tongban_outbox_published_total") == 300
        assert relay.relay_once() == 0 and bus.drain() == [], "nothing twice"
    finally:
        relay.close()
        store.dispose()


def test_an_unroutable_row_is_kept_backed_off_counted_and_not_dropped(db_url, bus, amqp_url):
    store = make_store(db_url, bus)
    metrics = ServiceMetrics("relaytest")
    relay = OutboxRelay(store, amqp_url, metrics)
    try:
        before = add_rows(store, 2)
        (lost,) = add_rows(store, 1, routing_key="nobody.listens.here")
        after = add_rows(store, 2)
        assert relay.relay_once() == 4
        assert [m.properties["message_id"] for m in bus.drain()] == before + after
        row = outbox(store)[lost]
        assert row.published_at is None, "kept"
        assert row.attempts == 1 and row.last_error == "unroutable: nobody.listens.here"
        next_try = row.next_attempt_at if row.next_attempt_at.tzinfo else row.next_attempt_at.replace(
            tzinfo=utcnow().tzinfo)
        assert next_try > utcnow(), "backed off"
        assert sample(metrics, "tongban_outbox_publish_failures_total", reason="unroutable") == 1
        assert store.outbox_health().unroutable == 1
        assert relay.relay_once() == 0, "not tried again before its backoff ends"

        # someone binds a queue for it; once its wait is over it leaves like any other
        queue = bus.bind("nobody.#")
        with store.engine.begin() as conn:
            conn.execute(outbox_table.update().values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        assert relay.relay_once() == 1
        assert [m.properties["message_id"] for m in bus.drain(queue)] == [lost]
        assert outbox(store)[lost].published_at is not None
        assert store.outbox_health().unroutable == 0
    finally:
        relay.close()
        store.dispose()


def test_claimed_rows_are_leased_to_one_relay(db_url, bus):
    store = make_store(db_url, bus)
    try:
        add_rows(store, 25)
        first, second, third = store.claim_outbox(10), store.claim_outbox(10), store.claim_outbox(10)
        assert [len(first), len(second), len(third)] == [10, 10, 5]
        assert len({r.id for r in first + second + third}) == 25
        assert store.claim_outbox(10) == [], "everything is leased"
        assert store.outbox_health().backlog == 25, "leased is not published"
    finally:
        store.dispose()


def test_two_relays_on_one_postgres_database_publish_every_row_exactly_once(postgres, bus, amqp_url):
    url = postgres.new("relays")
    stores = [make_store(url, bus), make_store(url, bus)]
    relays = [OutboxRelay(s, amqp_url, ServiceMetrics(f"relay{i}"), window=40, name=f"relay{i}")
              for i, s in enumerate(stores)]
    try:
        ids = add_rows(stores[0], 1000)
        sent = [0, 0]

        def run(i):
            idle = 0
            while idle < 3:  # both relays keep claiming until neither finds anything
                n = relays[i].relay_once()
                sent[i] += n
                idle = 0 if n else idle + 1
                eventlet.sleep(0)

        pool = eventlet.GreenPool()
        for i in (0, 1):
            pool.spawn(run, i)
        pool.waitall()
        got = [m.properties["message_id"] for m in bus.drain()]
        assert sorted(got) == sorted(ids), "every row reached the queue exactly once"
        assert sum(sent) == 1000 and all(sent), f"both relays took part: {sent}"
        assert all(r.published_at is not None for r in outbox(stores[0]).values())
    finally:
        for r in relays:
            r.close()
        for s in stores:
            s.dispose()


def test_a_lost_broker_connection_loses_nothing_and_the_next_round_reconnects(bus, amqp_url, tmp_path):
    store = make_store(f"sqlite:///{tmp_path / 'relay.db'}", bus)
    metrics = ServiceMetrics("relaytest")
    relay = OutboxRelay(store, amqp_url, metrics)
    try:
        first = add_rows(store, 5)
        assert relay.relay_once() == 5
        relay._conn.transport.sock.shutdown(socket.SHUT_RDWR)  # the connection dies under the relay
        second = add_rows(store, 5, start=5)
        assert relay.relay_once() == 0
        assert not relay.connected, "the broken connection is dropped"
        rows = outbox(store)
        assert all(rows[i].published_at is None and rows[i].attempts == 1 for i in second)
        assert sample(metrics, "tongban_outbox_publish_failures_total", reason="broker") == 5
        with store.engine.begin() as conn:  # skip the backoff
            conn.execute(outbox_table.update().values(next_attempt_at=None))
        assert relay.relay_once() == 5, "a new connection, the same rows"
        assert [m.properties["message_id"] for m in bus.drain()] == first + second
    finally:
        relay.close()
        store.dispose()


def test_no_broker_no_claim(bus, tmp_path):
    store = make_store(f"sqlite:///{tmp_path / 'relay.db'}", bus)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    metrics = ServiceMetrics("relaytest")
    relay = OutboxRelay(store, f"amqp://guest:guest@127.0.0.1:{port}//", metrics, connect_timeout=1)
    try:
        add_rows(store, 3)
        assert relay.relay_once() == 0
        assert all(r.attempts == 0 and r.next_attempt_at is None for r in outbox(store).values()), \
            "rows are claimed only with a broker to publish them to"
        assert sample(metrics, "tongban_outbox_publish_failures_total", reason="broker") == 1
        assert relay.relay_once() == 0  # within the pause: no new attempt
        assert sample(metrics, "tongban_outbox_publish_failures_total", reason="broker") == 1
    finally:
        relay.close()
        store.dispose()


def test_the_relay_holds_no_transaction_while_it_waits_for_confirms(bus, amqp_url, tmp_path, monkeypatch):
    """SQLite has one pooled connection per instance: waiting for the broker with it would stall every worker."""
    store = make_store(f"sqlite:///{tmp_path / 'relay.db'}", bus)
    relay = OutboxRelay(store, amqp_url)
    seen = []
    real_drain = amqp.Connection.drain_events

    def drain(conn, timeout=None):
        seen.append(store.engine.pool.checkedout())
        return real_drain(conn, timeout=timeout)

    monkeypatch.setattr(amqp.Connection, "drain_events", drain)
    try:
        add_rows(store, 50)
        assert relay.relay_once() == 50
        assert seen and set(seen) == {0}
    finally:
        relay.close()
        store.dispose()


def test_a_refused_publish_waits_alone_and_the_rest_of_its_window_leaves(bus, amqp_url, tmp_path):
    """With topic permissions the broker closes the channel over a routing key the user may not use,
    without saying which publish it was: the relay finds it by trying the window's rows one by one."""
    import requests
    from kombu.utils.url import parse_url

    parts = parse_url(amqp_url)
    api = f"http://{parts['hostname']}:15672/api"
    admin = requests.Session()
    admin.auth = (parts["userid"], parts["password"])
    user = f"{bus.exchange}-relay"
    assert admin.put(f"{api}/users/{user}", json={"password": "pw", "tags": ""}).ok
    try:
        assert admin.put(f"{api}/permissions/%2F/{user}",
                         json={"configure": "^$", "write": ".*", "read": "^$"}).ok
        assert admin.put(f"{api}/topic-permissions/%2F/{user}",
                         json={"exchange": bus.exchange, "write": r"^relaytest\.", "read": ".*"}).ok
        store = make_store(f"sqlite:///{tmp_path / 'relay.db'}", bus)
        metrics = ServiceMetrics("relaytest")
        relay = OutboxRelay(store, f"amqp://{user}:pw@{parts['hostname']}:{parts['port']}//", metrics)
        try:
            ids = add_rows(store, 3)
            (refused,) = add_rows(store, 1, routing_key="forbidden.key")
            ids += add_rows(store, 3)
            for _ in range(20):
                relay.relay_once()
                if not relay.more_due:
                    break
            rows = outbox(store)
            assert all(rows[i].published_at is not None for i in ids), "the others left"
            assert rows[refused].published_at is None and rows[refused].attempts == 1
            assert rows[refused].last_error.startswith("refused: AccessRefused")
            assert sample(metrics, "tongban_outbox_publish_failures_total", reason="refused") == 1
            got = [m.properties["message_id"] for m in bus.drain()]
            assert set(got) == set(ids), "each arrived (those before the refused one perhaps twice)"
        finally:
            relay.close()
            store.dispose()
    finally:
        admin.delete(f"{api}/users/{user}")
