"""Evaluation's rules: plain Python, no I/O."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from shared.auth import town_of_case
from shared.workdays import today_in_shanghai

# what evaluation keeps of a payload: contact details and notice texts (names, phone numbers) stay with
# notify; evaluation needs that a notice went out, not what it said
PRIVATE_FIELDS = frozenset({"contact", "sms_text"})


def kept(payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k not in PRIVATE_FIELDS}


@dataclass(frozen=True)
class CaseReach:
    """Whom a case concerns, as its events tell it: for the read-scope rule (shared.auth.can_see_record)."""

    towns: frozenset = field(default_factory=frozenset)
    departments: frozenset = field(default_factory=frozenset)  # (code, handling town or None for the city)
    agent: str | None = None


def reach(case_number: str, events: list[tuple[str, dict]]) -> CaseReach:
    """From the (type, data) of a case's events: its accepting and handling towns, the department offices
    it was routed to, and the village agent who submitted it."""
    towns, departments, agent = set(), set(), None
    if town_of_case(case_number):
        towns.add(town_of_case(case_number))
    for type_, data in events:
        for key in ("accepting_town", "handling_town"):
            if isinstance(data.get(key), str) and data[key] != "city":
                towns.add(data[key])
        if type_ == "case.routed" and data.get("department"):
            handling = data.get("handling_town")
            departments.add((data["department"], None if handling in (None, "city") else handling))
        if type_ == "case.accepted" and data.get("via_agent"):
            agent = data["via_agent"]
    return CaseReach(frozenset(towns), frozenset(departments), agent)


# --- the case read model (models.CaseView) ----------------------------------------------------------

_COPIED = {  # event type -> the payload fields it sets on the case as they are
    "case.accepted": ("accepting_town", "handling_town", "department", "item_code", "item_name", "kind", "status",
                      "deadline", "first_responder", "via_agent", "village"),
    "case.updated": ("accepting_town", "status", "deadline"),
    "case.routed": ("accepting_town", "handling_town", "item_code", "item_name", "kind", "deadline",
                    "departments"),
    "case.deadline_moved": ("deadline", "paused_since"),
    "case.completed": ("accepting_town", "department", "item_name", "kind", "outcome", "deadline", "on_time",
                       "via_agent", "village", "completed_on"),
}


def case_view_changes(type_: str, data: dict, occurred_at: datetime, version: int,
                      known: dict | None = None) -> dict | None:
    """What an event changes on the case read model, or None when it changes nothing (an event about
    something else, or older than what the model already shows). `known`: the model's `version` and
    `paused_since` now (None for a case not seen yet). Plain values only, dates as dates."""
    fields = _COPIED.get(type_)
    if fields is None:
        return None
    known = known or {}
    seen = known.get("version")
    # one step of the case publishes its case.updated and, with the same version, what goes with it: the
    # deadline move of a department's open work, the completion. They arrive in any order (several are
    # handled at once), so each applies at the version already shown: a completion after its update still
    # brings the outcome, an update after its deadline move still brings the status (one whose status is
    # shown already is a repeat). Anything else older than the newest applied is stale (redelivered, overtaken)
    if seen is not None and (version < seen or (version == seen and not _companion(type_, data, known))):
        return None
    changes = {f: _as_date(f, data[f]) for f in fields if f in data}
    changes["version"] = max(version, seen or 0)
    if type_ == "case.accepted":
        changes["accepted_at"] = occurred_at
    if type_ == "case.completed":
        changes["status"] = "completed"
    if type_ in ("case.updated", "case.completed", "case.accepted"):
        paused = changes.get("status") == "paused"
        # the clock stopped when the case first became paused, not at a later step while it stays paused
        # the day the clock stopped is a Shanghai working day, not the UTC date (a pause before 08:00 is that day's)
        changes["paused_since"] = (known.get("paused_since") or today_in_shanghai(occurred_at)) if paused else None
    if changes.get("handling_town", "") is None:
        del changes["handling_town"]
    return changes


def _companion(type_: str, data: dict, known: dict) -> bool:
    """Whether an event of the version the model shows already brings something of its own."""
    if type_ in ("case.deadline_moved", "case.completed"):
        return True
    # a completion is the step's last word: its update, handled after it, does not take the case out of it (in
    # whichever order the two arrive, the view ends completed, as the recount in version order does)
    return (type_ == "case.updated" and known.get("status") not in (None, "completed")
            and data.get("status") != known["status"])


def _as_date(name: str, value):
    if name in ("deadline", "paused_since", "completed_on") and isinstance(value, str):
        return date.fromisoformat(value)
    return value
