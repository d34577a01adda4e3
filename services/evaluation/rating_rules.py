"""好差评 ratings and 有诉即办 complaints: the rules, in plain Python without I/O.

Who may rate a case when, the due dates in working days (回访 callback, 整改 rectification, a complaint's
deadline), the states a rectification, an appeal (申诉复核) and a complaint go through, and the order of the
lists (overdue first). The use cases (ratings.py, complaints.py) apply them to the stored records.
"""
from __future__ import annotations

from datetime import date
from enum import StrEnum

from shared.errors import NotAllowedNow, NotPermitted, RuleViolation
from shared.workdays import WorkingCalendar

# --- ratings (好差评) --------------------------------------------------------------------------------

LEVELS = {1: "非常满意", 2: "满意", 3: "基本满意", 4: "不满意", 5: "非常不满意"}
BAD_LEVELS = frozenset({4, 5})  # 不满意, 非常不满意: each opens a rectification
CHANNELS = ("window_device", "qr_code", "sms_link", "online", "phone")
WINDOW_DEVICE = "window_device"
PHONE = "phone"


class Stage(StrEnum):
    ACCEPTANCE = "acceptance"
    COMPLETION = "completion"


# a kind whose case is rated once (即办件: accepted and finished on the spot; a consultation); every other
# kind (承诺件, 联办件, 上报件, 复核) once at acceptance and once at completion
RATED_ONCE_KINDS = frozenset({"instant", "consultation"})
ONCE = "once"  # the slot of a case rated once


def is_bad(level: int) -> bool:
    return level in BAD_LEVELS


def rating_slot(kind: str | None, stage: str) -> str:
    """The slot a rating takes on its case: one per stage, or one for a case rated once. Two ratings never
    share a slot (the database holds it unique, so two sent at the same moment cannot both pass)."""
    return ONCE if kind is None or kind in RATED_ONCE_KINDS else str(stage)


def check_rating(kind: str | None, status: str | None, stage: str, taken: set[str]) -> str:
    """May the case be rated at `stage` now? Its slot, or NotAllowedNow (409)."""
    if stage == Stage.COMPLETION and status != "completed":
        raise NotAllowedNow("a rating at completion comes once the case has completed",
                            {"status": status, "stage": stage})
    slot = rating_slot(kind, stage)
    if slot in taken:
        if slot == ONCE:
            raise NotAllowedNow(f"a case of kind {kind or 'unknown'} is rated once, and this one has been",
                                {"kind": kind})
        raise NotAllowedNow(f"the case has been rated at {stage} already (once per stage)", {"stage": stage})
    return slot


def check_rater(role: str, channel: str, follow_up: bool = False) -> None:
    """Who records a rating for the applicant (the rater): a `service` (the portal, the QR and SMS-link pages,
    the hotline's system) through any channel; a window `clerk` only through the counter's rating device;
    for a follow-up also a `supervisor` by phone, at the 回访. NotPermitted (403) otherwise."""
    if role == "service":
        return
    if role == "clerk" and channel == WINDOW_DEVICE:
        return
    if follow_up and role == "supervisor" and channel == PHONE:
        return
    allowed = "service (any channel), clerk (window_device)" + (", supervisor (phone)" if follow_up else "")
    raise NotPermitted(f"role {role} may not record a rating through {channel}", {"allowed": allowed})


# --- rectifications (整改) of bad ratings ------------------------------------------------------------

CALLBACK_DAYS = 1  # 回访 within 1 working day
RECTIFY_DAYS = 15  # 整改 within 15 working days: TONGBAN_RECTIFY_DAYS (local practice 5–15)
RECTIFY_DAYS_RANGE = (5, 15)


class RectState(StrEnum):
    OPEN = "open"  # opened by the bad rating: the callback is due
    CALLED_BACK = "called_back"  # 回访 made: the rectification is due
    RECTIFIED = "rectified"  # measures taken: the rater's follow-up rating is awaited
    CLOSED = "closed"  # after the follow-up, the rater's declining one, or an appeal upheld


class CloseReason(StrEnum):
    FOLLOW_UP = "follow_up"
    DECLINED = "declined"  # the rater declined to rate again
    APPEAL_UPHELD = "appeal_upheld"  # the rating was voided


_STEPS = {  # step -> (the states it may start from, the state it leads to)
    "callback": ((RectState.OPEN,), RectState.CALLED_BACK),
    "rectify": ((RectState.CALLED_BACK,), RectState.RECTIFIED),
    "follow_up": ((RectState.RECTIFIED,), RectState.CLOSED),
    "decline": ((RectState.RECTIFIED,), RectState.CLOSED),
    "void": ((RectState.OPEN, RectState.CALLED_BACK, RectState.RECTIFIED), RectState.CLOSED),
}
_WHY_NOT = {
    ("rectify", RectState.OPEN): "the callback (回访) comes first",
    ("follow_up", RectState.OPEN): "the follow-up rating comes after the rectification",
    ("follow_up", RectState.CALLED_BACK): "the follow-up rating comes after the rectification",
    ("decline", RectState.OPEN): "the rater is asked for a follow-up once the rectification is done",
    ("decline", RectState.CALLED_BACK): "the rater is asked for a follow-up once the rectification is done",
}


def rect_step(state: str, step: str) -> RectState:
    """The state after `step`, or NotAllowedNow (409) saying why not now."""
    starts, to = _STEPS[step]
    if state not in starts:
        why = _WHY_NOT.get((step, state)) or f"the rectification is {state}"
        raise NotAllowedNow(f"no {step.replace('_', '-')} now: {why}", {"state": state})
    return to


def rectification_dues(rated_on: date, calendar: WorkingCalendar,
                       rectify_days: int = RECTIFY_DAYS) -> tuple[date, date]:
    """(callback due, rectification due): working days after the day of the rating."""
    return (calendar.add_working_days(rated_on, CALLBACK_DAYS).date,
            calendar.add_working_days(rated_on, rectify_days).date)


def rectification_overdue(state: str, callback_due: date, rectify_due: date, today: date) -> str | None:
    """Which step is late: "rectification" (the graver), "callback", or None."""
    if state in (RectState.OPEN, RectState.CALLED_BACK) and today > rectify_due:
        return "rectification"
    if state == RectState.OPEN and today > callback_due:
        return "callback"
    return None


def next_due(state: str, callback_due: date, rectify_due: date) -> date | None:
    if state == RectState.OPEN:
        return callback_due
    if state == RectState.CALLED_BACK:
        return rectify_due
    return None


def check_follow_up(void: bool, bad: bool, state: str | None, already: bool) -> RectState:
    """One follow-up rating by the rater, after the rectification of a bad rating."""
    if already:
        raise NotAllowedNow("the rater has given the one follow-up rating already")
    if void:
        raise NotAllowedNow("the rating was voided on appeal")
    if not bad or state is None:
        raise NotAllowedNow("only a bad rating (不满意, 非常不满意) gets a follow-up rating")
    return rect_step(state, "follow_up")


def check_callback_time(at, rated_at, now) -> None:
    if at > now:
        raise RuleViolation("a callback is recorded once made, not ahead", {"at": ["in the future"]})
    if at < rated_at:
        raise RuleViolation("a callback comes after the rating", {"at": ["before the rating"]})


# --- appeals (申诉复核) ---------------------------------------------------------------------------------

class AppealStatus(StrEnum):
    PENDING = "pending"
    UPHELD = "upheld"  # the rating is void (kept, marked, out of the figures), its rectification closed
    REJECTED = "rejected"


def check_appeal(role: str, scope_kind: str, bad: bool, void: bool, appealed: bool) -> None:
    """The staff's department head, or the town's supervisor, appeals a bad rating, once."""
    if not (role == "department_head" or (role == "supervisor" and scope_kind == "town")):
        raise NotPermitted("an appeal comes from the staff's department head or the town's supervisor")
    if not bad:
        raise NotAllowedNow("only a bad rating (不满意, 非常不满意) is appealed")
    if void:
        raise NotAllowedNow("the rating is void already")
    if appealed:
        raise NotAllowedNow("the rating has been appealed already (one appeal per rating)")


def check_appeal_decision(status: str, appellant: str, decider: str) -> None:
    """A supervisor decides a pending appeal, once, and not their own."""
    if status != AppealStatus.PENDING:
        raise NotAllowedNow(f"the appeal was decided already ({status})", {"status": status})
    if appellant == decider:
        raise NotPermitted("an appeal is decided by another supervisor than the one who made it")


# --- complaints (有诉即办) ------------------------------------------------------------------------------

COMPLAINT_DAYS = 5  # resolved within 5 working days: TONGBAN_COMPLAINT_DAYS
COMPLAINT_CHANNELS = ("window", "phone", "hotline", "online", "letter")  # hotline: 12345


class ComplaintStatus(StrEnum):
    RECEIVED = "received"  # accepted at once (受理)
    ACKNOWLEDGED = "acknowledged"  # the complainant told it is being handled
    ASSIGNED = "assigned"  # someone (and a department) answers for it
    RESOLVED = "resolved"


_COMPLAINT_STEPS = {
    "acknowledge": ((ComplaintStatus.RECEIVED,), ComplaintStatus.ACKNOWLEDGED),
    # assigned again: handed to someone else
    "assign": ((ComplaintStatus.ACKNOWLEDGED, ComplaintStatus.ASSIGNED), ComplaintStatus.ASSIGNED),
    "resolve": ((ComplaintStatus.ASSIGNED,), ComplaintStatus.RESOLVED),
}
_COMPLAINT_ORDER = "received → acknowledged → assigned → resolved"


def complaint_step(status: str, step: str) -> ComplaintStatus:
    starts, to = _COMPLAINT_STEPS[step]
    if status not in starts:
        raise NotAllowedNow(f"no {step} now: the complaint is {status} ({_COMPLAINT_ORDER})", {"status": status})
    return to


def complaint_due(received_on: date, calendar: WorkingCalendar, days: int = COMPLAINT_DAYS) -> date:
    return calendar.add_working_days(received_on, days).date


def complaint_overdue(status: str, due: date, today: date) -> bool:
    return status != ComplaintStatus.RESOLVED and today > due


def complaint_number(town: str, day: date, seq: int) -> str:
    """TS-<town>-<yyyymmdd>-<seq> (投诉): runs of 9, 8 and 4 digits, never masked as a phone or an ID."""
    return f"TS-{town}-{day:%Y%m%d}-{seq:04d}"


def may_resolve(role: str, subject: str, assigned_to: str | None) -> None:
    """The person it was assigned to, their department head, or a supervisor resolves a complaint."""
    if role in ("department_head", "supervisor", "service") or subject == assigned_to:
        return
    raise NotPermitted("a complaint is resolved by the one it is assigned to, a department head or a supervisor")


# --- lists -------------------------------------------------------------------------------------------

def overdue_first(overdue: bool, due: date | None, key: str | int) -> tuple:
    """Overdue first, then the nearest due date, then the record's number; nothing due last."""
    return (not overdue, due is None, due or date.max, key)


def check_days(name: str, value: int, low: int = 1, high: int = 60) -> int:
    """A configured number of working days (settings), checked at start, not at 2 a.m."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number of working days from {low} to {high}, got {value!r}")
    return value
