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


@dataclass
class Notifier:
    instance: str
    clock: Clock

    def on_notice_issued(self, tx: Tx, message: Message) -> str:
        """The centre issued a notice: deliver its text to the applicant and log the delivery."""
        p = message.payload
        repo = Deliveries(tx.session)
        if repo.exists(message.case_number, p["notice_id"]):
            return "duplicate"
        c = p["contact"]
        repo.save_contact(Contact(case_number=message.case_number, accepting_town=p["accepting_town"],
                                  name=c["name"], phone=c["phone"], channel=c["channel"], email=c.get("email")))
        channel = CHANNELS[domain.channel_for(c["channel"], set(CHANNELS))]
        status = channel.send(c["phone"], p["sms_text"])
        delivery = Delivery(case_number=message.case_number, notice_kind=p["notice_kind"], notice_id=p["notice_id"],
                            channel=channel.name, text=p["sms_text"], status=status, created_at=self.clock.now())
        repo.add(delivery)
        tx.publish(make_message("notice.sent", message.case_number, message.case_version, {
            "accepting_town": p["accepting_town"], "notice_kind": p["notice_kind"], "channel": channel.name,
            "delivery_id": delivery.id}, producer=self.instance, occurred_at=self.clock.now()),
            rk_notice_sent(p["accepting_town"]))
        return "ok"

    def deliveries(self, tx: Tx, principal: auth.Principal, case_number: str) -> list[dict]:
        contact = Deliveries(tx.session).contact(case_number)
        if contact is None:
            raise NotFound(f"no notices for case {case_number}")
        if not auth.can_see_town(principal, contact.accepting_town):
            raise Forbidden(f"case {case_number} is outside scope {principal.scope}")
        return [{"id": d.id, "notice_kind": d.notice_kind, "notice_id": d.notice_id, "channel": d.channel,
                 "text": d.text, "status": d.status, "created_at": d.created_at}
                for d in Deliveries(tx.session).for_case(case_number)]

    def stats(self, tx: Tx) -> dict:
        counts = Deliveries(tx.session).counts()
        return {"by_kind": counts, "total": sum(counts.values()), "result": counts.get("result", 0)}
