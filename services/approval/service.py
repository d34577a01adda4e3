"""Approval: one department's back office (后台审批). Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from services.approval.metrics import DeskMetrics
from services.approval.schemas import (
    AbsenceSchema,
    AbsenceViewSchema,
    DecisionSchema,
    ExtensionRequestSchema,
    HandoversSchema,
    MaterialsRequestSchema,
    PostSchema,
    PostsSchema,
    PostViewSchema,
    ProcedureEndSchema,
    ProcedureSchema,
    StatsSchema,
    WorkItemDetailSchema,
    WorklistQuerySchema,
    WorklistSchema,
)
from services.approval.usecases import Desk
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.reference import Reference
from shared.web import ApiCall, PlatformEndpoints, api

VERSIONS = Path(__file__).parent / "migrations" / "versions"
READERS = ("approver", "department_head", "supervisor", "city_admin", "service")
ACTORS = ("approver", "department_head")
MANAGERS = ("department_head", "city_admin")


def build_service(settings: Settings, clock: Clock | None = None):
    if not settings.department:
        raise ValueError("approval needs its department code (TONGBAN_DEPARTMENT)")
    # the working calendar: every year's holidays from the reference stream, kept in this instance's database
    reference = Reference(settings, needs_catalog=False)
    desk = Desk(department=settings.department, instance=settings.instance, clock=clock or Clock(),
                calendar=reference.calendar)  # updated in place when a year's holidays arrive

    class ApprovalService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS, reference=reference)
        desk_metrics = DeskMetrics(desk)

        @consume(settings, "work")
        def on_routed(self, tx, message: Message):
            """A case routed to this department (town offices and the city bureau alike)."""
            return desk.receive(tx, message)

        @consume(settings, "closures")
        def on_case_completed(self, tx, message: Message):
            """A case closed elsewhere: withdraw this department's open work on it."""
            return desk.on_case_completed(tx, message)

        @consume(settings, "refusals")
        def on_step_refused(self, tx, message: Message):
            """The centre's ledger refused a step this department asked for: the work item shows why."""
            return desk.on_step_refused(tx, message)

        @consume(settings, "deadlines")
        def on_deadline_moved(self, tx, message: Message):
            """The centre's ledger moved the deadline of this department's open work: the item follows it."""
            return desk.on_deadline_moved(tx, message)

        # --- the worklist ---------------------------------------------------------------------------

        @api("GET", "/work-items", roles=READERS, response=WorklistSchema, query=WorklistQuerySchema)
        def worklist(self, call: ApiCall):
            """Open work by urgency (working days left); paused items apart.

            Query: ?status=open|all|<s>[,<s>]&assignee=me|none|<id>"""
            with self.platform.store.transaction() as tx:
                return desk.worklist(tx, call.principal, call.query)

        @api("GET", "/work-items/<int:item_id>", roles=READERS, response=WorkItemDetailSchema)
        def get_item(self, call: ApiCall):
            """One work item with its extension and history."""
            with self.platform.store.transaction() as tx:
                return desk.detail(tx, desk.visible_item(tx, call.principal, call.params["item_id"]))

        @api("POST", "/work-items/<int:item_id>/claim", roles=ACTORS, response=WorkItemDetailSchema)
        def claim(self, call: ApiCall):
            """Take an unassigned item, or one whose holder is away."""
            return self._step(call, desk.claim)

        @api("POST", "/work-items/<int:item_id>/decision", roles=ACTORS, schema=DecisionSchema,
             response=WorkItemDetailSchema)
        def decide(self, call: ApiCall):
            """Approve (with the document number and validity) or refuse (with the reason)."""
            return self._step(call, desk.decide, call.body)

        @api("POST", "/work-items/<int:item_id>/materials", roles=ACTORS, schema=MaterialsRequestSchema,
             response=WorkItemDetailSchema)
        def request_materials(self, call: ApiCall):
            """Ask for more materials, all at once: the case goes back to the window, the clock stops."""
            return self._step(call, desk.request_materials, call.body)

        @api("POST", "/work-items/<int:item_id>/procedure", roles=ACTORS, schema=ProcedureSchema,
             response=WorkItemDetailSchema)
        def start_procedure(self, call: ApiCall):
            """Start a special procedure (特别程序): the item and the case's clock pause."""
            return self._step(call, desk.start_procedure, call.body)

        @api("POST", "/work-items/<int:item_id>/procedure/end", roles=ACTORS, schema=ProcedureEndSchema,
             response=WorkItemDetailSchema)
        def end_procedure(self, call: ApiCall):
            """End the special procedure: the clock runs again."""
            return self._step(call, desk.end_procedure, call.body)

        @api("POST", "/work-items/<int:item_id>/extension", roles=ACTORS, schema=ExtensionRequestSchema,
             response=WorkItemDetailSchema)
        def request_extension(self, call: ApiCall):
            """Ask for the one extension (延期); the department head approves it."""
            return self._step(call, desk.request_extension, call.body)

        @api("POST", "/work-items/<int:item_id>/extension/approve", roles=("department_head",),
             response=WorkItemDetailSchema)
        def approve_extension(self, call: ApiCall):
            """The department head approves the extension: the centre moves the deadline."""
            return self._step(call, desk.approve_extension)

        def _step(self, call: ApiCall, use_case, *args):
            with self.platform.store.transaction() as tx:
                item = use_case(tx, call.principal, call.params["item_id"], *args)
                return desk.detail(tx, item)

        # --- AB posts (AB岗) ------------------------------------------------------------------------

        @api("GET", "/posts", roles=READERS, response=PostsSchema)
        def list_posts(self, call: ApiCall):
            """The AB posts of the offices in scope, who is on duty and who is away."""
            with self.platform.store.transaction() as tx:
                return desk.posts(tx, call.principal)

        @api("PUT", "/posts/<office>", roles=MANAGERS, schema=PostSchema, response=PostViewSchema)
        def set_post(self, call: ApiCall):
            """Set an office's A and B holders and the head who falls back (office: town code or 'city')."""
            with self.platform.store.transaction() as tx:
                return desk.set_post(tx, call.principal, call.params["office"], call.body)

        @api("POST", "/posts/<office>/absences", roles=MANAGERS, schema=AbsenceSchema,
             response=AbsenceViewSchema)
        def add_absence(self, call: ApiCall):
            """Mark a holder away for a period (leave, training, meeting); their open work moves on."""
            with self.platform.store.transaction() as tx:
                return 201, desk.add_absence(tx, call.principal, call.params["office"], call.body)

        @api("GET", "/posts/<office>/handovers", roles=READERS, response=HandoversSchema)
        def handovers(self, call: ApiCall):
            """Every handover of the office's work: who, from whom, when, why."""
            with self.platform.store.transaction() as tx:
                return desk.handovers(tx, call.principal, call.params["office"])

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"), response=StatsSchema)
        def stats(self, call: ApiCall):
            """The department's figures (city-wide readers only: the figures cover every office)."""
            with self.platform.store.transaction() as tx:
                return desk.stats(tx, call.principal)

    ApprovalService.desk = desk
    return ApprovalService
