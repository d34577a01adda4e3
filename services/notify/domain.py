"""Delivery rules: plain Python, no I/O. The texts themselves are the centre's (intake issues notices);
notify chooses the channel, falls back when one fails for good, and splits SMS texts into segments."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

# a centre's case number: <accepting town>-<yyyymmdd>-<sequence>
CASE_NUMBER = re.compile(r"^(\d{9})-(\d{8})-(\d+)$")

CLAIMABLE = ("queued", "failed")  # waiting for a send (a failed one: the channel said nothing left)
# never sent again: sent, maybe sent, or failed for good (its message dead-lettered, the next channel tried)
SETTLED = ("sent", "in_doubt", "dead_lettered", "recorded")
# a `sending` row older than the channel's timeout plus this margin has no live sender left
SENDING_MARGIN_SECONDS = 2.0

#: channels every notify instance has: the delivery log, and the notice held at the accepting centre's window
#: (领取: the clerk hands it over); `sms` and `email` exist where configured; `ems` only records waybills
ALWAYS_AVAILABLE = ("log", "pickup")
#: when a channel fails for good, the next one of this order the applicant can be reached by (after the
#: channel they chose); configurable per notice kind (TONGBAN_NOTIFY_FALLBACK)
DEFAULT_FALLBACK = ("sms", "email", "pickup")


def channel_for(requested: str, available: set[str]) -> str:
    """Use the channel the applicant asked for where this deployment has it, else the delivery log."""
    return requested if requested in available else "log"


def usable_channels(available: set[str], has_email: bool) -> set[str]:
    """The channels that can reach this applicant: e-mail needs an address."""
    return {c for c in available if c != "email" or has_email}


def fallback_chain(chosen: str, kind: str, orders: dict[str, tuple[str, ...]]) -> list[str]:
    """The chosen channel, then the kind's fallback order (or the default order), each once."""
    order = orders.get(kind) or orders.get("default") or DEFAULT_FALLBACK
    chain: list[str] = []
    for channel in (chosen, *order):
        if channel not in chain:
            chain.append(channel)
    return chain


def next_channel(chosen: str, kind: str, orders: dict[str, tuple[str, ...]], tried: set[str],
                 usable: set[str]) -> str | None:
    """The channel to try after those `tried` failed for good; None when the chain is spent."""
    for channel in fallback_chain(chosen, kind, orders):
        if channel not in tried and channel in usable and channel != "log":
            return channel
    return None


def parse_fallback(text: str | None, kinds, channels=("sms", "email", "pickup", "log")) -> dict[str, tuple]:
    """`sms,email,pickup;result=email,sms,pickup` -> {"default": (...), "result": (...)}; ValueError naming
    what is wrong (a setting that does not parse stops the start, not a delivery at 2 a.m.)."""
    orders: dict[str, tuple] = {"default": DEFAULT_FALLBACK}
    for part in (p.strip() for p in (text or "").split(";") if p.strip()):
        kind, _, listed = part.rpartition("=")
        kind = kind.strip() or "default"
        if kind != "default" and kind not in kinds:
            raise ValueError(f"fallback order for unknown notice kind {kind!r} (one of {', '.join(kinds)})")
        order = tuple(c.strip() for c in listed.split(",") if c.strip())
        unknown = [c for c in order if c not in channels]
        if unknown or not order:
            raise ValueError(f"fallback order {part!r}: channels must be some of {', '.join(channels)}")
        orders[kind] = order
    return orders


def case_number_problem(case_number: str, accepting_town: str) -> str | None:
    """Why a message about this case cannot come from the centre it names, or None."""
    match = CASE_NUMBER.match(case_number)
    if match is None:
        return f"{case_number!r} is not a centre's case number (<town>-<yyyymmdd>-<seq>)"
    if match.group(1) != accepting_town:
        return f"case {case_number} was not accepted in town {accepting_town}"
    return None


def sender_gone(sending_since: datetime | None, now: datetime, timeout_seconds: float) -> bool:
    """A delivery `sending` for longer than its channel may take: whoever sent it has stopped."""
    if sending_since is None:
        return True
    if sending_since.tzinfo is None:  # SQLite hands back naive UTC
        sending_since = sending_since.replace(tzinfo=UTC)
    return (now - sending_since).total_seconds() > timeout_seconds + SENDING_MARGIN_SECONDS


# --- SMS: the operator's segments -----------------------------------------------------------------

# GSM 03.38 basic character set (one septet each) and its extension table (escape + character: two)
GSM7_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
              "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = "^{}\\[~]|€\f"
GSM7_SINGLE, GSM7_PART = 160, 153  # septets in one SMS; in each part of a concatenated one (UDH takes 7)
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 units (a text with Chinese): one SMS; each part of a long one


@dataclass(frozen=True)
class Segments:
    encoding: str  # gsm7 | ucs2
    parts: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.parts)


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text)


def _gsm7_units(c: str) -> int:
    return 2 if c in GSM7_EXTENDED else 1


def _ucs2_units(c: str) -> int:
    return 2 if ord(c) > 0xFFFF else 1  # outside the BMP: a surrogate pair


def sms_segments(text: str) -> Segments:
    """Split a text as the operator does: GSM-7 160 (153 per part when concatenated), otherwise UCS-2
    70 (67 per part). A character is never cut in two (an escape pair, a surrogate pair)."""
    if is_gsm7(text):
        encoding, single, part, units = "gsm7", GSM7_SINGLE, GSM7_PART, _gsm7_units
    else:
        encoding, single, part, units = "ucs2", UCS2_SINGLE, UCS2_PART, _ucs2_units
    if sum(units(c) for c in text) <= single:
        return Segments(encoding, (text,) if text else ())
    parts, current, used = [], [], 0
    for c in text:
        n = units(c)
        if used + n > part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(c)
        used += n
    if current:
        parts.append("".join(current))
    return Segments(encoding, tuple(parts))


SIGN = re.compile(r"^【[^】]{1,20}】")


def signed(text: str, sign_name: str | None) -> str:
    """The text as the applicant sees it, beginning with the operator's sign 【…】: the configured sign
    replaces one the centre's text began with; without a configured sign the text is left as it is."""
    if not sign_name:
        return text
    return f"【{sign_name}】{SIGN.sub('', text, count=1)}"


def mask_email(address: str | None) -> str:
    """z***@example.com: enough to tell which address, not enough to write to it."""
    if not address or "@" not in address:
        return "***"
    local, _, domain_part = address.rpartition("@")
    return f"{local[:1]}***@{domain_part}"
