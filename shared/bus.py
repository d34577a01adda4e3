"""The bus on RabbitMQ: topology, the consumer entrypoint, and the publisher the outbox relay uses.

Every consuming queue is a quorum queue with a delivery limit and a dead-letter exchange; its
dead-letter queue is `<queue>.dlq`. A handler that raises is requeued by the broker and
dead-lettered after the limit; a body that cannot be read is dead-lettered at once. Nothing is
acked and dropped.
"""
from __future__ import annotations

import re
from functools import partial

from amqp.exceptions import ChannelError, RecoverableConnectionError
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu import Connection, Exchange, Queue, binding
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer, QueueConsumer

from shared.config import DEFAULT_RETRY_DELAYS
from shared.contracts import DeadLetterNow, MalformedMessage
from shared.logging import get_logger
from shared.pii import mask_text

log = get_logger(__name__)


REASON = "tongban-reason"  # why a message was dead-lettered (shown by `tongban dlq list`)
FAILED_QUEUE = "tongban-failed-queue"
ATTEMPT = "tongban-attempt"  # how many times a handler failed on this message so far


class Topology:
    """Names and declarations of one deployment's exchanges and queues (by bus prefix).

    Retries wait in RabbitMQ, never in a worker: a failed message is published, with its attempt
    count, to the retry exchange under `<kind>.<delay ms>.<queue>`; the retry queue of that kind and
    delay holds it for its TTL and then dead-letters it to the requeue exchange, where the queue it
    failed in is bound with `*.*.<queue>`. A retry queue serves one service kind (a queue's TTL expires
    from its head, so all its messages must wait equally long; and a kind reads only its own queues).
    What waiting cannot fix goes to `<queue>.dlq` at once, with the reason in a header.

    A consuming queue carries no dead-letter exchange of its own: RabbitMQ lets only a user who may
    also read a queue declare one with a dead-letter exchange, and every service declares every queue.
    The deployment's policy (`policy()`, set by `tongban bus declare`) adds the delivery limit and the
    dead-letter exchange: a message whose consumer died handling it N times goes to the deployment's
    `redelivered` dead-letter queue. Without the policy a message is never dropped, only redelivered.
    """

    def __init__(self, prefix: str, delivery_limit: int = 5, retry_delays=DEFAULT_RETRY_DELAYS):
        self.prefix = prefix
        self.delivery_limit = delivery_limit
        self.retry_delays = tuple(retry_delays)
        self.events = Exchange(f"{prefix}.events", type="topic", durable=True)
        # work for a department travels apart from the facts everyone listens to, so that with
        # `mandatory` a department nobody serves is an error, not a message only evaluation saw
        self.work = Exchange(f"{prefix}.work", type="topic", durable=True)
        self.dead_letters = Exchange(f"{prefix}.dlx", type="topic", durable=True)
        self.retry = Exchange(f"{prefix}.retry", type="topic", durable=True)
        self.requeue = Exchange(f"{prefix}.requeue", type="topic", durable=True)

    @classmethod
    def of(cls, settings) -> Topology:
        return cls(settings.bus_prefix, settings.delivery_limit, settings.retry_delays)

    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        return (self.events, self.work, self.dead_letters, self.retry, self.requeue)

    def queue_name(self, instance: str, purpose: str) -> str:
        return f"{self.prefix}.{instance}.{purpose}"

    def work_queue(self, instance: str, purpose: str, routing_keys: list[str],
                   exchange: Exchange | None = None) -> Queue:
        name = self.queue_name(instance, purpose)
        return Queue(
            name,
            bindings=[binding(exchange or self.events, routing_key=rk) for rk in routing_keys]
            + [binding(self.requeue, routing_key=f"*.*.{name}")],  # back from a retry queue, or replayed
            durable=True,
            queue_arguments={"x-queue-type": "quorum", "x-overflow": "reject-publish"},
        )

    def queue_for(self, spec) -> Queue:
        """The kombu queue of a registry entry (`shared.registry.QueueSpec`)."""
        return self.work_queue(spec.instance, spec.purpose, list(spec.routing_keys),
                               exchange=self.work if spec.exchange == "work" else self.events)

    def dead_letter_queue(self, queue_name: str) -> Queue:
        return Queue(f"{queue_name}.dlq", exchange=self.dead_letters, routing_key=queue_name,
                     durable=True, queue_arguments={"x-queue-type": "quorum"})

    @property
    def redelivered_queue(self) -> Queue:
        """Where the broker puts a message whose consumer died handling it too often (the policy's limit)."""
        return Queue(f"{self.prefix}.broker.redelivered.dlq", exchange=self.dead_letters, routing_key="redelivered",
                     durable=True, queue_arguments={"x-queue-type": "quorum"})

    def policy(self) -> dict:
        """The policy for every consuming queue (not retry or dead-letter queues): delivery limit, then
        the dead-letter exchange, at least once."""
        p = re.escape(self.prefix)
        return {"pattern": rf"^{p}\.(?!retry-)[^.]+\.[^.]+$", "apply-to": "queues", "priority": 1,
                "definition": {"delivery-limit": self.delivery_limit,
                               "dead-letter-exchange": self.dead_letters.name,
                               "dead-letter-routing-key": "redelivered",
                               "dead-letter-strategy": "at-least-once"}}

    @staticmethod
    def delay_ms(seconds: float) -> int:
        return max(1, int(round(seconds * 1000)))

    def retry_queue(self, kind: str, seconds: float) -> Queue:
        """Where a `kind`'s messages wait `seconds` before going back to the queue they failed in."""
        ms = self.delay_ms(seconds)
        return Queue(f"{self.prefix}.retry-{kind}.{ms}ms", exchange=self.retry, routing_key=f"{kind}.{ms}.#",
                     durable=True, queue_arguments={
                         "x-queue-type": "quorum",
                         "x-message-ttl": ms,
                         "x-dead-letter-exchange": self.requeue.name,
                         "x-dead-letter-strategy": "at-least-once",
                         "x-overflow": "reject-publish",
                     })

    def retry_routing_key(self, kind: str, attempt: int, queue_name: str) -> str:
        """The key that parks a message for the `attempt`-th wait (0-based) before it returns to its queue."""
        return f"{kind}.{self.delay_ms(self.retry_delays[attempt])}.{queue_name}"

    def declare(self, connection: Connection, queues: list[Queue], retry_kinds=()) -> None:
        """Declare exchanges, queues with their bindings and dead-letter queues, and the retry queues of
        `retry_kinds` (idempotent).

        Every instance declares the whole registry at start (hundreds of queues in a city), so the
        exchanges are declared once and the queues and bindings are pipelined (`nowait`); one
        synchronous call at the end surfaces any refusal, which the broker reports by closing the
        channel."""
        channel = connection.channel()
        try:
            for exchange in self.exchanges:
                exchange(channel).declare()
            pending = [self.retry_queue(kind, seconds) for kind in retry_kinds for seconds in self.retry_delays]
            pending.append(self.redelivered_queue)
            for queue in queues:
                pending += [queue, self.dead_letter_queue(queue.name)]
            for queue in pending:
                _declare_without_exchanges(channel, queue)
            # a synchronous round trip: an error in any pipelined declaration is raised here
            channel.exchange_declare(self.events.name, self.events.type, passive=True)
        finally:
            channel.close()


def _declare_without_exchanges(channel, queue: Queue) -> None:
    channel.queue_declare(queue.name, durable=queue.durable, exclusive=queue.exclusive,
                          auto_delete=queue.auto_delete, arguments=queue.queue_arguments, nowait=True)
    if queue.exchange is not None and queue.exchange.name:
        channel.queue_bind(queue.name, queue.exchange.name, queue.routing_key, nowait=True)
    for b in queue.bindings:
        channel.queue_bind(queue.name, b.exchange.name, b.routing_key, arguments=b.arguments, nowait=True)


# --- consuming ----------------------------------------------------------------------------------

class Settler:
    """What becomes of a message its handler could not take: wait and try again, or a dead letter.

    Both are a confirmed publish made before the original is acked, so a crash in between
    duplicates (consumers are idempotent) and never loses.
    """

    def __init__(self, amqp_url: str, topology: Topology, kind: str):
        self.topology = topology
        self.kind = kind
        self._publisher = Publisher(amqp_url, use_confirms=True, mandatory=True, serializer=None,
                                    retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2,
                                                              "interval_step": 0.5})

    def _republish(self, message, exchange: Exchange, routing_key: str, headers: dict) -> None:
        kept = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
        props = message.properties or {}
        try:
            self._publisher.publish(
                message.body, exchange=exchange, routing_key=routing_key, headers={**kept, **headers},
                content_type=message.content_type or "application/octet-stream",
                content_encoding=message.content_encoding or "binary",
                message_id=props.get("message_id"))
        except UndeliverableMessage:
            raise Unroutable(routing_key) from None

    def retry_later(self, queue_name: str, message, error: str) -> str:
        """Park the message for its next wait; 'dead' once every wait was spent."""
        attempt = _attempts(message)
        if attempt >= len(self.topology.retry_delays):
            self.dead_letter(queue_name, message, f"failed {attempt + 1} times; last error: {error}")
            return "dead"
        self._republish(message, self.topology.retry, self.topology.retry_routing_key(self.kind, attempt, queue_name),
                        {ATTEMPT: attempt + 1, "tongban-last-error": error[:500]})
        return "retry"

    def dead_letter(self, queue_name: str, message, reason: str) -> None:
        self._republish(message, self.topology.dead_letters, queue_name,
                        {REASON: reason[:1000], FAILED_QUEUE: queue_name, ATTEMPT: _attempts(message)})


def _attempts(message) -> int:
    try:
        return int((message.headers or {}).get(ATTEMPT, 0))
    except (TypeError, ValueError):
        return 0


def _error_text(exc: BaseException) -> str:
    """What went wrong, for a header an operator reads: ID and phone numbers masked like in the logs."""
    reason = getattr(exc, "reason", None)
    return mask_text(f"{type(exc).__name__}: {reason or exc}")


class SafeQueueConsumer(QueueConsumer):
    """nameko's queue consumer, except that a body kombu cannot decode is dead-lettered.

    Without an on_decode_error callback kombu raises inside the consumer loop, which would
    stop the service's consumer for every later message.
    """

    # kombu's consume loop notices a stop only between waits for the broker, each 1 s by default: a service
    # stopped (a rolling update, a test's teardown) waited out up to two of them. A wait of 0.1 s costs a
    # wake-up per tenth of a second and nothing else.
    def consume(self, limit=None, timeout=None, safety_interval=0.1, **kwargs):
        return super().consume(limit=limit, timeout=timeout, safety_interval=safety_interval, **kwargs)

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

    # Settling on a connection that just died (a broker restart) raises a socket error, which nameko's own
    # guard (AMQP's ConnectionError only) lets through: the worker's thread dies with it and takes the whole
    # service container down, which then consumes nothing more. The broker takes an unsettled message back
    # when its connection goes and delivers it again; the inbox recognises it.
    _LOST_CONNECTION = (OSError, AmqpConnectionError, RecoverableConnectionError)

    def ack_message(self, message):
        try:
            super().ack_message(message)
        except self._LOST_CONNECTION as exc:
            log.warning("message.settle_lost", settle="ack", error=str(exc))

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except self._LOST_CONNECTION as exc:
            log.warning("message.settle_lost", settle="requeue", error=str(exc))

    def _dead_letter_undecodable(self, provider, message, exc):
        log.warning("message.undecodable", queue=provider.queue.name,
                    content_type=message.content_type, error=str(exc))
        for dependency in self.container.dependencies:
            hook = getattr(dependency, "on_malformed", None)
            if hook:
                hook(provider.queue.name)
        provider.settle_failure(message, MalformedMessage(f"undecodable body: {exc}"))


class WorkConsumer(Consumer):
    """@consume with retries that wait in the broker; what waiting cannot fix is dead-lettered at once."""

    queue_consumer = SafeQueueConsumer()

    def __init__(self, queue, requeue_on_error=True, settler: Settler | None = None, **kwargs):
        self.settler = settler
        super().__init__(queue, requeue_on_error=requeue_on_error, **kwargs)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
        else:
            self.settle_failure(message, exc_info[1])

    def settle_failure(self, message, exc: BaseException) -> None:
        queue = self.queue.name
        if not message.channel.connection:
            return  # the broker has taken the message back already: it will come again
        error = _error_text(exc)
        try:
            if self.settler is None:
                raise RuntimeError("no settler")
            if isinstance(exc, DeadLetterNow):
                self.settler.dead_letter(queue, message, error)
                outcome = "dead"
            else:
                outcome = self.settler.retry_later(queue, message, error)
        except Exception as publish_error:  # broker trouble: let the broker redeliver (delivery limit)
            log.warning("message.settle_failed", queue=queue, error=str(publish_error))
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)
        log.info("message.retry_later" if outcome == "retry" else "message.dead_lettered", queue=queue,
                 attempt=_attempts(message) + 1, error=error)
        for dependency in self.container.dependencies:
            hook = getattr(dependency, "on_settled", None)
            if hook:
                hook(queue, outcome)


class MessageAttempt(DependencyProvider):
    """`self.<attribute>` in a consumer's worker: how many times a handler failed on this message before
    (0 the first time; the ATTEMPT header). A handler is on its last try when it equals the number of retry
    delays: if it fails now, the Settler dead-letters the message. Notify uses it to record a delivery as
    failed for good and to try the next channel, instead of leaving it `failed` in the dead-letter queue."""

    def get_dependency(self, worker_ctx):
        try:
            return int((worker_ctx.context_data or {}).get(ATTEMPT, 0))
        except (TypeError, ValueError):
            return 0


def consumer(queue: Queue, settler: Settler | None = None):
    """Decorate `handler(self, body)` as a nameko entrypoint on `queue`."""
    return WorkConsumer.decorator(queue, requeue_on_error=True, settler=settler)


# --- publishing -----------------------------------------------------------------------------------

class Unroutable(Exception):
    """No queue is bound for this routing key (the broker returned the message)."""


def queue_counts(amqp_url: str, queue_names: list[str], timeout: float = 3.0) -> dict[str, tuple[int, int] | None]:
    """(messages ready, consumers) of each queue now, exact (passive declares, where the management API's
    figures lag by seconds); None where the queue does not exist."""
    counts: dict[str, tuple[int, int] | None] = {}
    with Connection(amqp_url, connect_timeout=timeout) as conn:
        for name in queue_names:
            try:
                _name, messages, consumers = conn.default_channel.queue_declare(name, passive=True)
                counts[name] = (messages, consumers)
            except ChannelError:  # no such queue: the broker closed the channel; the next name gets a new one
                counts[name] = None
    return counts


def consumer_counts(amqp_url: str, queue_names: list[str], timeout: float = 3.0) -> dict[str, int | None]:
    """How many consumers each queue has now (passive declares; None where the queue does not exist)."""
    return {name: None if c is None else c[1] for name, c in queue_counts(amqp_url, queue_names, timeout).items()}
