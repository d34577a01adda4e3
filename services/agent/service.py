"""Agent: village stations (代办点) and town agents relaying escalations. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from werkzeug.wrappers import Response

from services.agent import views
from services.agent.schemas import (
    AgentStatsSchema,
    EscalationDetailSchema,
    EscalationsQuerySchema,
    EscalationsSchema,
    RecordReplySchema,
    RepliesQuerySchema,
    RepliesSchema,
    ReplySchema,
    StationHelpSchema,
    StationServiceSchema,
    StationServicesQuerySchema,
    StationServicesSchema,
    StationSubmissionSchema,
    VillageReportSchema,
)
from services.agent.usecases import Station, TownAgent, record_view
from shared.bus import Topology
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.reference import Reference
from shared.schemas import TableQuerySchema
from shared.tables import FORMATS as TABLE_FORMATS
from shared.web import NO_CATALOGUE_YET, ApiCall, BadRequest, PlatformEndpoints, ServiceUnavailable, api

VERSIONS = Path(__file__).parent / "migrations" / "versions"
TOWN_AGENTS = ("town_agent", "service")  # who relays and returns (a town's agent; the demo's driver)
ESCALATION_READERS = ("town_agent", "supervisor", "service", "city_admin")
# the station's log: the agent their own, a town's users their villages', the city all
STATION_READERS = ("agent", "clerk", "town_agent", "supervisor", "city_admin", "service")
IDEMPOTENCY_KEY_MAX = 200


def build_service(settings: Settings, clock: Clock | None = None):
    # the catalogue (what a station may submit, at what level, for what fee) and the calendar (the city's
    # deadlines of escalations): every version from the reference stream, kept in this service's database
    reference = Reference(settings, needs_catalog=True)
    station = Station(clock=clock or Clock(), catalogs=reference.catalogs, instance=settings.instance)
    town_agent = TownAgent(clock=station.clock, calendar=reference.calendar, instance=settings.instance,
                           work_exchange=Topology.of(settings).work.name)

    def _serve(service, call: ApiCall, step):
        """A station's service from the client's request: once per Idempotency-Key, however often sent."""
        key = call.headers.get("Idempotency-Key")
        if not key or len(key) > IDEMPOTENCY_KEY_MAX:
            raise BadRequest(f"an Idempotency-Key header (1-{IDEMPOTENCY_KEY_MAX} characters) is required: "
                             "the client makes one per service, and sends it again with every retry")
        if not reference.catalogs.ready:
            raise ServiceUnavailable("no item catalogue has been loaded on this deployment yet")
        view, created = station.serve_once(service.platform.store, step, call.body, call.principal, key,
                                           view=lambda tx, record: StationServiceSchema().dump(record_view(record)))
        return (201 if created else 200), view

    class AgentService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS, reference=reference)

        @consume(settings, "results")
        def on_result(self, tx, message: Message):
            """Agents' cases at the towns (accepted, each step, completed) and relays the town refused; an
            escalation in flight that ended some other way (case.completed) is closed."""
            if message.type == "case.completed":
                town_agent.on_completed(tx, message)
            handler = {"case.accepted": station.on_accepted, "case.updated": station.on_updated,
                       "case.completed": station.on_completed, "station.refused": station.on_refused}.get(message.type)
            return handler(tx, message) if handler else "ignored"

        @api("GET", "/replies", roles=("agent", "supervisor", "service", "city_admin"), response=RepliesSchema,
             query=RepliesQuerySchema)
        def replies(self, call: ApiCall):
            """Replies owed to villagers, oldest first: an agent's own (and their station's), a town's, or (city
            scope) all. ?status=replied for those made, ?status=all for both."""
            status = call.query.get("status", "to_reply")
            with self.platform.store.transaction() as tx:
                return RepliesSchema().dump({"replies": station.replies(tx, call.principal,
                                                                        None if status == "all" else status)})

        @api("POST", "/replies/<string:case_number>", roles=("agent", "service"), schema=RecordReplySchema,
             response=ReplySchema)
        def record_reply(self, call: ApiCall):
            """回复: the agent who owes it (or one of their station's) records how, when and what was said."""
            with self.platform.store.transaction() as tx:
                return ReplySchema().dump(station.record_reply(tx, call.principal, call.params["case_number"],
                                                               call.body))

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"), response=AgentStatsSchema)
        def stats(self, call: ApiCall):
            """The city's figures, or the caller's town's."""
            with self.platform.store.transaction() as tx:
                return AgentStatsSchema().dump(station.stats(tx, call.principal))

        # --- village stations (村/社区便民服务站) ------------------------------------------------------

        @api("POST", "/station/submissions", roles=("agent",), schema=StationSubmissionSchema, answers=NO_CATALOGUE_YET,
             response=StationServiceSchema)
        def station_submit(self, call: ApiCall):
            """代办: a submission with the villager's authorisation: refused, done at the station, or relayed."""
            return _serve(self, call, station.submit)

        @api("POST", "/station/help", roles=("agent",), schema=StationHelpSchema, response=StationServiceSchema,
             answers=NO_CATALOGUE_YET)
        def station_help(self, call: ApiCall):
            """帮办: the villager declined to authorise; the help is logged and nothing is submitted."""
            return _serve(self, call, station.help)

        @api("GET", "/station/services", roles=STATION_READERS, response=StationServicesSchema,
             query=StationServicesQuerySchema)
        def station_services(self, call: ApiCall):
            """The station's log (服务台账), oldest first; ?month=YYYY-MM and ?status= narrow it."""
            with self.platform.store.transaction() as tx:
                return StationServicesSchema().dump({"services": station.services(tx, call.principal, call.query)})

        @api("GET", "/station/services/<string:number>", roles=STATION_READERS, response=StationServiceSchema)
        def station_service(self, call: ApiCall):
            """One service with its case's progress (case number, status, outcome) and the reply."""
            with self.platform.store.transaction() as tx:
                return StationServiceSchema().dump(station.service(tx, call.principal, call.params["number"]))

        @api("GET", "/reports/village", roles=views.REPORT_ROLES, query=TableQuerySchema,
             response=[VillageReportSchema, TABLE_FORMATS["csv"], TABLE_FORMATS["xlsx"]])
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

        @api("GET", "/escalations", roles=ESCALATION_READERS, response=EscalationsSchema,
             query=EscalationsQuerySchema)
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
