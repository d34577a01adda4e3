"""Prometheus metrics: one registry per service instance, so each /metrics shows its own work.

Labels: Prometheus itself attaches `instance` (the scraped address) and `job` to every series, so no
series of ours carries a label of either name; the instance's name is `tongban_instance`.

Process-wide series: several instances may share a process (`tongban up`). The default registry
(process_*, python_*, and process-wide counters such as tongban_calendar_unknown_year_total) describes
the process, not an instance, so exactly one instance per process appends it to its /metrics: the first
one made, until it closes, then whichever renders next. Summed over a job's targets, each process is
then counted once.
"""
from __future__ import annotations

import threading
import weakref

from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: HTTP latency buckets (seconds): health answers in ~1 ms, a PDF notice or a monthly table in ~1 s
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

#: why an outbox message did not leave (shared.relay), and what became of a failed message (shared.bus.Settler)
PUBLISH_FAILURES = ("unroutable", "refused", "nack", "broker")
SETTLED_OUTCOMES = ("retry", "dead")

#: label names Prometheus reserves for the target: an application label of that name is renamed on
#: ingestion (exported_instance) or overwrites the target's (honor_labels), either way a trap
RESERVED_LABELS = frozenset({"instance", "job"})


class _ProcessSeries:
    """Which instance of this process appends the process-wide registry (one at a time)."""

    def __init__(self):
        self._lock = threading.Lock()
        # a weak reference: an instance dropped without being closed does not keep the series from the others
        self._owner: weakref.ref | None = None

    def claim(self, metrics: object) -> bool:
        """True when `metrics` appends the process series: it owns them, or nobody does and it takes them."""
        with self._lock:
            if self._owner is None or self._owner() is None:
                self._owner = weakref.ref(metrics)
            return self._owner() is metrics

    def release(self, metrics: object) -> None:
        with self._lock:
            if self._owner is not None and self._owner() is metrics:
                self._owner = None


PROCESS_SERIES = _ProcessSeries()


class ServiceMetrics:
    """The figures every service reports."""

    def __init__(self, instance: str, service: str = "", town: str | None = None,
                 department: str | None = None, process_series: _ProcessSeries = PROCESS_SERIES):
        self.instance = instance
        self.registry = CollectorRegistry()
        self._process_series = process_series
        self._closed = False
        process_series.claim(self)  # the first instance of a process shows its series from the start
        r = self.registry
        self.messages_handled = Counter(
            "tongban_messages_handled_total",
            "Messages taken from a queue, by outcome (ok, duplicate, stale, malformed, error)",
            ["queue", "outcome"], registry=r)
        self.handler_seconds = Histogram(
            "tongban_handler_seconds", "Time a message handler took", ["queue"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.outbox_backlog = Gauge(
            "tongban_outbox_backlog", "Outgoing messages written but not yet confirmed by the broker",
            registry=r)
        self.outbox_oldest_unsent = Gauge(
            "tongban_outbox_oldest_unsent_seconds",
            "Age of the oldest outgoing message not yet confirmed by the broker (0 when none waits)",
            registry=r)
        self.outbox_unroutable = Gauge(
            "tongban_outbox_unroutable",
            "Outgoing messages the broker returned for want of a queue bound to their routing key (they wait)",
            registry=r)
        self.outbox_published = Counter(
            "tongban_outbox_published_total", "Messages the relay published with a broker confirm",
            registry=r)
        self.outbox_failures = Counter(
            "tongban_outbox_publish_failures_total",
            "Outbox messages that did not leave on a try, by reason (unroutable, refused, nack, broker)", ["reason"],
            registry=r)
        for reason in PUBLISH_FAILURES:  # zero from the start (see expect_queues)
            self.outbox_failures.labels(reason=reason)
        self.retention_purged = Counter(
            "tongban_retention_purged_total",
            "Published outbox rows and inbox rows deleted after the retention period, by table",
            ["table"], registry=r)
        self.messages_settled = Counter(
            "tongban_messages_settled_total",
            "Failed messages sent to wait for another try (retry) or to the dead-letter queue (dead)",
            ["queue", "outcome"], registry=r)
        self.dead_letters = Gauge(
            "tongban_dead_letters", "Messages waiting in this instance's dead-letter queues",
            ["queue"], registry=r)
        self.http_requests = Counter(
            "tongban_http_requests_total", "HTTP requests by route (method and path template) and status",
            ["route", "status"], registry=r)
        self.http_seconds = Histogram(
            "tongban_http_request_seconds",
            "Time an HTTP request took in its handler, by route (method and path template, never the raw path)",
            ["route"], registry=r, buckets=HTTP_BUCKETS)
        self.info = Gauge("tongban_instance_info", "Constant 1, labelled with what this instance is",
                          ["tongban_instance", "service", "town", "department"], registry=r)
        self.info.labels(tongban_instance=instance, service=service, town=town or "",
                         department=department or "").set(1)

    def expect_queues(self, names) -> None:
        """Zero series for the queues this instance consumes: a rate or an alert over them starts from 0
        rather than from nothing when the first message is retried or dead-lettered."""
        for name in names:
            for outcome in SETTLED_OUTCOMES:
                self.messages_settled.labels(queue=name, outcome=outcome)

    def observe_request(self, route: str, status: int | str, seconds: float) -> None:
        """One HTTP request answered; `route` is the rule as declared ("GET /cases/<number>")."""
        self.http_requests.labels(route=route, status=str(status)).inc()
        self.http_seconds.labels(route=route).observe(seconds)

    @property
    def shows_process_series(self) -> bool:
        return not self._closed and self._process_series.claim(self)

    def render(self) -> bytes:
        text = generate_latest(self.registry)
        if self.shows_process_series:
            text += generate_latest(PROCESS_REGISTRY)
        return text

    def close(self) -> None:
        """The instance stops: another instance of the process appends the process series from now on."""
        self._closed = True
        self._process_series.release(self)


def scrape_targets(instances, port: int = 8000) -> str:
    """A Prometheus file_sd target file (YAML) for instances reached by their names (compose's containers),
    each on `port`; Prometheus's job "tongban" reads it (deploy/prometheus/prometheus.yml)."""
    lines = ["# Prometheus targets (file_sd) of job tongban: every instance of the city, by its container name.",
             "# Generated from the catalogue (shared.metrics.scrape_targets); tests/unit/test_metrics.py checks it.",
             "- targets:"]
    lines += [f'    - "{name}:{port}"' for name in instances]
    return "\n".join(lines) + "\n"
