"""The agent service's use cases.

The village station's (村/社区便民服务站, 代办点): a village agent (代办员) submits for a villager with their
authorisation (代办), or only helps (帮办); the station refuses, does at once, or relays (报送) to the town
centre; it follows the case the town opens, and the agent replies to the villager (回复). Every service is a
row of the station's log (服务台账).

The town agent's (镇代办员): escalated cases (上报件) relayed to the city after the town's 初审, tracked against
the city's deadline, and the decision brought back to the town's ledger."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.exc import IntegrityError

from services.agent import domain
from services.agent import escalation_domain as rules
from services.agent.domain import ReplyStatus, ServiceStatus
from services.agent.models import (
    AgentCase,
    AgentCases,
    Escalation,
    Escalations,
    Replies,
    Reply,
    StationService,
    StationServices,
)
from shared import auth
from shared.clock import Clock
from shared.contracts import (
    CaseEscalatedV1,
    Message,
    Unacceptable,
    make_message,
    rk_escalation_relayed,
    rk_escalation_returned,
    rk_routed,
    rk_station_submitted,
)
from shared.errors import NotPermitted, NotVisible, RuleViolation
from shared.logging import bind_context, get_logger
from shared.pii import mask_credit_code, mask_phone, mask_resident_id, normalise_resident_id
from shared.reference import Catalogs
from shared.store import Store, Tx
from shared.workdays import WorkingCalendar, today_in_shanghai

log = get_logger(__name__)
NUMBER_TRIES = 5  # two services of one village at the same moment may pick the same number: try again


class CaseNotHeardOf(Exception):
    """A result for an agent's case the station never heard accepted: its case.accepted may still be
    on its way, so the message waits and comes again (and is dead-lettered after the last try)."""


@dataclass
class Station:
    clock: Clock
    catalogs: Catalogs | None = None  # the reference stream's catalogue versions (what a station may do)
    instance: str = "agent"

    # --- serving a villager ---------------------------------------------------------------------

    def submit(self, tx: Tx, body: dict, principal: auth.Principal, request_key: str) -> tuple[StationService, bool]:
        """代办: a submission with the villager's authorisation: refused at the station, done there the
        same day, or relayed (报送) to the town centre, whose message leaves in this transaction."""
        village = self._village_of(principal)
        repo = StationServices(tx.session)
        key = self._scoped_key(principal, request_key)
        existing = repo.by_request_key(key)
        if existing is not None:  # the same submission again (poor connectivity): answer it, change nothing
            self._bind(existing)
            return existing, False
        catalog = self.catalogs.active()
        item = catalog.item(body["item_code"])
        if item is None:
            raise RuleViolation(f"unknown item {body['item_code']!r}", {"item_code": ["not in the catalogue"]})
        handling = domain.handle_submission(item, body["materials"], body.get("fee_fen") or 0, body.get("solution"))
        applicant = self._applicant(body["applicant"])
        auth_ = body["authorisation"]
        record = self._new_record(
            tx, repo, principal, village, key, domain.Mode.SUBMISSION, handling.status, item, catalog.version,
            applicant, content=body.get("content") or domain.default_content(item), solution=handling.solution,
            reason=handling.reason, materials=sorted(body["materials"]), fee_fen=body.get("fee_fen") or 0,
            authorisation={**auth_, "signed_at": auth_["signed_at"].isoformat()})
        if handling.status == ServiceStatus.DONE:
            record.completed_at, record.completed_on = record.served_at, record.served_on
        if handling.relays:
            tx.publish(make_message("station.submitted", record.number, 0, {
                "town": record.town, "village": village, "agent": record.agent, "item_code": item["code"],
                "applicant": applicant, "materials": record.materials, "authorisation": auth_,
                "fee_fen": record.fee_fen}, producer=self.instance, occurred_at=record.served_at),
                rk_station_submitted(record.town))
        log.info("station.served", mode=record.mode, status=record.status, item=item["code"], reason=record.reason)
        return record, True

    def help(self, tx: Tx, body: dict, principal: auth.Principal, request_key: str) -> tuple[StationService, bool]:
        """帮办: the villager declined to authorise; the agent helps (explains, fills in forms) and nothing
        is submitted on their behalf. Logged like every service."""
        village = self._village_of(principal)
        repo = StationServices(tx.session)
        key = self._scoped_key(principal, request_key)
        existing = repo.by_request_key(key)
        if existing is not None:
            self._bind(existing)
            return existing, False
        catalog = self.catalogs.active()
        item = None
        if body.get("item_code"):
            item = catalog.item(body["item_code"])
            if item is None:
                raise RuleViolation(f"unknown item {body['item_code']!r}", {"item_code": ["not in the catalogue"]})
        person = body["applicant"]
        applicant = {"type": "person", "name": person["name"], "phone": person["phone"], "id_number": None,
                     "credit_code": None}
        now = self.clock.now()
        record = self._new_record(
            tx, repo, principal, village, key, domain.Mode.HELP_ONLY, ServiceStatus.HELPED, item, catalog.version,
            applicant, content=body["content"], solution=body["solution"], reason=None, materials=[], fee_fen=0,
            authorisation=None)
        record.completed_at, record.completed_on = now, record.served_on
        log.info("station.served", mode=record.mode, status=record.status, item=record.item_code or None)
        return record, True

    def serve_once(self, store: Store, step: Callable, body: dict, principal: auth.Principal, request_key: str,
                   view: Callable) -> tuple[dict, bool]:
        """`step` (submit or help) in its own transaction, answered with `view(tx, record)`.

        Sends with one Idempotency-Key at the same moment all miss each other's record; the database lets
        one insert it, and a loser runs again in a new transaction, where it finds the winner's record (a
        repeat: one record, one message). Two services of a village at the same moment may pick one number:
        the second tries again with the next."""
        for attempt in range(NUMBER_TRIES):
            try:
                with store.transaction() as tx:
                    record, created = step(tx, body, principal, request_key)
                    return view(tx, record), created
            except IntegrityError as exc:
                text = str(exc.orig)
                if "station_services" not in text or attempt == NUMBER_TRIES - 1:
                    raise
                log.info("station.same_moment", constraint="request_key" if "request_key" in text else "number")
        raise AssertionError("unreachable")  # pragma: no cover

    def _new_record(self, tx: Tx, repo: StationServices, principal: auth.Principal, village: str, key: str,
                    mode: str, status: str, item: dict | None, catalog_version: str, applicant: dict, *,
                    content: str, solution: str | None, reason: str | None, materials: list, fee_fen: int,
                    authorisation: dict | None) -> StationService:
        now, today = self.clock.now(), self.clock.today()
        number = domain.record_number(village, today, repo.next_seq(village, today))
        record = StationService(
            number=number, request_key=key, village=village, town=village[:9], agent=principal.subject,
            mode=str(mode), status=str(status), item_code=item["code"] if item else "",
            item_name=item["name"] if item else "", item_category=item["category"] if item else "",
            item_level=item["level"] if item else "", catalog_version=catalog_version,
            applicant_name=applicant["name"], applicant_id_masked=self._masked_id(applicant),
            applicant_phone=applicant["phone"], content=content, solution=solution, reason=reason,
            authorisation=authorisation, materials=materials, fee_fen=fee_fen, served_at=now, served_on=today)
        self._bind(record)
        repo.add(record)
        return record

    @staticmethod
    def _applicant(a: dict) -> dict:
        """The applicant as relayed: the full ID travels this once, in the message, never kept here."""
        person = a["type"] == "person"
        return {"type": a["type"], "name": a["name"],
                "id_number": normalise_resident_id(a["id_number"]) if person else None,
                "credit_code": None if person else a["credit_code"].strip().upper(),
                "phone": a["phone"], "channel": a["channel"], "town": a.get("town")}

    @staticmethod
    def _masked_id(applicant: dict) -> str:
        if applicant.get("id_number"):
            return mask_resident_id(applicant["id_number"])
        if applicant.get("credit_code"):
            return mask_credit_code(applicant["credit_code"])
        return ""

    @staticmethod
    def _village_of(principal: auth.Principal) -> str:
        if principal.scope.kind != "village":
            raise NotPermitted(f"only a village station's agent serves villagers (scope {principal.scope})")
        return principal.scope.village

    @staticmethod
    def _scoped_key(principal: auth.Principal, key: str) -> str:
        # keys are the client's; scope them to the agent so two stations' clients cannot collide
        return hashlib.sha256(f"{principal.subject}:{key}".encode()).hexdigest()[:64]

    @staticmethod
    def _bind(record: StationService) -> None:
        bind_context(station_number=record.number, village=record.village, town=record.town,
                     case_number=record.case_number or record.number)

    # --- the log -----------------------------------------------------------------------------------

    def services(self, tx: Tx, principal: auth.Principal, query: dict) -> list[dict]:
        """The log the caller may see, oldest first: a village agent their own records, a town's users their
        town's villages, the city all."""
        month = _month(query.get("month"))
        status = query.get("status") or None
        if status is not None and status not in set(ServiceStatus):
            raise RuleViolation(f"unknown status {status!r}", {"status": [str(s) for s in ServiceStatus]})
        scope = principal.scope
        if scope.kind == "village":
            rows = StationServices(tx.session).listed(agent=principal.subject, village=scope.village, month=month,
                                                      status=status)
        else:
            allowed, town = auth.visible_town(principal)
            if not allowed:
                raise NotPermitted(f"no station log for scope {scope}")
            rows = StationServices(tx.session).listed(town=town, month=month, status=status)
        return [record_view(r) for r in rows]

    def service(self, tx: Tx, principal: auth.Principal, number: str) -> dict:
        """One record with the case's progress and the reply; one the caller may not see is not found."""
        record = StationServices(tx.session).by_number(number)
        if record is None or not self._may_see(principal, record):
            raise NotVisible(f"no station record {number}")
        reply = Replies(tx.session).of_service(record.id)
        return record_view(record, reply, with_reply=True)

    @staticmethod
    def _may_see(principal: auth.Principal, record: StationService) -> bool:
        scope = principal.scope
        if scope.kind == "village":  # the agent's own records, at their own station
            return record.village == scope.village and auth.can_see_record(principal, agent=record.agent)
        return auth.can_see_record(principal, towns=(record.town,))

    # --- the town's case, over the bus -----------------------------------------------------------------

    def on_accepted(self, tx: Tx, message: Message) -> str:
        """A centre accepted a case: if an agent submitted it, the station keeps it to await its result,
        and a station's relayed submission is linked to it."""
        p = message.payload
        if not p.get("via_agent"):
            return "not_ours"
        AgentCases(tx.session).record(AgentCase(
            case_number=message.case_number, agent=p["via_agent"], accepting_town=p["accepting_town"],
            item_name=p["item_name"], accepted_at=message.occurred_at))
        if p.get("station_submission"):
            record = StationServices(tx.session).by_number(p["station_submission"], for_update=True)
            if record is None:
                raise Unacceptable(f"case {message.case_number} names station record {p['station_submission']}, "
                                   "which no station here relayed")
            self._follow(record, message, p["status"])
        return "recorded"

    def on_updated(self, tx: Tx, message: Message) -> str:
        """A step in an agent's case: the station keeps the case's status; a case the town returned (不予受理)
        ends here, and the agent owes the villager a reply."""
        p = message.payload
        if not p.get("via_agent"):
            return "not_ours"
        agent_case = AgentCases(tx.session).get(message.case_number)
        if agent_case is None:
            if p["status"] == "consulted":  # a consultation is recorded, never announced
                return "not_ours"
            raise CaseNotHeardOf(f"no agent case {message.case_number} heard of")
        record = StationServices(tx.session).by_case(message.case_number, for_update=True)
        if record is not None and not self._follow(record, message, p["status"]):
            return "stale"
        if p["status"] == "returned":
            if record is not None:
                record.reason = p.get("reason")
            self._owe_reply(tx, message.case_number, p["via_agent"], domain.RETURNED, agent_case.item_name, record)
        return "ok"

    def on_completed(self, tx: Tx, message: Message) -> str:
        """A case an agent submitted finished: the station's record is completed, the agent owes a reply."""
        p = message.payload
        if not p.get("via_agent"):
            return "not_ours"
        agent_case = AgentCases(tx.session).get(message.case_number)
        if agent_case is None:
            raise CaseNotHeardOf(f"no agent case {message.case_number} heard of")
        record = StationServices(tx.session).by_case(message.case_number, for_update=True)
        if record is not None and self._follow(record, message, "completed"):
            record.outcome, record.completed_on = p["outcome"], p["completed_on"]
            record.completed_at = message.occurred_at
            if p.get("reason") and p["outcome"] != "approved":
                record.reason = p["reason"]
        owed = self._owe_reply(tx, message.case_number, p["via_agent"], p["outcome"], p["item_name"], record,
                               village=p.get("village"))
        return "ok" if owed else "duplicate"

    def on_refused(self, tx: Tx, message: Message) -> str:
        """The town could not open a case from a relayed submission (station.refused): the record is rejected
        with the town's reason, and the agent owes the villager a reply."""
        p = message.payload
        record = StationServices(tx.session).by_number(message.case_number, for_update=True)
        if record is None or record.village != p["village"]:
            raise Unacceptable(f"a refusal of station record {message.case_number}, which no station here relayed")
        self._bind(record)
        if record.status != ServiceStatus.RELAYED:
            return "stale" if record.status != ServiceStatus.REJECTED else "duplicate"
        record.status, record.reason = ServiceStatus.REJECTED, p["reason"]
        self._owe_reply(tx, record.number, record.agent, domain.RETURNED, record.item_name, record)
        log.warning("station.relay_refused", reason=p["reason"])
        return "ok"

    def _follow(self, record: StationService, message: Message, case_status: str) -> bool:
        """Link the record to its case and keep the case's status; an older case version changes nothing."""
        if domain.is_stale(record.case_version, message.case_version):
            return False
        record.case_number, record.case_version = message.case_number, message.case_version
        record.case_status = case_status
        record.status = str(domain.status_for_case(case_status, outcome_heard=message.type == "case.completed"))
        self._bind(record)
        return True

    def _owe_reply(self, tx: Tx, case_number: str, agent: str, outcome: str, item_name: str,
                   record: StationService | None, village: str | None = None) -> bool:
        repo = Replies(tx.session)
        if repo.exists(case_number):
            return False
        repo.add(Reply(case_number=case_number, agent=agent, outcome=outcome, item_name=item_name,
                       status=ReplyStatus.TO_REPLY, created_at=self.clock.now(),
                       village=record.village if record is not None else village,
                       service_id=record.id if record is not None else None))
        return True

    # --- replies (回复) -----------------------------------------------------------------------------------

    def replies(self, tx: Tx, principal: auth.Principal, status: str | None = ReplyStatus.TO_REPLY) -> list[dict]:
        """The replies the caller may see, oldest first: a village agent their own and their station's, a
        town its villages', the city all. The query narrows, the rule decides."""
        scope = principal.scope
        if status is not None and status not in set(ReplyStatus):
            raise RuleViolation(f"unknown status {status!r}", {"status": [*ReplyStatus, "all"]})
        village = scope.village if scope.kind == "village" else None
        rows = Replies(tx.session).listed(
            agent=principal.subject if village else None, village=village,
            town=scope.town if scope.kind == "town" else None, status=status)
        return [reply_view(r) for r, town in rows if self._may_see_reply(principal, r, town)]

    @staticmethod
    def _may_see_reply(principal: auth.Principal, reply: Reply, town: str | None) -> bool:
        scope = principal.scope
        if scope.kind == "village":
            return domain.may_reply(principal.subject, scope.village, reply.agent, reply.village)
        return auth.can_see_record(principal, towns=(town,) if town else (), agent=reply.agent)

    def record_reply(self, tx: Tx, principal: auth.Principal, case_number: str, body: dict) -> dict:
        """回复: the agent tells the villager the result (by phone or a visit), and records when and what."""
        reply = Replies(tx.session).get(case_number, for_update=True)
        if reply is None:
            raise NotVisible(f"no reply owed for {case_number}")
        town = AgentCases(tx.session).get(case_number)
        town = town.accepting_town if town is not None else (reply.village or "")[:9] or None
        if not self._may_see_reply(principal, reply, town):
            raise NotVisible(f"no reply owed for {case_number}")
        bind_context(case_number=case_number)
        now = self.clock.now()
        at = body.get("at") or now
        if reply.status == ReplyStatus.REPLIED and domain.same_reply(
                {"method": reply.method, "what_said": reply.what_said}, body["method"], body["what_said"]):
            return reply_view(reply)  # the same reply sent again
        domain.check_reply(reply.status, body["method"], at, now)
        reply.status, reply.method, reply.what_said = ReplyStatus.REPLIED, body["method"], body["what_said"]
        reply.replied_at, reply.replied_on, reply.replied_by = at, today_in_shanghai(at), principal.subject
        log.info("station.replied", method=reply.method)
        return reply_view(reply)

    def stats(self, tx: Tx, principal: auth.Principal) -> dict:
        """The city's figures, or one town's for a town scope; no other scope has any."""
        allowed, town = auth.visible_town(principal)
        if not allowed:
            raise NotPermitted(f"no statistics for scope {principal.scope}")
        return {"replies_owed": Replies(tx.session).count(town, status=ReplyStatus.TO_REPLY),
                "replies_made": Replies(tx.session).count(town, status=ReplyStatus.REPLIED),
                "agent_cases": AgentCases(tx.session).count(town),
                "station": StationServices(tx.session).count_by(town),
                "escalations": {"by_status": Escalations(tx.session).count_by_status(town)}}


# --- the town agents (镇代办员): escalated cases (上报件) to the city and back -------------------------------

@dataclass
class TownAgent:
    """Relays an escalated case's work to the city department(s) after the town's 初审, tracks it against the
    city's deadline, and brings the decision back to the town's ledger (rules: escalation_domain)."""

    clock: Clock
    calendar: WorkingCalendar  # the city's working days (the reference stream's, updated in place)
    instance: str
    work_exchange: str

    # --- over the bus ---------------------------------------------------------------------------

    def on_escalated(self, tx: Tx, message: Message) -> str:
        """初审 passed at a town: the work waits for the town agent's relay (a newer routing replaces it)."""
        p = message.payload
        if p["handling_town"] != "city":
            raise Unacceptable(f"escalated work of case {message.case_number} for {p['handling_town']}: "
                               "a town agent relays only to city departments")
        repo = Escalations(tx.session)
        esc = repo.get(message.case_number, for_update=True)
        news = rules.escalated_news(esc and esc.case_version, esc and esc.status, message.case_version)
        if news in ("duplicate", "stale"):
            return news
        work = CaseEscalatedV1().dump(p)
        if esc is None:
            esc = Escalation(case_number=message.case_number, decisions={})
            repo.add(esc)
        # a newer routing (the city asked for more materials, the town reviewed again): a new round
        esc.accepting_town, esc.item_code, esc.item_name = p["accepting_town"], p["item_code"], p["item_name"]
        esc.lead_department, esc.departments, esc.deadline = p["lead_department"], p["departments"], p["deadline"]
        esc.case_version, esc.work, esc.status = message.case_version, work, rules.AWAITING_RELAY
        esc.reviewed_by, esc.escalated_at = p["reviewed_by"], message.occurred_at
        esc.relayed_by = esc.relayed_at = esc.decided_at = esc.returned_by = esc.returned_at = None
        esc.decisions = {}  # the older round's decisions are stale at the ledger: it routed their work again
        bind_context(case_number=esc.case_number, town=esc.accepting_town)
        log.info("escalation.awaiting_relay", case_version=esc.case_version, news=news)
        return "ok"

    def on_decided(self, tx: Tx, message: Message) -> str:
        """A city department decided relayed work: kept until the case's outcome is known, then to return."""
        p = message.payload
        esc = Escalations(tx.session).get(message.case_number, for_update=True)
        if esc is None:
            raise Unacceptable(f"a decision on case {message.case_number}, which no town agent relayed")
        news = rules.decision_news(esc.case_version, esc.status, esc.departments, esc.decisions,
                                   message.case_version, p["department"])
        if news != "ok":
            log.warning("escalation.decision_" + news, case_number=esc.case_number, department=p["department"],
                        case_version=message.case_version, held_version=esc.case_version, status=esc.status)
            return news
        decided_at = message.occurred_at
        esc.decisions = {**esc.decisions, p["department"]: {
            "outcome": p["outcome"], "reason": p.get("reason"), "result_number": p.get("result_number"),
            "decided_by": p["decided_by"], "work_item_id": p["work_item_id"], "handling_town": p["handling_town"],
            "decided_at": decided_at.astimezone(UTC).isoformat()}}
        if rules.outcome_known(esc.departments, esc.decisions):
            esc.status, esc.decided_at = rules.DECIDED, decided_at
        log.info("escalation.decision", case_number=esc.case_number, department=p["department"],
                 outcome=p["outcome"], status=esc.status)
        return "ok"

    def on_completed(self, tx: Tx, message: Message) -> str:
        """The case completed at the ledger: an escalation still in flight ended some other way (closed)."""
        esc = Escalations(tx.session).get(message.case_number, for_update=True)
        if esc is None or not rules.closes_on_completion(esc.status):
            return "not_ours"
        esc.status = rules.CLOSED
        return "closed"

    # --- the town agent's API ---------------------------------------------------------------------

    def listing(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        """Escalations in flight (or of the statuses asked) with the city's deadline, overdue first."""
        allowed, town = auth.visible_town(principal)
        if not allowed:
            raise NotVisible("not found")
        statuses = rules.parse_status(query.get("status"))
        today = self.clock.today()
        views = [self.view(e, today) for e in Escalations(tx.session).listed(statuses, town)
                 if auth.can_see_record(principal, towns=(e.accepting_town,))]
        views.sort(key=lambda v: rules.list_key(v["days_left"], v["deadline"], v["case_number"]))
        return {"today": today, "escalations": views}

    def detail(self, tx: Tx, principal: auth.Principal, case_number: str) -> dict:
        esc = self._visible(tx, principal, case_number)
        view = self.view(esc, self.clock.today())
        view["hops"] = rules.hops(esc.reviewed_by, _utc(esc.escalated_at), esc.relayed_by, _utc(esc.relayed_at),
                                  {d: {**x, "decided_at": _at(x["decided_at"])} for d, x in esc.decisions.items()},
                                  esc.returned_by, _utc(esc.returned_at))
        return view

    def relay(self, tx: Tx, principal: auth.Principal, case_number: str) -> dict:
        """报送 to the city: the work to each department (case.routed, relayed by this town agent) and the hop
        to the town's ledger (escalation.relayed), in one transaction. A second relay is refused (409)."""
        esc = self._visible(tx, principal, case_number, for_update=True)
        rules.check_relay(esc.status)
        now = self.clock.now()
        work = CaseEscalatedV1().load(esc.work)
        routed = {k: work[k] for k in ("accepting_town", "handling_town", "item_code", "item_name", "kind",
                                       "deadline", "auto_decide", "lead_department", "extension_days_max")}
        for dept in esc.departments:
            tx.publish(make_message("case.routed", esc.case_number, esc.case_version, {
                **routed, "department": dept, "departments": esc.departments, "relayed_by": principal.subject},
                producer=self.instance, occurred_at=now),
                rk_routed(dept, work["handling_town"]), exchange=self.work_exchange)
        tx.publish(make_message("escalation.relayed", esc.case_number, esc.case_version, {
            "accepting_town": esc.accepting_town, "departments": esc.departments, "relayed_by": principal.subject,
            "relayed_at": now}, producer=self.instance, occurred_at=now), rk_escalation_relayed(esc.accepting_town))
        esc.status, esc.relayed_by, esc.relayed_at = rules.RELAYED, principal.subject, now
        log.info("escalation.relayed", departments=esc.departments)
        return self.detail(tx, principal, case_number)

    def return_(self, tx: Tx, principal: auth.Principal, case_number: str) -> dict:
        """The city's decision back to the town's ledger (escalation.returned, one per department's decision),
        which tells the applicant. Only once decided (409 before)."""
        esc = self._visible(tx, principal, case_number, for_update=True)
        rules.check_return(esc.status)
        now = self.clock.now()
        order = [d for d in esc.departments if d in esc.decisions]  # the lead first, as routed
        for dept in order:
            d = esc.decisions[dept]
            tx.publish(make_message("escalation.returned", esc.case_number, esc.case_version, {
                "accepting_town": esc.accepting_town, "handling_town": d["handling_town"], "department": dept,
                "outcome": d["outcome"], "reason": d["reason"], "result_number": d["result_number"],
                "decided_by": d["decided_by"], "work_item_id": d["work_item_id"], "decided_at": _at(d["decided_at"]),
                "returned_by": principal.subject, "returned_at": now}, producer=self.instance, occurred_at=now),
                rk_escalation_returned(esc.accepting_town))
        esc.status, esc.returned_by, esc.returned_at = rules.RETURNED, principal.subject, now
        log.info("escalation.returned", departments=order)
        return self.detail(tx, principal, case_number)

    # --- reading ------------------------------------------------------------------------------------

    def _visible(self, tx: Tx, principal: auth.Principal, case_number: str, for_update: bool = False) -> Escalation:
        esc = Escalations(tx.session).get(case_number, for_update=for_update)
        if esc is None or not auth.can_see_record(principal, towns=(esc.accepting_town,)):
            raise NotVisible(f"no escalation {case_number}")  # the same answer for another town's
        bind_context(case_number=case_number, town=esc.accepting_town)
        return esc

    def view(self, esc: Escalation, today) -> dict:
        in_flight = esc.status in rules.IN_FLIGHT
        days = self.calendar.working_days_between(today, esc.deadline) if in_flight else None
        return {"case_number": esc.case_number, "accepting_town": esc.accepting_town, "item_code": esc.item_code,
                "item_name": esc.item_name, "lead_department": esc.lead_department,
                "departments": esc.departments, "case_version": esc.case_version, "status": esc.status,
                "deadline": esc.deadline, "days_left": days, "overdue": days is not None and days < 0,
                "reviewed_by": esc.reviewed_by, "escalated_at": _utc(esc.escalated_at),
                "relayed_by": esc.relayed_by, "relayed_at": _utc(esc.relayed_at), "decided_at": _utc(esc.decided_at),
                "returned_by": esc.returned_by, "returned_at": _utc(esc.returned_at),
                "decisions": [{"department": dept, **{k: d[k] for k in ("outcome", "reason", "result_number",
                                                                        "decided_by")},
                               "decided_at": _at(d["decided_at"])}
                              for dept in esc.departments if (d := esc.decisions.get(dept))]}


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)



# --- views (numbers masked) --------------------------------------------------------------------------

def _utc(at: datetime | None) -> datetime | None:
    # SQLite gives stored times back without their zone: they are UTC (shared.db stores UTC)
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def reply_view(r: Reply) -> dict:
    return {"case_number": r.case_number, "agent": r.agent, "village": r.village, "outcome": r.outcome,
            "item_name": r.item_name, "status": r.status, "created_at": _utc(r.created_at), "method": r.method,
            "replied_at": _utc(r.replied_at), "replied_by": r.replied_by, "what_said": r.what_said}


def record_view(r: StationService, reply: Reply | None = None, with_reply: bool = False) -> dict:
    out = {
        "number": r.number, "village": r.village, "town": r.town, "agent": r.agent, "mode": r.mode,
        "status": r.status, "item_code": r.item_code or None, "item_name": r.item_name or None,
        "item_category": r.item_category or None, "item_level": r.item_level or None,
        "catalog_version": r.catalog_version,
        "applicant": {"name": r.applicant_name, "id_number": r.applicant_id_masked or None,
                      "phone": mask_phone(r.applicant_phone)},
        "content": r.content, "solution": r.solution, "reason": r.reason, "authorisation": r.authorisation,
        "materials": r.materials, "fee_fen": r.fee_fen, "served_at": _utc(r.served_at), "served_on": r.served_on,
        "case_number": r.case_number, "case_status": r.case_status, "outcome": r.outcome,
        "completed_at": _utc(r.completed_at), "completed_on": r.completed_on}
    if reply is not None or with_reply:
        out["reply"] = reply_view(reply) if reply is not None else None
    return out


def _month(text: str | None) -> tuple[date, date] | None:
    """?month=YYYY-MM: its first day and the next month's first day (Asia/Shanghai dates)."""
    if not text:
        return None
    try:
        first = datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise RuleViolation("month must be YYYY-MM", {"month": [text]}) from None
    return first, date(first.year + first.month // 12, first.month % 12 + 1, 1)
