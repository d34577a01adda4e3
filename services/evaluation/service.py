"""Evaluation: 好差评, complaints, deadline supervision and statistics. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from nameko.timer import timer

from services.evaluation.schemas import (
    BoardSchema,
    CaseEventsSchema,
    EvaluationStatsSchema,
    ForecastSchema,
    SupervisionNoticesSchema,
    WarningsSchema,
)
from services.evaluation.supervision import READERS, SupervisionConfig, Supervisor
from services.evaluation.usecases import Recorder
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.logging import get_logger
from shared.platform import Platform, consume
from shared.reference import Reference
from shared.web import ApiCall, PlatformEndpoints, api

log = get_logger(__name__)

VERSIONS = Path(__file__).parent / "migrations" / "versions"


def build_service(settings: Settings, clock: Clock | None = None):
    recorder = Recorder(clock=clock or Clock())
    # the calendar (working days of supervision and the forecast): every year from the reference stream
    reference = Reference(settings, needs_catalog=False)
    config = SupervisionConfig.of(settings)
    supervisor = Supervisor(clock=recorder.clock, calendar=reference.calendar, config=config,
                            instance=settings.instance)

    class EvaluationService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS, reference=reference)

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

        # --- deadline supervision (电子监察), the board and the breach forecast ----------------------------

        @timer(interval=config.interval, eager=True)
        def watch(self):
            """The watcher: yellow and red warnings (督办), red escalated to a supervision notice, metrics."""
            try:
                supervisor.watch(self.platform.store, supervisor.metrics(self.platform.metrics.registry))
            except Exception:  # a database hiccup: the next pass tries again
                log.exception("supervision.watch_failed")

        @api("GET", "/board", roles=READERS, response=BoardSchema)
        def board(self, call: ApiCall):
            """Open cases by urgency (red, yellow, then by deadline) for the city, a town (?town=) or a department
            (?department=); counts by colour; the forecast's summary. A town's supervisor sees their town, a
            department head their department."""
            with self.platform.store.transaction() as tx:
                return BoardSchema().dump(supervisor.board(tx, call.principal, call.query))

        @api("GET", "/forecast", roles=READERS, response=ForecastSchema)
        def forecast(self, call: ApiCall):
            """Per office (department and town): open cases that will miss their deadline in the next ?days=N
            working days at the recent decision rate, which first, and the decisions a day that would prevent it."""
            with self.platform.store.transaction() as tx:
                return ForecastSchema().dump(supervisor.forecast(tx, call.principal, call.query))

        @api("GET", "/supervision/warnings", roles=READERS, response=WarningsSchema)
        def supervision_warnings(self, call: ApiCall):
            """The warnings (督办) in the caller's scope, newest first (?case=, ?colour=, ?open=1, ?town=,
            ?department=)."""
            with self.platform.store.transaction() as tx:
                return WarningsSchema().dump(supervisor.warnings(tx, call.principal, call.query))

        @api("GET", "/supervision/notices", roles=READERS, response=SupervisionNoticesSchema)
        def supervision_notices(self, call: ApiCall):
            """Supervision notices (督办通知) of red warnings, for the department head and the supervisor."""
            with self.platform.store.transaction() as tx:
                return SupervisionNoticesSchema().dump(supervisor.notices(tx, call.principal, call.query))

    return EvaluationService
