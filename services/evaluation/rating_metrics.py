"""好差评 and complaints on the instance's /metrics: ratings by level and channel (counted as recorded), and
rectifications and complaints standing and overdue per town (counted from the database at each scrape, with
GROUP BY over small tables, so they are right whichever replica recorded what, and after a restart)."""
from __future__ import annotations

from nameko.extensions import DependencyProvider
from prometheus_client.core import GaugeMetricFamily

from services.evaluation.models_ratings import Complaints, Rectifications
from shared.clock import Clock
from shared.logging import get_logger
from shared.platform import Platform

log = get_logger(__name__)

_OVERDUE = (
    ("tongban_rectifications_overdue", "Rectifications (整改) of bad ratings past their callback or rectification "
                                       "due date, by accepting town"),
    ("tongban_complaints_overdue", "Complaints (有诉即办) not resolved by their due date, by town"),
)


_STANDING = (
    ("tongban_rectifications_open", "Rectifications (整改) of bad ratings not closed yet, by accepting town and "
                                    "state (open: the callback is due; called_back; rectified: the follow-up awaited)",
     "state"),
    ("tongban_complaints_open", "Complaints (有诉即办) not resolved yet, by town and status", "status"),
)


class OverdueCollector:
    def __init__(self, store, clock: Clock):
        self.store, self.clock = store, clock

    def describe(self):
        return ([GaugeMetricFamily(name, text, labels=["town"]) for name, text in _OVERDUE]
                + [GaugeMetricFamily(name, text, labels=["town", label]) for name, text, label in _STANDING])

    def collect(self):
        families = self.describe()
        try:
            today = self.clock.today()
            with self.store.read() as session:
                rectifications, complaints = Rectifications(session), Complaints(session)
                counts = (rectifications.overdue_by_town(today), complaints.overdue_by_town(today),
                          rectifications.open_by_town(), complaints.open_by_town())
        except Exception as exc:  # the database away: the scrape still answers, without these figures
            log.warning("metrics.overdue_failed", error=str(exc) or exc.__class__.__name__)
            return []
        for family, by_key in zip(families, counts, strict=True):
            for key, n in sorted(by_key.items()):
                family.add_metric(list(key) if isinstance(key, tuple) else [key], n)
        return families


class RatingMetrics(DependencyProvider):
    """Binds the ratings counter and the overdue gauges to this instance's registry (made in the platform's
    setup; every extension is set up before any starts)."""

    def __init__(self, desk, clock: Clock):
        self.desk, self.clock = desk, clock

    def start(self):
        platform = next(d for d in self.container.dependencies if isinstance(d, Platform))
        registry = platform.metrics.registry
        self.desk.bind_metrics(registry)
        registry.register(OverdueCollector(platform.store, self.clock))

    def get_dependency(self, worker_ctx):
        return self
