"""The window's use cases, one function per step whoever calls it (HTTP or the bus).

Each runs inside one transaction (ledger change + outgoing messages). The HTTP adapter finds the case
with `case_for_step` (the caller's scope, this centre's case); the bus adapter with `on_department_step`
(the routed version, a department of the case); both then call the same step. Domain errors are raised
as types (shared.errors); shared.web maps them to HTTP statuses, and a refused department step goes back
to the department as `case.step_refused`. The ledger owns the deadline: whenever a step moves it, or
stops or restarts the clock, after the work was routed, each department yet to decide hears it
(`case.deadline_moved`, one helper: `_tell_deadline`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from services.intake import domain, notice_rendering, query_codes
from services.intake.models import Case, DepartmentDecision, Ledger, Notice, Transfer, Transfers, Waybill, Waybills
from shared import auth, s10
from shared.catalog import Catalog
from shared.clock import Clock
from shared.contracts import (
    Message,
    Unacceptable,
    make_message,
    rk_accepted,
    rk_completed,
    rk_deadline_moved,
    rk_escalated,
    rk_notice_issued,
    rk_routed,
    rk_station_refused,
    rk_step_refused,
    rk_transfer,
    rk_updated,
)
from shared.errors import DomainError, NotPermitted, NotVisible, RuleViolation
from shared.logging import bind_context, get_logger
from shared.pii import mask_credit_code, mask_resident_id, normalise_resident_id
from shared.reference import Catalogs
from shared.schemas import ApplicantSchema
from shared.store import Store, Tx
from shared.vocabulary import OPEN_CASE_STATUSES, CaseKind, CaseStatus, DepartmentStep, NoticeKind
from shared.workdays import WorkingCalendar

log = get_logger(__name__)

# what a department asks (case.department) -> the ledger's action
DEPARTMENT_ACTIONS = {DepartmentStep.REQUEST_MATERIALS: "request_materials", DepartmentStep.START_PROCEDURE: "pause",
                      DepartmentStep.END_PROCEDURE: "resume", DepartmentStep.EXTEND: "extend"}


@dataclass
class Window:
    town: str
    instance: str
    catalogs: Catalogs  # every version from the reference stream (shared.reference)
    calendar: WorkingCalendar
    clock: Clock
    work_exchange: str
    window_name: str = "综合受理窗口"
    # department -> whether an approval instance consumes its work now (None until first looked at)
    served: dict[str, bool] | None = None
    unserved_cases: object = None  # a Counter by department, bound to the instance's /metrics
    # the EMS waybill numbers this centre may issue (shared.s10), in order of use; None: the town's default
    waybill_ranges: list | None = None
    # the portal's public URL, for the QR code on notices (TONGBAN_PORTAL_URL); None: a relative /track link
    portal_url: str | None = None

    @property
    def catalog(self) -> Catalog:
        return self.catalogs.active()

    def catalog_of(self, case: Case) -> Catalog:
        # every version is kept: never the active one in its place (a notice re-renders as it was issued)
        return self.catalogs.get(case.catalog_version)

    def item_of(self, case: Case) -> dict:
        return self.catalog_of(case).item(case.item_code)

    # --- access -----------------------------------------------------------------------------

    def require_town_scope(self, principal: auth.Principal) -> None:
        """Opening a case: only for users of this centre's town (or the city)."""
        if not auth.can_see_town(principal, self.town):
            raise NotPermitted(f"scope {principal.scope} does not cover town {self.town}")

    def require_town_read(self, principal: auth.Principal) -> None:
        """Reads of the whole ledger (lists, stats, verification): another town's user finds nothing here."""
        if not auth.can_see_town(principal, self.town):
            raise NotVisible("not found")

    def visible_case(self, tx: Tx, principal: auth.Principal, case_number: str, for_update: bool = False) -> Case:
        """A case the caller may see; one they may not answers exactly like one that does not exist."""
        case = Ledger(tx.session).get(case_number, for_update=for_update)
        if case is None or not (auth.can_see_town(principal, case.accepting_town)
                                or (case.handling_town != "city" and auth.can_see_town(principal, case.handling_town))):
            raise NotVisible(f"no case {case_number}")
        return case

    def case_for_step(self, tx: Tx, principal: auth.Principal, case_number: str) -> Case:
        """The HTTP adapter's way to a case: visible to the caller, and accepted at this centre."""
        case = self.visible_case(tx, principal, case_number, for_update=True)
        if case.accepting_town != self.town:
            raise NotPermitted(f"case {case_number} belongs to the centre of town {case.accepting_town}")
        bind_context(case_number=case.case_number, town=self.town, department=case.department)
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
            raise RuleViolation(f"unknown item {body['item_code']!r}", {"item_code": ["not in the catalogue"]})
        applicant = body["applicant"]
        today = self.clock.today()
        opening = domain.open_case(
            item, body["materials"], today, self.calendar, accepting_town=self.town,
            applicant_town=applicant.get("town"), via_agent=body.get("via_agent"),
            in_person=body.get("in_person", True), return_reason=body.get("return_reason"),
            department_name=catalog.departments.get(item["department"], {"name": item["department"]})["name"],
            contact_channel=applicant["channel"])
        delivery = domain.delivery_choice(item, body.get("delivery"), applicant["channel"], body.get("mail_address"))
        case = self._store_opening(tx, repo, opening, item, catalog, body, principal, key, today, delivery)
        if opening.announces:
            self._announce(tx, case)
        else:
            self._publish_update(tx, case, opening.action)
        if opening.routes:
            self._route(tx, case, item)
        # the e-mail address goes to notify with the notices issued now, and is kept only there (not here)
        self._issue_all(tx, case, item, opening.notices, email=applicant.get("email"))
        log.info("case.opened", action=opening.action, item=item["code"], kind=case.kind, status=case.status,
                 deadline=case.deadline.isoformat() if case.deadline else None)
        return case, True

    def _store_opening(self, tx: Tx, repo: Ledger, o: domain.Opening, item: dict, catalog: Catalog, body: dict,
                       principal: auth.Principal, key: str | None, today,
                       delivery: tuple[str, str | None] = (domain.DELIVERY_PICKUP, None)) -> Case:
        now = self.clock.now()
        number = repo.next_case_number(self.town, today)
        bind_context(case_number=number, town=self.town, department=item["department"])
        applicant = body["applicant"]
        person = applicant["type"] == "person"
        case = Case(
            case_number=number, version=1, accepting_town=self.town, handling_town=o.handling_town,
            item_code=item["code"], item_name=item["name"], catalog_version=catalog.version, kind=o.kind,
            department=o.department, departments=o.departments, status=o.status, applicant_type=applicant["type"],
            applicant_name=applicant["name"],
            applicant_id=normalise_resident_id(applicant["id_number"]) if person else applicant["credit_code"].upper(),
            applicant_phone=applicant["phone"], contact_channel=applicant["channel"],
            applicant_town=applicant.get("town"), first_responder=body.get("first_responder") or principal.subject,
            first_responder_name=None if body.get("first_responder") else principal.name,
            via_agent=body.get("via_agent"), village=body.get("village"),
            station_submission=body.get("station_submission"), accepted_at=now, accepted_on=today,
            clock_started_on=o.clock_started_on, deadline=o.deadline, deadline_provisional=o.deadline_provisional,
            missing=o.missing, was_supplement=o.was_supplement, deferred=o.deferred, deferred_due=o.deferred_due,
            advice=o.advice, reason=o.reason, request_key=key, delivery=delivery[0], mail_address=delivery[1])
        if o.kind != CaseKind.CONSULTATION:  # a case to follow: its 查询码, answered once, kept as a hash
            self._new_query_code(case)
        repo.add(case)
        repo.append(case, o.action, principal.subject, now, f"{number}:{o.action}", reason=case.reason,
                    data={"item_code": item["code"], "materials": sorted(body["materials"]),
                          "missing": [m["code"] for m in o.missing], "deferred": [m["code"] for m in o.deferred],
                          "deadline": case.deadline, **self._separation_record(case)})
        return case

    def submit_once(self, store: Store, body: dict, principal: auth.Principal,
                    request_key: str | None, view) -> tuple[dict, bool]:
        """`submit` in its own transaction, answered with `view(tx, case)`. Requests with one
        Idempotency-Key at the same moment all miss each other's case; the database lets one insert
        it, and a loser runs again in a new transaction, where it finds the winner's case: a repeat."""
        def attempt() -> tuple[dict, bool]:
            with store.transaction() as tx:
                case, created = self.submit(tx, body, principal, request_key)
                return view(tx, case), created

        try:
            return attempt()
        except IntegrityError as exc:
            if not request_key or "request_key" not in str(exc.orig):
                raise
        log.info("case.same_request_at_once")
        return attempt()

    def on_station_submission(self, tx: Tx, message: Message) -> str:
        """报送: a village station of this town relays a villager's submission; it becomes a case through the
        window's own `submit`, marked as the agent's for that village, the agent its first responder.

        The request key comes from the station's record number, so a resent submission makes no second case.
        When the ledger's rules refuse it (the catalogue changed since), the station hears why
        (station.refused) and nothing else changes."""
        p = message.payload
        number, village, agent = message.case_number, p["village"], p["agent"]
        if p["town"] != self.town or village[:9] != self.town:
            raise Unacceptable(f"station record {number} of village {village} is not for the centre of {self.town}")
        applicant = {k: p["applicant"].get(k) for k in ("type", "name", "id_number", "credit_code", "phone",
                                                         "channel", "town")}
        problems = ApplicantSchema().validate(applicant)
        if problems:
            raise Unacceptable(f"station record {number}: the applicant is not valid", problems)
        principal = auth.Principal(subject=agent, role="agent", scope=auth.Scope("village", village=village),
                                   expires_at=0, issued_at=0)
        body = {"item_code": p["item_code"], "applicant": applicant, "materials": p["materials"],
                "via_agent": agent, "in_person": False, "first_responder": agent, "village": village,
                "station_submission": number}
        try:
            case, created = self.submit(tx, body, principal, request_key=f"station:{number}")
        except DomainError as exc:  # the rules check before the ledger changes: nothing to undo
            log.warning("station.refused", station_number=number, reason=exc.message)
            tx.publish(make_message("station.refused", number, 0, {
                "town": self.town, "village": village, "agent": agent, "reason": exc.message[:500]},
                producer=self.instance, occurred_at=self.clock.now()), rk_station_refused(self.town))
            return "refused"
        return "ok" if created else "duplicate"

    # --- 查询码: the applicant's own lookup ------------------------------------------------------------

    @staticmethod
    def _new_query_code(case: Case) -> None:
        code = query_codes.new_code()
        case.query_code_hash = query_codes.hash_code(code)
        case.issued_query_code = code

    def reissue_query_code(self, tx: Tx, case: Case, actor: str) -> Case:
        """A new 查询码 (the applicant lost the notice): the old one stops working. The history records that a
        code was issued and by whom, never the code."""
        if case.status == CaseStatus.CONSULTED:
            raise RuleViolation("a consultation record has no query code")
        self._new_query_code(case)
        now = self.clock.now()
        Ledger(tx.session).append(case, "query_code_issued", actor, now,
                                  f"{case.case_number}:query_code:{now.isoformat()}")
        log.info("case.query_code_issued")
        return case

    def lookup(self, tx: Tx, case_number: str, code: str) -> dict:
        """The applicant's lookup: the status, the promised date and the next step of the case whose number and
        query code they give. An unknown case and a wrong code answer alike."""
        case = Ledger(tx.session).get(case_number)
        if case is None or not query_codes.matches(code, case.query_code_hash):
            raise NotVisible("no case with this number and query code")
        return query_codes.public_progress(case.case_number, case.status, case.deadline, case.completed_on)

    # --- the steps after ---------------------------------------------------------------------------

    def supplement(self, tx: Tx, case: Case, actor: str, materials: list[str]) -> Case:
        """补正: the applicant brings missing materials; the clock starts (or runs again) when all are there."""
        domain.next_status(case.status, "supplement")
        item = self.item_of(case)
        missing_codes = {m["code"] for m in case.missing}
        unknown = [c for c in domain.unknown_materials(item, materials) if c not in missing_codes]
        if unknown:
            raise RuleViolation("materials not listed for this item", {"materials": unknown})
        still_missing = [m for m in case.missing if m["code"] not in set(materials)]
        if len(still_missing) == len(case.missing):
            raise RuleViolation("none of these materials was missing", {"missing": case.missing})
        if still_missing:
            action = "supplement"
        else:
            action = ("complete_materials_for_initial_review" if case.kind == CaseKind.ESCALATED
                      else "complete_materials")
        self._transition(case, action)
        case.missing = still_missing
        today = self.clock.today()
        runs_again = bool(not still_missing and case.clock_started_on and case.paused_from)
        if runs_again:
            self._run_clock_again(case, today)  # the back office asked for more: the clock stopped then
        elif not still_missing:
            self._start_clock(case, item, today)
        self._record(tx, case, action, actor, data={"supplied": sorted(materials),
                                                    "still_missing": [m["code"] for m in still_missing],
                                                    "deadline": case.deadline})
        if runs_again:
            self._tell_deadline(tx, case, action)
        if action == "complete_materials":
            self._route(tx, case, item, only_undecided=True)
        self._issue_for(tx, case, item, action)
        return case

    def return_case(self, tx: Tx, case: Case, actor: str, reason: str) -> Case:
        """不予受理 / 退回: with the reason in writing; the applicant may ask for review."""
        self._transition(case, "return")
        case.reason = reason
        self._record(tx, case, "return", actor, reason=reason)
        self._issue_for(tx, case, self.item_of(case), "return")
        return case

    def request_review(self, tx: Tx, case: Case, actor: str, reason: str) -> Case:
        """复核: a linked case goes to the department head; the returned case stays as it was."""
        domain.next_status(case.status, "request_review")
        if case.review_case:
            raise domain.NotAllowedNow(f"review was already requested: case {case.review_case}")
        repo = Ledger(tx.session)
        now, today = self.clock.now(), self.clock.today()
        item = self.item_of(case)
        number = repo.next_case_number(self.town, today)
        due = self.calendar.add_working_days(today, max(item["promised_days"], 1))
        review = Case(
            case_number=number, version=1, accepting_town=self.town, handling_town=case.handling_town,
            item_code=case.item_code, item_name=f"{case.item_name}（复核）", catalog_version=case.catalog_version,
            kind=CaseKind.REVIEW, department=case.department, departments=[case.department],
            status=CaseStatus.IN_REVIEW, applicant_type=case.applicant_type, applicant_name=case.applicant_name,
            applicant_id=case.applicant_id, applicant_phone=case.applicant_phone,
            contact_channel=case.contact_channel, applicant_town=case.applicant_town,
            first_responder=case.first_responder, via_agent=case.via_agent, accepted_at=now, accepted_on=today,
            review_of=case.case_number, missing=[], deferred=[], reason=reason, clock_started_on=today,
            deadline=due.date, deadline_provisional=due.provisional, delivery=case.delivery,
            mail_address=case.mail_address)
        repo.add(review)
        repo.append(review, "open_review", actor, now, f"{number}:open_review", reason=reason,
                    data={"review_of": case.case_number})
        case.review_case = number
        self._transition(case, "request_review")
        self._record(tx, case, "request_review", actor, reason=reason, data={"review_case": number})
        self._announce(tx, review)
        self._route(tx, review, item, kind=CaseKind.REVIEW)
        return case

    def pass_initial_review(self, tx: Tx, case: Case, actor: str) -> Case:
        """初审 passed: the case leaves the town for the city department (上报), through the town agent.

        Passed again after the city asked for more materials, it goes to the departments yet to decide."""
        self._transition(case, "pass_initial_review")
        self._record(tx, case, "pass_initial_review", actor)
        self._route(tx, case, self.item_of(case), only_undecided=True, by=actor)
        return case

    def pause(self, tx: Tx, case: Case, actor: str, procedure: str, reason: str, data: dict | None = None) -> Case:
        """特别程序 starts: the clock stops."""
        self._transition(case, "pause")
        case.paused_from, case.pause_procedure = self.clock.today(), procedure
        self._record(tx, case, "pause", actor, reason=reason, data={**(data or {}), "procedure": procedure})
        self._tell_deadline(tx, case, "pause", reason)
        return case

    def resume(self, tx: Tx, case: Case, actor: str, reason: str | None = None, data: dict | None = None) -> Case:
        """特别程序 ends: the deadline moves by the working days it took."""
        domain.next_status(case.status, "resume")
        moved = {**(data or {}), "from": case.deadline, "paused_from": case.paused_from,
                 "procedure": case.pause_procedure}
        self._transition(case, "resume")
        self._run_clock_again(case, self.clock.today())
        case.pause_procedure = None
        self._record(tx, case, "resume", actor, reason=reason, data={**moved, "to": case.deadline})
        self._tell_deadline(tx, case, "resume", reason)
        return case

    def extend(self, tx: Tx, case: Case, actor: str, days: int, reason: str, approved_by: str | None = None,
               data: dict | None = None) -> Case:
        """延期: once, 1..(statutory − promised) working days, with a reason. The ledger owns this rule."""
        item = self.item_of(case)
        domain.next_status(case.status, "extend")
        domain.check_extension(case.extended_days is not None, days, item["statutory_days"], item["promised_days"],
                               reason)
        due = self.calendar.add_working_days(case.deadline, days)
        moved = {**(data or {}), "from": case.deadline, "to": due.date, "days": days,
                 "approved_by": approved_by or actor}
        self._transition(case, "extend")
        case.deadline, case.extended_days = due.date, days
        case.deadline_provisional = case.deadline_provisional or due.provisional
        self._record(tx, case, "extend", actor, reason=reason, data=moved)
        self._tell_deadline(tx, case, "extend", reason)
        return case

    def request_materials(self, tx: Tx, case: Case, actor: str, materials: list[dict], reason: str,
                          department: str, data: dict | None = None) -> Case:
        """The back office needs more (一次性告知): the case goes back to the window, the clock stops."""
        missing = [{"code": m.get("code") or f"{department}-{i}", "name": m["name"]}
                   for i, m in enumerate(materials, start=1)]
        self._transition(case, "request_materials")
        case.missing, case.paused_from = missing, self.clock.today()
        self._record(tx, case, "request_materials", actor, reason=reason, data={**(data or {}), "materials": missing})
        self._tell_deadline(tx, case, "request_materials", reason)
        self._issue_for(tx, case, self.item_of(case), "request_materials")
        return case

    def deliver_deferred(self, tx: Tx, case: Case, actor: str, materials: list[str]) -> Case:
        """容缺: a material promised at acceptance arrives."""
        domain.next_status(case.status, "deliver_deferred")
        owed = {m["code"] for m in case.deferred}
        if not set(materials) <= owed:
            raise RuleViolation("these materials were not owed", {"materials": sorted(set(materials) - owed)})
        self._transition(case, "deliver_deferred")
        case.deferred = [m for m in case.deferred if m["code"] not in set(materials)]
        self._record(tx, case, "deliver_deferred", actor, data={"delivered": sorted(materials)})
        return case

    # --- the departments, over the bus -----------------------------------------------------------------

    def on_department_step(self, tx: Tx, message: Message) -> str:
        """A department asks for a step (more materials, a special procedure, the one extension).

        The same step functions as the window's HTTP API run it; when the ledger refuses (its rules, or
        the case's state), the department hears why (case.step_refused) and nothing else changes."""
        p = message.payload
        case = self._case_of_message(tx, message, p["action"])
        if case.routed_version != message.case_version or p["department"] not in case.departments:
            log.warning("department_action.stale", routed_version=case.routed_version,
                        asked_on=message.case_version, action=p["action"])
            return "stale"
        bind_context(case_number=case.case_number, town=self.town, department=p["department"])
        data = {"department": p["department"], "work_item_id": p["work_item_id"]}
        step = DepartmentStep(p["action"])
        try:
            if step == DepartmentStep.REQUEST_MATERIALS:
                self.request_materials(tx, case, p["by"], p["materials"], p["reason"], p["department"], data)
            elif step == DepartmentStep.START_PROCEDURE:
                self.pause(tx, case, p["by"], p["procedure"], p["reason"], data)
            elif step == DepartmentStep.END_PROCEDURE:
                self.resume(tx, case, p["by"], p["reason"], data)
            else:
                self.extend(tx, case, p["by"], p["days"], p["reason"], p["approved_by"], data)
        except DomainError as exc:
            tx.session.expire(case)  # the steps check before they change anything; keep it so regardless
            self._refuse_step(tx, message, exc)
            return "refused"
        return "ok"

    def _refuse_step(self, tx: Tx, message: Message, exc: DomainError) -> None:
        p = message.payload
        log.warning("department_action.refused", action=p["action"], reason=exc.message)
        tx.publish(make_message("case.step_refused", message.case_number, message.case_version, {
            "accepting_town": self.town, "handling_town": p["handling_town"], "department": p["department"],
            "work_item_id": p["work_item_id"], "step": p["action"], "reason": exc.message[:500],
            "days": p.get("days")}, producer=self.instance, occurred_at=self.clock.now()),
            rk_step_refused(p["department"], p["handling_town"]))

    def _case_of_message(self, tx: Tx, message: Message, what: str) -> Case:
        case = Ledger(tx.session).get(message.case_number, for_update=True)
        if case is None or case.accepting_town != self.town:
            raise Unacceptable(f"{what} on case {message.case_number}, which this centre ({self.town}) "
                               "does not hold")
        return case

    def apply_decision(self, tx: Tx, message: Message) -> str:
        repo = Ledger(tx.session)
        case = self._case_of_message(tx, message, "decision")
        p = message.payload
        decision = domain.Decision(p["outcome"], p.get("reason"), p.get("result_number"), message.case_version,
                                   p["department"])
        verdict = self._decision_news(tx, case, message)
        if verdict:
            return verdict
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
        waybill = self._issue_waybill(tx, case)
        if waybill is not None:
            data["tracking_number"] = waybill.tracking_number
        self._record(tx, case, "decide", p["decided_by"], reason=case.reason, data=data,
                     key=f"{case.case_number}:decide")
        tx.publish(self._message("case.completed", case, {
            "accepting_town": self.town, "department": case.department, "item_name": case.item_name,
            "kind": case.kind, "outcome": case.outcome, "reason": case.reason,
            "result_number": case.result_number, "completed_on": today, "deadline": case.deadline,
            "on_time": case.deadline is None or today <= case.deadline, "via_agent": case.via_agent,
            "village": case.village, "delivery": case.delivery,
            "tracking_number": waybill.tracking_number if waybill else None}),
            rk_completed(self.town))
        self._issue_for(tx, case, self.item_of(case), "decide")
        log.info("case.completed", outcome=case.outcome)
        return "ok"

    def _decision_news(self, tx: Tx, case: Case, message: Message) -> str | None:
        """Why a department's decision changes nothing ("stale", "duplicate"), or None: it is news."""
        p = message.payload
        if (case.status not in (CaseStatus.IN_REVIEW, CaseStatus.PAUSED)
                or case.routed_version != message.case_version or p["department"] not in case.departments):
            log.warning("decision.stale", routed_version=case.routed_version, decided_on=message.case_version,
                        status=case.status, department=p["department"])
            self._note_late_decision(tx, case, message)
            return "stale"
        if any(d.department == p["department"] for d in Ledger(tx.session).decisions(case.case_number)):
            return "duplicate"
        return None

    def _note_late_decision(self, tx: Tx, case: Case, message: Message) -> None:
        """A department decided while the case moved on (another department of a joint case refused it, a new
        version superseded the work): the decision changes nothing, but it was made, so the timeline keeps it
        and the books can count it against the departments' own."""
        p, repo = message.payload, Ledger(tx.session)
        key = f"{case.case_number}:late_decision:{p['department']}:{message.case_version}"
        if p["department"] not in case.departments or repo.has_action(key):
            return
        if any(d.department == p["department"] for d in repo.decisions(case.case_number)):
            return  # this department's decision, which closed the case, delivered again: not a late one
        repo.append(case, "late_decision", p["decided_by"], self.clock.now(), key, reason=p.get("reason"),
                    data={"department": p["department"], "outcome": p["outcome"],
                          "case_version": message.case_version, "status_then": str(case.status)})

    # --- the town agent's hops of an escalated case (上报件) ---------------------------------------------

    def record_relay(self, tx: Tx, message: Message) -> str:
        """The town agent took the work to the city department(s): a hop on the timeline, nothing else.

        It may arrive after the city's decision was returned (another queue's order): any status will do."""
        case = self._case_of_message(tx, message, "relay")
        p = message.payload
        repo = Ledger(tx.session)
        key = f"{case.case_number}:relay:{message.case_version}"
        if repo.has_action(key):
            return "duplicate"
        repo.append(case, "relay", p["relayed_by"], p["relayed_at"], key,
                    data={"departments": p["departments"], "case_version": message.case_version})
        return "ok"

    def apply_returned(self, tx: Tx, message: Message) -> str:
        """The town agent brought a city department's decision back: the city's decision and the return are
        hops on the timeline (who and when, as they happened), then the decision applies as any other."""
        case = self._case_of_message(tx, message, "returned decision")
        verdict = self._decision_news(tx, case, message)
        if verdict:
            return verdict
        p = message.payload
        repo = Ledger(tx.session)
        dept, version = p["department"], message.case_version
        repo.append(case, "city_decision", p["decided_by"], p["decided_at"],
                    f"{case.case_number}:city_decision:{dept}:{version}", reason=p.get("reason"),
                    data={"department": dept, "outcome": p["outcome"], "result_number": p.get("result_number"),
                          "work_item_id": p["work_item_id"]})
        # not "return": that is the ledger's 不予受理/退回, which an escalated case may also see (at 初审)
        repo.append(case, "return_decision", p["returned_by"], p["returned_at"],
                    f"{case.case_number}:return_decision:{dept}:{version}", data={"department": dept})
        return self.apply_decision(tx, message)

    def recompute_provisional(self, tx: Tx) -> int:
        """Deadlines counted on a guessed calendar are counted again once the year is known."""
        changed = 0
        for case in Ledger(tx.session).provisional():
            item = self.item_of(case)
            due = domain.deadline(item, case.clock_started_on, self.calendar)
            if due.provisional:
                continue
            extra = case.extended_days or 0
            final = self.calendar.add_working_days(due.date, extra).date if extra else due.date
            moved = {"from": case.deadline, "to": final}
            case.deadline, case.deadline_provisional = final, False
            case.version += 1  # a change of the ledger: the departments order what they hear by version
            self._record(tx, case, "recompute_deadline", "system:calendar", data=moved,
                         key=f"{case.case_number}:recompute:{case.version}")
            self._tell_deadline(tx, case, "recompute_deadline")
            changed += 1
        return changed

    # --- helpers --------------------------------------------------------------------------------

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
            "reason": reason, "via_agent": case.via_agent}), rk_updated(self.town))
        self._tell_handling_town(tx, case)

    def _tell_deadline(self, tx: Tx, case: Case, action: str, reason: str | None = None) -> None:
        """The ledger moved the deadline or stopped/restarted the clock: every department of the open case
        that has not decided yet hears the ledger's deadline now (in this transaction, through the outbox).

        Nothing before routing (the departments have no work yet: the routed work carries the deadline)."""
        if case.routed_version is None or case.status not in OPEN_CASE_STATUSES or case.deadline is None:
            return
        decided = {d.department for d in Ledger(tx.session).decisions(case.case_number)}
        for dept in (d for d in case.departments if d not in decided):
            tx.publish(self._message("case.deadline_moved", case, {
                "accepting_town": self.town, "handling_town": case.handling_town, "department": dept,
                "deadline": case.deadline, "deadline_provisional": bool(case.deadline_provisional),
                "paused_since": case.paused_from, "action": action, "reason": reason}),
                rk_deadline_moved(dept, case.handling_town))

    def _announce(self, tx: Tx, case: Case) -> None:
        tx.publish(self._message("case.accepted", case, {
            "accepting_town": self.town, "handling_town": case.handling_town, "item_code": case.item_code,
            "item_name": case.item_name, "department": case.department, "kind": case.kind,
            "status": case.status, "deadline": case.deadline, "first_responder": case.first_responder,
            "via_agent": case.via_agent, "village": case.village, "station_submission": case.station_submission}),
            rk_accepted(self.town))
        self._tell_handling_town(tx, case)

    def _start_clock(self, case: Case, item: dict, today) -> None:
        due = domain.deadline(item, today, self.calendar)
        case.clock_started_on, case.deadline, case.deadline_provisional = today, due.date, due.provisional

    def _run_clock_again(self, case: Case, today) -> None:
        """The clock stopped on `paused_from` (special procedure, more materials) runs on: the one place the
        deadline moves by the working days the case waited."""
        due = domain.deadline_after_pause(case.deadline, case.paused_from, today, self.calendar)
        case.deadline, case.paused_from = due.date, None
        case.deadline_provisional = case.deadline_provisional or due.provisional

    def _route(self, tx: Tx, case: Case, item: dict, kind: str | None = None, only_undecided: bool = False,
               by: str | None = None) -> None:
        """Send the work to every department that decides (the lead first); decisions must name this version.

        Routed again after the back office asked for more materials, it goes to those yet to decide. The work
        says what the back office may still ask of the ledger (extension_days_max: 0 once extended).
        An escalated case's work goes to the town agent instead (case.escalated), who relays it to the city
        department(s); a review case (复核) of an escalated item still goes straight to the department head."""
        case.routed_version = case.version
        decided = {d.department for d in Ledger(tx.session).decisions(case.case_number)} if only_undecided else set()
        routed = [d for d in case.departments if d not in decided]
        self._note_unserved(tx, case, routed)
        work = {"accepting_town": self.town, "handling_town": case.handling_town, "item_code": case.item_code,
                "item_name": case.item_name, "kind": kind or case.kind, "deadline": case.deadline,
                "auto_decide": bool(item["auto_decide"]) and case.kind == CaseKind.INSTANT,
                "lead_department": case.department,
                "extension_days_max": domain.extension_days_max(item, case.extended_days is not None)}
        if domain.escalates(kind or case.kind):
            tx.publish(self._message("case.escalated", case, {
                **work, "departments": routed, "reviewed_by": by or case.first_responder}), rk_escalated(self.town))
            return
        for dept in routed:
            tx.publish(self._message("case.routed", case, {**work, "department": dept,
                                                            "departments": case.departments}),
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
        """The notices (文书) each step owes the applicant (the rule is the domain's)."""
        self._issue_all(tx, case, item, domain.notices_owed(action, case.kind, case.contact_channel, case.outcome))

    def _issue_all(self, tx: Tx, case: Case, item: dict, kinds, email: str | None = None) -> None:
        for kind in kinds:
            self._issue(tx, case, item, kind, email)

    def _issue(self, tx: Tx, case: Case, item: dict, kind: str, email: str | None = None) -> None:
        catalog = self.catalog_of(case)
        town = catalog.towns.get(self.town, {"name": self.town})
        data = notice_rendering.NoticeData(
            case_number=case.case_number, kind=kind, issued_on=self.clock.today(),
            applicant_name=case.applicant_name,
            applicant_id_masked=mask_resident_id(case.applicant_id) if case.applicant_type == "person"
            else mask_credit_code(case.applicant_id),
            item_name=case.item_name, item_code=case.item_code,
            department_name=catalog.departments.get(case.department, {"name": case.department})["name"],
            accepting_centre=f"{town['name']}便民服务中心", window=self.window_name,
            responsible_person=case.first_responder, responsible_person_name=case.first_responder_name,
            supervision_phone=catalog.data.get("supervision_phone", "12345"),
            basis=item.get("basis"), conditions=item.get("conditions"),
            materials=[{"name": m["name"], "form": m["form"], "required": m["required"]} for m in item["materials"]],
            missing_materials=[m["name"] for m in case.missing], promised_date=case.deadline,
            provisional=case.deadline_provisional, reason=case.reason, result_number=case.result_number,
            outcome=case.outcome, pickup_place=f"{town['name']}便民服务中心{self.window_name}",
            fee_fen=item.get("fee_fen", 0), delivery=case.delivery,
            tracking_number=self._tracking_number(tx, case) if kind == NoticeKind.RESULT else None)
        notice = Ledger(tx.session).add_notice(Notice(case_number=case.case_number, kind=kind,
                                                      issued_at=self.clock.now(),
                                                      sms_text=notice_rendering.render_sms(data),
                                                      data=notice_rendering.notice_to_dict(data)))
        tx.publish(self._message("notice.issued", case, {
            "accepting_town": self.town, "notice_id": notice.id, "notice_kind": kind,
            "title": notice_rendering.TITLES[kind], "sms_text": notice.sms_text,
            "contact": {"name": case.applicant_name, "phone": case.applicant_phone,
                        "channel": "sms" if case.contact_channel in ("pickup", "mail") else case.contact_channel,
                        **({"email": email} if email else {})}}),
            rk_notice_issued(self.town))

    # --- 全城通办: the result by EMS, the handling town's centre, each centre's share ----------------------

    def centre_name(self, catalog: Catalog, town: str) -> str:
        return f"{catalog.towns.get(town, {'name': town})['name']}便民服务中心"

    def responsibilities(self, case: Case) -> list[dict]:
        """收受分离: what the accepting centre and the deciding office each answer for."""
        catalog = self.catalog_of(case)
        department = catalog.departments.get(case.department, {"name": case.department})["name"]
        town = catalog.towns.get(case.handling_town, {}).get("name")
        office = domain.office_name(case.handling_town, department, town, catalog.data.get("city", {}).get("name"))
        return domain.responsibilities(
            accepting_town=case.accepting_town, accepting_centre=self.centre_name(catalog, case.accepting_town),
            first_responder=case.first_responder, handling_town=case.handling_town, department=case.department,
            office=office)

    def _separation_record(self, case: Case) -> dict:
        """What the acceptance entry of the history keeps when the case is decided elsewhere (收受分离)."""
        if case.handling_town == case.accepting_town:
            return {}
        return {"delivery": case.delivery, "responsibilities": self.responsibilities(case)}

    def _issue_waybill(self, tx: Tx, case: Case) -> Waybill | None:
        """The result goes by EMS: the centre records the waybill with the next number of its ranges.

        Two completions at once may draw the same number: the unique column refuses one, whose message
        is tried again (the bus's retry) and draws the next."""
        if not domain.waybill_owed(case.delivery, case.outcome):
            return None
        repo = Waybills(tx.session)
        existing = repo.of(case.case_number)
        if existing is not None:
            return existing
        ranges = self.waybill_ranges or s10.default_ranges(self.town)
        number = s10.next_number(ranges, repo.last_issued(ranges))
        log.info("waybill.issued", tracking_number=number)
        return repo.add(Waybill(case_number=case.case_number, tracking_number=number,
                                address=case.mail_address or "", created_at=self.clock.now()))

    @staticmethod
    def _tracking_number(tx: Tx, case: Case) -> str | None:
        waybill = Waybills(tx.session).of(case.case_number)
        return waybill.tracking_number if waybill else None

    def _tell_handling_town(self, tx: Tx, case: Case) -> None:
        """The handling town's centre keeps its own record of the case (case.transfer), in the same
        transaction as the change: at acceptance and at every step after (status, deadline, outcome)."""
        if not domain.transfer_owed(case.accepting_town, case.handling_town, case.status, case.version):
            return
        tx.publish(self._message("case.transfer", case, {
            "accepting_town": self.town, "handling_town": case.handling_town, "item_code": case.item_code,
            "item_name": case.item_name, "department": case.department, "kind": case.kind, "status": case.status,
            "deadline": case.deadline, "accepted_at": case.accepted_at, "first_responder": case.first_responder,
            "delivery": case.delivery, "outcome": case.outcome, "completed_on": case.completed_on,
            "tracking_number": self._tracking_number(tx, case)}), rk_transfer(case.handling_town))

    def on_transfer(self, tx: Tx, message: Message) -> str:
        """Another centre accepted a case this town's department office handles: keep its latest record."""
        p = message.payload
        if p["handling_town"] != self.town or p["accepting_town"] == self.town:
            raise Unacceptable(f"a transfer of case {message.case_number} for town {p['handling_town']} from "
                               f"{p['accepting_town']}: this centre is {self.town}")
        repo = Transfers(tx.session)
        row = repo.get(message.case_number, for_update=True)
        if row is not None and row.version > message.case_version:
            log.info("transfer.stale", case_number=message.case_number, stored=row.version,
                     received=message.case_version)
            return "stale"
        values = {k: p[k] for k in ("accepting_town", "handling_town", "item_code", "item_name", "department",
                                    "kind", "status", "deadline", "accepted_at", "first_responder", "delivery",
                                    "outcome", "completed_on", "tracking_number")}
        if row is None:
            repo.add(Transfer(case_number=message.case_number, version=message.case_version,
                              updated_at=self.clock.now(), **values))
        else:
            for key, value in {**values, "version": message.case_version, "updated_at": self.clock.now()}.items():
                setattr(row, key, value)
        return "ok"

    def _message(self, type_: str, case: Case, payload: dict) -> Message:
        return make_message(type_, case.case_number, case.version, payload, producer=self.instance,
                            occurred_at=self.clock.now())

    @staticmethod
    def _scoped_key(principal: auth.Principal, key: str) -> str:
        # keys are the client's; scope them to the user so two clients cannot collide
        return hashlib.sha256(f"{principal.subject}:{key}".encode()).hexdigest()[:64]
