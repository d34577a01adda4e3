"""Evaluation: 好差评, complaints, deadline supervision and statistics. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.web import ApiCall, PlatformEndpoints, api

from services.evaluation.records import Recorder

VERSIONS = Path(__file__).parent / "migrations" / "versions"


def build_service(settings: Settings, clock: Clock | None = None):
    recorder = Recorder(clock=clock or Clock())

    class EvaluationService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS)

        @consume(settings, "events")
        def on_event(self, tx, message: Message):
            """Every case event, from every town and department."""
            return recorder.record(tx, message)

        @api("GET", "/cases/<string:case_number>/events", roles=("supervisor", "service", "city_admin"))
        def events(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return {"case_number": call.params["case_number"],
                        "events": recorder.timeline(tx, call.params["case_number"])}

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"))
        def stats(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return recorder.stats(tx)

    return EvaluationService
