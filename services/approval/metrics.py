"""The back office's own figures, registered on the instance's registry once the platform is set up."""
from __future__ import annotations

from nameko.extensions import DependencyProvider

from shared.platform import Platform


class DeskMetrics(DependencyProvider):
    """Binds the desk's counters (tongban_ab_head_fallback_total) to this instance's /metrics.

    The platform creates its registry in setup(); every extension is set up before any starts,
    so start() finds it.
    """

    def __init__(self, desk):
        self.desk = desk

    def start(self):
        platform = next(d for d in self.container.dependencies if isinstance(d, Platform))
        self.desk.bind_metrics(platform.metrics.registry)

    def get_dependency(self, worker_ctx):
        return self.desk
