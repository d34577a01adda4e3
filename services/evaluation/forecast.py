"""The breach forecast (超期预测): plain Python, no I/O.

Per office (a department at a town, or a city bureau): its open cases whose clock runs form a queue in
deadline order (earliest deadline first, overdue ones at the head: they are worked on first), served at the
office's recent decision rate (decisions per working day over the last `window_days` working days, today
included). The k-th case of the queue is decided when k decisions have been made: on working day ceil(k/rate)
counted from today. It misses its deadline when that day comes after the working days it has left (today
and its deadline day counted). The forecast counts the misses whose deadline falls within the next
`horizon_days` working days, names them in order, and the least rate at which none of them would miss:
max over those cases of k / (working days it has).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction

from shared.workdays import WorkingCalendar

DEFAULT_HORIZON_DAYS = 5
DEFAULT_WINDOW_DAYS = 20
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class QueuedCase:
    case_number: str
    deadline: date


@dataclass(frozen=True)
class Breach:
    case_number: str
    deadline: date
    position: int  # in the office's queue, 1 = decided first
    working_days_available: int  # today and the deadline day counted
    expected_decision: date | None  # at the recent rate (None: the office decided nothing lately)


@dataclass
class OfficeForecast:
    town: str  # a 9-digit town code, or "city" for a city bureau
    department: str
    open_cases: int  # in the queue: open, clock running
    overdue: int  # already past their deadline
    decisions: int  # in the window
    window_days: int
    horizon_days: int
    rate: Fraction  # decisions per working day
    breach_count: int = 0  # cases in the horizon that miss their deadline at the recent rate
    breaches: list[Breach] = field(default_factory=list)  # those cases named, in queue order (where asked for)
    needed_rate: Fraction = Fraction(0)  # the least rate at which nothing in the horizon misses

    def summary(self) -> dict:
        return {"town": self.town, "department": self.department, "open_cases": self.open_cases,
                "overdue": self.overdue, "decisions": self.decisions, "window_days": self.window_days,
                "horizon_days": self.horizon_days, "rate": _round_down(self.rate),
                "breaches": self.breach_count, "needed_rate": _round_up(self.needed_rate),
                "needed_per_day": math.ceil(self.needed_rate),
                "extra_per_day": _round_up(max(Fraction(0), self.needed_rate - self.rate))}

    def detail(self) -> dict:
        return {**self.summary(), "first_breaches": [
            {"case_number": b.case_number, "deadline": b.deadline, "position": b.position,
             "working_days_available": b.working_days_available, "expected_decision": b.expected_decision}
            for b in self.breaches]}


def window_start(calendar: WorkingCalendar, today: date, window_days: int) -> date:
    """The first day of the `window_days` working days ending today (today counted if it is one)."""
    d, counted = today, 0
    while True:
        if calendar.is_working_day(d):
            counted += 1
            if counted >= window_days:
                return d
        d -= _ONE_DAY


def working_days_available(calendar: WorkingCalendar, today: date, deadline: date) -> int:
    """Working days from today to the deadline, both counted; 0 once it has passed."""
    if deadline < today:
        return 0
    return calendar.working_days_between(today - _ONE_DAY, deadline)


def nth_working_day(calendar: WorkingCalendar, today: date, n: int) -> date:
    """The n-th working day counting today as the first if it is one (n >= 1)."""
    return calendar.add_working_days(today - _ONE_DAY, n).date


@dataclass(frozen=True)
class BreachSpan:
    """Cases of one deadline that miss it: queue positions `first`..`last` (the group's cases in case number
    order take the positions from `group_start` + 1 on)."""

    deadline: date
    group_start: int
    first: int
    last: int
    working_days_available: int


def forecast_counts(calendar: WorkingCalendar, today: date, town: str, department: str,
                    groups: Iterable[tuple[date, int]], decisions: int, *, window_days: int = DEFAULT_WINDOW_DAYS,
                    horizon_days: int = DEFAULT_HORIZON_DAYS, available: dict[date, int] | None = None
                    ) -> tuple[OfficeForecast, list[BreachSpan]]:
    """The forecast from the queue's counts per deadline (cases of one deadline are consecutive in the queue);
    the breaches as spans of queue positions, not yet named (`forecast_office` names them). `available`: a
    memo of the working days each deadline has, shared by the offices of one forecast."""
    memo = {} if available is None else available
    if window_days < 1 or horizon_days < 1:
        raise ValueError("the window and the horizon are at least one working day")
    merged: dict[date, int] = {}
    for deadline, n in groups:
        merged[deadline] = merged.get(deadline, 0) + n
    rate = Fraction(decisions, window_days)
    result = OfficeForecast(town=town, department=department, open_cases=sum(merged.values()), overdue=0,
                            decisions=decisions, window_days=window_days, horizon_days=horizon_days, rate=rate)
    spans: list[BreachSpan] = []
    start = 0  # cases ahead of this deadline's in the queue
    for deadline in sorted(merged):
        n = merged[deadline]
        if deadline not in memo:
            memo[deadline] = working_days_available(calendar, today, deadline)
        available = memo[deadline]
        if available == 0:
            result.overdue += n
        elif available > horizon_days:
            break  # deadlines come in order: the rest lie beyond the horizon
        else:
            result.needed_rate = max(result.needed_rate, Fraction(start + n, available))
            # position k misses its deadline when k > rate * available (not decided by the end of that day)
            first = max(start + 1, math.floor(rate * available) + 1)
            if first <= start + n:
                spans.append(BreachSpan(deadline, start, first, start + n, available))
                result.breach_count += start + n - first + 1
        start += n
    return result, spans


def expected_decision(calendar: WorkingCalendar, today: date, position: int, rate: Fraction) -> date | None:
    """The day the case at `position` is decided at `rate` (None: the office decided nothing lately)."""
    return nth_working_day(calendar, today, math.ceil(position / rate)) if rate else None


def forecast_office(calendar: WorkingCalendar, today: date, town: str, department: str,
                    cases: Iterable[QueuedCase], decisions: int, *, window_days: int = DEFAULT_WINDOW_DAYS,
                    horizon_days: int = DEFAULT_HORIZON_DAYS) -> OfficeForecast:
    """The forecast of a queue given case by case, its breaches named."""
    queue = sorted(cases, key=lambda c: (c.deadline, c.case_number))
    groups: dict[date, int] = {}
    for c in queue:
        groups[c.deadline] = groups.get(c.deadline, 0) + 1
    result, spans = forecast_counts(calendar, today, town, department, groups.items(), decisions,
                                    window_days=window_days, horizon_days=horizon_days)
    for span in spans:
        for k in range(span.first, span.last + 1):
            case = queue[k - 1]
            result.breaches.append(Breach(case.case_number, case.deadline, k, span.working_days_available,
                                          expected_decision(calendar, today, k, result.rate)))
    return result


def _round_up(x: Fraction) -> float:
    return math.ceil(x * 100) / 100


def _round_down(x: Fraction) -> float:
    return math.floor(x * 100) / 100
