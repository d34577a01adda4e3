"""The department desk's use cases; each runs inside one transaction.

Domain errors are raised as types (shared.errors and approval's own in domain.py); shared.web maps them
to HTTP statuses. What a caller may not see answers like what does not exist (NotVisible: 404)."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Counter
from sqlalchemy import event

from services.approval import domain
from services.approval.models import Absence, Extension, Handover, Post, WorkItem, WorkItems
from shared import auth
from shared.clock import Clock
from shared.contracts import (
    Message,
    Unacceptable,
    make_message,
    rk_decided,
    rk_department_action,
    rk_escalation_decided,
)
from shared.errors import DomainError, NotPermitted, NotVisible, RuleViolation
from shared.logging import bind_context, get_logger
from shared.store import Tx
from shared.vocabulary import DepartmentStep, ExtensionStatus, WorkItemStatus
from shared.workdays import WorkingCalendar

log = get_logger(__name__)
SYSTEM_ACTOR = "rule:instant"
AB_ACTOR = "system:ab-post"
MANAGERS = ("department_head", "city_admin")


class WorkNotYetArrived(Exception):
    """News about work this department has not received yet (its routing travels on another queue): the
    message is retried, not acked and lost."""


@dataclass
class Desk:
    department: str
    instance: str
    clock: Clock
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    head_fallbacks: Counter | None = None
    _registry: object = None

    # --- metrics ----------------------------------------------------------------------------------

    def bind_metrics(self, registry) -> None:
        """Register this desk's figures on the instance's registry (once per registry)."""
        if registry is None or registry is self._registry:
            return
        self.head_fallbacks = Counter(
            "tongban_ab_head_fallback_total",
            "New or re-assigned work that went to the department head because A and B were both away",
            ["department"], registry=registry)
        self.head_fallbacks.labels(department=self.department)  # shown as 0 from the start
        self._registry = registry

    def _count_head_fallback(self, tx: Tx) -> None:
        counter = self.head_fallbacks
        if counter is None:
            return
        # counted when, and only if, the transaction commits (a failed message is handled again)
        event.listen(tx.session, "after_commit",
                     lambda _session: counter.labels(department=self.department).inc())

    # --- work arriving and leaving ----------------------------------------------------------------

    def receive(self, tx: Tx, message: Message) -> str:
        """Work routed to this department: a work item, decided at once where the catalogue says so.

        A newer case version of a case (routed again after more materials) supersedes the open item of
        the older one; an older version than one already here is stale and ignored.
        """
        p = message.payload
        problem = domain.foreign_work(self.department, message.case_number, p)
        if problem:
            raise Unacceptable(problem)
        repo = WorkItems(tx.session)
        if repo.find(message.case_number, message.case_version, self.department):
            return "duplicate"
        newest = repo.newest_version(message.case_number, self.department)
        if newest is not None and newest > message.case_version:
            log.warning("work.stale_routing", routed_version=message.case_version, newest=newest)
            return "stale"
        now = self.clock.now()
        older = repo.open_for_case(message.case_number, self.department)
        item = WorkItem(case_number=message.case_number, case_version=message.case_version,
                        department=self.department, handling_town=p["handling_town"],
                        accepting_town=p["accepting_town"], item_code=p["item_code"], item_name=p["item_name"],
                        kind=p["kind"], deadline=p["deadline"], status=WorkItemStatus.PENDING, received_at=now,
                        extension_days_max=p.get("extension_days_max"), deadline_version=message.case_version,
                        relayed_by=p.get("relayed_by"))
        repo.add(item)
        repo.log(item, "receive", "system", now, f"{item.id}:receive:{message.message_id}",
                 data={"case_version": item.case_version})
        keep = None
        for old in older:
            old.status, old.superseded_by = WorkItemStatus.SUPERSEDED, item.id
            repo.log(old, "supersede", "system", now, f"{old.id}:supersede",
                     reason=f"the case was routed again as version {item.case_version}",
                     data={"superseded_by": item.id, "case_version": item.case_version})
            keep = keep or old.assignee
        if p["auto_decide"]:
            self._decide(tx, item, "approved", None, domain.result_number(self.department, item.case_number),
                         SYSTEM_ACTOR)
            return "ok"
        self._assign(tx, item, now, current=keep, actor="system")
        return "ok"

    def on_case_completed(self, tx: Tx, message: Message) -> str:
        """The case closed (e.g. another department of a joint case refused): what is still open here is moot."""
        repo = WorkItems(tx.session)
        open_items = repo.open_for_case(message.case_number, self.department)
        now = self.clock.now()
        for item in open_items:
            item.status = WorkItemStatus.WITHDRAWN
            repo.log(item, "withdraw", "system", now, f"{item.id}:withdraw",
                     reason=f"case closed: {message.payload['outcome']}")
        return "ok" if open_items else "not_ours"

    def on_step_refused(self, tx: Tx, message: Message) -> str:
        """The ledger refused a step this department asked for: the item says so, with the ledger's reason.

        What the step changed here is undone (the item waits again); a refused extension shows as refused
        and may be asked for again within what the ledger allows."""
        p = message.payload
        repo = WorkItems(tx.session)
        item = repo.get(p["work_item_id"])
        if item is None or item.department != self.department or item.case_number != message.case_number:
            raise Unacceptable(f"refusal of {p['step']} for work item {p['work_item_id']} of case "
                               f"{message.case_number}, which {self.department} does not hold")
        bind_context(case_number=item.case_number, department=self.department, town=item.handling_town)
        now = self.clock.now()
        data = {"step": p["step"], "days": p.get("days"), "case_version": message.case_version}
        if p["step"] == DepartmentStep.EXTEND:
            ext = repo.extension(item.case_number, self.department)
            if ext is not None and ext.status == ExtensionStatus.APPROVED:
                ext.status, ext.refused_reason, ext.refused_at = ExtensionStatus.REFUSED, p["reason"], now
        undo = domain.REFUSAL_UNDOES.get(p["step"])
        if undo and item.status == undo[0] and item.case_version == message.case_version:
            item.status = undo[1]
            item.procedure = None
            if p["step"] == DepartmentStep.REQUEST_MATERIALS:
                item.requested_materials = None
            data["status"] = item.status
        repo.log(item, "step_refused", "ledger", now, f"{item.id}:step_refused:{message.message_id}"[:100],
                 reason=p["reason"], data=data)
        log.warning("work.step_refused", step=p["step"], reason=p["reason"])
        return "ok"

    def on_deadline_moved(self, tx: Tx, message: Message) -> str:
        """The ledger moved the deadline (or stopped or restarted the clock) of this department's open work.

        Applied once per case version, in version order: a message older than (or as old as) the version
        the item already shows is ignored. Recorded in the item's history with the ledger's step and reason."""
        p = message.payload
        if p["department"] != self.department:
            raise Unacceptable(f"deadline of case {message.case_number} for {p['department']}, not {self.department}")
        repo = WorkItems(tx.session)
        items = repo.open_for_case(message.case_number, self.department)
        if not items:
            if repo.newest_version(message.case_number, self.department) is None:
                # the routed work (another queue) has not arrived yet: wait for it (retried, never dropped)
                raise WorkNotYetArrived(f"no work item of case {message.case_number} yet for {self.department}")
            return "not_open"  # decided or withdrawn here meanwhile: the deadline no longer matters
        now, outcome = self.clock.now(), "stale"
        for item in items:
            bind_context(case_number=item.case_number, department=self.department, town=item.handling_town)
            applied = item.deadline_version if item.deadline_version is not None else item.case_version
            if not domain.deadline_news(applied, message.case_version):
                log.info("work.deadline_stale", applied_version=applied, case_version=message.case_version)
                continue
            moved = {"from": item.deadline.isoformat(), "to": p["deadline"].isoformat(),
                     "provisional": p["deadline_provisional"],
                     "paused_since": p["paused_since"].isoformat() if p["paused_since"] else None,
                     "step": p["action"], "case_version": message.case_version}
            item.deadline, item.deadline_version = p["deadline"], message.case_version
            repo.log(item, "deadline_moved", "ledger", now, f"{item.id}:deadline_moved:{message.message_id}"[:100],
                     reason=p.get("reason"), data=moved)
            log.info("work.deadline_moved", step=p["action"], deadline=moved["to"], case_version=message.case_version)
            outcome = "ok"
        return outcome

    # --- who holds the work (AB岗) ---------------------------------------------------------------------

    def _rules_of(self, repo: WorkItems, town: str, now: datetime, also: set[str] = frozenset()):
        row = repo.post(self.department, town)
        post = domain.Post(row.a, row.b, row.head) if row else None
        holders = {h for h in ((post.a, post.b, post.head) if post else ()) if h} | set(also)
        absences = [self._absence(a) for a in repo.absences_not_over(now, holders)]
        return post, absences

    @staticmethod
    def _absence(row: Absence) -> domain.Absence:
        return domain.Absence(row.holder, domain.as_utc(row.starts_at), domain.as_utc(row.ends_at), row.reason)

    def _assign(self, tx: Tx, item: WorkItem, now: datetime, current: str | None, actor: str) -> None:
        """Give the item to the present holder the post's rules name; log any handover."""
        repo = WorkItems(tx.session)
        post, absences = self._rules_of(repo, item.handling_town, now, {current} if current else set())
        result = domain.assign(post, absences, now, current)
        if result.holder == item.assignee and not result.handover:
            return
        item.assignee = result.holder
        if result.handover:
            self._handover(tx, item, result.handover_from, result.holder, result.role or "office", now,
                           result.reason, actor)
            if result.head_fallback:
                self._count_head_fallback(tx)
        else:
            repo.log(item, "assign", actor, now, self._key(repo, item, "assign"),
                     data={"assignee": result.holder, "role": result.role})

    def _handover(self, tx: Tx, item: WorkItem, from_holder: str | None, to_holder: str | None, role: str,
                  now: datetime, reason: str | None, actor: str) -> None:
        repo = WorkItems(tx.session)
        repo.add_handover(Handover(handling_town=item.handling_town, work_item_id=item.id,
                                   case_number=item.case_number, from_holder=from_holder, to_holder=to_holder,
                                   to_role=role, at=now, reason=reason, actor=actor))
        repo.log(item, "handover", actor, now, self._key(repo, item, "handover"), reason=reason,
                 data={"from": from_holder, "to": to_holder, "role": role})
        log.info("work.handover", work_item_id=item.id, from_holder=from_holder, to_holder=to_holder, role=role)

    def _rebalance(self, tx: Tx, now: datetime, towns: set[str] | None = None,
                   holders: set[str] | None = None) -> list[int]:
        """Open items held by someone away now go to the present holder (work never waits on an absent person)."""
        repo = WorkItems(tx.session)
        away_now = {a.holder for a in map(self._absence, repo.absences_not_over(now, holders)) if a.covers(now)}
        moved = []
        for item in repo.open_held_by(away_now):
            if towns is None or item.handling_town in towns:
                self._assign(tx, item, now, current=item.assignee, actor=AB_ACTOR)
                moved.append(item.id)
        return moved

    def _take(self, tx: Tx, principal: auth.Principal, item: WorkItem, now: datetime) -> None:
        """Before a step: the holder's absence is resolved, the actor may act, and an unassigned item is theirs."""
        repo = WorkItems(tx.session)
        if item.assignee is not None:
            self._assign(tx, item, now, current=item.assignee, actor=AB_ACTOR)
        with _details():
            domain.check_actor(item.assignee, principal.subject, principal.role == "department_head")
        if item.assignee is None:
            item.assignee = principal.subject
            repo.log(item, "claim", principal.subject, now, self._key(repo, item, "claim"),
                     data={"assignee": principal.subject, "implicit": True})

    def claim(self, tx: Tx, principal: auth.Principal, item_id: int) -> WorkItem:
        item = self.visible_item(tx, principal, item_id)
        repo = WorkItems(tx.session)
        now = self.clock.now()
        _, absences = self._rules_of(repo, item.handling_town, now,
                                     {principal.subject, *([item.assignee] if item.assignee else [])})
        with _details(item):
            verdict = domain.check_claim(item.status, item.assignee, principal.subject, absences, now,
                                         item.superseded_by)
        if verdict == "take":
            item.assignee = principal.subject
            repo.log(item, "claim", principal.subject, now, self._key(repo, item, "claim"),
                     data={"assignee": principal.subject})
        elif verdict == "takeover":
            gone = domain.away(item.assignee, absences, now)
            self._handover(tx, item, item.assignee, principal.subject, "claim", now,
                           f"{item.assignee} away: {gone.reason}", principal.subject)
            item.assignee = principal.subject
        return item

    # --- decisions and the other steps ------------------------------------------------------------

    def decide(self, tx: Tx, principal: auth.Principal, item_id: int, body: dict) -> WorkItem:
        item = self.visible_item(tx, principal, item_id)
        with _details(item):
            domain.check_decision(item.status, body["outcome"], body.get("reason"),
                                  valid_until=body.get("valid_until"), today=self.clock.today(),
                                  current_outcome=item.outcome, superseded_by=item.superseded_by)
        self._take(tx, principal, item, self.clock.now())
        number = body.get("result_number")
        if body["outcome"] == "approved" and not number:
            number = domain.result_number(self.department, item.case_number)
        self._decide(tx, item, body["outcome"], body.get("reason"), number, principal.subject,
                     valid_until=body.get("valid_until"))
        return item

    def _decide(self, tx: Tx, item: WorkItem, outcome: str, reason: str | None, number: str | None,
                actor: str, valid_until=None) -> None:
        bind_context(case_number=item.case_number, department=self.department, town=item.handling_town)
        now = self.clock.now()
        item.status, item.outcome, item.reason = WorkItemStatus.DECIDED, outcome, reason
        item.result_number = number if outcome == "approved" else None
        item.valid_until = valid_until if outcome == "approved" else None
        item.decided_by, item.decided_at = actor, now
        WorkItems(tx.session).log(item, "decide", actor, now, f"{item.id}:decide", reason=reason,
                                  data={"outcome": outcome, "result_number": item.result_number,
                                        "valid_until": item.valid_until.isoformat() if item.valid_until else None,
                                        "case_version": item.case_version})
        # relayed work (上报件) goes back the way it came: through the town agent, not to the ledger
        type_, key = (("escalation.decided", rk_escalation_decided(self.department, item.accepting_town))
                      if item.relayed_by else ("case.decided", rk_decided(self.department, item.accepting_town)))
        tx.publish(make_message(type_, item.case_number, item.case_version, {
            "accepting_town": item.accepting_town, "handling_town": item.handling_town,
            "department": self.department, "outcome": outcome, "reason": reason,
            "result_number": item.result_number, "decided_by": actor, "work_item_id": item.id,
        }, producer=self.instance, occurred_at=now), key)
        log.info("work.decided", outcome=outcome, actor=actor, relayed_by=item.relayed_by)

    def request_materials(self, tx: Tx, principal: auth.Principal, item_id: int, body: dict) -> WorkItem:
        """一次性告知 from the back office: the case goes back to the window, the clock stops."""
        item = self.visible_item(tx, principal, item_id)
        with _details(item):
            status = domain.next_status(item.status, "request_materials", item.superseded_by, item.outcome)
            materials = domain.check_materials(body["materials"])
            reason = domain.check_reason(body["reason"], "asking for more materials")
        now = self.clock.now()
        self._take(tx, principal, item, now)
        item.status, item.requested_materials = status, materials
        self._step(tx, item, "request_materials", principal.subject, now, reason, {"materials": materials})
        return item

    def start_procedure(self, tx: Tx, principal: auth.Principal, item_id: int, body: dict) -> WorkItem:
        """特别程序 (site survey, hearing, expert review …): the item and the case's clock pause."""
        item = self.visible_item(tx, principal, item_id)
        with _details(item):
            status = domain.next_status(item.status, "start_procedure", item.superseded_by, item.outcome)
            reason = domain.check_reason(body["reason"], "a special procedure")
        now = self.clock.now()
        self._take(tx, principal, item, now)
        item.status, item.procedure = status, body["procedure"]
        self._step(tx, item, "start_procedure", principal.subject, now, reason, {"procedure": body["procedure"]})
        return item

    def end_procedure(self, tx: Tx, principal: auth.Principal, item_id: int, body: dict) -> WorkItem:
        item = self.visible_item(tx, principal, item_id)
        with _details(item):
            status = domain.next_status(item.status, "end_procedure", item.superseded_by, item.outcome)
            reason = domain.check_reason(body["reason"], "ending a special procedure")
        now = self.clock.now()
        self._take(tx, principal, item, now)
        procedure, item.status, item.procedure = item.procedure, status, None
        self._step(tx, item, "end_procedure", principal.subject, now, reason, {"procedure": procedure})
        return item

    def request_extension(self, tx: Tx, principal: auth.Principal, item_id: int, body: dict) -> WorkItem:
        """延期: an approver asks; nothing leaves until the department head approves."""
        item = self.visible_item(tx, principal, item_id)
        repo = WorkItems(tx.session)
        ext = repo.extension(item.case_number, self.department)
        with _details(item):
            domain.next_status(item.status, "request_extension", item.superseded_by, item.outcome)
            domain.check_extension_request(self._extension_state(repo, item, ext), body["days"], body["reason"],
                                           item.extension_days_max)
        now = self.clock.now()
        self._take(tx, principal, item, now)
        reason = body["reason"].strip()
        if ext is None:
            repo.add_extension(Extension(case_number=item.case_number, department=self.department,
                                         work_item_id=item.id, days=body["days"], reason=reason,
                                         status=ExtensionStatus.REQUESTED, requested_by=principal.subject,
                                         requested_at=now))
        else:  # the ledger refused the last one: this is a new request (the ledger still counts one per case)
            ext.work_item_id, ext.days, ext.reason = item.id, body["days"], reason
            ext.status = ExtensionStatus.REQUESTED
            ext.requested_by, ext.requested_at = principal.subject, now
            ext.approved_by = ext.approved_at = ext.refused_reason = ext.refused_at = None
        repo.log(item, "request_extension", principal.subject, now, self._key(repo, item, "request_extension"),
                 reason=reason, data={"days": body["days"]})
        return item

    def approve_extension(self, tx: Tx, principal: auth.Principal, item_id: int) -> WorkItem:
        """The department head approves the one extension: the centre moves the deadline."""
        item = self.visible_item(tx, principal, item_id)
        repo = WorkItems(tx.session)
        ext = repo.extension(item.case_number, self.department)
        with _details(item):
            domain.next_status(item.status, "approve_extension", item.superseded_by, item.outcome)
            domain.check_extension_approval(self._extension_state(repo, item, ext), item.extension_days_max)
        now = self.clock.now()
        ext.status, ext.approved_by, ext.approved_at = ExtensionStatus.APPROVED, principal.subject, now
        repo.log(item, "approve_extension", principal.subject, now, self._key(repo, item, "approve_extension"),
                 reason=ext.reason, data={"days": ext.days, "requested_by": ext.requested_by})
        self._publish_step(tx, item, "extend", ext.requested_by, ext.reason, now,
                           {"days": ext.days, "approved_by": principal.subject})
        return item

    def _extension_state(self, repo: WorkItems, item: WorkItem, ext: Extension | None = None):
        ext = ext or repo.extension(item.case_number, self.department)
        return domain.ExtensionState(ext.status, ext.days, ext.requested_by) if ext else None

    def _step(self, tx: Tx, item: WorkItem, action: str, actor: str, now: datetime, reason: str, data: dict) -> None:
        repo = WorkItems(tx.session)
        repo.log(item, action, actor, now, self._key(repo, item, action), reason=reason, data=data)
        self._publish_step(tx, item, action, actor, reason, now, data)

    def _publish_step(self, tx: Tx, item: WorkItem, action: str, by: str, reason: str, now: datetime,
                      data: dict) -> None:
        """case.department: the centre that owns the case takes the step (on the routed case version)."""
        bind_context(case_number=item.case_number, department=self.department, town=item.handling_town)
        tx.publish(make_message("case.department", item.case_number, item.case_version, {
            "accepting_town": item.accepting_town, "handling_town": item.handling_town,
            "department": self.department, "work_item_id": item.id, "action": action, "by": by,
            "reason": reason, **data,
        }, producer=self.instance, occurred_at=now), rk_department_action(self.department, item.accepting_town))
        log.info("work.department_action", action=action, actor=by)

    @staticmethod
    def _key(repo: WorkItems, item: WorkItem, action: str) -> str:
        return f"{item.id}:{action}:{repo.action_count(item.id) + 1}"

    # --- posts and absences ----------------------------------------------------------------------------

    def _may_manage(self, principal: auth.Principal, office: str) -> None:
        if not domain.valid_office(office):
            raise RuleViolation(f"{office!r} is not an office: a 9-digit town code or 'city'")
        town = None if office == "city" else office
        if principal.role not in MANAGERS or not auth.can_act_for_department(principal, self.department, town):
            raise NotPermitted(f"only the {self.department} head of office {office} (or city IT) manages its post")

    def set_post(self, tx: Tx, principal: auth.Principal, office: str, body: dict) -> dict:
        self._may_manage(principal, office)
        head = body.get("head") or (principal.subject if principal.role == "department_head" else None)
        if head is None:
            raise RuleViolation("name the department head, the fallback when A and B are both away",
                                {"head": "required"})
        with _details():
            post = domain.check_post(body["a"], body["b"], head)
        repo = WorkItems(tx.session)
        now = self.clock.now()
        row = repo.post(self.department, office)
        if row is None:
            row = Post(department=self.department, handling_town=office, a=post.a, b=post.b, head=post.head,
                       updated_by=principal.subject, updated_at=now)
            tx.session.add(row)
        else:
            row.a, row.b, row.head, row.updated_by, row.updated_at = post.a, post.b, post.head, principal.subject, now
        tx.session.flush()
        log.info("post.set", office=office, a=post.a, b=post.b, head=post.head)
        self._rebalance(tx, now, {office})
        return self.post_view(tx, row, now)

    def add_absence(self, tx: Tx, principal: auth.Principal, office: str, body: dict) -> dict:
        self._may_manage(principal, office)
        repo = WorkItems(tx.session)
        row = repo.post(self.department, office)
        if row is None:
            raise NotVisible(f"no post is configured for office {office}; PUT /posts/{office} first")
        if body["holder"] not in (row.a, row.b, row.head):
            raise RuleViolation(f"{body['holder']} holds no post at office {office} (A {row.a}, B {row.b}, "
                             f"head {row.head})")
        with _details():
            gone = domain.absence(body["holder"], body["from_"], body["to"], body["reason"])
        now = self.clock.now()
        absence = Absence(handling_town=office, holder=gone.holder, starts_at=gone.start, ends_at=gone.end,
                          reason=gone.reason, recorded_by=principal.subject, recorded_at=now)
        repo.add_absence(absence)
        moved = self._rebalance(tx, now, holders={gone.holder}) if gone.covers(now) else []
        log.info("post.absence", office=office, holder=gone.holder, moved=len(moved))
        return {**self.absence_view(absence), "moved_work_items": moved}

    def posts(self, tx: Tx, principal: auth.Principal) -> dict:
        towns = self._offices_of(principal)
        repo = WorkItems(tx.session)
        now = self.clock.now()
        return {"department": self.department,
                "posts": [self.post_view(tx, row, now) for row in repo.posts(self.department, towns)]}

    def handovers(self, tx: Tx, principal: auth.Principal, office: str) -> dict:
        if not domain.valid_office(office):
            raise RuleViolation(f"{office!r} is not an office: a 9-digit town code or 'city'")
        towns = self._offices_of(principal)
        if towns is not None and office not in towns:
            raise NotVisible(f"no office {office}")
        return {"department": self.department, "office": office,
                "handovers": [{"id": h.id, "work_item_id": h.work_item_id, "case_number": h.case_number,
                               "from": h.from_holder, "to": h.to_holder, "role": h.to_role,
                               "at": domain.as_utc(h.at), "reason": h.reason, "actor": h.actor}
                              for h in WorkItems(tx.session).handovers(office)]}

    def post_view(self, tx: Tx, row: Post, now: datetime) -> dict:
        repo = WorkItems(tx.session)
        post, absences = self._rules_of(repo, row.handling_town, now)
        on_duty = domain.assign(post, absences, now)
        return {"office": row.handling_town, "a": row.a, "b": row.b, "head": row.head,
                "on_duty": {"holder": on_duty.holder, "role": on_duty.role, "because": on_duty.reason},
                "absences": [self.absence_view(a) for a in repo.absences_not_over(now, {row.a, row.b, row.head})],
                "updated_by": row.updated_by, "updated_at": domain.as_utc(row.updated_at)}

    @staticmethod
    def absence_view(row: Absence) -> dict:
        return {"id": row.id, "office": row.handling_town, "holder": row.holder,
                "from": domain.as_utc(row.starts_at), "to": domain.as_utc(row.ends_at), "reason": row.reason,
                "recorded_by": row.recorded_by}

    # --- reading --------------------------------------------------------------------------------

    def _may_see(self, principal: auth.Principal, item: WorkItem) -> bool:
        town = None if item.handling_town == "city" else item.handling_town
        if principal.role in ("supervisor", "city_admin", "service") and principal.scope.kind == "city":
            return True
        return auth.can_act_for_department(principal, self.department, town)

    def _offices_of(self, principal: auth.Principal) -> set[str] | None:
        """The offices whose work `principal` sees (None: all); an approver sees their level and town only."""
        scope = principal.scope
        if scope.kind == "city" and principal.role in ("supervisor", "city_admin", "service"):
            return None
        if scope.kind == "department" and scope.department == self.department:
            return {scope.town} if scope.town else {"city"}
        raise NotVisible("not found")  # another department's reader finds nothing here, as on a missing record

    def visible_item(self, tx: Tx, principal: auth.Principal, item_id: int) -> WorkItem:
        item = WorkItems(tx.session).get(item_id)
        if item is None or not self._may_see(principal, item):
            raise NotVisible(f"no work item {item_id}")  # the same answer for one out of scope
        return item

    def worklist(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        """Open work by urgency; items whose clock is stopped (special procedure, more materials) apart."""
        towns = self._offices_of(principal)
        try:
            limit = min(int(query.get("limit", 100)), 500)
        except ValueError:
            raise RuleViolation("limit must be an integer") from None
        with _details():
            statuses = domain.parse_status_filter(query.get("status"))
        who = query.get("assignee")
        now, today = self.clock.now(), self.clock.today()
        self._rebalance(tx, now, towns)
        items = WorkItems(tx.session).worklist(towns, statuses, limit,
                                               assignee=principal.subject if who == "me" else
                                               (None if who in (None, "", "none") else who),
                                               unassigned=who == "none")
        ranked = sorted(items, key=lambda i: domain.urgency_key(
            self.calendar.working_days_between(today, i.deadline), i.deadline, i.id))
        return {"department": self.department, "today": today,
                "items": [self.view(i, today) for i in ranked if i.status not in domain.CLOCK_STOPPED],
                "paused": [self.view(i, today) for i in ranked if i.status in domain.CLOCK_STOPPED]}

    def view(self, item: WorkItem, today=None) -> dict:
        today = today or self.clock.today()
        days = self.calendar.working_days_between(today, item.deadline)
        is_open = item.status in domain.OPEN
        return {"id": item.id, "case_number": item.case_number, "case_version": item.case_version,
                "item_code": item.item_code, "item_name": item.item_name, "kind": item.kind,
                "handling_town": item.handling_town, "accepting_town": item.accepting_town,
                "deadline": item.deadline, "days_left": days if is_open else None,
                "overdue": is_open and days < 0, "status": item.status,
                "paused": item.status in domain.CLOCK_STOPPED, "assignee": item.assignee,
                "procedure": item.procedure, "requested_materials": item.requested_materials,
                "outcome": item.outcome, "reason": item.reason, "result_number": item.result_number,
                "valid_until": item.valid_until, "decided_by": item.decided_by, "decided_at": item.decided_at,
                "superseded_by": item.superseded_by, "extension_days_max": item.extension_days_max,
                "relayed_by": item.relayed_by}

    def detail(self, tx: Tx, item: WorkItem) -> dict:
        view = self.view(item)
        ext = WorkItems(tx.session).extension(item.case_number, self.department)
        view["extension"] = None if ext is None else {
            "days": ext.days, "reason": ext.reason, "status": ext.status, "requested_by": ext.requested_by,
            "requested_at": domain.as_utc(ext.requested_at), "approved_by": ext.approved_by,
            "approved_at": ext.approved_at and domain.as_utc(ext.approved_at), "work_item_id": ext.work_item_id,
            "refused_reason": ext.refused_reason, "refused_at": ext.refused_at and domain.as_utc(ext.refused_at)}
        view["history"] = self.history(tx, item)
        view["refused_steps"] = [{"step": h["data"].get("step"), "reason": h["reason"], "at": h["at"]}
                                 for h in view["history"] if h["action"] == "step_refused"]
        return view

    def history(self, tx: Tx, item: WorkItem) -> list[dict]:
        return [{"action": a.action, "actor": a.actor, "at": a.at, "reason": a.reason, "data": a.data,
                 "idempotency_key": a.idempotency_key}
                for a in WorkItems(tx.session).history(item.id)]

    def stats(self, tx: Tx, principal: auth.Principal) -> dict:
        if self._offices_of(principal) is not None:  # the figures cover every office: city-wide readers only
            raise NotVisible("not found")
        return {"department": self.department, **WorkItems(tx.session).counts()}


@contextmanager
def _details(item: WorkItem | None = None):
    """The rules' verdicts, with what the caller needs to know about the item (its status, holder …)."""
    try:
        yield
    except DomainError as exc:
        if exc.details is None and item is not None:
            if isinstance(exc, domain.AlreadyDecided):
                exc.details = {"outcome": item.outcome, "decided_by": item.decided_by}
            elif isinstance(exc, domain.ItemClosed):
                exc.details = {"status": item.status, "case_version": item.case_version,
                               "superseded_by": item.superseded_by}
            elif isinstance(exc, domain.Conflicting):
                exc.details = {"status": item.status, "assignee": item.assignee}
        raise
