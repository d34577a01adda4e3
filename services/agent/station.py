"""The village station's use cases (代办点): results come back, the agent owes the villager a reply."""
from __future__ import annotations

from dataclasses import dataclass

from shared import auth
from shared.clock import Clock
from shared.contracts import Message
from shared.store import Tx

from services.agent.models import Replies, Reply


@dataclass
class Station:
    clock: Clock

    def on_completed(self, tx: Tx, message: Message) -> str:
        p = message.payload
        if not p.get("via_agent"):
            return "not_ours"
        repo = Replies(tx.session)
        if repo.exists(message.case_number):
            return "duplicate"
        repo.add(Reply(case_number=message.case_number, agent=p["via_agent"], outcome=p["outcome"],
                       item_name=p["item_name"], status="to_reply", created_at=self.clock.now()))
        return "ok"

    def replies(self, tx: Tx, principal: auth.Principal) -> list[dict]:
        # a village agent sees what that agent submitted; supervisors see all
        agent = None if principal.role in ("supervisor", "city_admin", "service") else principal.subject
        return [{"case_number": r.case_number, "agent": r.agent, "outcome": r.outcome, "item_name": r.item_name,
                 "status": r.status, "created_at": r.created_at} for r in Replies(tx.session).for_agent(agent)]

    def stats(self, tx: Tx) -> dict:
        return {"replies_owed": Replies(tx.session).count()}
