"""The monthly figures' rules (月度统计): plain Python, no I/O.

The figures are counters per month, dimension and key (village, window, staff, town, department office),
moved by each event as it is recorded; a report reads one month's counters and computes the rates. What
this module decides:
- the month of a moment (Asia/Shanghai dates);
- the kind a case counts under when it is received (六件: 即办件, 承诺件, 补办件, 联办件, 退回件, 上报件, and
  咨询, 复核);
- which counter rows a case, a rating or a complaint moves (its attribution);
- working days to finish, the rates and averages as they are shown (percent and days, two decimals);
- which rows a caller may read (their town, their department office, or the city).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from shared import auth
from shared.errors import NotPermitted, RuleViolation
from shared.tables import Month
from shared.workdays import WorkingCalendar, today_in_shanghai

TITLE = "便民服务月度统计表"

# dimension -> the Chinese name of its sheet
DIMENSIONS: dict[str, str] = {"village": "村", "window": "窗口", "staff": "人员", "town": "乡镇", "department": "部门"}

# the kind a case is counted under when received (六件 and the rest), with its heading
KINDS: dict[str, str] = {
    "instant": "即办件", "promised": "承诺件", "supplement": "补办件", "joint": "联办件", "returned": "退回件",
    "escalated": "上报件", "consultation": "咨询件", "review": "复核件",
}

# what is counted (the stored measures): a report's figures are made of them
MEASURES: tuple[str, ...] = (
    "received", *(f"received_{k}" for k in KINDS), "completed", "on_time", "finish_days", "finish_counted",
    "ratings", "satisfied", "bad", "rectified", "follow_ups", "complaints",
)

# what a report shows, in order, with the headings of the CSV and XLSX
COLUMNS: dict[str, str] = {
    "received": "受理总数",
    **KINDS,
    "completed": "办结数",
    "on_time": "按期办结数",
    "late": "超期办结数",
    "on_time_rate": "按期办结率(%)",
    "avg_days": "平均办结工作日",
    "ratings": "评价数",
    "satisfied": "满意数",
    "bad": "差评数",
    "satisfaction_rate": "满意率(%)",
    "rectified": "差评整改数",
    "rectification_rate": "差评整改率(%)",
    "complaints": "投诉数",
}
RATES = ("on_time_rate", "avg_days", "satisfaction_rate", "rectification_rate")  # may be None (nothing to divide)

GOOD_LEVELS = (1, 2, 3)  # 非常满意, 满意, 基本满意
BAD_LEVELS = (4, 5)  # 不满意, 非常不满意
CITY = "city"  # the "town" of a city bureau's office
REPORT_ROLES = ("supervisor", "department_head", "city_admin", "service")

_TOWN_RE = re.compile(r"[0-9]{9}")
_DEPT_RE = re.compile(r"([a-z][a-z0-9_]{0,31})(?:@([0-9]{9}|city))?")
_NOT_YET_RUNNING = ("pending_materials", "returned", "consulted")


# --- time --------------------------------------------------------------------------------------------

def day_of(moment: date | datetime) -> date:
    """The Asia/Shanghai date of a moment (a date is taken as it is)."""
    if isinstance(moment, datetime):
        return today_in_shanghai(moment)
    return moment


def month_key(moment: date | datetime) -> str:
    """YYYY-MM of a moment's Asia/Shanghai date: the month a figure counts in."""
    return str(Month.of(day_of(moment)))


def working_days_to_finish(calendar: WorkingCalendar, started_on: date, completed_on: date) -> int:
    """Working days from the clock's start (acceptance, or the day the materials were complete) to the
    completion, the start day not counted: a case finished the day it was accepted took 0. Pauses are
    included: it is how long the applicant waited. Never negative."""
    return max(0, calendar.working_days_between(started_on, completed_on))


def clock_runs(status: str | None) -> bool:
    """Whether a case in this status has its clock started (materials complete, accepted)."""
    return bool(status) and status not in _NOT_YET_RUNNING


def reception_kind(kind: str | None, status: str | None) -> str:
    """The kind a case counts under in the month it was received: returned (退回件) and incomplete
    (补办件) by what happened at the window, a consultation by its status, else the item's kind."""
    if status == "returned":
        return "returned"
    if status == "pending_materials":
        return "supplement"
    if status == "consulted" or kind == "consultation":
        return "consultation"
    return kind if kind in KINDS else "promised"


# --- rates ---------------------------------------------------------------------------------------------

def _two_places(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def percent(part: int, whole: int) -> float | None:
    """part / whole in percent, two decimals (half up); None when there is nothing to divide."""
    if not whole:
        return None
    return _two_places(Decimal(part) * 100 / Decimal(whole))


def average(total: int, count: int) -> float | None:
    if not count:
        return None
    return _two_places(Decimal(total) / Decimal(count))


def figures(counts: dict[str, int]) -> dict:
    """A report row's figures from its stored measures."""
    c = {m: int(counts.get(m, 0)) for m in MEASURES}
    row = {"received": c["received"], **{k: c[f"received_{k}"] for k in KINDS},
           "completed": c["completed"], "on_time": c["on_time"], "late": c["completed"] - c["on_time"],
           "on_time_rate": percent(c["on_time"], c["completed"]),
           "avg_days": average(c["finish_days"], c["finish_counted"]),
           "ratings": c["ratings"], "satisfied": c["satisfied"], "bad": c["bad"],
           "satisfaction_rate": percent(c["satisfied"], c["ratings"]),
           "rectified": c["rectified"], "rectification_rate": percent(c["rectified"], c["bad"]),
           "complaints": c["complaints"]}
    return {k: row[k] for k in COLUMNS}


def rating_measures(level: int, follow_up: bool = False, rectified: bool = False) -> dict[str, int]:
    """What one non-void rating adds. A follow-up rating (the rater's one more after a rectification)
    is counted apart: the satisfaction rate is of the service as first rated."""
    if follow_up:
        return {"follow_ups": 1}
    return {"ratings": 1, "satisfied": int(level in GOOD_LEVELS), "bad": int(level in BAD_LEVELS),
            "rectified": int(rectified and level in BAD_LEVELS)}


# --- attribution: which counter rows an event moves ----------------------------------------------------

def office(department: str, handling_town: str | None) -> str:
    """A department office: `<code>@<town>` for a town's office, `<code>@city` for the city bureau."""
    return f"{department}@{handling_town if handling_town and _TOWN_RE.fullmatch(handling_town) else CITY}"


def office_town(office_key: str) -> str:
    return office_key.partition("@")[2] or CITY


def responsible_town(accepting_town: str, handling_town: str | None) -> str:
    """The town a case counts under in the town dimension: the town that handles it (全城通办: the
    household town), or the accepting town for a city bureau's case (it did the window's part)."""
    return handling_town if handling_town and _TOWN_RE.fullmatch(handling_town) else accepting_town


@dataclass(frozen=True)
class Attribution:
    """Whom a case (or a rating, a complaint) counts for."""

    window: str  # the accepting town's centre
    town: str
    staff: str | None = None  # first responder (首问负责人)
    village: str | None = None
    offices: tuple[str, ...] = field(default_factory=tuple)

    def rows(self, offices: Iterable[str] | None = None, everyone: bool = True) -> list[tuple[str, str, str, str]]:
        """(dimension, town, key, office) rows: each dimension once for all departments (office "") when
        `everyone`, and once per office (of `offices`, default all) so a department's report is exact."""
        chosen = tuple(self.offices if offices is None else offices)
        out = []
        for off in ((("",) if everyone else ()) + chosen):
            if self.village:
                out.append(("village", self.village[:9], self.village, off))
            out.append(("window", self.window, self.window, off))
            if self.staff:
                out.append(("staff", self.window, self.staff, off))
            out.append(("town", self.town, self.town, off))
        out += [("department", office_town(o), o, o) for o in chosen]
        return out


def deltas(rows: Iterable[tuple[str, str, str, str]], measures: dict[str, int], month: str,
           sign: int = 1) -> Counter:
    """(month, dimension, town, key, office, measure) -> change, without zero changes."""
    out: Counter = Counter()
    for row in rows:
        for measure, n in measures.items():
            if n:
                out[(month, *row, measure)] += sign * n
    return out


# --- who reads what --------------------------------------------------------------------------------------

def parse_town(text: str | None) -> str | None:
    if text in (None, ""):
        return None
    if not _TOWN_RE.fullmatch(text):
        raise RuleViolation(f"town must be a 9-digit town code, not {text!r}", {"town": ["a 9-digit code"]})
    return text


def parse_department(text: str | None) -> str | None:
    """A department code (every office of it) or one office `<code>@<town>` / `<code>@city`."""
    if text in (None, ""):
        return None
    if not _DEPT_RE.fullmatch(text):
        raise RuleViolation(f"dept must be a department code, optionally @<town> or @city, not {text!r}",
                            {"dept": ["e.g. minzheng, minzheng@320583101, minzheng@city"]})
    return text


def report_scope(principal: auth.Principal, town: str | None, dept: str | None) -> tuple[str | None, str | None]:
    """The (town, department) a caller's report covers. The city: any (both narrow it); a town's
    supervisor: their town; a department head: their office (`department:D@T` the town's office,
    `department:D` the city bureau). Asking for another's is 403 (a route, not a record to hide)."""
    town, dept = parse_town(town), parse_department(dept)
    scope = principal.scope
    if scope.kind == "city":
        return town, dept
    if scope.kind == "town":
        if town is not None and town != scope.town:
            raise NotPermitted(f"scope {scope} may not see the monthly figures of town {town}")
        return scope.town, dept
    if scope.kind == "department":
        own = office(scope.department, scope.town)
        if dept is not None and dept not in (scope.department, own):
            raise NotPermitted(f"scope {scope} may not see the monthly figures of department {dept}")
        if town is not None and town != office_town(own):
            raise NotPermitted(f"scope {scope} may not see the monthly figures of town {town}")
        return None, own
    raise NotPermitted(f"no monthly figures for scope {scope}")


# --- the report from one month's counter rows -------------------------------------------------------------

@dataclass(frozen=True)
class Names:
    """Names to show beside codes (from the catalogue, when the database holds one)."""

    towns: dict = field(default_factory=dict)  # code -> name
    villages: dict = field(default_factory=dict)  # code -> name
    departments: dict = field(default_factory=dict)  # code -> name

    def town(self, code: str) -> str:
        return "市级" if code == CITY else self.towns.get(code, code)

    def of(self, dimension: str, key: str) -> str:
        if dimension == "village":
            return self.villages.get(key, key)
        if dimension == "window":
            return f"{self.town(key)}便民服务中心"
        if dimension == "town":
            return self.town(key)
        if dimension == "department":
            code, _, where = key.partition("@")
            return f"{self.departments.get(code, code)}（{self.town(where)}）"
        return key


def assemble(month: str, town: str | None, dept: str | None,
             counted: Iterable[tuple[str, str, str, str, int]], names: Names | None = None) -> dict:
    """The report from counter rows (dimension, town, key, measure, value) already narrowed to the caller's
    town or department; rows of several offices of one key (a department code over its offices) add up."""
    names = names or Names()
    sums: dict[tuple[str, str, str], Counter] = {}
    for dimension, row_town, key, measure, value in counted:
        sums.setdefault((dimension, row_town, key), Counter())[measure] += value
    dims = []
    for dimension, heading in DIMENSIONS.items():
        keys = sorted(k for k in sums if k[0] == dimension)
        rows = [{"key": key, "name": names.of(dimension, key), "town": row_town,
                 "town_name": names.town(row_town), **figures(sums[(dimension, row_town, key)])}
                for _, row_town, key in keys]
        dims.append({"dimension": dimension, "heading": heading, "rows": rows})
    return {"title": TITLE, "month": month, "town": town, "department": dept,
            "columns": [{"key": k, "heading": h} for k, h in COLUMNS.items()], "dimensions": dims}
