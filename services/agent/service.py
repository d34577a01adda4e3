"""Agent: village stations (代办点) and town agents relaying escalations. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from werkzeug.wrappers import Response

from services.agent import views
from services.agent.schemas import (
    AgentStatsSchema,
    EscalationDetailSchema,
    EscalationsSchema,
    RepliesSchema,
    VillageReportSchema,
)
from services.agent.usecases import Station, TownAgent
from shared.bus import Topology
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.reference import Reference
from shared.web import ApiCall, PlatformEndpoints, api

VERSIONS = Path(__file__).parent / "migrations" / "versions"
TOWN_AGENTS = ("town_agent", "service")  # who relays and returns (a town's agent; the demo's driver)
ESCALATION_READERS = ("town_agent", "supervisor", "service", "city_admin")


def build_service(settings: Settings, clock: Clock | None = None):
    # the catalogue (what a station may submit, at what level, for what fee) and the calendar (the city's
    # deadlines of escalations): every version from the reference stream, kept in this service's database
    reference = Reference(settings, needs_catalog=True)
    station = Station(clock=clock or Clock())
    town_agent = TownAgent(clock=station.clock, calendar=reference.calendar, instance=settings.instance,
                           work_exchange=Topology.of(settings).work.name)

    class AgentService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS, reference=reference)

        @consume(settings, "results")
        def on_result(self, tx, message: Message):
            """An agent's case accepted (kept), then finished: the agent owes the villager a reply."""
            if message.type == "case.accepted":
                return station.on_accepted(tx, message)
            if message.type == "case.completed":
                town_agent.on_completed(tx, message)  # an escalation in flight ended some other way
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

        # --- the town agents (镇代办员): escalated cases (上报件) ---------------------------------------

        @consume(settings, "escalations")
        def on_escalation(self, tx, message: Message):
            """Escalated work after a town's 初审 (to relay), or a city department's decision (to bring back)."""
            if message.type == "case.escalated":
                return town_agent.on_escalated(tx, message)
            if message.type == "escalation.decided":
                return town_agent.on_decided(tx, message)
            return "ignored"

        @api("GET", "/escalations", roles=ESCALATION_READERS, response=EscalationsSchema)
        def escalations(self, call: ApiCall):
            """Escalations in flight with the city's deadline and working days left, overdue first; ?status="""
            with self.platform.store.transaction() as tx:
                return EscalationsSchema().dump(town_agent.listing(tx, call.principal, call.query))

        @api("GET", "/escalations/<string:case_number>", roles=ESCALATION_READERS, response=EscalationDetailSchema)
        def escalation(self, call: ApiCall):
            """One escalation with its hops (escalated, relayed, decided, returned: who and when)."""
            with self.platform.store.transaction() as tx:
                return EscalationDetailSchema().dump(town_agent.detail(tx, call.principal,
                                                                       call.params["case_number"]))

        @api("POST", "/escalations/<string:case_number>/relay", roles=TOWN_AGENTS, response=EscalationDetailSchema)
        def relay_escalation(self, call: ApiCall):
            """报送: the work to the city department(s); once (409 again)."""
            with self.platform.store.transaction() as tx:
                return EscalationDetailSchema().dump(town_agent.relay(tx, call.principal,
                                                                      call.params["case_number"]))

        @api("POST", "/escalations/<string:case_number>/return", roles=TOWN_AGENTS, response=EscalationDetailSchema)
        def return_escalation(self, call: ApiCall):
            """The city's decision back to the town's ledger; only once decided (409 before)."""
            with self.platform.store.transaction() as tx:
                return EscalationDetailSchema().dump(town_agent.return_(tx, call.principal,
                                                                        call.params["case_number"]))

    return AgentService
