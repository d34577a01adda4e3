"""What every service instance stands on: one nameko dependency that owns the store, the
outbox relay, the bus topology, metrics and log context, plus the one-line consumer decorator.

    platform = Platform(settings, versions_dir)                 # or, for a service that needs the
    platform = Platform(settings, versions_dir, reference=ref)  # catalogue or calendar: shared.reference

    class Service(PlatformEndpoints):
        name = settings.instance
        platform = platform

        @consume(settings, "decisions", ["case.decided.*.320583101"])
        def on_decision(self, tx, message): ...   # runs once per message id, inside one transaction
"""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import eventlet
from nameko.extensions import DependencyProvider

from shared import contracts, registry
from shared.bus import Settler, Topology, WorkConsumer, consumer
from shared.config import Settings, check_secrets
from shared.contracts import DeadLetterNow, MalformedMessage
from shared.logging import bind_context, clear_context, get_logger
from shared.metrics import ServiceMetrics
from shared.reference import Reference
from shared.relay import BrokerProbe, OutboxRelay
from shared.store import Store
from shared.tokens import TokenVerifier

log = get_logger(__name__)

_DLQ_REFRESH_SECONDS = 10.0


class Platform(DependencyProvider):
    """The per-instance runtime; services reach it as `self.platform`."""

    def __init__(self, settings: Settings, versions_dir: Path, reference: Reference | None = None):
        self.settings = settings
        # the service's copy of the reference stream: the catalogue and calendar where it needs them, and
        # for every service the staff directory's token revocations
        self.reference = reference or Reference(settings, needs_catalog=False)
        self._reference_thread = None
        self.versions_dir = Path(versions_dir)
        self.topology = Topology.of(settings)
        self.metrics: ServiceMetrics | None = None
        self.store: Store | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._relay_thread = None
        self._last_dlq_refresh = 0.0
        self._relay: OutboxRelay | None = None
        self._halt = threading.Event()  # ends the health thread's pause at once on stop
        self._health_thread = None
        self._retention_thread = None
        self._probe: BrokerProbe | None = None
        self._health_report: dict | None = None  # the last completed checks (see _refresh_health)
        self._health_at = 0.0  # monotonic time they completed

    # --- nameko lifecycle -------------------------------------------------------------------------

    def setup(self):
        s = self.settings
        check_secrets(s)  # never run on published development secrets, nor without the keys to check tokens
        self.tokens = TokenVerifier(s.public_keys(), revocations=self.reference.revocations)
        self.metrics = ServiceMetrics(s.instance, s.service, town=s.town, department=s.department)
        self.store = Store(s.db_url, self.versions_dir, self.topology.events.name)
        self.store.migrate()
        self.store.on_commit_with_messages = self._wake.set
        # the whole registry, not only this instance's queues: what is published for a service that
        # has never run yet waits in its queue instead of being routed nowhere
        # the active catalogue comes first (caught up from the reference stream), so that its departments
        # get their queues
        self.reference.catch_up(self.store)
        catalogs = self.reference.catalogs
        towns, departments = registry.catalogue_scope(catalogs)
        towns += [s.town] if s.town else []
        departments += [s.department] if s.department else []
        declared = registry.declare_deployment(s.service_amqp_url, self.topology, towns, departments,
                                               extra=self.work_queues(), retry_kinds=[s.service])
        log.info("service.ready", instance=s.instance, service=s.service, database=_safe_url(s.db_url),
                 queues=[q.name for q in self.work_queues()], declared=len(declared))

    def start(self):
        s = self.settings
        self.metrics.expect_queues(q.name for q in self.work_queues())
        if self._relays:
            self._relay_thread = self.container.spawn_managed_thread(self._relay_loop,
                                                                     identifier="outbox-relay")
        if self.reference is not None:
            self._reference_thread = self.container.spawn_managed_thread(
                partial(self.reference.follow, self.store, lambda: self._stopping), identifier="reference-stream")
        self._probe = BrokerProbe(s.service_amqp_url, self.topology.events.name)
        self._refresh_health()  # /health tells the truth from the first request on
        self._health_thread = self.container.spawn_managed_thread(self._health_loop,
                                                                  identifier="health-checks")
        self._retention_thread = self.container.spawn_managed_thread(self._retention_loop,
                                                                     identifier="retention")

    def stop(self):
        self._stopping = True
        self._wake.set()
        self._halt.set()
        if self._relay_thread is not None:
            self._relay_thread.wait()
        if self._reference_thread is not None:
            self._reference_thread.wait()
        if self._relay is not None:
            self._relay.close()
        for thread in (self._health_thread, self._retention_thread):
            if thread is not None:
                thread.wait()
        if self._probe is not None:
            self._probe.close()
        if self.store:
            self.store.dispose()
        if self.metrics is not None:
            self.metrics.close()  # another instance of this process shows the process series from now on

    def kill(self):
        self._stopping = True
        self._wake.set()
        self._halt.set()
        for thread in (self._relay_thread, self._health_thread, self._reference_thread, self._retention_thread):
            if thread is not None:
                thread.kill()
        if self._relay is not None:
            self._relay.abort()
        if self._probe is not None:
            self._probe.drop()
        if self.metrics is not None:
            self.metrics.close()

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
            outcome = "error"  # a step after the commit may fail once the handler's outcome was set
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

    @property
    def _relays(self) -> bool:
        return bool(self.settings.extra.get("relay", True))

    def _outbox_relay(self) -> OutboxRelay:
        if self._relay is None:
            s = self.settings
            self._relay = OutboxRelay(self.store, s.service_amqp_url, self.metrics, window=s.relay_window,
                                      confirm_timeout=s.relay_confirm_timeout, lease_seconds=s.relay_lease,
                                      name=s.instance)
        return self._relay

    def _relay_loop(self):
        relay = self._outbox_relay()
        gap = self.settings.relay_min_gap
        while not self._stopping:
            self._wake.clear()  # a commit from now on wakes the pause below
            started = time.monotonic()
            try:
                relay.relay_once()
            except Exception:  # a database hiccup must not end the relay
                log.exception("outbox.relay_error")
                relay.more_due = False
            if relay.more_due:  # a full window: more is due now
                eventlet.sleep(0)  # HTTP and message workers run between windows
                continue
            self._wake.wait(self.settings.relay_interval)
            # woken by a commit: under load, commits come faster than windows are worth it, so a round
            # starts at least `gap` after the last one and takes what several transactions wrote
            # (a lone commit after a quiet spell still leaves at once)
            eventlet.sleep(max(0.0, started + gap - time.monotonic()))

    def relay_once(self, limit: int | None = None) -> int:
        """Publish one window of due outbox rows with confirms outstanding; returns how many were acked.

        A row is marked published only after the broker's ack (see shared.relay)."""
        return self._outbox_relay().relay_once(limit)

    def _refresh_dead_letter_gauge(self):
        now = time.monotonic()
        if now - self._last_dlq_refresh < _DLQ_REFRESH_SECONDS:
            return
        self._last_dlq_refresh = now
        try:
            for queue in self.work_queues():
                count = self._probe.queue_depth(self.topology.dead_letter_queue(queue.name).name)
                self.metrics.dead_letters.labels(queue=queue.name).set(count)
        except Exception as exc:
            log.warning("metrics.dead_letter_refresh_failed", error=str(exc) or exc.__class__.__name__)

    # --- retention -----------------------------------------------------------------------------------
    #
    # Every instance purges its own published outbox rows and inbox rows past the retention period
    # (shared.config: outbox_retention_days, TONGBAN_RETENTION_DAYS; inbox rows are kept at least as long
    # as a message can come again). Unsent outbox rows are never purged. Replicas sharing a database
    # may purge at once: deleting what another just deleted is harmless.

    def _retention_loop(self):
        while not self._stopping:
            try:
                self.purge_expired()
            except Exception:  # a database hiccup must not end the loop: the next round tries again
                log.exception("retention.purge_failed")
            self._halt.wait(self.settings.retention_interval)

    def purge_expired(self, now: datetime | None = None) -> dict:
        """Delete published outbox rows and inbox rows past their retention; returns the counts by table."""
        s = self.settings
        now = now or datetime.now(UTC)
        purged = {
            "outbox": self.store.purge_outbox(now - timedelta(seconds=s.outbox_retention_seconds),
                                              s.retention_batch),
            "inbox": self.store.purge_inbox(now - timedelta(seconds=s.inbox_retention_seconds), s.retention_batch),
        }
        for table, n in purged.items():
            self.metrics.retention_purged.labels(table=table).inc(n)
        if any(purged.values()):
            log.info("retention.purged", **purged)
        return purged

    # --- health ------------------------------------------------------------------------------------
    #
    # A managed thread runs the checks every `health_interval` seconds and keeps the last answer;
    # /health only reads it, so it answers at once however busy or stuck the database or broker is.
    # Checks that stopped completing are themselves a failure ("freshness").

    def _health_loop(self):
        while not self._stopping:
            self._halt.wait(self.settings.health_interval)
            if self._stopping:
                break
            try:
                self._refresh_health()
                self._refresh_dead_letter_gauge()
            except Exception:  # never let the checks end the container
                log.exception("health.check_failed")

    def _refresh_health(self):
        s = self.settings
        checks, outbox = {}, {}
        try:
            stats = self.store.outbox_health()
            checks["database"] = "ok"
        except Exception as exc:
            stats = None
            checks["database"] = f"error: {_describe(exc)}"
        try:
            self._probe.check()
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"error: {_describe(exc)}"
        if stats is None:
            checks["outbox"] = "unknown: the database did not answer"
        else:
            age = 0.0
            if stats.oldest_created_at is not None:
                age = max(0.0, (datetime.now(UTC) - stats.oldest_created_at).total_seconds())
            outbox = {"backlog": stats.backlog, "oldest_unsent_seconds": round(age, 1),
                      "unroutable": stats.unroutable, "relay": "on" if self._relays else "off"}
            self.metrics.outbox_oldest_unsent.set(age)
            self.metrics.outbox_unroutable.set(stats.unroutable)
            if self._relays:  # the backlog gauge is the relay's: an instance that relays nothing shows none
                self.metrics.outbox_backlog.set(stats.backlog)
            checks["outbox"] = ("ok" if age <= s.outbox_max_age else
                                f"error: the oldest unsent message waits {age:.0f} s "
                                f"(more than {s.outbox_max_age:g} s)")
            checks["unroutable"] = ("ok" if not stats.unroutable else
                                    f"error: {stats.unroutable} message(s) wait: no queue takes their routing key")
        if self.reference is not None:
            checks["reference"] = self.reference.health()
        self._health_report = {"checks": checks, "outbox": outbox,
                               "checked_at": datetime.now(UTC).isoformat(timespec="seconds")}
        self._health_at = time.monotonic()

    def health_report(self) -> dict:
        """The last background checks, at once: {"status": "ok" | "degraded", "checks": ..., ...}."""
        report = self._health_report
        if report is None:
            return {"status": "degraded", "instance": self.settings.instance,
                    "checks": {"startup": "error: no checks completed yet"}, "outbox": {},
                    "checked_seconds_ago": None}
        checks = dict(report["checks"])
        age = time.monotonic() - self._health_at
        stale_after = max(5.0, 3 * self.settings.health_interval)
        if age > stale_after:
            checks["freshness"] = f"error: the checks last completed {age:.0f} s ago"
        ok = all(v == "ok" for v in checks.values())
        return {"status": "ok" if ok else "degraded", "instance": self.settings.instance, "checks": checks,
                "outbox": report["outbox"], "checked_seconds_ago": round(age, 1)}

    def health(self) -> tuple[bool, dict]:
        report = self.health_report()
        return report["status"] == "ok", report["checks"]


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
        return consumer(queue, Settler(settings.service_amqp_url, topology, settings.service))(entry)

    return decorator


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}"[:300] if text else exc.__class__.__name__


def _safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
