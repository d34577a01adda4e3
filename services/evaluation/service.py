"""Evaluation: 好差评, complaints, deadline supervision and statistics. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from services.evaluation.schemas import CaseEventsSchema, EvaluationStatsSchema
from services.evaluation.usecases import Recorder
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.web import ApiCall, PlatformEndpoints, api

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

        @api("GET", "/cases/<string:case_number>/events", roles=("supervisor", "service", "city_admin"),
             response=CaseEventsSchema)
        def events(self, call: ApiCall):
            """A case's timeline, for a caller whose scope reaches the case (else 404, as for no case)."""
            number = call.params["case_number"]
            with self.platform.store.transaction() as tx:
                return CaseEventsSchema().dump({"case_number": number,
                                                "events": recorder.timeline(tx, call.principal, number)})

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"), response=EvaluationStatsSchema)
        def stats(self, call: ApiCall):
            """Cases per event type: the city's, or the caller's town's."""
            with self.platform.store.transaction() as tx:
                return EvaluationStatsSchema().dump(recorder.stats(tx, call.principal))

    return EvaluationService
