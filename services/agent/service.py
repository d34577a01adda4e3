"""Agent: village stations (代办点) and town agents relaying escalations. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from werkzeug.wrappers import Response

from services.agent import views
from services.agent.schemas import AgentStatsSchema, RepliesSchema, VillageReportSchema
from services.agent.usecases import Station
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.reference import Reference
from shared.web import ApiCall, PlatformEndpoints, api

VERSIONS = Path(__file__).parent / "migrations" / "versions"


def build_service(settings: Settings, clock: Clock | None = None):
    # the catalogue (what a station may submit, at what level, for what fee) and the calendar (the city's
    # deadlines of escalations): every version from the reference stream, kept in this service's database
    reference = Reference(settings, needs_catalog=True)
    station = Station(clock=clock or Clock())

    class AgentService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS, reference=reference)

        @consume(settings, "results")
        def on_result(self, tx, message: Message):
            """An agent's case accepted (kept), then finished: the agent owes the villager a reply."""
            if message.type == "case.accepted":
                return station.on_accepted(tx, message)
            if message.type == "case.completed":
                return station.on_completed(tx, message)
            return "ignored"

        @api("GET", "/replies", roles=("agent", "supervisor", "service", "city_admin"), response=RepliesSchema)
        def replies(self, call: ApiCall):
            """Replies owed to villagers: an agent's own, a town's, or (city scope) all."""
            with self.platform.store.transaction() as tx:
                return RepliesSchema().dump({"replies": station.replies(tx, call.principal)})

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"), response=AgentStatsSchema)
        def stats(self, call: ApiCall):
            """The city's figures, or the caller's town's."""
            with self.platform.store.transaction() as tx:
                return AgentStatsSchema().dump(station.stats(tx, call.principal))

        @api("GET", "/reports/village", roles=views.REPORT_ROLES, response=VillageReportSchema)
        def village_report(self, call: ApiCall):
            """The monthly village table (村(社区)便民服务办理情况统计表): `month=YYYY-MM`, `town=CODE`,
            `format=json|csv|xlsx`. The city any town or all; town staff their town; an agent its village."""
            with self.platform.store.transaction() as tx:
                report, fmt = views.village_table(tx.session, reference.catalogs.active(), call.principal, call.query)
            if fmt == "json":
                return VillageReportSchema().dump(report)
            return Response(views.render(report, fmt), status=200, mimetype=views.FORMATS[fmt],
                            headers={"Content-Disposition": f'attachment; filename="{views.filename(report, fmt)}"'})

    return AgentService
