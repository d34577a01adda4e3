"""Back-office rules (后台分类审批) as plain Python: no I/O.

A work item is one department's share of one case version:

    pending ──decide──────────────▶ decided
       │ ▲
       │ └─end_procedure── paused ◀──start_procedure── (from pending)
       └──request_materials──▶ waiting_materials
    any open item ──case routed again (newer version)──▶ superseded
    any open item ──case closed elsewhere──────────────▶ withdrawn

AB posts (AB岗): each office of the department (key: department and handling town, or "city") has an
A and a B holder and a head. New work goes to the first *present* one of A, B, head; when nobody is
present it stays with the office (anyone of it may claim). An absence covers the half-open period
[from, to): the holder is away from `from` on and back at `to` (a plain date means 00:00 Asia/Shanghai,
so a leave "2026-11-02 .. 2026-11-05" keeps the holder away on 2, 3 and 4 November).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from shared.errors import NotAllowedNow, RuleViolation
from shared.vocabulary import (
    CLOCK_STOPPED_WORK_STATUSES,
    CLOSED_WORK_STATUSES,
    OPEN_WORK_STATUSES,
    ExtensionStatus,
    Outcome,
)
from shared.workdays import SHANGHAI

OUTCOMES = tuple(Outcome)

OPEN = OPEN_WORK_STATUSES
CLOCK_STOPPED = CLOCK_STOPPED_WORK_STATUSES  # listed apart from the urgent work
CLOSED = CLOSED_WORK_STATUSES
STATUSES = OPEN + CLOSED

MAX_STAFF_ID = 64


# --- what goes wrong ---------------------------------------------------------------------------------

class DecisionRejected(RuleViolation):
    """The request cannot be taken as asked; the message says why (a 400 to the approver)."""


class Conflicting(NotAllowedNow):
    """The request clashes with the item's state or holder (a 409); the message says why."""


class AlreadyDecided(Conflicting):
    def __init__(self, outcome: str | None):
        super().__init__(f"this work item is already decided ({outcome})" if outcome
                         else "this work item is already decided")
        self.outcome = outcome


class ItemClosed(Conflicting):
    """The item was superseded by a newer case version or withdrawn: nothing more happens on it."""


class NotNow(Conflicting):
    """The step does not fit the item's status (e.g. a decision while waiting for materials)."""


class NotYours(Conflicting):
    """The item is held by another present holder."""


class ExtensionTaken(Conflicting):
    """A case gets one extension (延期) at most (the ledger's rule; the desk only knows what it was told)."""


# --- the item's steps ---------------------------------------------------------------------------------

# step: (statuses it may start from, status it leads to or None when the status stays)
STEPS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "decide": (("pending",), "decided"),
    "request_materials": (("pending",), "waiting_materials"),
    "start_procedure": (("pending",), "paused"),
    "end_procedure": (("paused",), "pending"),
    "request_extension": (("pending", "paused"), None),
    "approve_extension": (("pending", "paused"), None),
    "claim": (OPEN, None),
}

_WHY_NOT = {
    "paused": "a special procedure is running; end it first",
    "waiting_materials": "the department asked for more materials; the case comes back with a new version "
                         "once the applicant supplied them",
    "pending": "no special procedure is running",
}


def closed_message(status: str, superseded_by: int | None = None) -> str:
    if status == "superseded":
        newer = f" (work item {superseded_by})" if superseded_by else ""
        return ("this work item was superseded: the case was routed again with a newer case version"
                f"{newer}; act on the current item")
    if status == "withdrawn":
        return "this work item was withdrawn: the case was closed meanwhile (e.g. another department refused it)"
    return f"this work item is {status}"


def next_status(status: str, step: str, superseded_by: int | None = None, outcome: str | None = None) -> str:
    """The status after `step`, or raise why the step cannot be taken now."""
    allowed, target = STEPS[step]
    if status == "decided":
        raise AlreadyDecided(outcome)
    if status in ("superseded", "withdrawn"):
        raise ItemClosed(closed_message(status, superseded_by))
    if status not in allowed:
        raise NotNow(f"cannot {step.replace('_', ' ')} now: {_WHY_NOT.get(status, status)}")
    return target or status


def check_decision(status: str, outcome: str, reason: str | None, *, valid_until: date | None = None,
                   today: date | None = None, current_outcome: str | None = None,
                   superseded_by: int | None = None) -> None:
    """A decision: only on a pending item of the current version; a refusal says why; a validity ends later."""
    next_status(status, "decide", superseded_by, current_outcome or outcome)
    if outcome not in OUTCOMES:
        raise DecisionRejected(f"outcome must be one of {OUTCOMES}")
    if outcome == "refused" and not (reason and reason.strip()):
        raise DecisionRejected("a refusal needs a written reason")
    if valid_until is not None:
        if outcome != "approved":
            raise DecisionRejected("only an approval has a validity (valid_until)")
        if today is not None and valid_until < today:
            raise DecisionRejected(f"valid_until {valid_until} lies before today ({today})")


def foreign_work(department: str, case_number: str, routed: dict) -> str | None:
    """Why routed work is not this department's business (None when it is).

    The routing key already names the department; the payload must agree, and the case number must be
    one the accepting centre gives (`<town>-<yyyymmdd>-<seq>`), or the message is not acted on."""
    if routed["department"] != department:
        return f"work for department {routed['department']} reached {department}"
    if department not in routed["departments"]:
        return f"{department} is not among the case's departments {routed['departments']}"
    if not case_number.startswith(routed["accepting_town"] + "-"):
        return f"case number {case_number} was not given by the accepting centre {routed['accepting_town']}"
    return None


def result_number(department: str, case_number: str) -> str:
    """The document number of an approval issued by rule (即办件): department and case make it unique."""
    return f"{department.upper()}-{case_number}"


def check_reason(reason: str | None, what: str) -> str:
    if not (reason and reason.strip()):
        raise DecisionRejected(f"{what} needs a written reason")
    return reason.strip()


def check_materials(materials: list[dict]) -> list[dict]:
    """一次性告知: every missing material at once, each named, none twice."""
    if not materials:
        raise DecisionRejected("list at least one material")
    out, seen = [], set()
    for m in materials:
        name = (m.get("name") or "").strip()
        if not name:
            raise DecisionRejected("every material needs a name")
        key = (m.get("code") or "").strip() or name
        if key in seen:
            raise DecisionRejected(f"material {key} is listed twice")
        seen.add(key)
        out.append({"code": (m.get("code") or "").strip() or None, "name": name})
    return out


# --- the one extension (延期) ---------------------------------------------------------------------------

# The case's ledger (intake) owns the extension rule: once per case, 1..(statutory − promised) working
# days, with a reason. The routed work says what may still be asked (extension_days_max, 0 once the
# case has had its extension); the desk checks a request against that so the approver hears at once
# (a check for the user, not a second rule), and the ledger decides: a refusal comes back
# (case.step_refused) and is kept on the work item with the ledger's reason.

@dataclass(frozen=True)
class ExtensionState:
    status: str  # requested | approved | refused
    days: int
    requested_by: str


def check_extension_request(existing: ExtensionState | None, days: int, reason: str | None,
                            days_max: int | None = None) -> None:
    """May the approver ask for `days`? `days_max` is what the routed work says (None: not told)."""
    if existing is not None and existing.status != ExtensionStatus.REFUSED:
        raise ExtensionTaken(f"this case already has its one extension ({existing.status}, {existing.days} "
                             f"working days, asked by {existing.requested_by}); a case is extended at most once")
    check_extension_days(days, days_max)
    check_reason(reason, "an extension")


def check_extension_days(days: int, days_max: int | None) -> None:
    if days_max == 0:
        raise ExtensionTaken("the case has had its one extension already (the centre's ledger says so); "
                             "a case is extended at most once")
    if days < 1 or (days_max is not None and days > days_max):
        limit = f"1 to {days_max}" if days_max is not None else "at least 1"
        raise DecisionRejected(f"an extension of this case is {limit} working days (the centre's rule)",
                               {"days": [limit]})


def check_extension_approval(existing: ExtensionState | None, days_max: int | None = None) -> None:
    if existing is None or existing.status == ExtensionStatus.REFUSED:
        raise NotNow("no extension was asked for on this case")
    if existing.status == ExtensionStatus.APPROVED:
        raise ExtensionTaken("the extension of this case is already approved; a case is extended at most once")
    check_extension_days(existing.days, days_max)


# what the desk undoes on its item when the ledger refuses a step: the status the step left -> back to
REFUSAL_UNDOES = {"request_materials": ("waiting_materials", "pending"), "start_procedure": ("paused", "pending")}


def deadline_news(applied_version: int, case_version: int) -> bool:
    """The ledger owns the deadline (case.deadline_moved): a message about a case version newer than the one
    whose deadline the item shows moves it; the same or an older one (redelivered, overtaken) changes nothing."""
    return case_version > applied_version


# --- who holds the work (AB岗) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Post:
    a: str
    b: str
    head: str | None = None

    def role_of(self, holder: str | None) -> str | None:
        if holder is None:
            return None
        return {self.a: "A", self.b: "B"}.get(holder) or ("head" if holder == self.head else None)


@dataclass(frozen=True)
class Absence:
    holder: str
    start: datetime  # aware
    end: datetime  # aware, exclusive: back at `end`
    reason: str

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class Assignment:
    holder: str | None  # who gets the work; None: the office (anyone of it may claim)
    role: str | None  # A, B, head, or None (not a holder of the post / nobody)
    handover_from: str | None = None  # the holder it would have gone to, when it went elsewhere
    reason: str | None = None  # why it went elsewhere

    @property
    def handover(self) -> bool:
        return self.handover_from is not None

    @property
    def head_fallback(self) -> bool:
        return self.role == "head" and self.handover


def as_utc(value: datetime) -> datetime:
    """Stored timestamps are UTC; SQLite hands them back naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def as_instant(value: datetime | date) -> datetime:
    """A given moment in UTC; a naive time or a plain date is Asia/Shanghai (00:00 for a date)."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=SHANGHAI)
    return value.astimezone(UTC)


def absence(holder: str, start: datetime | date, end: datetime | date, reason: str | None) -> Absence:
    """Check and normalise an absence: a reason, and `to` after `from`."""
    reason = check_reason(reason, "an absence")
    s, e = as_instant(start), as_instant(end)
    if e <= s:
        raise DecisionRejected("an absence ends ('to', exclusive: the holder is back then) after it starts ('from')")
    return Absence(holder, s, e, reason)


def away(holder: str | None, absences: Iterable[Absence], at: datetime) -> Absence | None:
    """The absence keeping `holder` away at `at`, if any."""
    if holder is None:
        return None
    return next((a for a in absences if a.holder == holder and a.covers(at)), None)


def assign(post: Post | None, absences: Iterable[Absence], at: datetime, current: str | None = None) -> Assignment:
    """Who holds a work item at `at`: work never goes to an absent person.

    `current` is the item's holder so far (a re-routed item, or an item whose holder went away):
    kept while present. Otherwise the first present of A, B and the head; nobody present (or no post
    configured for the office) leaves the item with the office, unassigned.
    """
    absences = list(absences)
    if current is not None and not away(current, absences, at):
        return Assignment(current, post.role_of(current) if post else None)
    intended = current or (post.a if post else None)  # who would hold it if everybody were in
    why: list[str] = []
    if current is not None:
        role = post.role_of(current) if post else None
        why.append(f"{f'{role} ({current})' if role else current} away: {away(current, absences, at).reason}")
    candidates = [] if post is None else [(post.a, "A"), (post.b, "B"), (post.head, "head")]
    for holder, role in candidates:
        if holder is None:
            continue
        gone = away(holder, absences, at)
        if gone is None:
            if holder == intended:
                return Assignment(holder, role)
            return Assignment(holder, role, intended, "; ".join(why))
        if holder != current:
            why.append(f"{role} ({holder}) away: {gone.reason}")
    if intended is None:
        return Assignment(None, None)  # no post and nobody held it: the office's pool
    why.append("nobody of the post is present" if post else "no post is configured for the office")
    return Assignment(None, None, intended, "; ".join(why))


def check_claim(status: str, assignee: str | None, claimer: str, absences: Iterable[Absence], at: datetime,
                superseded_by: int | None = None) -> str:
    """May `claimer` take the item? Returns 'held' (already theirs), 'take' (unassigned) or 'takeover'
    (the holder is away: a handover); raises otherwise."""
    next_status(status, "claim", superseded_by)
    absences = list(absences)
    gone = away(claimer, absences, at)
    if gone is not None:
        raise NotYours(f"you ({claimer}) are marked away until {gone.end.isoformat()}: work never goes to an "
                       "absent person")
    if assignee is None:
        return "take"
    if assignee == claimer:
        return "held"
    if away(assignee, absences, at):
        return "takeover"
    raise NotYours(f"this work item is held by {assignee}, who is present; it can be claimed only while they are away")


def check_actor(assignee: str | None, actor: str, is_head: bool) -> None:
    """Deciding and the other steps: by the item's holder, anyone of the office if unassigned, or the head."""
    if assignee is None or assignee == actor or is_head:
        return
    raise NotYours(f"this work item is held by {assignee}; claim it first (possible only while they are away)")


def check_post(a: str, b: str, head: str | None) -> Post:
    for label, value in (("a", a), ("b", b), ("head", head)):
        if value is not None and not valid_staff_id(value):
            raise DecisionRejected(f"{label} must be a staff id (1-{MAX_STAFF_ID} characters, no spaces)")
    if a == b:
        raise DecisionRejected("the A and B holders of a post are two different people")
    if head is not None and head in (a, b):
        raise DecisionRejected("the department head is the fallback, not a holder of the post")
    return Post(a, b, head)


def valid_staff_id(value: str) -> bool:
    return (isinstance(value, str) and 1 <= len(value) <= MAX_STAFF_ID and value.isprintable()
            and not any(c.isspace() for c in value))


def valid_office(key: str) -> bool:
    """An office of the department: a 9-digit town code, or 'city' for the city bureau."""
    return key == "city" or (len(key) == 9 and key.isascii() and key.isdigit())


# --- the worklist ------------------------------------------------------------------------------------------

def urgency_key(days_left: int, deadline: date, item_id: int) -> tuple:
    """The most urgent first: fewest working days left (overdue is negative), then deadline, then arrival."""
    return (days_left, deadline, item_id)


def parse_status_filter(value: str | None) -> tuple[str, ...] | None:
    """`open` (default): every open item; `all`: everything; else one status or a comma-separated list."""
    if value in (None, "", "open"):
        return OPEN
    if value == "all":
        return None
    wanted = tuple(s.strip() for s in value.split(",") if s.strip())
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown or not wanted:
        raise DecisionRejected(f"status must be open, all, or among {', '.join(STATUSES)} (got {value!r})")
    return wanted
