"""Delivery rules: plain Python, no I/O. The texts themselves are the centre's (intake issues notices)."""
from __future__ import annotations

import re
from datetime import UTC, datetime

# a centre's case number: <accepting town>-<yyyymmdd>-<sequence>
CASE_NUMBER = re.compile(r"^(\d{9})-(\d{8})-(\d+)$")

CLAIMABLE = ("queued", "failed")  # waiting for a send (a failed one: the channel said nothing left)
SETTLED = ("sent", "in_doubt")  # never sent again
# a `sending` row older than the channel's timeout plus this margin has no live sender left
SENDING_MARGIN_SECONDS = 2.0


def channel_for(requested: str, available: set[str]) -> str:
    """Use the channel the applicant asked for where this deployment has it, else the delivery log."""
    return requested if requested in available else "log"


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
