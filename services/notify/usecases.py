"""Notify's use cases: hear of cases, and deliver each notice at most once.

A notice is sent at most once, even when a commit fails after the send:

1. The handler of notice.issued (its queue runs without the generic inbox: the delivery row is the
   record) finds the delivery by (case number, notice id) or records it `queued`, and commits.
2. After that commit, `_deliver` claims the row in its own short transaction (queued/failed ->
   `sending`, attempts + 1, sending_since = now) and commits, so the row says "maybe sent" before
   anything leaves. Only one worker can claim a row.
3. The channel is called with the delivery id as its idempotency key.
4. What the channel answered is kept in this process (`_unrecorded`) and written in a new
   transaction: `sent` together with notice.sent in the outbox; or `failed` (the channel is sure
   nothing left: the message is retried later and sends again); or `in_doubt` (nobody knows:
   never sent again, logged as an error with the masked phone and counted; the gateway can be
   asked by the idempotency key).
5. If that transaction fails, the message is retried. The redelivery finds the row `sending`:
   - this process holds the answer: it records it (no second send);
   - no process holds it (the sender died) and the row has been `sending` longer than the
     channel's timeout: `in_doubt`;
   - `sending` only briefly: another worker may be mid-send, so the message waits and comes again.
   A timer (`sweep`) does the same for rows whose message is gone (dead-lettered or acked).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from prometheus_client import Counter

from services.notify import domain
from services.notify.channels import NotSent
from services.notify.models import Contact, Deliveries, Delivery, KnownCases
from shared import auth
from shared.clock import Clock
from shared.contracts import Message, Unacceptable, make_message, rk_notice_sent
from shared.errors import NotPermitted, NotVisible
from shared.logging import get_logger
from shared.pii import mask_phone, mask_text
from shared.store import Tx

log = get_logger(__name__)


class CaseNotHeardOf(Exception):
    """A notice for a case notify has not heard of: the case event may still be on its way, so wait."""


class DeliveryInProgress(Exception):
    """Another worker took this delivery moments ago and may be sending it now: try again later."""


class DeliveryRefused(Exception):
    """The channel did not send (it is sure of it): try again later."""


@dataclass(frozen=True)
class Outcome:
    """What one send came to, held in this process until the delivery log says it."""

    status: str  # sent | failed | in_doubt
    channel_status: str | None = None
    error: str | None = None


@dataclass
class Notifier:
    instance: str
    clock: Clock
    channels: dict  # name -> channel (see services.notify.channels)
    _unrecorded: dict = field(default_factory=dict)  # delivery id -> Outcome not yet committed
    _counter: Counter | None = None
    _counter_registry: object = None

    # --- the cases notify hears of -------------------------------------------------------------

    def on_case_event(self, tx: Tx, message: Message) -> str:
        """case.accepted, or case.updated (a consultation publishes only that): notices may follow."""
        town = message.payload["accepting_town"]
        problem = domain.case_number_problem(message.case_number, town)
        if problem:
            raise Unacceptable(problem)
        known = KnownCases(tx.session).record(message.case_number, town, message.type, self.clock.now())
        if known.accepting_town != town:
            raise Unacceptable(f"case {message.case_number} was accepted in town {known.accepting_town}, "
                               f"not {town}")
        return "case_heard"

    def _check_case(self, tx: Tx, case_number: str, town: str) -> None:
        """A notice goes out only for a case its issuing centre opened."""
        problem = domain.case_number_problem(case_number, town)
        if problem:
            raise Unacceptable(problem)
        known = KnownCases(tx.session).get(case_number)
        if known is None:
            raise CaseNotHeardOf(f"no case {case_number} heard of yet")
        if known.accepting_town != town:
            raise Unacceptable(f"a notice from town {town} for case {case_number}, "
                               f"which town {known.accepting_town} accepted")

    # --- notices ------------------------------------------------------------------------------------

    def on_notice_issued(self, tx: Tx, message: Message, platform) -> str:
        """The centre issued a notice: record the delivery, and send it once this is committed.

        `platform` is the running instance's (shared.platform.Platform): the send and its record take
        transactions of their own from its store, and count in its metrics."""
        p = message.payload
        self._check_case(tx, message.case_number, p["accepting_town"])
        delivery = Deliveries(tx.session).find(message.case_number, p["notice_id"], for_update=True)
        if delivery is None:
            delivery = self._queue(tx, message)
        elif delivery.status in domain.SETTLED:
            return "duplicate"
        elif delivery.status == "sending":
            return self._settle_sending(tx, delivery, platform)
        tx.after_commit(partial(self._deliver, platform, delivery.id))
        return "ok"

    def _queue(self, tx: Tx, message: Message) -> Delivery:
        p, c = message.payload, message.payload["contact"]
        repo = Deliveries(tx.session)
        repo.save_contact(Contact(case_number=message.case_number, accepting_town=p["accepting_town"],
                                  name=c["name"], phone=c["phone"], channel=c["channel"], email=c.get("email")))
        delivery = Delivery(
            case_number=message.case_number, notice_kind=p["notice_kind"], notice_id=p["notice_id"],
            channel=domain.channel_for(c["channel"], set(self.channels)), text=mask_text(p["sms_text"]),
            status="queued",
            created_at=self.clock.now(), recipient=c["phone"], accepting_town=p["accepting_town"],
            case_version=message.case_version, attempts=0)
        repo.add(delivery)
        return delivery

    def _settle_sending(self, tx: Tx, delivery: Delivery, platform) -> str:
        """A redelivery finds the notice `sending`: record what is known, never send it again blindly."""
        outcome = self._unrecorded.get(delivery.id)
        if outcome is not None:  # sent (or not) by this process; only the record failed
            self._record(tx, delivery, outcome, platform)
            if outcome.status == "failed":
                tx.after_commit(partial(self._deliver, platform, delivery.id))
                return "ok"
            return "recorded"
        if domain.sender_gone(delivery.sending_since, self.clock.now(), self._timeout(delivery.channel)):
            self._record(tx, delivery, Outcome("in_doubt", error="the sender stopped before recording "
                                                                  "what the channel answered"), platform)
            return "in_doubt"
        raise DeliveryInProgress(f"delivery {delivery.id} is being sent (since {delivery.sending_since})")

    def _deliver(self, platform, delivery_id: int) -> None:
        """After the handler's commit: claim, send once, record (see the module's docstring)."""
        with platform.store.transaction() as tx:
            repo = Deliveries(tx.session)
            if not repo.claim(delivery_id, domain.CLAIMABLE, self.clock.now()):
                log.info("notice.taken_elsewhere", delivery_id=delivery_id)
                return
            d = repo.get(delivery_id)
            name, recipient, text = d.channel, d.recipient, d.text
        outcome = self._send(delivery_id, name, recipient, text)
        self._unrecorded[delivery_id] = outcome
        self._finish(platform, delivery_id, outcome)
        if outcome.status == "failed":
            raise DeliveryRefused(f"delivery {delivery_id} was not sent: {outcome.error}")

    def _send(self, delivery_id: int, name: str, recipient: str, text: str) -> Outcome:
        channel = self.channels.get(name)
        if channel is None:
            return Outcome("failed", error=f"no channel {name!r} in this deployment")
        try:
            status = channel.send(idempotency_key=str(delivery_id), recipient_phone=recipient, text=text)
        except NotSent as exc:
            return Outcome("failed", error=f"not sent: {exc}"[:2000])
        except Exception as exc:  # the text may or may not have left
            return Outcome("in_doubt", error=f"{type(exc).__name__}: {exc}"[:2000])
        return Outcome("sent", channel_status=None if status is None else str(status)[:40])

    def _finish(self, platform, delivery_id: int, outcome: Outcome) -> None:
        """Write what a send came to, in a transaction of its own (raises if the database fails)."""
        with platform.store.transaction() as tx:
            d = Deliveries(tx.session).get(delivery_id, for_update=True)
            if d is not None and (d.status == "sending" or (outcome.status == "sent" and d.status == "in_doubt")):
                self._record(tx, d, outcome, platform)
            else:  # recorded already (a redelivery did it)
                tx.after_commit(partial(self._forget, delivery_id, outcome))

    def _record(self, tx: Tx, d: Delivery, outcome: Outcome, platform) -> None:
        now = self.clock.now()
        if outcome.status == "sent":
            d.status, d.sent_at, d.channel_status, d.last_error = "sent", now, outcome.channel_status, None
            tx.publish(make_message("notice.sent", d.case_number, d.case_version or 0, {
                "accepting_town": d.accepting_town, "notice_kind": d.notice_kind, "channel": d.channel,
                "delivery_id": d.id}, producer=self.instance, occurred_at=now), rk_notice_sent(d.accepting_town))
        elif outcome.status == "failed":
            d.status, d.sending_since, d.last_error = "failed", None, outcome.error
        else:
            d.status, d.last_error = "in_doubt", outcome.error
        facts = {"delivery_id": d.id, "case_number": d.case_number, "notice_kind": d.notice_kind,
                 "channel": d.channel, "recipient": mask_phone(d.recipient or ""), "attempts": d.attempts}
        tx.after_commit(partial(self._recorded, platform, d.id, outcome, facts))

    def _recorded(self, platform, delivery_id: int, outcome: Outcome, facts: dict) -> None:
        self._forget(delivery_id, outcome)
        self._count(platform, outcome.status)
        if outcome.status == "sent":
            log.info("notice.sent", **facts)
        elif outcome.status == "failed":
            log.warning("notice.not_sent", error=outcome.error, **facts)
        else:
            log.error("notice.in_doubt", idempotency_key=str(delivery_id), error=outcome.error,
                      action="ask the channel's gateway by the idempotency key; notify will not send it again",
                      **facts)

    def _forget(self, delivery_id: int, outcome: Outcome) -> None:
        if self._unrecorded.get(delivery_id) is outcome:
            del self._unrecorded[delivery_id]

    def sweep(self, platform) -> None:
        """Timer: record answers this process still holds; a `sending` row nobody can finish is in doubt."""
        for delivery_id, outcome in list(self._unrecorded.items()):
            try:
                self._finish(platform, delivery_id, outcome)
            except Exception as exc:
                log.warning("notice.record_failed", delivery_id=delivery_id, error=str(exc))
        now = self.clock.now()
        with platform.store.transaction() as tx:
            for d in Deliveries(tx.session).sending(for_update=True):
                if d.id not in self._unrecorded and domain.sender_gone(d.sending_since, now,
                                                                        self._timeout(d.channel)):
                    self._record(tx, d, Outcome("in_doubt", error="the sender stopped before recording "
                                                                   "what the channel answered"), platform)

    def _timeout(self, channel_name: str) -> float:
        channel = self.channels.get(channel_name)
        return float(getattr(channel, "timeout_seconds", 30.0))

    def _count(self, platform, outcome: str) -> None:
        registry = platform.metrics.registry
        if self._counter_registry is not registry:
            self._counter = Counter("tongban_notify_deliveries_total",
                                    "Deliveries settled, by outcome (sent, failed: not sent and tried again, "
                                    "in_doubt: maybe sent, never sent again)", ["outcome"], registry=registry)
            self._counter_registry = registry
        self._counter.labels(outcome=outcome).inc()

    # --- queries -------------------------------------------------------------------------------------

    def deliveries(self, tx: Tx, principal: auth.Principal, case_number: str) -> list[dict]:
        """A case's deliveries; a case outside the caller's scope is answered like one never heard of."""
        contact = Deliveries(tx.session).contact(case_number)
        if contact is None or not auth.can_see_record(principal, towns=(contact.accepting_town,)):
            raise NotVisible(f"no notices for case {case_number}")
        return [{"id": d.id, "notice_kind": d.notice_kind, "notice_id": d.notice_id, "channel": d.channel,
                 "text": d.text, "status": d.status, "attempts": d.attempts, "created_at": d.created_at,
                 "sent_at": d.sent_at}
                for d in Deliveries(tx.session).for_case(case_number)]

    def stats(self, tx: Tx, principal: auth.Principal) -> dict:
        """The city's figures, or one town's for a town scope; no other scope has any."""
        allowed, town = auth.visible_town(principal)
        if not allowed:
            raise NotPermitted(f"no statistics for scope {principal.scope}")
        counts = Deliveries(tx.session).counts(town)
        by_kind = counts["by_kind"]
        return {"by_kind": by_kind, "total": sum(by_kind.values()), "result": by_kind.get("result", 0),
                "by_status": counts["by_status"]}
