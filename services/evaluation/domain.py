"""Evaluation's rules: plain Python, no I/O."""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.auth import town_of_case

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
