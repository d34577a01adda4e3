"""Delivery channels: the delivery log, the notice held at the window (pickup), SMS through the operator's
HTTP gateway, e-mail over SMTP with the notice's PDF attached. (EMS is not a channel: the waybill the centre
records for a mailed result is written into the delivery log when the case completes.)

A channel is anything with

    name: str                   # what the delivery log records ("sms", "email", "pickup", "log")
    timeout_seconds: float      # the longest one send() may take; the channel enforces it
    send(out: Outgoing) -> str  # what the gateway answered

and these outcomes:
- it returns: the text left (the returned status, e.g. "delivered" or "accepted", goes into the log);
- it raises `NotSent`: the channel is sure nothing left (refused before sending, gateway said no
  before accepting); notify marks the delivery `failed` and the broker tries again later -- unless
  `permanent` (a wrong key, an address refused): waiting cannot help, the next channel is tried at once;
- it raises anything else: nobody knows whether the text left (a timeout after the request went out).
  notify never sends it again by itself: the delivery is `in_doubt` and the gateway can be asked by
  the idempotency key. A gateway that honours the key would also drop a second send with it.
"""
from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate

import requests

from services.notify.domain import mask_email
from shared.logging import get_logger
from shared.pii import mask_phone

log = get_logger(__name__)


class NotSent(Exception):
    """The channel is certain the text did not leave: trying again later cannot send it twice."""

    def __init__(self, reason: str, permanent: bool = False):
        super().__init__(reason)
        self.permanent = permanent  # trying again cannot help (bad credentials, an address refused)


@dataclass(frozen=True)
class Outgoing:
    """One notice on one channel, rendered: what a channel needs and nothing more."""

    idempotency_key: str  # the delivery id
    case_number: str
    accepting_town: str
    notice_id: int
    notice_kind: str
    phone: str
    text: str  # the SMS text (sign included), or the e-mail's body
    subject: str | None = None  # e-mail
    email: str | None = None  # e-mail: the address (kept only in notify's contacts)
    template_id: str | None = None  # SMS: the operator's template for this notice kind
    params: dict | None = None  # SMS: the template's parameters


class LogChannel:
    """Writes the notice to the structured log: the local channel for development and demos."""

    name = "log"
    timeout_seconds = 5.0

    def send(self, out: Outgoing) -> str:
        log.info("notice.delivered", channel=self.name, idempotency_key=out.idempotency_key,
                 recipient=mask_phone(out.phone), text=out.text)
        return "delivered"


class PickupChannel:
    """领取: the notice waits at the accepting centre's window, printed there on request (GET …/notices/<id>.pdf)
    and handed over when the applicant comes. The last resort when nothing else reaches them."""

    name = "pickup"
    timeout_seconds = 5.0

    def send(self, out: Outgoing) -> str:
        log.warning("notice.held_at_window", idempotency_key=out.idempotency_key, case_number=out.case_number,
                    notice_kind=out.notice_kind, town=out.accepting_town)
        return "held at window"


class SmsGateway:
    """The operator's HTTP gateway: a JSON POST with account, key, sign name, template id and parameters, the
    full text, the phone and the idempotency key (the delivery id); 2xx is accepted, 4xx a refusal waiting
    cannot fix, 5xx or no connection a refusal before accepting (tried again), a timeout after the request
    went out: nobody knows (in doubt)."""

    name = "sms"

    def __init__(self, url: str, account: str, key: str, sign_name: str | None = None,
                 templates: dict | None = None, timeout_seconds: float = 10.0):
        self.url, self.account, self.key = url, account, key
        self.sign_name = sign_name
        self.templates = dict(templates or {})
        self.timeout_seconds = timeout_seconds
        self._http = requests.Session()

    def template_for(self, kind: str) -> str | None:
        return self.templates.get(kind) or self.templates.get("default")

    def send(self, out: Outgoing) -> str:
        body = {"account": self.account, "key": self.key, "sign_name": self.sign_name or "",
                "template_id": out.template_id, "params": out.params or {}, "text": out.text, "phone": out.phone,
                "idempotency_key": out.idempotency_key}
        try:
            r = self._http.post(self.url, json=body, timeout=(min(3.0, self.timeout_seconds), self.timeout_seconds),
                                headers={"Idempotency-Key": out.idempotency_key})
        except requests.ConnectionError as exc:
            # no connection (or one broken off): the gateway honours the idempotency key, so the next try
            # cannot make a second SMS even if this one reached it. A read timeout is not caught: in doubt.
            raise NotSent(f"SMS gateway unreachable: {type(exc).__name__}") from None
        if 200 <= r.status_code < 300:
            answer = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
            return str(answer.get("message_id") or "accepted")
        reason = f"SMS gateway answered {r.status_code}: {r.text[:200]}"
        if r.status_code in (408, 429) or r.status_code >= 500:
            raise NotSent(reason)
        raise NotSent(reason, permanent=True)


class PdfSource:
    """The notice's PDF from the centre that issued it (intake owns notices and renders them from the case's
    catalogue version): GET <intake>/cases/<n>/notices/<id>.pdf with notify's own API token (role service,
    signed by the portal's key: notify holds no key that could mint one)."""

    def __init__(self, intake_urls, token: str | None, timeout_seconds: float = 10.0):
        self.intake_urls = intake_urls  # {town: base URL}, or a template with {town}
        self.token = token
        self.timeout_seconds = timeout_seconds
        self._http = requests.Session()

    def base_url(self, town: str) -> str | None:
        if isinstance(self.intake_urls, str):
            return self.intake_urls.format(town=town)
        return (self.intake_urls or {}).get(town)

    def fetch(self, town: str, case_number: str, notice_id: int) -> bytes:
        base = self.base_url(town)
        if not base:
            raise NotSent(f"no intake URL for town {town} (TONGBAN_NOTIFY_INTAKE_URLS): no PDF to attach",
                          permanent=True)
        if not self.token:
            raise NotSent("notify has no API token (TONGBAN_NOTIFY_TOKEN): no PDF to attach", permanent=True)
        try:
            r = self._http.get(f"{base.rstrip('/')}/cases/{case_number}/notices/{notice_id}.pdf",
                               headers={"Authorization": f"Bearer {self.token}"}, timeout=self.timeout_seconds)
        except requests.RequestException as exc:
            raise NotSent(f"the notice's PDF could not be fetched: {type(exc).__name__}") from None
        if r.status_code == 404:
            raise NotSent(f"the centre of town {town} has no notice {notice_id} for {case_number}", permanent=True)
        if r.status_code != 200 or not r.content.startswith(b"%PDF"):
            raise NotSent(f"the notice's PDF could not be fetched: HTTP {r.status_code}")
        return r.content


class SmtpMail:
    """E-mail over SMTP with the notice's PDF attached. The Message-ID carries the delivery id, so a mail
    system can tell a resend (there is none: notify sends once) from a new notice."""

    name = "email"

    def __init__(self, host: str, port: int, sender: str, pdfs: PdfSource, user: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout_seconds: float = 20.0):
        self.host, self.port, self.sender = host, int(port), sender
        self.user, self.password, self.starttls = user, password, starttls
        self.pdfs = pdfs
        self.timeout_seconds = timeout_seconds

    def message(self, out: Outgoing, pdf: bytes) -> EmailMessage:
        msg = EmailMessage()
        domain = self.sender.rpartition("@")[2] or "tongban.local"
        msg["From"], msg["To"], msg["Subject"] = self.sender, out.email, out.subject or out.notice_kind
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = f"<notice-{out.idempotency_key}.{out.case_number}@{domain}>"
        msg["X-Tongban-Delivery"] = out.idempotency_key
        msg.set_content(out.text, cte="base64")  # Chinese: 8bit lines may exceed SMTP's 1000 octets
        msg.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=f"{out.case_number}-{out.notice_kind}.pdf")
        return msg

    def send(self, out: Outgoing) -> str:
        if not out.email:
            raise NotSent("no e-mail address for this applicant", permanent=True)
        pdf = self.pdfs.fetch(out.accepting_town, out.case_number, out.notice_id)  # NotSent if it cannot
        msg = self.message(out, pdf)
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        except (OSError, smtplib.SMTPException) as exc:
            raise NotSent(f"SMTP server {self.host}:{self.port} unreachable: {type(exc).__name__}") from None
        try:
            try:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls()
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.mail(self.sender)
                code, answer = smtp.rcpt(out.email)
                if code not in (250, 251):
                    raise NotSent(f"SMTP refused {mask_email(out.email)}: {code}", permanent=500 <= code < 600)
            except smtplib.SMTPAuthenticationError as exc:
                raise NotSent(f"SMTP login refused: {exc.smtp_code}", permanent=True) from None
            except (smtplib.SMTPException, OSError) as exc:  # before DATA: nothing left
                raise NotSent(f"SMTP refused before the message: {type(exc).__name__}: {exc}") from None
            # from here on, a broken connection leaves it unknown whether the server took the message
            try:
                code, answer = smtp.data(msg.as_bytes(policy=policy.SMTP))
            except smtplib.SMTPDataError as exc:  # refused before the message was sent (no 354)
                raise NotSent(f"SMTP refused the message: {exc.smtp_code}", permanent=exc.smtp_code >= 500) from None
            if code != 250:
                raise NotSent(f"SMTP refused the message: {code} {answer[:100]!r}", permanent=500 <= code < 600)
            return f"250 {answer.decode(errors='replace')[:30]}"
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def channel_set(channels=None) -> dict:
    """The channels of one notify instance by name: the delivery log and the window always, plus those given
    (a dict name -> channel, or channels that carry their `name`)."""
    given = channels or {}
    if not isinstance(given, dict):
        given = {c.name: c for c in given}
    return {"log": LogChannel(), "pickup": PickupChannel(), **given}
