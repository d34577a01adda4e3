"""The village station's use cases (代办点): results come back, the agent owes the villager a reply."""
from __future__ import annotations

from dataclasses import dataclass

from services.agent.models import AgentCase, AgentCases, Replies, Reply
from shared import auth
from shared.clock import Clock
from shared.contracts import Message
from shared.errors import NotPermitted
from shared.store import Tx


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
