"""Working-day (工作日) arithmetic on China's official calendar.

Deadlines in township government services are counted in working days:
weekends and statutory holidays are off, make-up working days (调休上班)
that fall on a weekend are on.  All dates are Asia/Shanghai calendar dates.

Sources of truth, per year:

1. a holiday file loaded with :meth:`WorkingCalendar.load_year` (city IT
   publishes the State Council's notice for a new year as YAML with
   ``tongban calendar load``, see ``shared.reference``; a loaded file wins
   over the package);
2. the ``chinese-calendar`` package, which only covers published years
   (2004 up to its release year);
3. otherwise the year is *unknown*: we fall back to weekends-only, never
   crash, and say so loudly (one structlog warning per year per calendar
   instance, plus ``tongban_calendar_unknown_year_total{year=...}``), and
   every :class:`Deadline` whose computation relied on such a day is marked
   ``provisional``.

Holiday file format (YAML)::

    year: 2027
    source: "国务院办公厅关于2027年部分节假日安排的通知"
    holidays:       # days off; plain dates or {from, to, name} ranges
      - {from: 2027-01-01, to: 2027-01-03, name: 元旦}
      - 2027-06-09
    workdays:       # make-up working days on Saturdays/Sundays
      - 2027-02-20

The day of acceptance is never counted: ``add_working_days(start, 1)`` is
the first working day strictly after ``start``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import prometheus_client
import structlog
import yaml

__all__ = [
    "DEFAULT_HOLIDAY_DIR",
    "SHANGHAI",
    "UNKNOWN_YEAR_COUNTER",
    "Deadline",
    "HolidayFileError",
    "WorkingCalendar",
    "YearCalendar",
    "parse_holiday_file",
    "today_in_shanghai",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")

#: Where the repository keeps holiday files (``<year>.yaml``).
DEFAULT_HOLIDAY_DIR = Path(__file__).resolve().parent / "data" / "holidays"

_ONE_DAY = timedelta(days=1)


def _get_or_create_counter(name: str, documentation: str, labelnames: Iterable[str]):
    """Return the Counter registered under ``name``, creating it if needed.

    Re-importing this module (test reloads, ``importlib.reload``) must not
    fail with "Duplicated timeseries in CollectorRegistry".
    """
    existing = prometheus_client.REGISTRY._names_to_collectors.get(name)
    if existing is not None:
        return existing
    return prometheus_client.Counter(name, documentation, labelnames=tuple(labelnames))


UNKNOWN_YEAR_COUNTER = _get_or_create_counter(
    "tongban_calendar_unknown_year_total",
    "Working-day computations that touched a year with no holiday data "
    "(weekends-only fallback was used).",
    ["year"],
)


def today_in_shanghai(now_utc: datetime) -> date:
    """The Asia/Shanghai calendar date at the instant ``now_utc``.

    ``now_utc`` must be timezone-aware: a naive datetime would silently be
    read as the server's local time.
    """
    if not isinstance(now_utc, datetime):
        raise TypeError(f"today_in_shanghai() needs a datetime, got {type(now_utc).__name__}")
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError("today_in_shanghai() needs a timezone-aware datetime (e.g. datetime.now(timezone.utc))")
    return now_utc.astimezone(SHANGHAI).date()


# ---------------------------------------------------------------------------
# Holiday files
# ---------------------------------------------------------------------------


class HolidayFileError(ValueError):
    """A holiday file is unreadable or inconsistent."""


@dataclass(frozen=True)
class YearCalendar:
    """One year's official arrangement.

    ``holidays``: days off (entries on weekends are allowed and harmless).
    ``workdays``: make-up working days; always Saturdays or Sundays.
    """

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date] = frozenset()
    source: str = ""
    names: Mapping[date, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Also guards YearCalendars built in code rather than parsed.
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))
        problems = _validate(self.year, self.holidays, self.workdays)
        if problems:
            raise HolidayFileError(f"holiday calendar for {self.year!r}: " + "; ".join(problems))

    def is_working_day(self, d: date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5


def _validate(year: Any, holidays: frozenset, workdays: frozenset) -> list[str]:
    if isinstance(year, bool) or not isinstance(year, int) or not (1 <= year <= 9998):
        return [f"'year' must be an integer year, got {year!r}"]
    problems = []
    for kind, days in (("holiday", holidays), ("workday", workdays)):
        for d in sorted(days, key=_sort_key):
            if isinstance(d, datetime) or not isinstance(d, date):
                problems.append(f"{kind} {d!r} is not a date")
            elif d.year != year:
                problems.append(f"{kind} {d.isoformat()} is outside the declared year {year}")
    if problems:
        return problems
    for d in sorted(holidays & workdays):
        problems.append(f"{d.isoformat()} is listed both as a holiday and as a make-up workday")
    for d in sorted(workdays):
        if d.weekday() < 5:
            problems.append(
                f"make-up workday {d.isoformat()} is a {d.strftime('%A')}; "
                "workdays must be Saturdays or Sundays (weekdays are working days anyway)"
            )
    return problems


def _sort_key(d: Any) -> str:
    return d.isoformat() if isinstance(d, date) else repr(d)


_TOP_LEVEL_KEYS = {"year", "source", "holidays", "workdays"}
_RANGE_KEYS = {"from", "to", "name"}


def _looks_like_path(s: str) -> bool:
    if "\n" in s:
        return False
    return s.rstrip().endswith((".yaml", ".yml")) or os.path.isfile(s)


def parse_holiday_file(text_or_path: str | os.PathLike[str]) -> YearCalendar:
    """Parse and validate a holiday file.

    Accepts a path (``pathlib.Path`` / ``os.PathLike``, or a ``str`` naming
    an existing file or ending in ``.yaml``/``.yml``) or the YAML text itself.
    Raises :class:`HolidayFileError` with a message naming the file and
    every problem found.
    """
    label = "<text>"
    if isinstance(text_or_path, os.PathLike) or (
        isinstance(text_or_path, str) and _looks_like_path(text_or_path)
    ):
        path = Path(text_or_path)
        label = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HolidayFileError(f"{label}: cannot read holiday file: {exc}") from exc
    elif isinstance(text_or_path, str):
        text = text_or_path
    else:
        raise TypeError(f"parse_holiday_file() needs YAML text or a path, got {type(text_or_path).__name__}")

    def fail(msg: str) -> HolidayFileError:
        return HolidayFileError(f"{label}: {msg}")

    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        # PyYAML raises a bare ValueError for impossible dates like 2027-02-30
        raise fail(f"not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise fail(f"expected a mapping with 'year', 'holidays', 'workdays', got {type(doc).__name__}")
    unknown = set(map(str, doc)) - _TOP_LEVEL_KEYS
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_LEVEL_KEYS)}")
    if "year" not in doc:
        raise fail("missing 'year'")
    year = doc["year"]
    if isinstance(year, bool) or not isinstance(year, int):
        raise fail(f"'year' must be an integer, got {year!r}")
    source = doc.get("source") or ""
    if not isinstance(source, str):
        raise fail(f"'source' must be text, got {source!r}")

    problems: list[str] = []
    names: dict[date, str] = {}
    holidays: set[date] = set()
    for i, entry in enumerate(_as_list(doc.get("holidays"), "holidays", fail)):
        where = f"holidays[{i}]"
        if isinstance(entry, dict):
            bad_keys = set(map(str, entry)) - _RANGE_KEYS
            if bad_keys:
                problems.append(f"{where}: unknown key(s) {sorted(bad_keys)}; allowed: from, to, name")
                continue
            if "from" not in entry or "to" not in entry:
                problems.append(f"{where}: a range needs both 'from' and 'to'")
                continue
            lo = _as_date(entry["from"], f"{where}.from", problems)
            hi = _as_date(entry["to"], f"{where}.to", problems)
            name = entry.get("name")
            if name is not None and not isinstance(name, str):
                problems.append(f"{where}.name must be text, got {name!r}")
                name = None
            if lo is None or hi is None:
                continue
            if hi < lo:
                problems.append(f"{where}: 'from' {lo.isoformat()} is after 'to' {hi.isoformat()}")
                continue
            if lo.year != year or hi.year != year:
                problems.append(
                    f"{where}: range {lo.isoformat()}..{hi.isoformat()} is outside the declared year {year}"
                )
                continue
            d = lo
            while d <= hi:
                holidays.add(d)
                if name:
                    names[d] = name
                d += _ONE_DAY
        else:
            d = _as_date(entry, where, problems)
            if d is not None and _in_year(d, year, where, problems):
                holidays.add(d)
    workdays: set[date] = set()
    for i, entry in enumerate(_as_list(doc.get("workdays"), "workdays", fail)):
        where = f"workdays[{i}]"
        d = _as_date(entry, where, problems)
        if d is not None and _in_year(d, year, where, problems):
            workdays.add(d)
    if problems:
        raise fail("; ".join(problems))
    try:
        return YearCalendar(
            year=year,
            holidays=frozenset(holidays),
            workdays=frozenset(workdays),
            source=source,
            names=names,
        )
    except HolidayFileError as exc:
        raise fail(str(exc)) from None


def _as_list(value: Any, key: str, fail) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(f"'{key}' must be a list, got {type(value).__name__}")
    return value


def _in_year(d: date, year: int, where: str, problems: list[str]) -> bool:
    if d.year != year:
        problems.append(f"{where}: {d.isoformat()} is outside the declared year {year}")
        return False
    return True


def _as_date(value: Any, where: str, problems: list[str]) -> date | None:
    if isinstance(value, datetime):
        problems.append(f"{where}: {value!r} has a time of day; give a plain date like 2027-01-01")
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems.append(f"{where}: {value!r} is not a date (expected YYYY-MM-DD)")
    return None


# ---------------------------------------------------------------------------
# chinese-calendar, cached per year
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _YearRule:
    off: frozenset[date]  # weekdays (Mon-Fri) that are off
    on: frozenset[date]  # weekend days that are working days
    known: bool

    def is_working(self, d: date) -> bool:
        if d.weekday() < 5:
            return d not in self.off
        return d in self.on

    @classmethod
    def from_year_calendar(cls, yc: YearCalendar) -> _YearRule:
        return cls(
            off=frozenset(d for d in yc.holidays if d.weekday() < 5),
            on=frozenset(yc.workdays),
            known=True,
        )


_WEEKENDS_ONLY = _YearRule(off=frozenset(), on=frozenset(), known=False)


@functools.cache
def _package_rule(year: int) -> _YearRule | None:
    """The chinese-calendar package's data for ``year``, or None if it has none.

    Computed once per year per process (365 lookups), then pure set checks.
    """
    d = date(year, 1, 1)
    off, on = set(), set()
    try:
        while d.year == year:
            holiday = chinese_calendar.is_holiday(d)
            if d.weekday() < 5 and holiday:
                off.add(d)
            elif d.weekday() >= 5 and not holiday:
                on.add(d)
            d += _ONE_DAY
    except NotImplementedError:
        return None
    return _YearRule(off=frozenset(off), on=frozenset(on), known=True)


def _weekdays_in(lo: date, hi: date) -> int:
    """Number of Monday-Friday dates in [lo, hi] (0 if hi < lo)."""
    n = (hi - lo).days + 1
    if n <= 0:
        return 0
    full, rest = divmod(n, 7)
    start = lo.weekday()
    extra = sum(1 for k in range(rest) if (start + k) % 7 < 5)
    return full * 5 + extra


# ---------------------------------------------------------------------------
# WorkingCalendar
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    date: date
    #: True when a day the computation relied on lies in a year with no
    #: holiday data (weekends-only guess): recompute once the notice is loaded.
    provisional: bool


def _check_date(d: Any, what: str) -> None:
    # datetime is a subclass of date; a UTC datetime would give the wrong
    # Shanghai day, so demand today_in_shanghai()/.date() at the call site.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"{what} must be a datetime.date (not {type(d).__name__}); use today_in_shanghai()")


class WorkingCalendar:
    """Working-day arithmetic; see the module docstring."""

    def __init__(self, years: dict[int, YearCalendar] | None = None) -> None:
        self._loaded: dict[int, YearCalendar] = {}
        self._rules: dict[int, _YearRule] = {}
        self._warned: set[int] = set()
        for key, yc in (years or {}).items():
            if key != yc.year:
                raise ValueError(f"years[{key}] holds the calendar for {yc.year}")
            self.load_year(yc)

    def load_year(self, yc: YearCalendar) -> None:
        """Use ``yc`` for its year, replacing the package's data for it entirely."""
        if not isinstance(yc, YearCalendar):
            raise TypeError(f"load_year() needs a YearCalendar, got {type(yc).__name__}")
        self._loaded[yc.year] = yc
        self._rules[yc.year] = _YearRule.from_year_calendar(yc)

    def knows_year(self, year: int) -> bool:
        return year in self._loaded or _package_rule(year) is not None

    @property
    def loaded_years(self) -> Mapping[int, YearCalendar]:
        return MappingProxyType(self._loaded)

    # -- internals ---------------------------------------------------------

    def _rule(self, year: int) -> _YearRule:
        rule = self._rules.get(year)
        if rule is None:
            rule = _package_rule(year) or _WEEKENDS_ONLY
            self._rules[year] = rule
        return rule

    def _is_working(self, d: date) -> bool:
        return self._rule(d.year).is_working(d)

    def _touch(self, first: date, last: date) -> bool:
        """Record that a computation relied on the days first..last (inclusive).

        Returns True if any of them is in an unknown year; warns once per
        unknown year per calendar, counts once per unknown year per call.
        """
        if last < first:
            first, last = last, first
        unknown = False
        for year in range(first.year, last.year + 1):
            if self._rule(year).known:
                continue
            unknown = True
            UNKNOWN_YEAR_COUNTER.labels(year=str(year)).inc()
            if year not in self._warned:
                self._warned.add(year)
                structlog.get_logger(__name__).warning(
                    "calendar.unknown_year", year=year, fallback="weekends-only"
                )
        return unknown

    # -- public API ----------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        _check_date(d, "d")
        self._touch(d, d)
        return self._is_working(d)

    def add_working_days(self, start: date, days: int) -> Deadline:
        """The date ``days`` working days after ``start`` (``start`` itself not counted).

        ``days == 0`` (instant cases): ``start`` if it is a working day, else
        the next working day.  ``provisional`` is True when a day in
        ``start``-exclusive .. result-inclusive (for ``days == 0``:
        ``start``-inclusive) lies in a year without holiday data.
        """
        _check_date(start, "start")
        if isinstance(days, bool) or not isinstance(days, int):
            raise TypeError(f"days must be an int, got {type(days).__name__}")
        if days < 0:
            raise ValueError(f"days must be >= 0, got {days}")
        if days == 0:
            d = start
            while not self._is_working(d):
                d += _ONE_DAY
            return Deadline(date=d, provisional=self._touch(start, d))
        d = start
        remaining = days
        while remaining:
            d += _ONE_DAY
            if self._is_working(d):
                remaining -= 1
        return Deadline(date=d, provisional=self._touch(start + _ONE_DAY, d))

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        return self.add_working_days(d, 1).date

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative (-(working days in (end, start])) if end < start.

        ``working_days_between(s, add_working_days(s, n).date) == n`` for n >= 1.
        """
        _check_date(start, "start")
        _check_date(end, "end")
        if end == start:
            return 0
        if end < start:
            return -self.working_days_between(end, start)
        self._touch(start + _ONE_DAY, end)
        lo = start + _ONE_DAY
        total = 0
        while lo <= end:
            hi = min(end, date(lo.year, 12, 31))
            rule = self._rule(lo.year)
            total += _weekdays_in(lo, hi)
            total -= sum(1 for x in rule.off if lo <= x <= hi)
            total += sum(1 for x in rule.on if lo <= x <= hi)
            lo = hi + _ONE_DAY
        return total
