"""Settling a message on a connection that died under it (a broker restart) is not an error that kills the
service's container: the broker takes the message back and delivers it again (real RabbitMQ)."""
from __future__ import annotations

import socket
import uuid

import pytest
from kombu import Connection, Exchange, Queue
from nameko.messaging import QueueConsumer

from shared.bus import SafeQueueConsumer


@pytest.mark.parametrize("settle", ["ack_message", "requeue_message"])
def test_a_settle_on_a_dead_connection_is_logged_and_the_message_comes_again(amqp_url, settle):
    name = f"t{uuid.uuid4().hex[:10]}.settle"
    queue = Queue(name, Exchange(""), routing_key=name, durable=False, auto_delete=False)
    try:
        with Connection(amqp_url) as conn:
            bound = queue(conn.default_channel)
            bound.declare()
            conn.Producer().publish(b"case", exchange="", routing_key=name)
            first = bound.get(no_ack=False)
            assert first is not None
            conn.connection.sock.shutdown(socket.SHUT_RDWR)  # the connection dies under the worker
            with pytest.raises(OSError):  # what nameko's own guard lets through (and its container dies of)
                getattr(QueueConsumer(), settle)(first)
            getattr(SafeQueueConsumer(), settle)(first)  # ours: logged, not raised
        with Connection(amqp_url) as conn:
            again = queue(conn.default_channel).get(no_ack=True)
            assert again is not None and again.body == b"case" and again.delivery_info["redelivered"]
    finally:
        with Connection(amqp_url) as conn:
            conn.default_channel.queue_delete(name)
