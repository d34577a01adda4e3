"""The town agent's rules for escalated cases (上报件/代理件), plain Python: no I/O, unit-tested.

An escalation waits for relay (awaiting_relay) after the town's 初审, is relayed to the city department(s)
(relayed), holds the city's decisions until the case's outcome is known (decided), and is returned to the
town's ledger (returned). A case closed some other way ends it (closed). The outcome is known by the same
rule as the ledger's joint cases (联办件): every department decided, or one refused. The town agent then
returns every decision it holds at once, so the ledger sees the same decisions it would have seen directly.
"""
from __future__ import annotations

from datetime import date, datetime

from shared.errors import NotAllowedNow, RuleViolation

AWAITING_RELAY, RELAYED, DECIDED, RETURNED, CLOSED = "awaiting_relay", "relayed", "decided", "returned", "closed"
STATUSES = (AWAITING_RELAY, RELAYED, DECIDED, RETURNED, CLOSED)
IN_FLIGHT = (AWAITING_RELAY, RELAYED, DECIDED)  # the town agent's list: still theirs to act on or to watch


def escalated_news(held_version: int | None, held_status: str | None, version: int) -> str:
    """What a case.escalated of `version` means for the escalation held (None: none yet).

    "new": record it; "replace": a newer routing (after the city asked for more materials) replaces the
    work, which waits for relay again; "duplicate" / "stale": the same or an older version, ignored."""
    if held_version is None:
        return "new"
    if version == held_version:
        return "duplicate"
    if version < held_version or held_status not in IN_FLIGHT:
        return "stale"
    return "replace"


def decision_news(held_version: int, status: str, departments: list[str], decided: dict, version: int,
                  department: str) -> str:
    """Whether a city department's decision (escalation.decided) is news: "ok", "duplicate" or "stale"
    (decided on a version the escalation no longer carries, or by a department not in its work)."""
    if version != held_version or department not in departments or status not in (RELAYED, DECIDED):
        return "stale"
    if department in decided:
        return "duplicate"
    return "ok"


def outcome_known(departments: list[str], decided: dict) -> bool:
    """The ledger's joint rule: every department decided, or one refused (a refusal refuses the case)."""
    return (any(d.get("outcome") == "refused" for d in decided.values())
            or all(dept in decided for dept in departments))


def check_relay(status: str) -> None:
    """Relayed once per routing: a second relay would put the work twice in the department's queue."""
    if status != AWAITING_RELAY:
        raise NotAllowedNow(f"an escalation in status {status!r} cannot be relayed (only {AWAITING_RELAY!r})",
                            {"status": status})


def check_return(status: str) -> None:
    if status != DECIDED:
        raise NotAllowedNow(f"an escalation in status {status!r} cannot be returned: the city's decision is "
                            "not all here yet" if status in (AWAITING_RELAY, RELAYED)
                            else f"an escalation in status {status!r} cannot be returned", {"status": status})


def closes_on_completion(status: str) -> bool:
    """The case completed at the ledger: an escalation still in flight is closed (the case ended elsewhere,
    e.g. a decision that came the old way); a returned one stays returned."""
    return status in IN_FLIGHT


def parse_status(value: str | None) -> tuple[str, ...]:
    if not value:
        return IN_FLIGHT
    wanted = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in wanted if v not in STATUSES]
    if unknown:
        raise RuleViolation(f"unknown status {', '.join(unknown)}", {"status": list(STATUSES)})
    return wanted


def list_key(days_left: int | None, deadline: date, case_number: str) -> tuple:
    """The town agent's list: overdue first (the most overdue first), then by the city's deadline."""
    overdue = days_left is not None and days_left < 0
    return (not overdue, deadline, case_number)


def hops(reviewed_by: str, escalated_at: datetime, relayed_by: str | None, relayed_at: datetime | None,
         decisions: dict, returned_by: str | None, returned_at: datetime | None) -> list[dict]:
    """The escalation's hops (escalated, relayed, decided per department, returned): who and when, by time."""
    out = [{"hop": "escalated", "by": reviewed_by, "at": escalated_at}]
    if relayed_at is not None:
        out.append({"hop": "relayed", "by": relayed_by, "at": relayed_at})
    out += [{"hop": "decided", "by": d["decided_by"], "at": d["decided_at"], "department": dept,
             "outcome": d["outcome"]} for dept, d in sorted(decisions.items(), key=lambda kv: kv[1]["decided_at"])]
    if returned_at is not None:
        out.append({"hop": "returned", "by": returned_by, "at": returned_at})
    return out
