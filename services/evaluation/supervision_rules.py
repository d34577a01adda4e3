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


# --- the board's counts (board_counts): open cases by office, department, deadline and clock ------------------

NO_DEADLINE = date(9999, 12, 31)  # a count row's deadline for a case without one (sorts last, as on the board)


@dataclass(frozen=True, order=True)
class BoardKey:
    """One row of the board's counts. Each open case counts once per department it concerns (its lead and
    joint departments), and the row of its lead department says so: the city and town boards add the lead
    rows, a department's board the rows of that department."""

    accepting_town: str
    handling_town: str  # "" where none (the accepting town's office decides), "city" for a city bureau
    department: str  # "" where none
    lead: bool
    deadline: date
    instant: bool
    stopped: bool


def board_keys(*, status: str | None, accepting_town: str | None, handling_town: str | None,
               department: str | None, departments, kind: str | None, deadline: date | None,
               paused_since: date | None) -> tuple[BoardKey, ...]:
    """The count rows a case read model's values put it in: none unless it is open."""
    if status not in OPEN_STATUSES or accepting_town is None:
        return ()
    common = dict(accepting_town=accepting_town, handling_town=handling_town or "",
                  deadline=deadline or NO_DEADLINE, instant=kind == CaseKind.INSTANT,
                  stopped=clock_stopped(status, paused_since))
    lead = department or ""
    others = sorted({d for d in (departments or ()) if d and d != lead})
    return (BoardKey(department=lead, lead=True, **common),
            *(BoardKey(department=d, lead=False, **common) for d in others))


def yellow_until(calendar: WorkingCalendar, today: date, yellow_days: int = DEFAULT_YELLOW_DAYS) -> date:
    """The last deadline that is yellow today (at most `yellow_days` working days left): from today on, every
    deadline up to it is yellow, every later one green (working days left only grow with the deadline)."""
    day = today
    for _ in range(366):  # a bound, not a limit met in practice: a year of holidays
        nxt = date.fromordinal(day.toordinal() + 1)
        if working_days_left(calendar, today, nxt) > yellow_days:
            return day
        day = nxt
    return day


def bucket_colour(*, deadline: date, instant: bool, stopped: bool, today: date, yellow_last: date) -> str:
    """A count row's colour today, as `standing` gives each of its cases (yellow_last from yellow_until)."""
    if stopped or deadline == NO_DEADLINE:
        return GREEN
    if deadline < today:
        return RED
    if deadline <= yellow_last and not instant:
        return YELLOW
    return GREEN
