"""The window's own figures and its view of which departments are served, on the instance's /metrics."""
from __future__ import annotations

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge

from shared import registry
from shared.bus import consumer_counts
from shared.logging import get_logger
from shared.platform import Platform

log = get_logger(__name__)


class WindowMetrics(DependencyProvider):
    """tongban_cases_unserved_total and tongban_department_served, and the look at the work queues behind them.

    The platform creates its registry in setup(); every extension is set up before any starts.
    """

    def __init__(self, window):
        self.window = window
        self.served_gauge: Gauge | None = None

    def start(self):
        self.platform = next(d for d in self.container.dependencies if isinstance(d, Platform))
        r = self.platform.metrics.registry
        self.window.unserved_cases = Counter(
            "tongban_cases_unserved_total",
            "Cases routed to a department no approval instance was consuming work for (the work waits)",
            ["department"], registry=r)
        self.served_gauge = Gauge("tongban_department_served",
                                  "1 when an approval instance consumes the department's work queue, else 0",
                                  ["department"], registry=r)

    def refresh_served(self) -> None:
        """Look at every catalogue department's work queue: does anyone consume it?"""
        s = self.platform.settings
        spec = registry.subscription("approval", "work")
        queues = {d: self.platform.topology.queue_for(registry.queue_spec(spec, department=d)).name
                  for d in self.window.catalog.departments}
        try:
            counts = consumer_counts(s.service_amqp_url, list(queues.values()))
        except Exception as exc:  # the broker away: keep the last view rather than flag every case
            log.warning("departments.served_check_failed", error=str(exc))
            return
        served = {d: bool(counts.get(q)) for d, q in queues.items()}
        for d, ok in served.items():
            self.served_gauge.labels(department=d).set(1 if ok else 0)
        self.window.served = served

    def get_dependency(self, worker_ctx):
        return self
