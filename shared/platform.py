"""What every service instance stands on: one nameko dependency that owns the store, the
outbox relay, the bus topology, metrics and log context, plus the one-line consumer decorator.

    platform = Platform(settings, versions_dir)

    class Service(PlatformEndpoints):
        name = settings.instance
        platform = platform

        @consume(settings, "decisions", ["case.decided.*.320583101"])
        def on_decision(self, tx, message): ...   # runs once per message id, inside one transaction
"""
from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path

from kombu import Connection, Exchange
from nameko.extensions import DependencyProvider

from shared import contracts, registry
from shared.bus import ConfirmedPublisher, Settler, Topology, Unroutable, WorkConsumer, broker_reachable, consumer
from shared.config import Settings
from shared.contracts import DeadLetterNow, MalformedMessage
from shared.logging import bind_context, clear_context, get_logger
from shared.metrics import ServiceMetrics
from shared.store import Store

log = get_logger(__name__)

_DLQ_REFRESH_SECONDS = 10.0


class Platform(DependencyProvider):
    """The per-instance runtime; services reach it as `self.platform`."""

    def __init__(self, settings: Settings, versions_dir: Path):
        self.settings = settings
        self.versions_dir = Path(versions_dir)
        self.topology = Topology.of(settings)
        self.metrics: ServiceMetrics | None = None
        self.store: Store | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._relay_thread = None
        self._last_dlq_refresh = 0.0

    # --- nameko lifecycle -------------------------------------------------------------------------

    def setup(self):
        s = self.settings
        self.metrics = ServiceMetrics(s.instance)
        self.metrics.info.labels(instance=s.instance, service=s.service).set(1)
        self.store = Store(s.db_url, self.versions_dir, self.topology.events.name)
        self.store.migrate()
        self.store.on_commit_with_messages = self._wake.set
        self.publisher = ConfirmedPublisher(s.amqp_url, self.topology)
        # the whole registry, not only this instance's queues: what is published for a service that
        # has never run yet waits in its queue instead of being routed nowhere
        towns, departments = registry.catalogue_scope(s.data_dir)
        towns += [s.town] if s.town else []
        departments += [s.department] if s.department else []
        declared = registry.declare_deployment(s.service_amqp_url, self.topology, towns, departments,
                                               extra=self.work_queues())
        log.info("service.ready", instance=s.instance, service=s.service, database=_safe_url(s.db_url),
                 queues=[q.name for q in self.work_queues()], declared=len(declared))

    def start(self):
        if self.settings.extra.get("relay", True):
            self._relay_thread = self.container.spawn_managed_thread(self._relay_loop,
                                                                     identifier="outbox-relay")

    def stop(self):
        self._stopping = True
        self._wake.set()
        if self._relay_thread is not None:
            self._relay_thread.wait()
        if self.store:
            self.store.dispose()

    def kill(self):
        self._stopping = True
        self._wake.set()
        if self._relay_thread is not None:
            self._relay_thread.kill()

    def get_dependency(self, worker_ctx):
        return self

    def worker_setup(self, worker_ctx):
        bind_context(call_id=worker_ctx.call_id, service=self.settings.instance,
                     town=self.settings.town, department=self.settings.department)

    def worker_teardown(self, worker_ctx):
        clear_context()

    # --- consuming ---------------------------------------------------------------------------------

    def work_queues(self):
        return [ep.queue for ep in self.container.entrypoints if isinstance(ep, WorkConsumer)]

    def handle(self, queue_name: str, body, handler, inbox: bool = True) -> str:
        """Decode, deduplicate and run `handler(tx, message)` in one transaction; returns the outcome.

        With `inbox=False` the handler itself makes a redelivery harmless (it keeps its own record,
        e.g. a delivery that must happen at most once)."""
        started = time.perf_counter()
        outcome = "error"
        try:
            message = contracts.decode(body)
        except MalformedMessage as exc:
            self.on_malformed(queue_name)
            log.warning("message.malformed", queue=queue_name, reason=exc.reason, details=exc.details)
            raise
        bind_context(case_number=message.case_number, message_id=message.message_id,
                     message_type=message.type)
        try:
            with self.store.transaction() as tx:
                if inbox and not tx.first_time(queue_name, message):
                    outcome = "duplicate"
                else:
                    outcome = handler(tx, message) or "ok"
            log.info("message.handled", queue=queue_name, outcome=outcome)
            return outcome
        except DeadLetterNow as exc:
            outcome = "unacceptable"
            log.warning("message.unacceptable", queue=queue_name, reason=exc.reason)
            raise
        except Exception:
            log.exception("message.failed", queue=queue_name)
            raise
        finally:
            self.metrics.messages_handled.labels(queue=queue_name, outcome=outcome).inc()
            self.metrics.handler_seconds.labels(queue=queue_name).observe(time.perf_counter() - started)

    def on_malformed(self, queue_name: str) -> None:
        self.metrics.messages_handled.labels(queue=queue_name, outcome="malformed").inc()

    def on_settled(self, queue_name: str, outcome: str) -> None:
        self.metrics.messages_settled.labels(queue=queue_name, outcome=outcome).inc()

    # --- the outbox relay --------------------------------------------------------------------------

    def _relay_loop(self):
        while not self._stopping:
            try:
                sent = self.relay_once()
            except Exception:  # a database hiccup must not end the relay
                log.exception("outbox.relay_error")
                sent = 0
            self._refresh_dead_letter_gauge()
            if not sent:
                self._wake.wait(self.settings.relay_interval)
                self._wake.clear()

    def relay_once(self, limit: int = 100) -> int:
        """Publish due outbox rows with confirms; a row is marked sent only after the broker's ack."""
        sent = 0
        for row in self.store.due_outbox(limit):
            exchange = Exchange(row.exchange, type="topic", durable=True)
            try:
                self.publisher.publish(row.body, row.routing_key, row.message_id, exchange=exchange)
            except Unroutable:
                self.metrics.outbox_failures.labels(reason="unroutable").inc()
                log.error("outbox.unroutable", routing_key=row.routing_key, message_id=row.message_id,
                          case_number=row.body.get("case_number"), attempts=row.attempts + 1)
                self.store.mark_failed(row, f"unroutable: {row.routing_key}")
                continue
            except Exception as exc:  # broker away: keep the row, try again later
                self.metrics.outbox_failures.labels(reason="broker").inc()
                log.warning("outbox.publish_failed", error=str(exc), message_id=row.message_id)
                self.store.mark_failed(row, str(exc))
                break
            self.store.mark_published(row.id)
            self.metrics.outbox_published.inc()
            sent += 1
        self.metrics.outbox_backlog.set(self.store.outbox_backlog())
        return sent

    def _refresh_dead_letter_gauge(self):
        now = time.monotonic()
        if now - self._last_dlq_refresh < _DLQ_REFRESH_SECONDS:
            return
        self._last_dlq_refresh = now
        try:
            with Connection(self.settings.amqp_url) as conn:
                channel = conn.default_channel
                for queue in self.work_queues():
                    dlq = self.topology.dead_letter_queue(queue.name)
                    _name, count, _consumers = dlq(channel).queue_declare(passive=True)
                    self.metrics.dead_letters.labels(queue=queue.name).set(count)
        except Exception as exc:
            log.warning("metrics.dead_letter_refresh_failed", error=str(exc))

    # --- health ------------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict]:
        checks = {}
        try:
            self.store.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {exc.__class__.__name__}"
        ok, detail = broker_reachable(self.settings.amqp_url)
        checks["broker"] = "ok" if ok else f"error: {detail}"
        return all(v == "ok" for v in checks.values()), checks


def consume(settings: Settings, purpose: str, routing_keys: list[str] | None = None, work: bool = False,
            inbox: bool = True):
    """Declare a consumer in one line: a quorum queue bound as the registry says, handled once per message.

    The queue and its routing keys come from `shared.registry` (the service's subscription for
    `purpose`); a probe outside the registry names its `routing_keys` (and `work=True` for the work
    exchange). The handler is `fn(self, tx, message)`; it may return an outcome label such as "stale".
    """
    topology = Topology.of(settings)
    if routing_keys is None:
        spec = registry.queue_spec(registry.subscription(settings.service, purpose), settings.town,
                                   settings.department)
    else:
        spec = registry.QueueSpec(settings.instance, purpose, tuple(routing_keys), "work" if work else "events")
    queue = topology.queue_for(spec)

    def decorator(fn):
        def entry(service, body):
            return service.platform.handle(queue.name, body, partial(fn, service), inbox=inbox)

        entry.__name__ = fn.__name__
        entry.__doc__ = fn.__doc__
        return consumer(queue, Settler(settings.service_amqp_url, topology))(entry)

    return decorator


def _safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
