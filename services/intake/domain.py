"""Window rules (前台综合受理) as plain Python: no I/O, unit-tested without a broker."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

from shared.workdays import Deadline, WorkingCalendar


class RuleViolation(Exception):
    """The request breaks a rule; `details` says which (shown to the clerk as a 4xx)."""

    def __init__(self, message: str, details=None):
        super().__init__(message)
        self.message = message
        self.details = details


class ForbiddenTransition(Exception):
    def __init__(self, status: str, action: str):
        super().__init__(f"a case in status {status!r} cannot be {action!r}-ed")
        self.status = status
        self.action = action


# The case lifecycle as data: action -> (allowed from, goes to). None is "no case yet".
TRANSITIONS: dict[str, tuple[tuple[str | None, ...], str]] = {
    "accept": ((None,), "in_review"),
    "decide": (("in_review",), "completed"),
}


def next_status(current: str | None, action: str) -> str:
    allowed_from, to = TRANSITIONS[action]
    if current not in allowed_from:
        raise ForbiddenTransition(current or "new", action)
    return to


def case_number(town: str, day: date, sequence: int) -> str:
    """Readable and unique across the city: accepting town, acceptance date, daily sequence."""
    return f"{town}-{day:%Y%m%d}-{sequence:05d}"


def missing_materials(item: dict, provided: list[str]) -> list[dict]:
    """ALL required materials that were not provided, at once (一次性告知)."""
    have = set(provided)
    return [{"code": m["code"], "name": m["name"]} for m in item["materials"]
            if m["required"] and not m["deferrable"] and m["code"] not in have]


def unknown_materials(item: dict, provided: list[str]) -> list[str]:
    known = {m["code"] for m in item["materials"]}
    return sorted(set(provided) - known)


def handling_town(item: dict, accepting_town: str) -> str:
    """Where the case is decided: the city bureau for city-level items, else the town's office."""
    return "city" if item["level"] == "city" else accepting_town


def case_kind(item: dict) -> str:
    return "instant" if item["kind"] == "instant" else "promised"


def deadline(item: dict, accepted_on: date, calendar: WorkingCalendar) -> Deadline:
    """The promised date (承诺办结时限): promised working days after acceptance, that day not counted."""
    return calendar.add_working_days(accepted_on, item["promised_days"])


@dataclass(frozen=True)
class Decision:
    outcome: str
    reason: str | None
    result_number: str | None
    decided_on_version: int


def decision_is_current(case_version: int, decision: Decision) -> bool:
    """A decision made on an older version of the case than the ledger holds is stale."""
    return decision.decided_on_version == case_version


def action_hash(prev_hash: str, record: dict) -> str:
    """Hash-chain the history: each action's hash covers the previous one, so edits show."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


GENESIS_HASH = "0" * 64
