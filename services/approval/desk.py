"""The department desk's use cases; each runs inside one transaction."""
from __future__ import annotations

from dataclasses import dataclass

from shared import auth
from shared.clock import Clock
from shared.contracts import Message, make_message, rk_decided
from shared.logging import bind_context, get_logger
from shared.store import Tx
from shared.web import BadRequest, Conflict, Forbidden, NotFound

from services.approval import domain
from services.approval.models import WorkItem, WorkItems

log = get_logger(__name__)
SYSTEM_ACTOR = "rule:instant"


@dataclass
class Desk:
    department: str
    instance: str
    clock: Clock

    def receive(self, tx: Tx, message: Message) -> str:
        """Work routed to this department: a work item, decided at once where the catalogue says so."""
        p = message.payload
        repo = WorkItems(tx.session)
        if repo.find(message.case_number, message.case_version, self.department):
            return "duplicate"
        now = self.clock.now()
        item = WorkItem(case_number=message.case_number, case_version=message.case_version,
                        department=self.department, handling_town=p["handling_town"],
                        accepting_town=p["accepting_town"], item_code=p["item_code"], item_name=p["item_name"],
                        kind=p["kind"], deadline=p["deadline"], status="pending", received_at=now)
        repo.add(item)
        repo.log(item, "receive", "system", now, f"{item.id}:receive:{message.message_id}")
        if p["auto_decide"]:
            self._decide(tx, item, "approved", None, domain.result_number(self.department, item.case_number),
                         SYSTEM_ACTOR)
        return "ok"

    def on_case_completed(self, tx: Tx, message: Message) -> str:
        """The case closed (e.g. another department of a joint case refused): what is still open here is moot."""
        repo = WorkItems(tx.session)
        open_items = repo.open_for_case(message.case_number, self.department)
        now = self.clock.now()
        for item in open_items:
            item.status = "withdrawn"
            repo.log(item, "withdraw", "system", now, f"{item.id}:withdraw",
                     reason=f"case closed: {message.payload['outcome']}")
        return "ok" if open_items else "not_ours"

    def decide(self, tx: Tx, principal: auth.Principal, item_id: int, body: dict) -> WorkItem:
        item = self.visible_item(tx, principal, item_id)
        try:
            domain.check_decision(item.status, body["outcome"], body.get("reason"))
        except domain.AlreadyDecided as exc:
            raise Conflict(str(exc), {"outcome": item.outcome, "decided_by": item.decided_by}) from None
        except domain.DecisionRejected as exc:
            raise BadRequest(str(exc)) from None
        number = body.get("result_number")
        if body["outcome"] == "approved" and not number:
            number = domain.result_number(self.department, item.case_number)
        self._decide(tx, item, body["outcome"], body.get("reason"), number, principal.subject)
        return item

    def _decide(self, tx: Tx, item: WorkItem, outcome: str, reason: str | None, number: str | None,
                actor: str) -> None:
        bind_context(case_number=item.case_number, department=self.department, town=item.handling_town)
        now = self.clock.now()
        item.status, item.outcome, item.reason = "decided", outcome, reason
        item.result_number = number if outcome == "approved" else None
        item.decided_by, item.decided_at = actor, now
        WorkItems(tx.session).log(item, "decide", actor, now, f"{item.id}:decide", reason=reason,
                                  data={"outcome": outcome, "result_number": item.result_number})
        tx.publish(make_message("case.decided", item.case_number, item.case_version, {
            "accepting_town": item.accepting_town, "handling_town": item.handling_town,
            "department": self.department, "outcome": outcome, "reason": reason,
            "result_number": item.result_number, "decided_by": actor, "work_item_id": item.id,
        }, producer=self.instance, occurred_at=now), rk_decided(self.department, item.accepting_town))
        log.info("work.decided", outcome=outcome, actor=actor)

    # --- reading --------------------------------------------------------------------------------

    def _may_see(self, principal: auth.Principal, item: WorkItem) -> bool:
        town = None if item.handling_town == "city" else item.handling_town
        if principal.role in ("supervisor", "city_admin", "service") and principal.scope.kind == "city":
            return True
        return auth.can_act_for_department(principal, self.department, town)

    def visible_item(self, tx: Tx, principal: auth.Principal, item_id: int) -> WorkItem:
        item = WorkItems(tx.session).get(item_id)
        if item is None:
            raise NotFound(f"no work item {item_id}")
        if not self._may_see(principal, item):
            raise Forbidden(f"work item {item_id} is outside scope {principal.scope}")
        return item

    def worklist(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        scope = principal.scope
        if scope.kind == "city" and principal.role in ("supervisor", "city_admin", "service"):
            towns = None
        elif scope.kind == "department" and scope.department == self.department:
            towns = {scope.town} if scope.town else {"city"}
        else:
            raise Forbidden(f"scope {scope} does not cover department {self.department}")
        try:
            limit = min(int(query.get("limit", 100)), 500)
        except ValueError:
            raise BadRequest("limit must be an integer") from None
        items = WorkItems(tx.session).worklist(towns, query.get("status", "pending") or None, limit)
        return {"department": self.department, "items": [self.view(i) for i in items]}

    @staticmethod
    def view(item: WorkItem) -> dict:
        return {"id": item.id, "case_number": item.case_number, "case_version": item.case_version,
                "item_code": item.item_code, "item_name": item.item_name, "kind": item.kind,
                "handling_town": item.handling_town, "accepting_town": item.accepting_town,
                "deadline": item.deadline, "status": item.status, "outcome": item.outcome,
                "reason": item.reason, "result_number": item.result_number, "decided_by": item.decided_by,
                "decided_at": item.decided_at}

    def history(self, tx: Tx, item: WorkItem) -> list[dict]:
        return [{"action": a.action, "actor": a.actor, "at": a.at, "reason": a.reason, "data": a.data}
                for a in WorkItems(tx.session).history(item.id)]

    def stats(self, tx: Tx) -> dict:
        return {"department": self.department, **WorkItems(tx.session).counts()}
