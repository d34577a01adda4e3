"""Intake: the window at one town centre (前台综合受理), owner of the case ledger. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from nameko.timer import timer
from werkzeug.wrappers import Response

from services.intake import views
from services.intake.metrics import WindowMetrics
from services.intake.schemas import (
    CaseDetailSchema,
    CaseListQuerySchema,
    CaseListSchema,
    CatalogItemQuerySchema,
    CatalogItemSchema,
    CatalogQuerySchema,
    CatalogSchema,
    ExtensionSchema,
    HandledCaseSchema,
    IssuedQueryCodeSchema,
    LedgerCheckSchema,
    LookupSchema,
    MaterialsSchema,
    NoticePrintSchema,
    PageQuerySchema,
    PauseSchema,
    PublicProgressSchema,
    ReasonSchema,
    StatsSchema,
    SubmitCaseSchema,
    TransferListSchema,
)
from services.intake.usecases import Window
from shared import s10
from shared.bus import Topology
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.errors import NotVisible
from shared.platform import Platform, consume
from shared.reference import Reference
from shared.web import NO_CATALOGUE_YET, ApiCall, PlatformEndpoints, ServiceUnavailable, api

VERSIONS = Path(__file__).parent / "migrations" / "versions"
WINDOW = ("clerk", "service")
READERS = ("clerk", "town_agent", "supervisor", "service", "city_admin")
SUPERVISORS = ("supervisor", "department_head", "city_admin")
EVERYONE = ("clerk", "approver", "department_head", "agent", "town_agent", "supervisor", "city_admin", "service")


def build_service(settings: Settings, clock: Clock | None = None):
    if not settings.town:
        raise ValueError("intake needs its town code (TONGBAN_TOWN)")
    # the catalogue and calendar: every version from the reference stream, kept in this instance's database
    reference = Reference(settings, needs_catalog=True, on_calendar=lambda store: _recount(store))
    window = Window(
        town=settings.town, instance=settings.instance,
        catalogs=reference.catalogs,
        calendar=reference.calendar,  # updated in place when a year's holidays arrive
        clock=clock or Clock(),
        work_exchange=Topology.of(settings).work.name,
        # the EMS waybill numbers EMS assigned this centre (TONGBAN_WAYBILL_RANGES); unset: the town's default
        waybill_ranges=s10.parse_ranges(settings.extra["waybill_ranges"]) if settings.extra.get("waybill_ranges")
        else None,
        portal_url=settings.extra.get("portal_url"),  # TONGBAN_PORTAL_URL: the QR code on notices points there
    )

    def _recount(store):
        """City IT loaded a year's holidays: deadlines counted on a guessed calendar are counted again."""
        with store.transaction() as tx:
            window.recompute_provisional(tx)

    def _require_catalogue():
        if not reference.catalogs.ready:
            raise ServiceUnavailable("no item catalogue has been loaded on this deployment yet: new cases cannot "
                                     "be accepted until city IT loads one (tongban catalog load FILE)")

    def step(name: str, schema=None, roles=WINDOW):
        """The POST /cases/<n>/<name> endpoints all read the same way, and answer with the case."""
        return api("POST", f"/cases/<string:case_number>/{name}", roles=roles, schema=schema,
                   response=CaseDetailSchema)

    class IntakeService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS, reference=reference)
        window_metrics = WindowMetrics(window)

        @api("POST", "/cases", roles=WINDOW, schema=SubmitCaseSchema, response=CaseDetailSchema,
             answers=NO_CATALOGUE_YET)
        def submit_case(self, call: ApiCall):
            """Open a case: accepted, accepted with materials to follow, returned, or a consultation record."""
            window.require_town_scope(call.principal)
            _require_catalogue()
            view, created = window.submit_once(self.platform.store, call.body, call.principal,
                                               request_key=call.headers.get("Idempotency-Key"),
                                               view=lambda tx, case: {**views.case_view(window, tx, case),
                                                                      **views.issued_query_code(window, case)})
            return (201 if created else 200), view

        @api("POST", "/cases/<string:case_number>/query-code", roles=WINDOW, response=IssuedQueryCodeSchema)
        def reissue_query_code(self, call: ApiCall):
            """A new 查询码 for the applicant (the notice was lost): the old one stops working."""
            with self.platform.store.transaction() as tx:
                case = window.case_for_step(tx, call.principal, call.params["case_number"])
                case = window.reissue_query_code(tx, case, call.principal.subject)
                return {"case_number": case.case_number, **views.issued_query_code(window, case)}

        @api("POST", "/public/lookup", roles=("service",), schema=LookupSchema, response=PublicProgressSchema)
        def public_lookup(self, call: ApiCall):
            """The applicant's lookup, for the portal: status, promised date, next step; 404 alike for an unknown
            case and a wrong code."""
            with self.platform.store.transaction() as tx:
                return window.lookup(tx, call.body["case_number"], call.body["query_code"])

        @step("supplement", MaterialsSchema)
        def supplement(self, call: ApiCall):
            """补正: missing materials arrive; when all are there the clock starts."""
            return self._act(call, window.supplement, call.body["materials"])

        @step("return", ReasonSchema)
        def return_case(self, call: ApiCall):
            """不予受理 / 退回, with the reason in writing."""
            return self._act(call, window.return_case, call.body["reason"])

        @step("review", ReasonSchema)
        def request_review(self, call: ApiCall):
            """复核 of a returned case: a linked case for the department head."""
            return self._act(call, window.request_review, call.body["reason"])

        @step("initial-review", roles=("clerk", "town_agent", "service"))
        def pass_initial_review(self, call: ApiCall):
            """初审 passed: an escalated case leaves the town for the city department."""
            return self._act(call, window.pass_initial_review)

        @step("pause", PauseSchema, roles=WINDOW + SUPERVISORS)
        def pause(self, call: ApiCall):
            """特别程序 starts: the clock stops."""
            return self._act(call, window.pause, call.body["procedure"], call.body["reason"])

        @step("resume", roles=WINDOW + SUPERVISORS)
        def resume(self, call: ApiCall):
            """特别程序 ends: the deadline moves by the working days it took."""
            return self._act(call, window.resume)

        @step("extension", ExtensionSchema, roles=SUPERVISORS)
        def extend(self, call: ApiCall):
            """延期, at most once, with a reason; the caller (a supervisor or department head) approves it."""
            return self._act(call, window.extend, call.body["days"], call.body["reason"])

        @step("deferred", MaterialsSchema)
        def deliver_deferred(self, call: ApiCall):
            """容缺: a material promised at acceptance arrives."""
            return self._act(call, window.deliver_deferred, call.body["materials"])

        @api("GET", "/cases/<string:case_number>", roles=READERS, response=(CaseDetailSchema, HandledCaseSchema))
        def get_case(self, call: ApiCall):
            """A case with its deadline, departments' progress, notices and full timeline.

            A case another town's centre accepted that this town handles (全城通办) answers as that centre
            last told: `responsibility: handling`, the accepting centre named."""
            with self.platform.store.transaction() as tx:
                return views.case_detail(window, tx, call.principal, call.params["case_number"])

        @api("GET", "/cases", roles=READERS, response=CaseListSchema, query=CaseListQuerySchema)
        def list_cases(self, call: ApiCall):
            """Cases filtered by status, kind, item, due date (due_by) and overdue; numbers masked."""
            with self.platform.store.transaction() as tx:
                return views.case_list(window, tx, call.principal, call.query)

        @api("GET", "/transfers", roles=READERS + ("approver", "department_head"), response=TransferListSchema,
             query=PageQuerySchema)
        def list_transfers(self, call: ApiCall):
            """Cases other towns' centres accepted that this town's department offices handle (全城通办), by status."""
            with self.platform.store.transaction() as tx:
                return views.transfer_list(window, tx, call.principal, call.query)

        @api("GET", "/cases/<string:case_number>/notices/<int:notice_id>.pdf", roles=READERS,
             response="application/pdf")
        def notice_pdf(self, call: ApiCall):
            """A notice as a printable PDF (application/pdf)."""
            with self.platform.store.transaction() as tx:
                pdf = views.notice_pdf(window, tx, call.principal, call.params["case_number"],
                                       call.params["notice_id"])
            return Response(pdf, status=200, mimetype="application/pdf")

        @api("POST", "/cases/<string:case_number>/notices/<int:notice_id>.pdf", roles=READERS,
             schema=NoticePrintSchema, response="application/pdf")
        def notice_pdf_with_code(self, call: ApiCall):
            """A notice as a printable PDF with the 查询码 just issued printed on it (checked against the case)."""
            with self.platform.store.transaction() as tx:
                pdf = views.notice_pdf(window, tx, call.principal, call.params["case_number"],
                                       call.params["notice_id"], query_code=call.body["query_code"])
            return Response(pdf, status=200, mimetype="application/pdf")

        @api("GET", "/catalog", roles=EVERYONE, response=CatalogSchema, query=CatalogQuerySchema,
             answers=NO_CATALOGUE_YET)
        def catalog(self, call: ApiCall):
            """The item catalogue in force (事项目录)."""
            _require_catalogue()
            c = window.catalog
            q = call.query
            items = [i for i in c.items.values()
                     if all(not q.get(k) or i[k] == q[k] for k in ("kind", "category", "department", "level"))]
            return {"version": c.version,
                    "items": [{k: i[k] for k in (
                "code", "name", "category", "item_type", "department", "level", "kind", "promised_days",
                "statutory_days", "fee_fen", "in_person", "agent_allowed", "city_wide")} for i in items],
                    # the towns and departments by name, for a form's household town (全城通办) and a case's page
                    "towns": [{"code": t["code"], "name": t["name"]} for t in c.data["towns"]],
                    "departments": [{"code": d["code"], "name": d["name"]} for d in c.data["departments"]]}

        @api("GET", "/catalog/items/<string:code>", roles=EVERYONE, response=CatalogItemSchema,
             query=CatalogItemQuerySchema, answers=NO_CATALOGUE_YET)
        def catalog_item(self, call: ApiCall):
            """One item with its materials, limits and fee."""
            version = call.query.get("version")
            if version and version not in window.catalogs.versions():
                raise NotVisible(f"no catalogue version {version}")
            if not version:
                _require_catalogue()
            c = window.catalogs.get(version) if version else window.catalog
            item = c.item(call.params["code"])
            if item is None:
                raise NotVisible(f"no item {call.params['code']} in catalogue {c.version}")
            return {"version": c.version, **item}

        @api("GET", "/ledger/verify", roles=("supervisor", "city_admin", "service"), response=LedgerCheckSchema)
        def verify(self, call: ApiCall):
            """Recompute the hash chain of every case's history (this town's users and the city's)."""
            with self.platform.store.transaction() as tx:
                return views.ledger_check(window, tx, call.principal)

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"), response=StatsSchema)
        def stats(self, call: ApiCall):
            """The centre's figures: cases by status and kind, outcomes (this town's users and the city's)."""
            with self.platform.store.transaction() as tx:
                return views.stats(window, tx, call.principal)

        @consume(settings, "decisions")
        def on_department_message(self, tx, message: Message):
            """A department decided (close the case when every department has) or asks for a step; the
            town agent relayed an escalated case's work, or brought the city's decision back."""
            if message.type == "case.department":
                return window.on_department_step(tx, message)
            if message.type == "escalation.relayed":
                return window.record_relay(tx, message)
            if message.type == "escalation.returned":
                return window.apply_returned(tx, message)
            return window.apply_decision(tx, message)

        @consume(settings, "arrivals")
        def on_arrival(self, tx, message: Message):
            """报送: a village station of this town relays a submission, which becomes a case here; or 全城通办:
            another centre accepted a case this town handles, or it changed there."""
            if message.type == "station.submitted":
                return window.on_station_submission(tx, message)
            return window.on_transfer(tx, message)

        @timer(interval=settings.extra.get("served_refresh_seconds", 5), eager=True)
        def refresh_served(self):
            """Which departments an approval instance serves now: a case for one nobody serves is flagged."""
            self.window_metrics.refresh_served()

        def _act(self, call: ApiCall, step, *args):
            """A step at the window: the caller's case of this centre, the step, the case as it is now."""
            with self.platform.store.transaction() as tx:
                case = window.case_for_step(tx, call.principal, call.params["case_number"])
                case = step(tx, case, call.principal.subject, *args)
                return views.case_view(window, tx, case, with_history=True)

    IntakeService.window = window
    return IntakeService

