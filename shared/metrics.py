"""Prometheus metrics: one registry per service instance, so each /metrics shows its own work.

Several instances may share a process (`tongban up`), so the instance registry carries the
bus and store figures, and process-wide collectors (calendar fallbacks) come from the default
registry, appended on scrape.
"""
from __future__ import annotations

from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class ServiceMetrics:
    """The figures every service reports."""

    def __init__(self, instance: str):
        self.instance = instance
        self.registry = CollectorRegistry()
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
        self.outbox_published = Counter(
            "tongban_outbox_published_total", "Messages the relay published with a broker confirm",
            registry=r)
        self.outbox_failures = Counter(
            "tongban_outbox_publish_failures_total",
            "Outbox messages that did not leave on a try, by reason (unroutable, refused, nack, broker)", ["reason"],
            registry=r)
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
            "tongban_http_requests_total", "HTTP API requests by route and status",
            ["route", "status"], registry=r)
        self.info = Gauge("tongban_instance_info", "Constant 1, labelled with what this instance is",
                          ["instance", "service"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry) + generate_latest(PROCESS_REGISTRY)
