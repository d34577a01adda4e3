"""The agent service's use cases: the village station's (代办点: results come back, the agent owes the villager
a reply) and the town agent's (镇代办员: escalated cases relayed to the city and brought back)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from services.agent import escalation_domain as rules
from services.agent.models import AgentCase, AgentCases, Escalation, Escalations, Replies, Reply
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
)
from shared.errors import NotPermitted, NotVisible
from shared.logging import bind_context, get_logger
from shared.store import Tx
from shared.workdays import WorkingCalendar

log = get_logger(__name__)


class CaseNotHeardOf(Exception):
    """A result for an agent's case the station never heard accepted: its case.accepted may still be
    on its way, so the message waits and comes again (and is dead-lettered after the last try)."""


@dataclass
class Station:
    clock: Clock

    def on_accepted(self, tx: Tx, message: Message) -> str:
        """A centre accepted a case: if an agent submitted it, the station keeps it to await its result."""
        p = message.payload
        if not p.get("via_agent"):
            return "not_ours"
        AgentCases(tx.session).record(AgentCase(
            case_number=message.case_number, agent=p["via_agent"], accepting_town=p["accepting_town"],
            item_name=p["item_name"], accepted_at=message.occurred_at))
        return "recorded"

    def on_completed(self, tx: Tx, message: Message) -> str:
        """A case an agent submitted finished: the agent owes the villager a reply."""
        p = message.payload
        if not p.get("via_agent"):
            return "not_ours"
        if AgentCases(tx.session).get(message.case_number) is None:
            raise CaseNotHeardOf(f"no agent case {message.case_number} heard of")
        repo = Replies(tx.session)
        if repo.exists(message.case_number):
            return "duplicate"
        repo.add(Reply(case_number=message.case_number, agent=p["via_agent"], outcome=p["outcome"],
                       item_name=p["item_name"], status="to_reply", created_at=self.clock.now()))
        return "ok"

    def replies(self, tx: Tx, principal: auth.Principal) -> list[dict]:
        """The replies the caller may see (shared.auth.can_see_record): an agent its own, a town its
        centre's, the city all. The query narrows, the rule decides."""
        scope = principal.scope
        rows = Replies(tx.session).listed(
            agent=principal.subject if scope.kind == "village" else None,
            town=scope.town if scope.kind == "town" else None)
        return [{"case_number": r.case_number, "agent": r.agent, "outcome": r.outcome, "item_name": r.item_name,
                 "status": r.status, "created_at": r.created_at}
                for r, town in rows if auth.can_see_record(principal, towns=(town,), agent=r.agent)]

    def stats(self, tx: Tx, principal: auth.Principal) -> dict:
        """The city's figures, or one town's for a town scope; no other scope has any."""
        allowed, town = auth.visible_town(principal)
        if not allowed:
            raise NotPermitted(f"no statistics for scope {principal.scope}")
        return {"replies_owed": Replies(tx.session).count(town), "agent_cases": AgentCases(tx.session).count(town)}


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


def _utc(value: datetime | None) -> datetime | None:
    """Stored timestamps are UTC; SQLite hands them back naive."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
