"""Evaluation: 好差评, complaints, deadline supervision and statistics. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from nameko.timer import timer
from werkzeug.wrappers import Response

from services.evaluation import figures
from services.evaluation.figures_rules import REPORT_ROLES
from services.evaluation.schemas import CaseEventsSchema, EvaluationStatsSchema, MonthlyReportSchema
from services.evaluation.usecases import Recorder
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.reference import Reference
from shared.web import ApiCall, PlatformEndpoints, api

VERSIONS = Path(__file__).parent / "migrations" / "versions"


def build_service(settings: Settings, clock: Clock | None = None):
    # the working calendar (working days to finish) and the catalogue's names, from the reference stream
    reference = Reference(settings, needs_catalog=False)
    monthly = figures.Figures(calendar=reference.calendar)  # updated in place when a year's holidays arrive
    recorder = Recorder(clock=clock or Clock(), figures=monthly)

    class EvaluationService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS, reference=reference)
        figures_metrics = figures.FiguresMetrics(monthly)

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

        # --- monthly figures and operators' metrics (月度统计) -------------------------------------------

        @api("GET", "/reports/monthly", roles=REPORT_ROLES, response=MonthlyReportSchema)
        def monthly_report(self, call: ApiCall):
            """The month's figures per village, window, staff, town and department: `month=YYYY-MM`,
            `town=CODE`, `dept=CODE[@TOWN|@city]`, `format=json|csv|xlsx`. The city any; a town's supervisor
            their town; a department head their office."""
            names = figures.names_from(reference.catalogs.active() if reference.catalogs.ready else None)
            with self.platform.store.transaction() as tx:
                report, fmt = figures.monthly_for(tx.session, call.principal, call.query, names)
            if fmt == "json":
                return MonthlyReportSchema().dump(report)
            return Response(figures.render(report, fmt), status=200, mimetype=figures.FORMATS[fmt],
                            headers={"Content-Disposition": f'attachment; filename="{figures.filename(report, fmt)}"'})

        @timer(interval=float(settings.extra.get("figures_refresh_seconds", 15)), eager=True)
        def refresh_figures_metrics(self):
            """Open cases by status, town and department, from the case read model."""
            self.figures_metrics.refresh()

    return EvaluationService
