"""Declaring a deployment's queues on the real broker: pipelined, yet every refusal still surfaces; and
instances started at once."""
import uuid

import amqp
import pytest
import sqlalchemy.exc
from kombu import Connection, Exchange, Producer

from shared import registry
from shared.bus import Topology
from tests.support import TOWN_A, TOWN_B


@pytest.fixture
def topology(amqp_url):
    t = Topology(f"decl{uuid.uuid4().hex[:8]}")
    yield t
    registry.forget_declarations(t.prefix)
    with Connection(amqp_url) as conn:
        ch = conn.default_channel
        for spec in registry.deployment_queues([TOWN_A, TOWN_B], ["minzheng"]):
            ch.queue_delete(spec.name(t.prefix))
            ch.queue_delete(spec.name(t.prefix) + ".dlq")
        for seconds in t.retry_delays:
            ch.queue_delete(t.retry_queue("intake", seconds).name)
        ch.queue_delete(t.redelivered_queue.name)
        for exchange in t.exchanges:
            ch.exchange_delete(exchange.name)


def _depth(amqp_url, name: str) -> int:
    with Connection(amqp_url) as conn:
        return conn.default_channel.queue_declare(name, passive=True).message_count


def test_the_registry_is_declared_with_its_bindings_and_dead_letter_queues(amqp_url, topology):
    names = registry.declare_deployment(amqp_url, topology, [TOWN_A, TOWN_B], ["minzheng"], retry_kinds=["intake"])
    arrivals = f"{topology.prefix}.intake-{TOWN_B}.arrivals"
    assert arrivals in names
    with Connection(amqp_url) as conn:
        producer = Producer(conn.default_channel, exchange=Exchange(topology.events.name, type="topic"))
        # both kinds of arrival reach the one queue of the town they are for, and no other town's
        producer.publish({"x": 1}, routing_key=f"station.submitted.{TOWN_B}")
        producer.publish({"x": 2}, routing_key=f"case.transfer.{TOWN_B}")
        # a retried message comes back to the queue it failed in
        producer.publish({"x": 3}, routing_key=f"intake.1000.{arrivals}",
                         exchange=topology.requeue.name)
    assert _depth(amqp_url, arrivals) == 3
    assert _depth(amqp_url, f"{topology.prefix}.intake-{TOWN_A}.arrivals") == 0
    assert _depth(amqp_url, arrivals + ".dlq") == 0
    assert _depth(amqp_url, topology.retry_queue("intake", topology.retry_delays[0]).name) == 0


def test_a_refused_declaration_is_raised_not_lost_in_the_pipeline(amqp_url, topology):
    # a queue of the registry already exists with other arguments: the broker refuses the declaration
    clash = f"{topology.prefix}.approval-minzheng.work"
    with Connection(amqp_url) as conn:
        conn.default_channel.queue_declare(clash, durable=True, arguments={"x-queue-type": "classic"})
    with pytest.raises(amqp.exceptions.PreconditionFailed, match="approval-minzheng.work"):
        registry.declare_deployment(amqp_url, topology, [TOWN_A, TOWN_B], ["minzheng"])
    # nothing is remembered as declared: a second try (after the operator's fix) declares it all
    with Connection(amqp_url) as conn:
        conn.default_channel.queue_delete(clash)
    registry.declare_deployment(amqp_url, topology, [TOWN_A, TOWN_B], ["minzheng"])
    assert _depth(amqp_url, clash) == 0


def test_instances_start_at_once_and_one_that_fails_leaves_the_others_running(city):
    city.ensure_users()
    good = [city.settings(f"intake-{TOWN_A}"), city.settings("approval-minzheng"), city.settings("notify")]
    broken = city.settings("agent").with_(database_url="postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(sqlalchemy.exc.OperationalError):  # the agent's database cannot be reached
        city.cluster.start_all([good[0], broken, good[1], good[2]])
    assert [r.settings.instance for r in city.cluster.running] == [s.instance for s in good]
    for s in good:
        assert city.call("GET", s.instance, "/health").status_code == 200
