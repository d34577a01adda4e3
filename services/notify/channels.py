"""Delivery channels. Only the delivery log exists so far; SMS, e-mail and EMS plug in here.

A channel is anything with

    name: str                   # what the delivery log records ("sms", "email", "log" …)
    timeout_seconds: float      # the longest one send() may take; the channel enforces it
    send(idempotency_key: str, recipient_phone: str, text: str) -> str   # what the gateway answered

and these outcomes:
- it returns: the text left (the returned status, e.g. "delivered" or "accepted", goes into the log);
- it raises `NotSent`: the channel is sure nothing left (refused before sending, gateway said no
  before accepting); notify marks the delivery `failed` and the broker tries again later;
- it raises anything else: nobody knows whether the text left (a timeout after the request went out).
  notify never sends it again by itself: the delivery is `in_doubt` and the gateway can be asked by
  the idempotency key. A gateway that honours the key would also drop a second send with it.
"""
from __future__ import annotations

from shared.logging import get_logger
from shared.pii import mask_phone

log = get_logger(__name__)


class NotSent(Exception):
    """The channel is certain the text did not leave: trying again later cannot send it twice."""


class LogChannel:
    """Writes the notice to the structured log: the local channel for development and demos."""

    name = "log"
    timeout_seconds = 5.0

    def send(self, idempotency_key: str, recipient_phone: str, text: str) -> str:
        log.info("notice.delivered", channel=self.name, idempotency_key=idempotency_key,
                 recipient=mask_phone(recipient_phone), text=text)
        return "delivered"


def channel_set(channels=None) -> dict:
    """The channels of one notify instance by name: the delivery log always, plus those given
    (a dict name -> channel, or channels that carry their `name`)."""
    given = channels or {}
    if not isinstance(given, dict):
        given = {c.name: c for c in given}
    return {"log": LogChannel(), **given}
