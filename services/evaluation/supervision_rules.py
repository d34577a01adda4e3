"""Deadline supervision (电子监察) rules: plain Python, no I/O.

A case's standing on a day: green, yellow (at most `yellow_days` working days left, the deadline day
counted as 0 left), red (the deadline has passed). A case whose clock stands still (paused for a special
procedure, waiting for materials the back office asked for) is never warned: its deadline moves when the
clock runs again. An instant case (即办件) is due the day it is accepted: a yellow at acceptance would say
nothing, so it can only go red.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.vocabulary import CaseKind, CaseStatus
from shared.workdays import WorkingCalendar

GREEN, YELLOW, RED = "green", "yellow", "red"
COLOURS = (RED, YELLOW, GREEN)  # most urgent first
WARNED = (YELLOW, RED)
# open statuses whose clock runs: pending_materials (补正 asked by the back office) stops it, paused too
RUNNING_STATUSES = (CaseStatus.IN_REVIEW, CaseStatus.INITIAL_REVIEW)
OPEN_STATUSES = (CaseStatus.PENDING_MATERIALS, CaseStatus.INITIAL_REVIEW, CaseStatus.IN_REVIEW, CaseStatus.PAUSED)
DEFAULT_YELLOW_DAYS = 1


@dataclass(frozen=True)
class Standing:
    colour: str  # green | yellow | red
    working_days_left: int | None  # working days after today up to the deadline; negative: overdue by so many
    clock_stopped: bool


def clock_stopped(status: str | None, paused_since: date | None) -> bool:
    return paused_since is not None or status not in RUNNING_STATUSES


def working_days_left(calendar: WorkingCalendar, today: date, deadline: date) -> int:
    return calendar.working_days_between(today, deadline)


def standing(calendar: WorkingCalendar, today: date, *, deadline: date | None, status: str | None,
             paused_since: date | None = None, kind: str | None = None,
             yellow_days: int = DEFAULT_YELLOW_DAYS) -> Standing:
    stopped = clock_stopped(status, paused_since)
    if deadline is None:
        return Standing(GREEN, None, stopped)
    left = working_days_left(calendar, today, deadline)
    if stopped:
        colour = GREEN
    elif today > deadline:  # by date: a deadline on a Friday is passed on Saturday with 0 working days between
        colour = RED
    elif left <= yellow_days and kind != CaseKind.INSTANT:
        colour = YELLOW
    else:
        colour = GREEN
    return Standing(colour, left, stopped)


def warning_due(s: Standing) -> str | None:
    """The colour of warning a standing calls for (None: none)."""
    return s.colour if s.colour in WARNED and not s.clock_stopped else None


def rule_of(colour: str, yellow_days: int = DEFAULT_YELLOW_DAYS) -> str:
    """The rule a warning applies, as recorded with it (督办依据)."""
    if colour == RED:
        return "deadline_passed"
    return f"at_most_{yellow_days}_working_days_left"


def resolution(colour: str, warned_deadline: date, case_open: bool, case_deadline: date | None,
               standing_now: Standing | None) -> str | None:
    """Why an open warning is over now, or None while it stands.

    - the case closed (completed, returned …);
    - its deadline moved (an extension, the days of a pause given back): a new deadline is watched anew;
    - a yellow turned red (the red warning takes over);
    - it is no longer due (the city's yellow threshold or calendar changed).
    A case whose clock stopped keeps its warning: it is still as late as it was."""
    if not case_open:
        return "closed"
    if case_deadline != warned_deadline:
        return "deadline_moved"
    if standing_now is None or standing_now.clock_stopped:
        return None
    if colour == YELLOW and standing_now.colour == RED:
        return "turned_red"
    if standing_now.colour == GREEN:
        return "no_longer_due"
    return None


def urgency_key(colour: str, deadline: date | None, case_number: str) -> tuple:
    """Board order: red first, then yellow, then by deadline (none last), then case number."""
    return (COLOURS.index(colour), deadline is None, deadline or date.max, case_number)


def office_town(accepting_town: str, handling_town: str | None) -> str:
    """The office that must decide in time: the handling town's, `city` for a city bureau, else the
    accepting town's."""
    return handling_town or accepting_town


@dataclass(frozen=True)
class Addressees:
    """Who a supervision notice (督办通知) goes to, as role scopes (evaluation does not know the persons)."""

    department_head: str | None  # department:<code>[@<town>]
    supervisor: str  # town:<code> or city


def addressees(department: str | None, accepting_town: str, handling_town: str | None) -> Addressees:
    office = office_town(accepting_town, handling_town)
    if office == "city":
        return Addressees(f"department:{department}" if department else None, "city")
    return Addressees(f"department:{department}@{office}" if department else None, f"town:{office}")


def notice_text(case_number: str, item_name: str | None, department: str | None, deadline: date,
                working_days_left: int, first_responder: str | None) -> str:
    """The supervision notice's text (Chinese, for the department head and the supervisor)."""
    overdue = -working_days_left
    late = f"已超期{overdue}个工作日" if overdue > 0 else "已超过办结时限"
    return (f"督办通知：办件{case_number}（{item_name or '事项'}）承诺办结时限为{deadline.isoformat()}，{late}。"
            f"请{department or '承办部门'}负责人督促办理并说明原因；首问负责人：{first_responder or '—'}。")
