"""Notify's use cases; each runs inside one transaction."""
from __future__ import annotations

from dataclasses import dataclass

from shared import auth
from shared.clock import Clock
from shared.contracts import Message, make_message, rk_notice_sent
from shared.logging import get_logger
from shared.store import Tx
from shared.web import Forbidden, NotFound

from services.notify import domain
from services.notify.channels import CHANNELS
from services.notify.models import Contact, Deliveries, Delivery

log = get_logger(__name__)


class ContactNotYetKnown(Exception):
    """The result arrived before the acceptance: retried by the broker until it is known."""


@dataclass
class Notifier:
    instance: str
    clock: Clock

    def on_accepted(self, tx: Tx, message: Message) -> str:
        p = message.payload
        c = p["contact"]
        repo = Deliveries(tx.session)
        repo.save_contact(Contact(case_number=message.case_number, accepting_town=p["accepting_town"],
                                  name=c["name"], phone=c["phone"], channel=c["channel"], email=c.get("email")))
        text = domain.acceptance_text(message.case_number, p["item_name"], p["deadline"], p["kind"])
        return self._deliver(tx, message, "acceptance", text)

    def on_completed(self, tx: Tx, message: Message) -> str:
        p = message.payload
        text = domain.result_text(message.case_number, p["item_name"], p["outcome"], p.get("reason"),
                                  p.get("result_number"))
        return self._deliver(tx, message, "result", text)

    def _deliver(self, tx: Tx, message: Message, notice_kind: str, text: str) -> str:
        repo = Deliveries(tx.session)
        if repo.exists(message.case_number, notice_kind):
            return "duplicate"
        contact = repo.contact(message.case_number)
        if contact is None:
            raise ContactNotYetKnown(message.case_number)
        channel = CHANNELS[domain.channel_for(contact.channel, set(CHANNELS))]
        status = channel.send(contact.phone, text)
        delivery = Delivery(case_number=message.case_number, notice_kind=notice_kind, channel=channel.name,
                            text=text, status=status, created_at=self.clock.now())
        repo.add(delivery)
        tx.publish(make_message("notice.sent", message.case_number, message.case_version, {
            "accepting_town": contact.accepting_town, "notice_kind": notice_kind, "channel": channel.name,
            "delivery_id": delivery.id}, producer=self.instance, occurred_at=self.clock.now()),
            rk_notice_sent(contact.accepting_town))
        return "ok"

    def deliveries(self, tx: Tx, principal: auth.Principal, case_number: str) -> list[dict]:
        contact = Deliveries(tx.session).contact(case_number)
        if contact is None:
            raise NotFound(f"no notices for case {case_number}")
        if not auth.can_see_town(principal, contact.accepting_town):
            raise Forbidden(f"case {case_number} is outside scope {principal.scope}")
        return [{"id": d.id, "notice_kind": d.notice_kind, "channel": d.channel, "text": d.text,
                 "status": d.status, "created_at": d.created_at}
                for d in Deliveries(tx.session).for_case(case_number)]

    def stats(self, tx: Tx) -> dict:
        counts = Deliveries(tx.session).counts()
        return {"acceptance": counts.get("acceptance", 0), "result": counts.get("result", 0)}
