"""Approval: one department's back office (后台审批). Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message, rk_completed, rk_routed
from shared.platform import Platform, consume
from shared.web import ApiCall, PlatformEndpoints, api

from services.approval.desk import Desk
from services.approval.schemas import DecisionSchema

VERSIONS = Path(__file__).parent / "migrations" / "versions"
READERS = ("approver", "department_head", "supervisor", "city_admin", "service")


def build_service(settings: Settings, clock: Clock | None = None):
    if not settings.department:
        raise ValueError("approval needs its department code (TONGBAN_DEPARTMENT)")
    desk = Desk(department=settings.department, instance=settings.instance, clock=clock or Clock())

    class ApprovalService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS)

        @consume(settings, "work", [rk_routed(settings.department, "*")], work=True)
        def on_routed(self, tx, message: Message):
            """A case routed to this department (town offices and the city bureau alike)."""
            return desk.receive(tx, message)

        @consume(settings, "closures", [rk_completed("*")])
        def on_case_completed(self, tx, message: Message):
            """A case closed elsewhere: withdraw this department's open work on it."""
            return desk.on_case_completed(tx, message)

        @api("GET", "/work-items", roles=READERS)
        def worklist(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return desk.worklist(tx, call.principal, call.query)

        @api("GET", "/work-items/<int:item_id>", roles=READERS)
        def get_item(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                item = desk.visible_item(tx, call.principal, call.params["item_id"])
                return {**desk.view(item), "history": desk.history(tx, item)}

        @api("POST", "/work-items/<int:item_id>/decision", roles=("approver", "department_head"),
             schema=DecisionSchema)
        def decide(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                item = desk.decide(tx, call.principal, call.params["item_id"], call.body)
                return desk.view(item)

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"))
        def stats(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return desk.stats(tx)

    ApprovalService.desk = desk
    return ApprovalService
