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

Failing for good, and the next channel (issue 10):
6. The handler knows which try it is on (the bus's attempt header, shared.bus.MessageAttempt). When the channel
   refuses on the last try (the bus would dead-letter the message next), or refuses for good on any try (a
   wrong key, an address refused: `NotSent.permanent`), the delivery is recorded `dead_lettered` with the
   reason, and -- in the same transaction -- a new delivery on the next channel of the notice kind's fallback
   order, with a notice.fallback message to notify's own queue. That message drives the new delivery with
   retries of its own; the original message goes to the dead-letter queue (visible, counted, and harmless to
   replay: its delivery is settled). A notice has at most one delivery per channel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from prometheus_client import Counter

from services.notify import domain
from services.notify.channels import NotSent, Outgoing
from services.notify.models import Contact, Deliveries, Delivery, KnownCases
from services.notify.templating import Templates
from shared import auth
from shared.clock import Clock
from shared.contracts import (
    DeadLetterNow,
    Message,
    Unacceptable,
    make_message,
    rk_notice_fallback,
    rk_notice_sent,
)
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


class DeliveryFailedForGood(DeadLetterNow):
    """The channel refused for good (waiting cannot help): the message is dead-lettered at once; the next
    channel was queued with the refusal's record."""


@dataclass(frozen=True)
class Outcome:
    """What one send came to, held in this process until the delivery log says it."""

    status: str  # sent | failed | in_doubt
    channel_status: str | None = None
    error: str | None = None
    final: bool = False  # failed on the last try or for good: dead-lettered, the next channel tried
    segments: int | None = None  # SMS: the parts the operator bills


class _Metrics:
    """Notify's own figures, on the running instance's registry."""

    def __init__(self, registry):
        self.registry = registry
        self.deliveries = Counter(
            "tongban_notify_deliveries", "Deliveries settled, by channel and outcome (sent; failed: not sent and "
            "tried again; in_doubt: maybe sent, never sent again; dead_lettered: failed for good, the next channel "
            "tried; recorded: an EMS waybill)", ["channel", "outcome"], registry=registry)
        self.segments = Counter("tongban_notify_sms_segments", "SMS segments (parts) sent, by notice kind",
                                ["notice_kind"], registry=registry)
        self.undeliverable = Counter("tongban_notify_undeliverable",
                                     "Notices whose every channel failed for good, by notice kind", ["notice_kind"],
                                     registry=registry)


@dataclass
class Notifier:
    instance: str
    clock: Clock
    channels: dict  # name -> channel (see services.notify.channels)
    templates: Templates = field(default_factory=Templates)
    fallback: dict = field(default_factory=lambda: {"default": domain.DEFAULT_FALLBACK})  # kind -> order
    _unrecorded: dict = field(default_factory=dict)  # delivery id -> Outcome not yet committed
    _metrics: _Metrics | None = None

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

    def on_completed(self, tx: Tx, message: Message, platform) -> str:
        """case.completed: a result going by EMS mail gets its waybill in the delivery log (EMS is the centre's
        mail: nothing is sent from here). Once per case, however often the event comes."""
        p = message.payload
        if p.get("delivery") != "mail" or not p.get("tracking_number"):
            return "ignored"
        self._check_case(tx, message.case_number, p["accepting_town"])
        repo = Deliveries(tx.session)
        if repo.on_channel(message.case_number, 0, "ems") is not None:
            return "duplicate"
        contact, now = repo.contact(message.case_number), self.clock.now()
        number = p["tracking_number"]
        repo.add(Delivery(case_number=message.case_number, notice_kind="result", notice_id=0, channel="ems",
                          text=f"办理结果已通过EMS寄出，EMS运单号{number}", title="EMS邮寄", status="recorded",
                          created_at=now, sent_at=now, recipient=contact.phone if contact else None,
                          accepting_town=p["accepting_town"], case_version=message.case_version, attempts=0,
                          tracking_number=number, channel_status="waybill recorded"))
        tx.after_commit(partial(self._count, platform, "ems", "recorded"))
        log.info("notice.ems_waybill", tracking_number=number)
        return "waybill_recorded"

    # --- notices ------------------------------------------------------------------------------------

    def on_notice_issued(self, tx: Tx, message: Message, platform, last_try: bool = False) -> str:
        """The centre issued a notice: record the delivery, and send it once this is committed.

        `platform` is the running instance's (shared.platform.Platform): the send and its record take
        transactions of their own from its store, and count in its metrics. `last_try`: the bus dead-letters
        the message if this try fails (the delivery is then failed for good and the next channel queued)."""
        p = message.payload
        self._check_case(tx, message.case_number, p["accepting_town"])
        delivery = Deliveries(tx.session).find(message.case_number, p["notice_id"], for_update=True)
        if delivery is None:
            delivery = self._queue(tx, message)
        return self._drive(tx, delivery, platform, last_try)

    def on_fallback(self, tx: Tx, message: Message, platform, last_try: bool = False) -> str:
        """notice.fallback (our own): the delivery on the next channel, tried with retries of its own."""
        p = message.payload
        self._check_case(tx, message.case_number, p["accepting_town"])
        delivery = Deliveries(tx.session).get(p["delivery_id"], for_update=True)
        if delivery is None or delivery.case_number != message.case_number or delivery.notice_id != p["notice_id"]:
            raise Unacceptable(f"no delivery {p['delivery_id']} of notice {p['notice_id']} for "
                               f"{message.case_number}")
        return self._drive(tx, delivery, platform, last_try)

    def _drive(self, tx: Tx, delivery: Delivery, platform, last_try: bool) -> str:
        if delivery.status in domain.SETTLED:
            return "duplicate"
        if delivery.status == "sending":
            return self._settle_sending(tx, delivery, platform, last_try)
        tx.after_commit(partial(self._deliver, platform, delivery.id, last_try))
        return "ok"

    def _queue(self, tx: Tx, message: Message) -> Delivery:
        p, c = message.payload, message.payload["contact"]
        repo = Deliveries(tx.session)
        known = repo.contact(message.case_number)
        # the address comes with the notices the window issues while the applicant is there (intake does not
        # keep it); later notices come without it and find it here, the one place it is kept
        email = c.get("email") or (known.email if known else None)
        repo.save_contact(Contact(case_number=message.case_number, accepting_town=p["accepting_town"],
                                  name=c["name"], phone=c["phone"], channel=c["channel"], email=email))
        delivery = Delivery(
            case_number=message.case_number, notice_kind=p["notice_kind"], notice_id=p["notice_id"],
            channel=self._first_channel(c["channel"], p["notice_kind"], bool(email)),
            text=mask_text(p["sms_text"]), title=p["title"], status="queued",
            created_at=self.clock.now(), recipient=c["phone"], accepting_town=p["accepting_town"],
            case_version=message.case_version, attempts=0)
        repo.add(delivery)
        return delivery

    def _first_channel(self, chosen: str, kind: str, has_email: bool) -> str:
        usable = domain.usable_channels(set(self.channels), has_email)
        if chosen in usable:
            return chosen
        if chosen in self.channels:  # configured, but it cannot reach this applicant (e-mail, no address)
            return domain.next_channel(chosen, kind, self.fallback, {chosen}, usable) or "log"
        return "log"  # this deployment has no such channel: the delivery log stands in (development)

    def _settle_sending(self, tx: Tx, delivery: Delivery, platform, last_try: bool) -> str:
        """A redelivery finds the notice `sending`: record what is known, never send it again blindly."""
        outcome = self._unrecorded.get(delivery.id)
        if outcome is not None:  # sent (or not) by this process; only the record failed
            self._record(tx, delivery, outcome, platform)
            if outcome.status == "failed" and not outcome.final:
                tx.after_commit(partial(self._deliver, platform, delivery.id, last_try))
                return "ok"
            return "recorded"
        if domain.sender_gone(delivery.sending_since, self.clock.now(), self._timeout(delivery.channel)):
            self._record(tx, delivery, Outcome("in_doubt", error="the sender stopped before recording "
                                                                  "what the channel answered"), platform)
            return "in_doubt"
        raise DeliveryInProgress(f"delivery {delivery.id} is being sent (since {delivery.sending_since})")

    def _deliver(self, platform, delivery_id: int, last_try: bool = False) -> None:
        """After the handler's commit: claim, send once, record (see the module's docstring)."""
        with platform.store.transaction() as tx:
            repo = Deliveries(tx.session)
            if not repo.claim(delivery_id, domain.CLAIMABLE, self.clock.now()):
                log.info("notice.taken_elsewhere", delivery_id=delivery_id)
                return
            d = repo.get(delivery_id)
            contact = repo.contact(d.case_number)
            name = d.channel
            try:
                out, segments = self._outgoing(d, contact)
            except Exception as exc:  # a template that renders at start but not with these values
                out, segments = None, None
                unrenderable = Outcome("failed", error=f"the notice could not be rendered for {name}: "
                                                       f"{type(exc).__name__}: {exc}"[:2000], final=True)
        outcome = unrenderable if out is None else self._send(out, name, segments, last_try)
        self._unrecorded[delivery_id] = outcome
        self._finish(platform, delivery_id, outcome)
        if outcome.status == "failed":
            if outcome.final and not last_try:
                raise DeliveryFailedForGood(f"delivery {delivery_id} failed for good on {name}: {outcome.error}")
            raise DeliveryRefused(f"delivery {delivery_id} was not sent: {outcome.error}")

    def _outgoing(self, d: Delivery, contact: Contact | None) -> tuple[Outgoing, int | None]:
        """The notice rendered for its channel: SMS text (signed) and its segments, or e-mail subject and body."""
        channel = self.channels.get(d.channel)
        sign = getattr(self.channels.get("sms"), "sign_name", None) or ""
        values = {"name": contact.name if contact else "", "case_number": d.case_number, "title": d.title or "",
                  "kind": d.notice_kind, "text": d.text, "town": d.accepting_town or "", "sign": sign}
        base = dict(idempotency_key=str(d.id), case_number=d.case_number, accepting_town=d.accepting_town or "",
                    notice_id=d.notice_id, notice_kind=d.notice_kind, phone=d.recipient or "")
        if d.channel == "email":
            return Outgoing(**base, text=self.templates.render(d.notice_kind, "email_body", **values),
                            subject=self.templates.render(d.notice_kind, "email_subject", **values),
                            email=contact.email if contact else None), None
        if d.channel == "sms":
            text = domain.signed(self.templates.render(d.notice_kind, "sms", **values),
                                 getattr(channel, "sign_name", None))
            template_for = getattr(channel, "template_for", None)
            return Outgoing(**base, text=text, template_id=template_for(d.notice_kind) if template_for else None,
                            params={"name": values["name"], "case_number": d.case_number, "title": values["title"]}
                            ), domain.sms_segments(text).count
        return Outgoing(**base, text=d.text), None

    def _send(self, out: Outgoing, name: str, segments: int | None, last_try: bool) -> Outcome:
        channel = self.channels.get(name)
        if channel is None:  # waiting cannot make one: the next channel
            return Outcome("failed", error=f"no channel {name!r} in this deployment", final=True)
        try:
            status = channel.send(out)
        except NotSent as exc:
            return Outcome("failed", error=f"not sent: {exc}"[:2000], final=exc.permanent or last_try)
        except Exception as exc:  # the text may or may not have left
            return Outcome("in_doubt", error=f"{type(exc).__name__}: {exc}"[:2000], segments=segments)
        return Outcome("sent", channel_status=None if status is None else str(status)[:40], segments=segments)

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
        settled = outcome.status
        if outcome.status == "sent":
            d.status, d.sent_at, d.channel_status, d.last_error = "sent", now, outcome.channel_status, None
            d.segments = outcome.segments
            tx.publish(make_message("notice.sent", d.case_number, d.case_version or 0, {
                "accepting_town": d.accepting_town, "notice_kind": d.notice_kind, "channel": d.channel,
                "delivery_id": d.id}, producer=self.instance, occurred_at=now), rk_notice_sent(d.accepting_town))
        elif outcome.status == "failed" and outcome.final:
            settled = "dead_lettered"
            self._fail_for_good(tx, d, outcome.error or "failed for good", platform)
        elif outcome.status == "failed":
            d.status, d.sending_since, d.last_error = "failed", None, outcome.error
        else:
            d.status, d.last_error, d.segments = "in_doubt", outcome.error, outcome.segments
        facts = {"delivery_id": d.id, "case_number": d.case_number, "notice_kind": d.notice_kind,
                 "channel": d.channel, "recipient": mask_phone(d.recipient or ""), "attempts": d.attempts}
        tx.after_commit(partial(self._recorded, platform, d.id, outcome, settled, facts))

    def _fail_for_good(self, tx: Tx, d: Delivery, reason: str, platform) -> None:
        """Dead-lettered: the reason on the row, and the notice queued on the next channel the applicant can
        be reached by (with its own message, so its tries start afresh)."""
        d.status, d.sending_since, d.last_error, d.dead_letter_reason = "dead_lettered", None, reason, reason
        repo = Deliveries(tx.session)
        contact = repo.contact(d.case_number)
        chain = repo.chain(d.case_number, d.notice_id)
        chosen = contact.channel if contact else chain[0].channel
        usable = domain.usable_channels(set(self.channels), bool(contact and contact.email))
        nxt = domain.next_channel(chosen, d.notice_kind, self.fallback, {x.channel for x in chain}, usable)
        if nxt is None:
            log.error("notice.undeliverable", case_number=d.case_number, notice_kind=d.notice_kind,
                      tried=[x.channel for x in chain], action="tell the applicant at the window or by phone")
            tx.after_commit(partial(self._count_undeliverable, platform, d.notice_kind))
            return
        new = Delivery(case_number=d.case_number, notice_kind=d.notice_kind, notice_id=d.notice_id, channel=nxt,
                       text=d.text, title=d.title, status="queued", created_at=self.clock.now(),
                       recipient=d.recipient, accepting_town=d.accepting_town, case_version=d.case_version,
                       attempts=0, fallback_of=d.id)
        repo.add(new)
        tx.publish(make_message("notice.fallback", d.case_number, d.case_version or 0, {
            "accepting_town": d.accepting_town, "notice_id": d.notice_id, "notice_kind": d.notice_kind,
            "channel": nxt, "delivery_id": new.id, "fallback_of": d.id}, producer=self.instance),
            rk_notice_fallback(d.accepting_town))
        log.warning("notice.fallback", case_number=d.case_number, notice_kind=d.notice_kind, failed=d.channel,
                    next=nxt, reason=reason)

    def _recorded(self, platform, delivery_id: int, outcome: Outcome, settled: str, facts: dict) -> None:
        self._forget(delivery_id, outcome)
        self._count(platform, facts["channel"], settled)
        if outcome.status == "sent" and outcome.segments:
            self._metrics_of(platform).segments.labels(notice_kind=facts["notice_kind"]).inc(outcome.segments)
        if settled == "sent":
            log.info("notice.sent", segments=outcome.segments, **facts)
        elif settled == "dead_lettered":
            log.error("notice.dead_lettered", error=outcome.error, **facts)
        elif settled == "failed":
            log.warning("notice.not_sent", error=outcome.error, **facts)
        else:
            log.error("notice.in_doubt", idempotency_key=str(delivery_id), error=outcome.error,
                      action="ask the channel's gateway by the idempotency key; notify will not send it again",
                      **facts)

    def _forget(self, delivery_id: int, outcome: Outcome) -> None:
        if self._unrecorded.get(delivery_id) is outcome:
            del self._unrecorded[delivery_id]

    def sweep(self, platform) -> None:
        """Timer: record answers this process still holds; a `sending` row nobody can finish is in doubt.
        (A failed-for-good answer recorded here queues the next channel like any other.)"""
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

    def _metrics_of(self, platform) -> _Metrics:
        registry = platform.metrics.registry
        if self._metrics is None or self._metrics.registry is not registry:
            self._metrics = _Metrics(registry)
        return self._metrics

    def _count(self, platform, channel: str, outcome: str) -> None:
        self._metrics_of(platform).deliveries.labels(channel=channel, outcome=outcome).inc()

    def _count_undeliverable(self, platform, kind: str) -> None:
        self._metrics_of(platform).undeliverable.labels(notice_kind=kind).inc()

    # --- queries -------------------------------------------------------------------------------------

    def deliveries(self, tx: Tx, principal: auth.Principal, case_number: str) -> list[dict]:
        """A case's deliveries; a case outside the caller's scope is answered like one never heard of."""
        repo = Deliveries(tx.session)
        contact = repo.contact(case_number)
        if contact is None or not auth.can_see_record(principal, towns=(contact.accepting_town,)):
            raise NotVisible(f"no notices for case {case_number}")
        return [{"id": d.id, "notice_kind": d.notice_kind, "notice_id": d.notice_id, "channel": d.channel,
                 "text": d.text, "status": d.status, "attempts": d.attempts, "created_at": d.created_at,
                 "sent_at": d.sent_at, "segments": d.segments, "fallback_of": d.fallback_of,
                 "recipient": self._masked_recipient(d, contact), "channel_status": d.channel_status,
                 "dead_letter_reason": d.dead_letter_reason, "tracking_number": d.tracking_number,
                 "last_error": d.last_error}
                for d in repo.for_case(case_number)]

    @staticmethod
    def _masked_recipient(d: Delivery, contact: Contact) -> str | None:
        if d.channel == "email":
            return domain.mask_email(contact.email)
        if d.channel == "pickup":
            return f"town {d.accepting_town} window"
        return mask_phone(d.recipient) if d.recipient else None

    def stats(self, tx: Tx, principal: auth.Principal) -> dict:
        """The city's figures, or one town's for a town scope; no other scope has any."""
        allowed, town = auth.visible_town(principal)
        if not allowed:
            raise NotPermitted(f"no statistics for scope {principal.scope}")
        counts = Deliveries(tx.session).counts(town)
        by_kind = counts["by_kind"]
        return {"by_kind": by_kind, "total": sum(by_kind.values()), "result": by_kind.get("result", 0),
                "by_status": counts["by_status"], "by_channel": counts["by_channel"]}
