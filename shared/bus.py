"""The bus on RabbitMQ: topology, the consumer entrypoint, and the publisher the outbox relay uses.

Every consuming queue is a quorum queue with a delivery limit and a dead-letter exchange; its
dead-letter queue is `<queue>.dlq`. A handler that raises is requeued by the broker and
dead-lettered after the limit; a body that cannot be read is dead-lettered at once. Nothing is
acked and dropped.
"""
from __future__ import annotations

from functools import partial

from kombu import Connection, Exchange, Queue, binding
from kombu.exceptions import OperationalError
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.messaging import Consumer, QueueConsumer

from shared.contracts import MalformedMessage
from shared.logging import get_logger

log = get_logger(__name__)


class Topology:
    """Names and declarations of one deployment's exchanges and queues (by bus prefix)."""

    def __init__(self, prefix: str, delivery_limit: int = 5):
        self.prefix = prefix
        self.delivery_limit = delivery_limit
        self.events = Exchange(f"{prefix}.events", type="topic", durable=True)
        # work for a department travels apart from the facts everyone listens to, so that with
        # `mandatory` a department nobody serves is an error, not a message only evaluation saw
        self.work = Exchange(f"{prefix}.work", type="topic", durable=True)
        self.dead_letters = Exchange(f"{prefix}.dlx", type="topic", durable=True)

    def queue_name(self, instance: str, purpose: str) -> str:
        return f"{self.prefix}.{instance}.{purpose}"

    def work_queue(self, instance: str, purpose: str, routing_keys: list[str],
                   exchange: Exchange | None = None) -> Queue:
        name = self.queue_name(instance, purpose)
        return Queue(
            name,
            bindings=[binding(exchange or self.events, routing_key=rk) for rk in routing_keys],
            durable=True,
            queue_arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": self.dead_letters.name,
                # the dead letter keeps the name of the queue it failed in, so replay knows where to go
                "x-dead-letter-routing-key": name,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )

    def queue_for(self, spec) -> Queue:
        """The kombu queue of a registry entry (`shared.registry.QueueSpec`)."""
        return self.work_queue(spec.instance, spec.purpose, list(spec.routing_keys),
                               exchange=self.work if spec.exchange == "work" else self.events)

    def dead_letter_queue(self, queue_name: str) -> Queue:
        return Queue(f"{queue_name}.dlq", exchange=self.dead_letters, routing_key=queue_name,
                     durable=True, queue_arguments={"x-queue-type": "quorum"})

    def declare(self, connection: Connection, queues: list[Queue]) -> None:
        """Declare exchanges, work queues with their bindings, and dead-letter queues (idempotent)."""
        channel = connection.default_channel
        for exchange in (self.events, self.work, self.dead_letters):
            exchange(channel).declare()
        for queue in queues:
            queue(channel).declare()
            self.dead_letter_queue(queue.name)(channel).declare()


# --- consuming ----------------------------------------------------------------------------------

class SafeQueueConsumer(QueueConsumer):
    """nameko's queue consumer, except that a body kombu cannot decode is dead-lettered.

    Without an on_decode_error callback kombu raises inside the consumer loop, which would
    stop the service's consumer for every later message.
    """

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            consumer = consumer_cls(
                queues=[provider.queue],
                callbacks=[partial(self.handle_message, provider)],
                accept=self.accept,
                on_decode_error=partial(self._dead_letter_undecodable, provider),
            )
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def _dead_letter_undecodable(self, provider, message, exc):
        log.warning("message.undecodable", queue=provider.queue.name,
                    content_type=message.content_type, error=str(exc))
        for dependency in self.container.dependencies:
            hook = getattr(dependency, "on_malformed", None)
            if hook:
                hook(provider.queue.name)
        message.reject(requeue=False)


class WorkConsumer(Consumer):
    """@consume with broker-side retries: requeue on error, dead-letter malformed bodies at once."""

    queue_consumer = SafeQueueConsumer()

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
        elif issubclass(exc_info[0], MalformedMessage):
            if message.channel.connection:
                message.reject(requeue=False)
        else:
            self.queue_consumer.requeue_message(message)


def consumer(queue: Queue):
    """Decorate `handler(self, body)` as a nameko entrypoint on `queue`."""
    return WorkConsumer.decorator(queue, requeue_on_error=True)


# --- publishing -----------------------------------------------------------------------------------

class ConfirmedPublisher:
    """Publishes with publisher confirms and mandatory routing: unroutable is an error, not silence."""

    def __init__(self, amqp_url: str, topology: Topology):
        self.topology = topology
        self._publisher = Publisher(amqp_url, use_confirms=True, mandatory=True, serializer="json")

    def publish(self, body: dict, routing_key: str, message_id: str, exchange: Exchange | None = None) -> None:
        try:
            self._publisher.publish(
                body, exchange=exchange if exchange is not None else self.topology.events,
                routing_key=routing_key, message_id=message_id,
                retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        except UndeliverableMessage:
            raise Unroutable(routing_key) from None


class Unroutable(Exception):
    """No queue is bound for this routing key (the broker returned the message)."""


def broker_reachable(amqp_url: str, timeout: float = 3.0) -> tuple[bool, str]:
    try:
        with Connection(amqp_url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return True, "ok"
    except (OperationalError, OSError) as exc:
        return False, str(exc)
