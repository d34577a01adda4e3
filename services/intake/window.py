"""The window's use cases: each runs inside one transaction (ledger change + outgoing messages)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from shared import auth
from shared.catalog import SAMPLE_CATALOG, Catalog
from shared.clock import Clock
from shared.contracts import (Message, make_message, rk_accepted, rk_completed, rk_routed)
from shared.logging import bind_context, get_logger
from shared.pii import mask_phone, mask_resident_id, normalise_resident_id
from shared.store import Tx
from shared.web import BadRequest, Conflict, Forbidden, NotFound
from shared.workdays import WorkingCalendar

from services.intake import domain
from services.intake.models import Case, Ledger

DEFAULT_CATALOG = SAMPLE_CATALOG
log = get_logger(__name__)


@dataclass
class Window:
    town: str
    instance: str
    catalog: Catalog
    calendar: WorkingCalendar
    clock: Clock

    # --- access -----------------------------------------------------------------------------

    def require_town_scope(self, principal: auth.Principal) -> None:
        if not auth.can_see_town(principal, self.town):
            raise Forbidden(f"scope {principal.scope} does not cover town {self.town}")

    def visible_case(self, tx: Tx, principal: auth.Principal, case_number: str) -> Case:
        case = Ledger(tx.session).get(case_number)
        if case is None:
            raise NotFound(f"no case {case_number}")
        if not (auth.can_see_town(principal, case.accepting_town)
                or auth.can_see_town(principal, case.handling_town)):
            raise Forbidden(f"case {case_number} is outside scope {principal.scope}")
        return case

    # --- accept -------------------------------------------------------------------------------

    def accept(self, tx: Tx, body: dict, principal: auth.Principal, request_key: str | None) -> tuple[Case, bool]:
        repo = Ledger(tx.session)
        if request_key:
            existing = repo.by_request_key(self._scoped_key(principal, request_key))
            if existing is not None:  # the same request again: answer it, change nothing
                return existing, False
        item = self.catalog.item(body["item_code"])
        if item is None:
            raise BadRequest(f"unknown item {body['item_code']!r}", {"item_code": ["not in the catalogue"]})
        if item["kind"] not in ("instant", "promised"):
            raise BadRequest(f"item {item['code']} is a {item['kind']} item, not handled at this window yet")
        unknown = domain.unknown_materials(item, body["materials"])
        if unknown:
            raise BadRequest("materials not listed for this item", {"materials": unknown})
        missing = domain.missing_materials(item, body["materials"])
        if missing:
            raise BadRequest("required materials are missing (一次性告知)", {"missing": missing})

        now = self.clock.now()
        today = self.clock.today()
        due = domain.deadline(item, today, self.calendar)
        number = repo.next_case_number(self.town, today)
        bind_context(case_number=number, town=self.town, department=item["department"])
        applicant = body["applicant"]
        responder = body.get("first_responder") or principal.subject
        case = Case(
            case_number=number, version=1, accepting_town=self.town,
            handling_town=domain.handling_town(item, self.town), item_code=item["code"],
            item_name=item["name"], catalog_version=self.catalog.version, kind=domain.case_kind(item),
            department=item["department"], status=domain.next_status(None, "accept"),
            applicant_name=applicant["name"], applicant_id=normalise_resident_id(applicant["id_number"]),
            applicant_phone=applicant["phone"], contact_channel=applicant["channel"],
            first_responder=responder, via_agent=body.get("via_agent"), accepted_at=now, accepted_on=today,
            deadline=due.date, deadline_provisional=due.provisional,
            request_key=self._scoped_key(principal, request_key) if request_key else None,
        )
        repo.add(case)
        repo.append(case, "accept", principal.subject, now, f"{number}:accept",
                    data={"item_code": item["code"], "deadline": due.date.isoformat(),
                          "materials": sorted(body["materials"])})
        common = {"accepting_town": self.town, "handling_town": case.handling_town, "item_code": item["code"],
                  "item_name": item["name"], "department": item["department"], "kind": case.kind,
                  "deadline": due.date}
        tx.publish(self._message("case.accepted", case, {
            **common, "first_responder": responder, "via_agent": case.via_agent,
            "contact": {"name": applicant["name"], "phone": applicant["phone"], "channel": applicant["channel"],
                        "email": applicant.get("email")}}), rk_accepted(self.town))
        tx.publish(self._message("case.routed", case, {**common, "auto_decide": bool(item["auto_decide"])}),
                   rk_routed(item["department"], case.handling_town))
        log.info("case.accepted", item=item["code"], kind=case.kind, deadline=due.date.isoformat(),
                 provisional=due.provisional)
        return case, True

    # --- decisions ------------------------------------------------------------------------------

    def apply_decision(self, tx: Tx, message: Message) -> str:
        repo = Ledger(tx.session)
        case = repo.get(message.case_number, for_update=True)
        if case is None or case.accepting_town != self.town:
            log.error("decision.unknown_case", case_number=message.case_number)
            return "unknown_case"
        p = message.payload
        decision = domain.Decision(p["outcome"], p.get("reason"), p.get("result_number"), message.case_version)
        if case.status != "in_review" or not domain.decision_is_current(case.version, decision):
            log.warning("decision.stale", case_version=case.version, decided_on=message.case_version,
                        status=case.status)
            return "stale"
        now = self.clock.now()
        today = self.clock.today()
        case.status = domain.next_status(case.status, "decide")
        case.outcome, case.reason, case.result_number = decision.outcome, decision.reason, decision.result_number
        case.completed_on = today
        case.version += 1
        repo.append(case, "decide", p["decided_by"], now, f"{case.case_number}:decide:{message.message_id}",
                    reason=decision.reason, data={"outcome": decision.outcome, "department": p["department"],
                                                  "result_number": decision.result_number})
        tx.publish(self._message("case.completed", case, {
            "accepting_town": self.town, "department": case.department, "item_name": case.item_name,
            "kind": case.kind, "outcome": case.outcome, "reason": case.reason,
            "result_number": case.result_number, "completed_on": today, "deadline": case.deadline,
            "on_time": today <= case.deadline, "via_agent": case.via_agent}), rk_completed(self.town))
        log.info("case.completed", outcome=case.outcome)
        return "ok"

    # --- reading --------------------------------------------------------------------------------

    def view(self, tx: Tx, case: Case, with_history: bool = False) -> dict:
        out = {
            "case_number": case.case_number, "version": case.version, "status": case.status,
            "kind": case.kind, "item_code": case.item_code, "item_name": case.item_name,
            "catalog_version": case.catalog_version, "department": case.department,
            "accepting_town": case.accepting_town, "handling_town": case.handling_town,
            "applicant": {"name": case.applicant_name, "id_number": mask_resident_id(case.applicant_id),
                          "phone": mask_phone(case.applicant_phone)},
            "first_responder": case.first_responder, "accepted_at": case.accepted_at,
            "deadline": case.deadline, "deadline_provisional": case.deadline_provisional,
            "outcome": case.outcome, "reason": case.reason, "result_number": case.result_number,
            "completed_on": case.completed_on,
        }
        if with_history:
            out["history"] = [{"seq": a.seq, "action": a.action, "actor": a.actor, "at": a.at,
                               "reason": a.reason, "data": a.data} for a in Ledger(tx.session).history(case.case_number)]
        return out

    def list(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        towns = None if principal.scope.kind == "city" else {self.town}
        if towns and not auth.can_see_town(principal, self.town):
            raise Forbidden(f"scope {principal.scope} does not cover town {self.town}")
        try:
            limit = min(int(query.get("limit", 100)), 500)
            offset = max(int(query.get("offset", 0)), 0)
        except ValueError:
            raise BadRequest("limit and offset must be integers") from None
        cases = Ledger(tx.session).list(towns, status=query.get("status"), kind=query.get("kind"),
                                        item_code=query.get("item_code"), limit=limit, offset=offset)
        return {"cases": [self.view(tx, c) for c in cases], "limit": limit, "offset": offset}

    def stats(self, tx: Tx) -> dict:
        return {"town": self.town, **Ledger(tx.session).counts()}

    # --- helpers --------------------------------------------------------------------------------

    def _message(self, type_: str, case: Case, payload: dict) -> Message:
        return make_message(type_, case.case_number, case.version, payload, producer=self.instance,
                            occurred_at=self.clock.now())

    @staticmethod
    def _scoped_key(principal: auth.Principal, key: str) -> str:
        # keys are the client's; scope them to the user so two clients cannot collide
        return hashlib.sha256(f"{principal.subject}:{key}".encode()).hexdigest()[:64]
