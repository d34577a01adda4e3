"""The window's use cases: each runs inside one transaction (ledger change + outgoing messages)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from sqlalchemy.exc import IntegrityError

from shared import auth
from shared.catalog import Catalog, CatalogError, CatalogStore
from shared.clock import Clock
from shared.contracts import (Message, Unacceptable, make_message, rk_accepted, rk_completed, rk_notice_issued, rk_routed,
                              rk_updated)
from shared.logging import bind_context, get_logger
from shared.pii import mask_credit_code, mask_phone, mask_resident_id, normalise_resident_id
from shared.store import Store, Tx
from shared.web import BadRequest, Conflict, Forbidden, NotFound
from shared.workdays import WorkingCalendar

from services.intake import domain, notices
from services.intake.models import Case, DepartmentDecision, Ledger, Notice

log = get_logger(__name__)


@dataclass
class Window:
    town: str
    instance: str
    catalogs: CatalogStore
    calendar: WorkingCalendar
    clock: Clock
    work_exchange: str
    window_name: str = "综合受理窗口"
    # department -> whether an approval instance consumes its work now (None until first looked at)
    served: dict[str, bool] | None = None
    unserved_cases: object = None  # a Counter by department, bound to the instance's /metrics

    @property
    def catalog(self) -> Catalog:
        return self.catalogs.active()

    def catalog_of(self, case: Case) -> Catalog:
        try:
            return self.catalogs.get(case.catalog_version)
        except CatalogError:  # the version was removed by hand: fall back rather than fail the window
            return self.catalog

    # --- access -----------------------------------------------------------------------------

    def require_town_scope(self, principal: auth.Principal) -> None:
        if not auth.can_see_town(principal, self.town):
            raise Forbidden(f"scope {principal.scope} does not cover town {self.town}")

    def visible_case(self, tx: Tx, principal: auth.Principal, case_number: str, for_update: bool = False) -> Case:
        case = Ledger(tx.session).get(case_number, for_update=for_update)
        if case is None:
            raise NotFound(f"no case {case_number}")
        if not (auth.can_see_town(principal, case.accepting_town)
                or (case.handling_town != "city" and auth.can_see_town(principal, case.handling_town))):
            raise Forbidden(f"case {case_number} is outside scope {principal.scope}")
        return case

    # --- opening a case -------------------------------------------------------------------------

    def submit(self, tx: Tx, body: dict, principal: auth.Principal, request_key: str | None) -> tuple[Case, bool]:
        """Whatever the applicant brings, the window opens a record: accepted, incomplete, returned or consulted."""
        repo = Ledger(tx.session)
        key = self._scoped_key(principal, request_key) if request_key else None
        if key:
            existing = repo.by_request_key(key)
            if existing is not None:  # the same request again: answer it, change nothing
                bind_context(case_number=existing.case_number, town=self.town, department=existing.department)
                return existing, False
        catalog = self.catalog
        item = catalog.item(body["item_code"])
        if item is None:
            raise BadRequest(f"unknown item {body['item_code']!r}", {"item_code": ["not in the catalogue"]})
        applicant = body["applicant"]
        try:
            domain.check_in_person(item, body.get("via_agent"), body.get("in_person", True))
            domain.check_city_wide(item, self.town, applicant.get("town"))
        except domain.RuleViolation as exc:
            raise BadRequest(exc.message, exc.details) from None
        unknown = domain.unknown_materials(item, body["materials"])
        if unknown:
            raise BadRequest("materials not listed for this item", {"materials": unknown})

        now, today = self.clock.now(), self.clock.today()
        missing = domain.missing_materials(item, body["materials"])
        action = "return" if body.get("return_reason") else domain.opening_action(item, missing)
        number = repo.next_case_number(self.town, today)
        bind_context(case_number=number, town=self.town, department=item["department"])
        person = applicant["type"] == "person"
        case = Case(
            case_number=number, version=1, accepting_town=self.town,
            handling_town=domain.handling_town(item, self.town, applicant.get("town")),
            item_code=item["code"], item_name=item["name"], catalog_version=catalog.version, kind=item["kind"],
            department=item["department"], departments=domain.departments(item),
            status=domain.next_status(None, action), applicant_type=applicant["type"],
            applicant_name=applicant["name"],
            applicant_id=normalise_resident_id(applicant["id_number"]) if person else applicant["credit_code"].upper(),
            applicant_phone=applicant["phone"], contact_channel=applicant["channel"],
            applicant_town=applicant.get("town"), first_responder=body.get("first_responder") or principal.subject,
            via_agent=body.get("via_agent"), accepted_at=now, accepted_on=today, deadline=None,
            deadline_provisional=False, missing=missing, was_supplement=bool(missing) and action != "return",
            deferred=[], request_key=key)
        if action in ("accept", "accept_for_initial_review"):
            self._start_clock(case, item, today)
            case.deferred = domain.deferred_materials(item, body["materials"])
            if case.deferred:
                case.deferred_due = self.calendar.add_working_days(today, domain.DEFERRED_MATERIALS_DAYS).date
        if action == "consult":
            case.advice = self._advice(catalog, item)
        if action == "return":
            case.reason = body["return_reason"]
        repo.add(case)
        repo.append(case, action, principal.subject, now, f"{number}:{action}", reason=case.reason,
                    data={"item_code": item["code"], "materials": sorted(body["materials"]),
                          "missing": [m["code"] for m in missing], "deferred": [m["code"] for m in case.deferred],
                          "deadline": case.deadline})
        if action == "consult":
            self._publish_update(tx, case, action)
        else:
            tx.publish(self._message("case.accepted", case, {
                "accepting_town": self.town, "handling_town": case.handling_town, "item_code": item["code"],
                "item_name": item["name"], "department": item["department"], "kind": case.kind,
                "status": case.status, "deadline": case.deadline, "first_responder": case.first_responder,
                "via_agent": case.via_agent}), rk_accepted(self.town))
        if action == "accept":
            self._route(tx, case, item)
        self._issue_for(tx, case, item, action)
        log.info("case.opened", action=action, item=item["code"], kind=case.kind, status=case.status,
                 deadline=case.deadline.isoformat() if case.deadline else None)
        return case, True

    def submit_once(self, store: Store, body: dict, principal: auth.Principal,
                    request_key: str | None) -> tuple[dict, bool]:
        """`submit` in its own transaction, answered with the case's view. Requests with one
        Idempotency-Key at the same moment all miss each other's case; the database lets one insert
        it, and a loser runs again in a new transaction, where it finds the winner's case: a repeat."""
        def attempt() -> tuple[dict, bool]:
            with store.transaction() as tx:
                case, created = self.submit(tx, body, principal, request_key)
                return self.view(tx, case), created

        try:
            return attempt()
        except IntegrityError as exc:
            if not request_key or "request_key" not in str(exc.orig):
                raise
        log.info("case.same_request_at_once")
        return attempt()

    # --- the steps after ---------------------------------------------------------------------------

    def supplement(self, tx: Tx, principal: auth.Principal, case_number: str, materials: list[str]) -> Case:
        """补正: the applicant brings missing materials; the clock starts when all are there."""
        case = self._case_for_action(tx, principal, case_number, "supplement")
        item = self.catalog_of(case).item(case.item_code)
        unknown = [c for c in domain.unknown_materials(item, materials) if c not in {m["code"] for m in case.missing}]
        if unknown:
            raise BadRequest("materials not listed for this item", {"materials": unknown})
        still_missing = [m for m in case.missing if m["code"] not in set(materials)]
        if len(still_missing) == len(case.missing):
            raise BadRequest("none of these materials was missing", {"missing": case.missing})
        today = self.clock.today()
        if still_missing:
            action = "supplement"
        else:
            action = "complete_materials_for_initial_review" if case.kind == "escalated" else "complete_materials"
        self._transition(case, action)
        case.missing = still_missing
        if not still_missing and case.clock_started_on and case.paused_from:
            # the back office asked for more: the clock stopped then and runs on now
            due = domain.deadline_after_pause(case.deadline, case.paused_from, today, self.calendar)
            case.deadline, case.paused_from = due.date, None
            case.deadline_provisional = case.deadline_provisional or due.provisional
        elif not still_missing:
            self._start_clock(case, item, today)
        self._record(tx, case, action, principal.subject, data={"supplied": sorted(materials),
                                                                 "still_missing": [m["code"] for m in still_missing],
                                                                 "deadline": case.deadline})
        if action == "complete_materials":
            self._route(tx, case, item, only_undecided=True)
        self._issue_for(tx, case, item, action)
        return case

    def return_case(self, tx: Tx, principal: auth.Principal, case_number: str, reason: str) -> Case:
        """不予受理 / 退回: with the reason in writing; the applicant may ask for review."""
        case = self._case_for_action(tx, principal, case_number, "return")
        self._transition(case, "return")
        case.reason = reason
        self._record(tx, case, "return", principal.subject, reason=reason)
        self._issue_for(tx, case, self.catalog_of(case).item(case.item_code), "return")
        return case

    def request_review(self, tx: Tx, principal: auth.Principal, case_number: str, reason: str) -> Case:
        """复核: a linked case goes to the department head; the returned case stays as it was."""
        case = self._case_for_action(tx, principal, case_number, "request_review")
        if case.review_case:
            raise Conflict(f"review was already requested: case {case.review_case}")
        repo = Ledger(tx.session)
        now, today = self.clock.now(), self.clock.today()
        item = self.catalog_of(case).item(case.item_code)
        number = repo.next_case_number(self.town, today)
        review = Case(
            case_number=number, version=1, accepting_town=self.town, handling_town=case.handling_town,
            item_code=case.item_code, item_name=f"{case.item_name}（复核）", catalog_version=case.catalog_version,
            kind="review", department=case.department, departments=[case.department], status="in_review",
            applicant_type=case.applicant_type, applicant_name=case.applicant_name, applicant_id=case.applicant_id,
            applicant_phone=case.applicant_phone, contact_channel=case.contact_channel,
            applicant_town=case.applicant_town, first_responder=case.first_responder, via_agent=case.via_agent,
            accepted_at=now, accepted_on=today, review_of=case.case_number, missing=[], deferred=[],
            reason=reason, clock_started_on=today, deadline_provisional=False)
        due = self.calendar.add_working_days(today, max(item["promised_days"], 1))
        review.deadline, review.deadline_provisional = due.date, due.provisional
        repo.add(review)
        repo.append(review, "open_review", principal.subject, now, f"{number}:open_review", reason=reason,
                    data={"review_of": case.case_number})
        case.review_case = number
        self._transition(case, "request_review")
        self._record(tx, case, "request_review", principal.subject, reason=reason, data={"review_case": number})
        tx.publish(self._message("case.accepted", review, {
            "accepting_town": self.town, "handling_town": review.handling_town, "item_code": review.item_code,
            "item_name": review.item_name, "department": review.department, "kind": "review",
            "status": review.status, "deadline": review.deadline, "first_responder": review.first_responder,
            "via_agent": review.via_agent}), rk_accepted(self.town))
        self._route(tx, review, item, kind="review")
        return case

    def pass_initial_review(self, tx: Tx, principal: auth.Principal, case_number: str) -> Case:
        """初审 passed: the case leaves the town for the city department (上报)."""
        case = self._case_for_action(tx, principal, case_number, "pass_initial_review")
        self._transition(case, "pass_initial_review")
        self._record(tx, case, "pass_initial_review", principal.subject)
        self._route(tx, case, self.catalog_of(case).item(case.item_code))
        return case

    def pause(self, tx: Tx, principal: auth.Principal, case_number: str, procedure: str, reason: str) -> Case:
        case = self._case_for_action(tx, principal, case_number, "pause")
        self._transition(case, "pause")
        case.paused_from, case.pause_procedure = self.clock.today(), procedure
        self._record(tx, case, "pause", principal.subject, reason=reason, data={"procedure": procedure})
        return case

    def resume(self, tx: Tx, principal: auth.Principal, case_number: str) -> Case:
        case = self._case_for_action(tx, principal, case_number, "resume")
        today = self.clock.today()
        due = domain.deadline_after_pause(case.deadline, case.paused_from, today, self.calendar)
        moved = {"from": case.deadline, "to": due.date, "paused_from": case.paused_from,
                 "procedure": case.pause_procedure}
        self._transition(case, "resume")
        case.deadline, case.deadline_provisional = due.date, case.deadline_provisional or due.provisional
        case.paused_from = case.pause_procedure = None
        self._record(tx, case, "resume", principal.subject, data=moved)
        return case

    def extend(self, tx: Tx, principal: auth.Principal, case_number: str, days: int, reason: str) -> Case:
        """延期: once, with a reason, approved by a supervisor or the department head (the caller)."""
        case = self._case_for_action(tx, principal, case_number, "extend")
        item = self.catalog_of(case).item(case.item_code)
        try:
            domain.check_extension(case.extended_days is not None, days, item["statutory_days"],
                                   item["promised_days"], reason)
        except domain.RuleViolation as exc:
            raise Conflict(exc.message, exc.details) if "once" in exc.message else BadRequest(exc.message, exc.details)
        due = self.calendar.add_working_days(case.deadline, days)
        moved = {"from": case.deadline, "to": due.date, "days": days, "approved_by": principal.subject}
        self._transition(case, "extend")
        case.deadline, case.extended_days = due.date, days
        case.deadline_provisional = case.deadline_provisional or due.provisional
        self._record(tx, case, "extend", principal.subject, reason=reason, data=moved)
        return case

    def deliver_deferred(self, tx: Tx, principal: auth.Principal, case_number: str, materials: list[str]) -> Case:
        case = self._case_for_action(tx, principal, case_number, "deliver_deferred")
        owed = {m["code"] for m in case.deferred}
        if not set(materials) <= owed:
            raise BadRequest("these materials were not owed", {"materials": sorted(set(materials) - owed)})
        self._transition(case, "deliver_deferred")
        case.deferred = [m for m in case.deferred if m["code"] not in set(materials)]
        self._record(tx, case, "deliver_deferred", principal.subject, data={"delivered": sorted(materials)})
        return case

    # --- decisions from the departments ---------------------------------------------------------------

    def apply_decision(self, tx: Tx, message: Message) -> str:
        repo = Ledger(tx.session)
        case = repo.get(message.case_number, for_update=True)
        if case is None or case.accepting_town != self.town:
            raise Unacceptable(f"decision on case {message.case_number}, which this centre ({self.town}) does not hold")
        p = message.payload
        decision = domain.Decision(p["outcome"], p.get("reason"), p.get("result_number"), message.case_version,
                                   p["department"])
        if (case.status not in ("in_review", "paused") or case.routed_version != message.case_version
                or p["department"] not in case.departments):
            log.warning("decision.stale", routed_version=case.routed_version, decided_on=message.case_version,
                        status=case.status, department=p["department"])
            return "stale"
        if any(d.department == p["department"] for d in repo.decisions(case.case_number)):
            return "duplicate"
        now, today = self.clock.now(), self.clock.today()
        repo.add_decision(DepartmentDecision(case_number=case.case_number, department=p["department"],
                                             outcome=p["outcome"], reason=p.get("reason"),
                                             result_number=p.get("result_number"), decided_by=p["decided_by"],
                                             decided_at=now))
        decided = {d.department: domain.Decision(d.outcome, d.reason, d.result_number, message.case_version,
                                                 d.department) for d in repo.decisions(case.case_number)}
        verdict = domain.joint_outcome(case.departments, decided)
        data = {"department": p["department"], "outcome": decision.outcome, "result_number": decision.result_number}
        if verdict is None:  # a joint case waits for the other departments
            self._transition(case, "record_decision")
            self._record(tx, case, "record_decision", p["decided_by"], reason=decision.reason, data=data,
                         key=f"{case.case_number}:record_decision:{p['department']}")
            return "ok"
        self._transition(case, "decide")
        case.outcome, case.reason, case.result_number = verdict
        case.completed_on = today
        self._record(tx, case, "decide", p["decided_by"], reason=case.reason, data=data,
                     key=f"{case.case_number}:decide")
        tx.publish(self._message("case.completed", case, {
            "accepting_town": self.town, "department": case.department, "item_name": case.item_name,
            "kind": case.kind, "outcome": case.outcome, "reason": case.reason,
            "result_number": case.result_number, "completed_on": today, "deadline": case.deadline,
            "on_time": case.deadline is None or today <= case.deadline, "via_agent": case.via_agent}),
            rk_completed(self.town))
        self._issue_for(tx, case, self.catalog_of(case).item(case.item_code), "decide")
        log.info("case.completed", outcome=case.outcome)
        return "ok"

    def apply_department_action(self, tx: Tx, message: Message) -> str:
        """The back office asks for a step: more materials, a special procedure, the one extension."""
        repo = Ledger(tx.session)
        case = repo.get(message.case_number, for_update=True)
        p = message.payload
        if case is None or case.accepting_town != self.town:
            raise Unacceptable(f"{p['action']} on case {message.case_number}, which this centre ({self.town}) "
                               "does not hold")
        if case.routed_version != message.case_version or p["department"] not in case.departments:
            log.warning("department_action.stale", routed_version=case.routed_version,
                        asked_on=message.case_version, action=p["action"])
            return "stale"
        action = {"request_materials": "request_materials", "start_procedure": "pause",
                  "end_procedure": "resume", "extend": "extend"}[p["action"]]
        try:
            domain.next_status(case.status, action)
        except domain.ForbiddenTransition:
            log.warning("department_action.not_now", status=case.status, action=p["action"])
            return "refused"
        bind_context(case_number=case.case_number, town=self.town, department=p["department"])
        today = self.clock.today()
        data = {"department": p["department"], "work_item_id": p["work_item_id"]}
        if action == "request_materials":
            missing = [{"code": m.get("code") or f"{p['department']}-{i}", "name": m["name"]}
                       for i, m in enumerate(p["materials"], start=1)]
            self._transition(case, action)
            case.missing, case.paused_from = missing, today
            self._record(tx, case, action, p["by"], reason=p["reason"], data={**data, "materials": missing})
            self._issue(tx, case, self.catalog_of(case).item(case.item_code), "one_time_notice")
        elif action == "pause":
            self._transition(case, action)
            case.paused_from, case.pause_procedure = today, p["procedure"]
            self._record(tx, case, action, p["by"], reason=p["reason"], data={**data, "procedure": p["procedure"]})
        elif action == "resume":
            due = domain.deadline_after_pause(case.deadline, case.paused_from, today, self.calendar)
            moved = {**data, "from": case.deadline, "to": due.date, "procedure": case.pause_procedure}
            self._transition(case, action)
            case.deadline, case.paused_from, case.pause_procedure = due.date, None, None
            case.deadline_provisional = case.deadline_provisional or due.provisional
            self._record(tx, case, action, p["by"], reason=p["reason"], data=moved)
        else:
            item = self.catalog_of(case).item(case.item_code)
            try:
                domain.check_extension(case.extended_days is not None, p["days"], item["statutory_days"],
                                       item["promised_days"], p["reason"])
            except domain.RuleViolation as exc:
                log.warning("department_action.extension_refused", reason=exc.message)
                return "refused"
            due = self.calendar.add_working_days(case.deadline, p["days"])
            moved = {**data, "from": case.deadline, "to": due.date, "days": p["days"], "approved_by": p["approved_by"]}
            self._transition(case, action)
            case.deadline, case.extended_days = due.date, p["days"]
            case.deadline_provisional = case.deadline_provisional or due.provisional
            self._record(tx, case, action, p["by"], reason=p["reason"], data=moved)
        return "ok"

    def recompute_provisional(self, tx: Tx) -> int:
        """Deadlines counted on a guessed calendar are counted again once the year is known."""
        changed = 0
        for case in Ledger(tx.session).provisional():
            item = self.catalog_of(case).item(case.item_code)
            due = domain.deadline(item, case.clock_started_on, self.calendar)
            if due.provisional:
                continue
            extra = case.extended_days or 0
            final = self.calendar.add_working_days(due.date, extra).date if extra else due.date
            moved = {"from": case.deadline, "to": final}
            case.deadline, case.deadline_provisional = final, False
            self._record(tx, case, "recompute_deadline", "system:calendar", data=moved,
                         key=f"{case.case_number}:recompute:{case.version}")
            changed += 1
        return changed

    # --- reading --------------------------------------------------------------------------------

    def view(self, tx: Tx, case: Case, with_history: bool = False) -> dict:
        out = {
            "case_number": case.case_number, "version": case.version, "status": case.status,
            "kind": case.kind, "item_code": case.item_code, "item_name": case.item_name,
            "catalog_version": case.catalog_version, "department": case.department,
            "departments": case.departments, "accepting_town": case.accepting_town,
            "handling_town": case.handling_town,
            "applicant": {"type": case.applicant_type, "name": case.applicant_name,
                          "id_number" if case.applicant_type == "person" else "credit_code":
                          mask_resident_id(case.applicant_id) if case.applicant_type == "person"
                          else mask_credit_code(case.applicant_id),
                          "phone": mask_phone(case.applicant_phone)},
            "first_responder": case.first_responder, "via_agent": case.via_agent, "accepted_at": case.accepted_at,
            "clock_started_on": case.clock_started_on, "deadline": case.deadline,
            "deadline_provisional": case.deadline_provisional, "days_left": self._days_left(case),
            "missing_materials": case.missing, "deferred_materials": case.deferred, "deferred_due": case.deferred_due,
            "paused": {"since": case.paused_from, "procedure": case.pause_procedure} if case.paused_from else None,
            "extended_days": case.extended_days, "review_of": case.review_of, "review_case": case.review_case,
            "advice": case.advice, "outcome": case.outcome, "reason": case.reason,
            "result_number": case.result_number, "completed_on": case.completed_on,
            "allowed_actions": domain.allowed_actions(case.status),
            "departments_not_served": case.unserved_departments or [],
        }
        if case.unserved_departments and case.status not in domain.TERMINAL:
            out["warning"] = (f"no service is handling the work of {', '.join(case.unserved_departments)} now: "
                              "the case is accepted and its work waits in the department's queue")
        if with_history:
            repo = Ledger(tx.session)
            out["departments_progress"] = self._progress(case, repo.decisions(case.case_number))
            out["history"] = [{"seq": a.seq, "action": a.action, "actor": a.actor, "at": a.at,
                               "reason": a.reason, "data": a.data} for a in repo.history(case.case_number)]
            out["notices"] = [{"id": n.id, "kind": n.kind, "title": notices.TITLES[n.kind], "issued_at": n.issued_at,
                               "sms_text": n.sms_text} for n in repo.notices(case.case_number)]
        return out

    def list(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        towns = None if principal.scope.kind == "city" else {self.town}
        if towns and not auth.can_see_town(principal, self.town):
            raise Forbidden(f"scope {principal.scope} does not cover town {self.town}")
        try:
            limit = min(int(query.get("limit", 100)), 500)
            offset = max(int(query.get("offset", 0)), 0)
            due_by = date.fromisoformat(query["due_by"]) if query.get("due_by") else None
        except ValueError:
            raise BadRequest("limit and offset must be integers, due_by a date (YYYY-MM-DD)") from None
        status = query.get("status")
        if status and status not in domain.STATUSES:
            raise BadRequest(f"unknown status {status!r}", {"status": list(domain.STATUSES)})
        overdue = query.get("overdue") in ("1", "true", "yes")
        cases = Ledger(tx.session).list(towns, status=status, kind=query.get("kind"),
                                        item_code=query.get("item_code"), limit=limit, offset=offset,
                                        due_by=due_by, overdue_on=self.clock.today() if overdue else None)
        return {"cases": [self.view(tx, c) for c in cases], "limit": limit, "offset": offset}

    def stats(self, tx: Tx) -> dict:
        return {"town": self.town, **Ledger(tx.session).counts()}

    def notice_pdf(self, tx: Tx, principal: auth.Principal, case_number: str, notice_id: int) -> bytes:
        self.visible_case(tx, principal, case_number)
        notice = Ledger(tx.session).notice(case_number, notice_id)
        if notice is None:
            raise NotFound(f"case {case_number} has no notice {notice_id}")
        return notices.render_pdf(notices.notice_from_dict(notice.data))

    def verify_ledger(self, tx: Tx) -> dict:
        return verify_ledger(tx.session)

    # --- helpers --------------------------------------------------------------------------------

    def _case_for_action(self, tx: Tx, principal: auth.Principal, case_number: str, action: str) -> Case:
        case = self.visible_case(tx, principal, case_number, for_update=True)
        if case.accepting_town != self.town:
            raise Forbidden(f"case {case_number} belongs to the centre of town {case.accepting_town}")
        try:
            domain.next_status(case.status, action)
        except domain.ForbiddenTransition as exc:
            raise Conflict(str(exc), {"status": case.status, "allowed": domain.allowed_actions(case.status)}) from None
        bind_context(case_number=case.case_number, town=self.town, department=case.department)
        return case

    @staticmethod
    def _transition(case: Case, action: str) -> None:
        case.status = domain.next_status(case.status, action)
        case.version += 1

    def _record(self, tx: Tx, case: Case, action: str, actor: str, reason: str | None = None,
                data: dict | None = None, key: str | None = None) -> None:
        Ledger(tx.session).append(case, action, actor, self.clock.now(), key or f"{case.case_number}:{case.version}",
                                  reason=reason, data=data or {})
        self._publish_update(tx, case, action, reason)

    def _publish_update(self, tx: Tx, case: Case, action: str, reason: str | None = None) -> None:
        tx.publish(self._message("case.updated", case, {
            "accepting_town": self.town, "action": action, "status": case.status, "deadline": case.deadline,
            "reason": reason}), rk_updated(self.town))

    def _start_clock(self, case: Case, item: dict, today: date) -> None:
        due = domain.deadline(item, today, self.calendar)
        case.clock_started_on, case.deadline, case.deadline_provisional = today, due.date, due.provisional

    def _route(self, tx: Tx, case: Case, item: dict, kind: str | None = None, only_undecided: bool = False) -> None:
        """Send the work to every department that decides (the lead first); decisions must name this version.

        Routed again after the back office asked for more materials, it goes to those yet to decide."""
        case.routed_version = case.version
        decided = {d.department for d in Ledger(tx.session).decisions(case.case_number)} if only_undecided else set()
        routed = [d for d in case.departments if d not in decided]
        self._note_unserved(tx, case, routed)
        for dept in routed:
            tx.publish(self._message("case.routed", case, {
                "accepting_town": self.town, "handling_town": case.handling_town, "item_code": case.item_code,
                "item_name": case.item_name, "department": dept, "kind": kind or case.kind,
                "deadline": case.deadline, "auto_decide": bool(item["auto_decide"]) and case.kind == "instant",
                "lead_department": case.department, "departments": case.departments}),
                rk_routed(dept, case.handling_town), exchange=self.work_exchange)

    def _note_unserved(self, tx: Tx, case: Case, departments: list[str]) -> None:
        """The law says accept even when no one serves the department now; the case and a metric say so.

        Its work still waits in the department's queue (the registry declares one for every department)."""
        unserved = domain.unserved(departments, self.served)
        if not unserved:
            return
        case.unserved_departments = sorted(set(case.unserved_departments or []) | set(unserved))
        log.warning("case.department_not_served", departments=unserved)
        counter = self.unserved_cases
        if counter is not None:
            tx.after_commit(lambda: [counter.labels(department=d).inc() for d in unserved])

    def _issue_for(self, tx: Tx, case: Case, item: dict, action: str) -> None:
        """The notices (文书) each step owes the applicant."""
        kinds = {
            "accept": ["acceptance"] if case.kind == "instant" else ["promise"],
            "accept_for_initial_review": ["acceptance"],
            "complete_materials": ["acceptance"] if case.kind == "instant" else ["promise"],
            "complete_materials_for_initial_review": ["acceptance"],
            "accept_incomplete": ["one_time_notice"],
            "supplement": ["one_time_notice"],
            "return": ["rejection"],
            "decide": ["result"] + (["pickup"] if case.outcome == "approved" and case.contact_channel == "pickup"
                                    else []),
        }.get(action, [])
        for kind in kinds:
            self._issue(tx, case, item, kind)

    def _issue(self, tx: Tx, case: Case, item: dict, kind: str) -> None:
        catalog = self.catalog_of(case)
        town = catalog.towns.get(self.town, {"name": self.town})
        data = notices.NoticeData(
            case_number=case.case_number, kind=kind, issued_on=self.clock.today(),
            applicant_name=case.applicant_name,
            applicant_id_masked=mask_resident_id(case.applicant_id) if case.applicant_type == "person"
            else mask_credit_code(case.applicant_id),
            item_name=case.item_name, item_code=case.item_code,
            department_name=catalog.departments.get(case.department, {"name": case.department})["name"],
            accepting_centre=f"{town['name']}便民服务中心", window=self.window_name,
            responsible_person=case.first_responder, supervision_phone=catalog.data.get("supervision_phone", "12345"),
            basis=item.get("basis"), conditions=item.get("conditions"),
            materials=[{"name": m["name"], "form": m["form"], "required": m["required"]} for m in item["materials"]],
            missing_materials=[m["name"] for m in case.missing], promised_date=case.deadline,
            provisional=case.deadline_provisional, reason=case.reason, result_number=case.result_number,
            outcome=case.outcome, pickup_place=f"{town['name']}便民服务中心{self.window_name}",
            fee_fen=item.get("fee_fen", 0))
        notice = Ledger(tx.session).add_notice(Notice(case_number=case.case_number, kind=kind,
                                                      issued_at=self.clock.now(), sms_text=notices.render_sms(data),
                                                      data=notices.notice_to_dict(data)))
        tx.publish(self._message("notice.issued", case, {
            "accepting_town": self.town, "notice_id": notice.id, "notice_kind": kind, "title": notices.TITLES[kind],
            "sms_text": notice.sms_text,
            "contact": {"name": case.applicant_name, "phone": case.applicant_phone,
                        "channel": "sms" if case.contact_channel in ("pickup", "mail") else case.contact_channel}}),
            rk_notice_issued(self.town))

    def _advice(self, catalog: Catalog, item: dict) -> str:
        """咨询告知: where to go and what to bring."""
        where = {"city": "市级部门", "town": "镇（街道）便民服务中心", "village": "村（社区）便民服务站"}[item["level"]]
        dept = catalog.departments.get(item["department"], {"name": item["department"]})["name"]
        materials = "、".join(m["name"] for m in item["materials"]) or "无需材料"
        guide = item.get("guide") or f"请到{where}（{dept}）办理“{item['name']}”"
        return f"{guide.rstrip('。')}。需携带：{materials}。"

    def _days_left(self, case: Case) -> int | None:
        if case.deadline is None or case.status in domain.TERMINAL:
            return None
        return self.calendar.working_days_between(self.clock.today(), case.deadline)

    @staticmethod
    def _progress(case: Case, decisions: list[DepartmentDecision]) -> list[dict]:
        by_dept = {d.department: d for d in decisions}
        return [{"department": dept, "lead": dept == case.department,
                 "outcome": by_dept[dept].outcome if dept in by_dept else None,
                 "reason": by_dept[dept].reason if dept in by_dept else None} for dept in case.departments]

    def _message(self, type_: str, case: Case, payload: dict) -> Message:
        return make_message(type_, case.case_number, case.version, payload, producer=self.instance,
                            occurred_at=self.clock.now())

    @staticmethod
    def _scoped_key(principal: auth.Principal, key: str) -> str:
        # keys are the client's; scope them to the user so two clients cannot collide
        return hashlib.sha256(f"{principal.subject}:{key}".encode()).hexdigest()[:64]


def verify_ledger(session) -> dict:
    """Recompute every case's hash chain; report the first broken link of each damaged case."""
    repo = Ledger(session)
    broken = {}
    numbers = repo.all_case_numbers()
    for number in numbers:
        history = repo.history(number)
        records = [(domain.history_record(a.case_number, a.seq, a.action, a.actor, a.at, a.reason, a.data),
                    a.prev_hash, a.hash) for a in history]
        bad = domain.verify_chain(records)
        if bad is not None:
            broken[number] = history[bad].seq
    return {"cases": len(numbers), "broken": broken}
