"""Delivery channels. Only the delivery log exists so far; SMS, e-mail and EMS plug in here."""
from __future__ import annotations

from shared.logging import get_logger
from shared.pii import mask_phone

log = get_logger(__name__)


class LogChannel:
    """Writes the notice to the structured log: the local channel for development and demos."""

    name = "log"

    def send(self, recipient_phone: str, text: str) -> str:
        log.info("notice.delivered", channel=self.name, recipient=mask_phone(recipient_phone), text=text)
        return "delivered"


CHANNELS = {"log": LogChannel()}
