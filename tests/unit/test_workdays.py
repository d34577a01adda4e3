"""Working-day arithmetic (shared.workdays).

The 2026 expectations below are hard-coded literals taken from the
State Council's 2026 notice, cross-checked against chinese-calendar 1.11.0:

  元旦     2026-01-01..03 off, 2026-01-04 (Sun) make-up workday
  春节     2026-02-15..23 off (Mon 16 - Fri 20 and Mon 23 are the weekday
           holidays), 2026-02-14 (Sat) and 2026-02-28 (Sat) make-up workdays
  中秋     2026-09-25 (Fri) off, 26-27 weekend
  国庆     2026-10-01..07 off (Oct 8 Thu is a working day),
           2026-09-20 (Sun) and 2026-10-10 (Sat) make-up workdays
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import chinese_calendar
import prometheus_client
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from shared import workdays as wd
from shared.workdays import (
    DEFAULT_HOLIDAY_DIR,
    Deadline,
    HolidayFileError,
    WorkingCalendar,
    YearCalendar,
    parse_holiday_file,
    today_in_shanghai,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_2027 = DEFAULT_HOLIDAY_DIR / "2027.yaml"
COUNTER = "tongban_calendar_unknown_year_total"

# Module-level calendars for the property tests (hypothesis dislikes
# function-scoped fixtures).  PLAIN: package only, so 2027/2028 fall back to
# weekends-only.  WITH_2027: the sample 2027 file loaded on top.
PLAIN = WorkingCalendar()
WITH_2027 = WorkingCalendar({2027: parse_holiday_file(SAMPLE_2027)})


def counter_value(year: int) -> float:
    return prometheus_client.REGISTRY.get_sample_value(COUNTER, {"year": str(year)}) or 0.0


def unknown_year_warnings(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e["event"] == "calendar.unknown_year"]


def days(a: date, b: date):
    d = a
    while d <= b:
        yield d
        d += timedelta(days=1)


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

starts = st.dates(min_value=date(2020, 1, 1), max_value=date(2028, 12, 31))
counts = st.integers(min_value=0, max_value=60)


@pytest.mark.parametrize("cal", [PLAIN, WITH_2027], ids=["package-only", "with-2027-sample"])
@settings(max_examples=300, deadline=None)
@given(start=starts, n=counts)
def test_deadline_is_a_working_day_exactly_n_working_days_later(cal, start, n):
    deadline = cal.add_working_days(start, n)
    assert isinstance(deadline, Deadline)
    assert cal.is_working_day(deadline.date)
    if n >= 1:
        assert deadline.date > start
        assert cal.working_days_between(start, deadline.date) == n
        # ... and not one day later than necessary
        assert cal.working_days_between(start, deadline.date - timedelta(days=1)) == n - 1
    else:
        assert deadline.date >= start
        assert not any(cal.is_working_day(d) for d in days(start, deadline.date - timedelta(days=1)))


@settings(max_examples=300, deadline=None)
@given(
    start=st.dates(min_value=date(2004, 1, 1), max_value=date(2026, 8, 31)),
    n=counts,
)
def test_matches_a_naive_count_over_chinese_calendar_in_published_years(start, n):
    # Independent oracle: step day by day with the package's own is_workday.
    d, left = start, n
    if n == 0:
        while not chinese_calendar.is_workday(d):
            d += timedelta(days=1)
    while left:
        d += timedelta(days=1)
        if chinese_calendar.is_workday(d):
            left -= 1
    assert PLAIN.add_working_days(start, n) == Deadline(d, provisional=False)


@settings(max_examples=300, deadline=None)
@given(a=starts, b=starts)
def test_working_days_between_matches_a_day_by_day_count(a, b):
    lo, hi = min(a, b), max(a, b)
    expected = sum(1 for d in days(lo + timedelta(days=1), hi) if WITH_2027.is_working_day(d))
    if b < a:
        expected = -expected
    assert WITH_2027.working_days_between(a, b) == expected


def test_a_60_day_deadline_uses_only_the_cached_year_data(monkeypatch):
    cal = WorkingCalendar()
    cal.add_working_days(date(2025, 11, 1), 60)  # warm 2025 and 2026

    def boom(*args, **kwargs):
        raise AssertionError("chinese_calendar consulted again after the year was cached")

    monkeypatch.setattr(wd.chinese_calendar, "is_holiday", boom)
    monkeypatch.setattr(wd.chinese_calendar, "is_workday", boom)
    fresh = WorkingCalendar()  # a new instance still shares the per-process year cache
    for c in (cal, fresh):
        assert c.add_working_days(date(2026, 2, 13), 60).date == date(2026, 5, 19)
        assert c.working_days_between(date(2026, 2, 13), date(2026, 5, 19)) == 60


# ---------------------------------------------------------------------------
# The real 2026 calendar, hard-coded
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        # Spring Festival
        (date(2026, 2, 13), 1, date(2026, 2, 14)),  # Fri -> make-up Sat
        (date(2026, 2, 14), 1, date(2026, 2, 24)),  # last working day before 春节 -> first after
        (date(2026, 2, 12), 3, date(2026, 2, 24)),  # 13, 14(Sat), 24
        (date(2026, 2, 14), 5, date(2026, 2, 28)),  # 24..27, then make-up Sat 28
        (date(2026, 2, 16), 1, date(2026, 2, 24)),  # accepted during the holiday
        (date(2026, 2, 28), 1, date(2026, 3, 2)),   # accepted on a make-up Sat; Sun 1 is off
        (date(2026, 2, 14), 0, date(2026, 2, 14)),  # instant case on a make-up Sat
        (date(2026, 2, 15), 0, date(2026, 2, 24)),  # instant case on a holiday
        (date(2026, 2, 13), 0, date(2026, 2, 13)),  # instant case on an ordinary Fri
        # Mid-Autumn + National Day
        (date(2026, 9, 19), 1, date(2026, 9, 20)),  # Sat -> make-up Sun
        (date(2026, 9, 24), 1, date(2026, 9, 28)),  # Fri 25 中秋, weekend
        (date(2026, 9, 30), 1, date(2026, 10, 8)),  # 国庆 Oct 1-7; Thu Oct 8 works
        (date(2026, 9, 30), 3, date(2026, 10, 10)), # 8, 9, make-up Sat 10
        (date(2026, 9, 30), 4, date(2026, 10, 12)), # Sun 11 off
        # New Year, across the year boundary (both years published)
        (date(2025, 12, 31), 1, date(2026, 1, 4)),  # Jan 1-3 off, Sun Jan 4 make-up
        (date(2025, 12, 31), 2, date(2026, 1, 5)),
    ],
)
def test_2026_examples(start, n, expected):
    assert PLAIN.add_working_days(start, n) == Deadline(expected, provisional=False)
    if n >= 1:
        assert PLAIN.working_days_between(start, expected) == n


@pytest.mark.parametrize(
    ("d", "working"),
    [
        (date(2026, 2, 14), True),   # make-up Sat
        (date(2026, 2, 15), False),  # Sun inside 春节
        (date(2026, 2, 16), False),
        (date(2026, 2, 23), False),  # Mon, last holiday day
        (date(2026, 2, 24), True),
        (date(2026, 2, 28), True),   # make-up Sat
        (date(2026, 3, 1), False),   # plain Sun
        (date(2026, 9, 20), True),   # make-up Sun
        (date(2026, 10, 7), False),
        (date(2026, 10, 8), True),
        (date(2026, 10, 10), True),  # make-up Sat
        (date(2026, 10, 11), False),
    ],
)
def test_2026_is_working_day(d, working):
    assert PLAIN.is_working_day(d) is working
    assert chinese_calendar.is_workday(d) is working  # the literals agree with the package


def test_2026_working_days_between_and_next_working_day():
    assert PLAIN.working_days_between(date(2026, 2, 13), date(2026, 2, 24)) == 2
    assert PLAIN.working_days_between(date(2026, 2, 24), date(2026, 2, 13)) == -2
    assert PLAIN.working_days_between(date(2026, 2, 15), date(2026, 2, 23)) == 0
    assert PLAIN.working_days_between(date(2026, 9, 30), date(2026, 10, 12)) == 4
    assert PLAIN.working_days_between(date(2026, 3, 3), date(2026, 3, 3)) == 0
    # the whole of 2026: 261 weekdays - 19 weekday holidays + 6 make-up days
    assert PLAIN.working_days_between(date(2025, 12, 31), date(2026, 12, 31)) == 248
    assert PLAIN.next_working_day(date(2026, 2, 14)) == date(2026, 2, 24)
    assert PLAIN.next_working_day(date(2026, 9, 19)) == date(2026, 9, 20)
    assert PLAIN.next_working_day(date(2026, 2, 13)) == date(2026, 2, 14)


# ---------------------------------------------------------------------------
# Unknown years: weekends-only, loudly, never a crash
# ---------------------------------------------------------------------------

CAL_2028 = """
year: 2028
source: test notice
holidays:
  - {from: 2028-05-01, to: 2028-05-05, name: 劳动节}
workdays: [2028-04-30, 2028-05-06]
"""


def test_unknown_year_falls_back_to_weekends_only_then_honours_a_loaded_file():
    cal = WorkingCalendar()
    assert not cal.knows_year(2028)
    before = counter_value(2028)
    with capture_logs() as logs:
        one = cal.add_working_days(date(2028, 4, 28), 1)  # Fri
        three = cal.add_working_days(date(2028, 4, 28), 3)
        left = cal.working_days_between(date(2028, 4, 28), date(2028, 5, 5))
    assert one == Deadline(date(2028, 5, 1), provisional=True)  # Mon: no idea it is 劳动节
    assert three == Deadline(date(2028, 5, 3), provisional=True)
    assert left == 5
    assert counter_value(2028) == before + 3  # every computation is counted
    warnings = unknown_year_warnings(logs)
    assert warnings == [
        {"event": "calendar.unknown_year", "year": 2028, "fallback": "weekends-only", "log_level": "warning"}
    ]  # ... but warned once per calendar

    cal.load_year(parse_holiday_file(CAL_2028))
    assert cal.knows_year(2028)
    with capture_logs() as logs:
        assert cal.add_working_days(date(2028, 4, 28), 1) == Deadline(date(2028, 4, 30), provisional=False)
        assert cal.add_working_days(date(2028, 4, 28), 3) == Deadline(date(2028, 5, 8), provisional=False)
        assert not cal.is_working_day(date(2028, 5, 1))
        assert cal.is_working_day(date(2028, 5, 6))  # make-up Sat
    assert unknown_year_warnings(logs) == []
    assert counter_value(2028) == before + 3


def test_unknown_year_warning_is_per_calendar_and_per_year():
    with capture_logs() as logs:
        a = WorkingCalendar()
        a.is_working_day(date(2028, 1, 3))
        a.is_working_day(date(2028, 1, 4))
        # spans 2027 and 2028, both unknown to `a`
        assert a.add_working_days(date(2027, 12, 30), 2).provisional
        WorkingCalendar().is_working_day(date(2028, 1, 3))
    assert [e["year"] for e in unknown_year_warnings(logs)] == [2028, 2027, 2028]


def test_provisional_only_when_the_counted_range_touches_an_unknown_year():
    # start Thu 2026-12-31 is itself not counted ...
    assert PLAIN.add_working_days(date(2026, 12, 30), 1) == Deadline(date(2026, 12, 31), provisional=False)
    # ... but the next day is in 2027
    assert PLAIN.add_working_days(date(2026, 12, 31), 1) == Deadline(date(2027, 1, 1), provisional=True)
    assert WITH_2027.add_working_days(date(2026, 12, 31), 1) == Deadline(date(2027, 1, 4), provisional=False)
    # an instant case on an unknown-year day relied on a guess about that day
    assert PLAIN.add_working_days(date(2028, 3, 1), 0) == Deadline(date(2028, 3, 1), provisional=True)
    assert PLAIN.add_working_days(date(2026, 3, 2), 0) == Deadline(date(2026, 3, 2), provisional=False)


def test_years_before_the_package_range_are_unknown_too():
    cal = WorkingCalendar()
    assert not cal.knows_year(2003)
    assert cal.knows_year(2004) and cal.knows_year(2026)
    before = counter_value(2003)
    assert cal.add_working_days(date(2003, 9, 30), 1) == Deadline(date(2003, 10, 1), provisional=True)
    assert counter_value(2003) == before + 1


def test_counter_survives_a_module_reload():
    assert wd._get_or_create_counter(COUNTER, "dup", ["year"]) is wd.UNKNOWN_YEAR_COUNTER
    # a real reload, in a child process so this session's classes stay intact
    code = (
        "import importlib, shared.workdays as w\n"
        "c = w.UNKNOWN_YEAR_COUNTER\n"
        "importlib.reload(w)\n"
        "assert w.UNKNOWN_YEAR_COUNTER is c\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------
# Loaded files
# ---------------------------------------------------------------------------


def test_the_2027_sample_file_loads():
    yc = parse_holiday_file(SAMPLE_2027)
    assert yc.year == 2027
    assert "SAMPLE" in yc.source and "样例" in yc.source
    assert yc.names[date(2027, 2, 8)] == "春节"
    assert WITH_2027.knows_year(2027)
    assert not PLAIN.knows_year(2027)
    assert not WITH_2027.is_working_day(date(2027, 2, 8))   # Mon in 春节
    assert PLAIN.is_working_day(date(2027, 2, 8))           # weekends-only would say yes
    assert WITH_2027.is_working_day(date(2027, 2, 20))      # make-up Sat
    assert not PLAIN.is_working_day(date(2027, 2, 20))
    assert WITH_2027.add_working_days(date(2027, 2, 4), 1) == Deadline(date(2027, 2, 15), provisional=False)


def test_parse_accepts_text_path_and_str_path(tmp_path):
    text = SAMPLE_2027.read_text(encoding="utf-8")
    as_text = parse_holiday_file(text)
    assert as_text == parse_holiday_file(SAMPLE_2027) == parse_holiday_file(str(SAMPLE_2027))
    assert len(as_text.holidays) == 29 and len(as_text.workdays) == 5


def test_plain_dates_quoted_dates_and_weekend_holidays_are_accepted():
    yc = parse_holiday_file(
        "year: 2027\nholidays: [2027-06-09, '2027-09-15', 2027-01-02]\nworkdays: ['2027-02-20']\n"
    )
    assert yc.holidays == {date(2027, 6, 9), date(2027, 9, 15), date(2027, 1, 2)}  # Jan 2 is a Sat
    assert yc.workdays == {date(2027, 2, 20)}
    assert yc.source == ""


def test_a_loaded_year_replaces_the_package_for_that_year():
    cal = WorkingCalendar({2026: YearCalendar(2026, holidays=frozenset({date(2026, 3, 2)}))})
    assert cal.knows_year(2026)
    assert not cal.is_working_day(date(2026, 3, 2))
    assert cal.is_working_day(date(2026, 2, 16))       # package holiday gone
    assert not cal.is_working_day(date(2026, 2, 14))   # package make-up day gone
    assert PLAIN.is_working_day(date(2026, 3, 2))      # other calendars unaffected
    assert PLAIN.is_working_day(date(2026, 2, 14))


def test_constructor_rejects_a_mismatched_year_key():
    with pytest.raises(ValueError, match="2027"):
        WorkingCalendar({2028: parse_holiday_file(SAMPLE_2027)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("year: 2027\nholidays: [2028-01-01]\n", "holidays\\[0\\].*2028-01-01 is outside the declared year 2027"),
        ("year: 2027\nholidays:\n  - {from: 2027-12-31, to: 2028-01-02}\n", "outside the declared year 2027"),
        ("year: 2027\nworkdays: [2026-12-27]\n", r"workdays\[0\]: 2026-12-27 is outside the declared year 2027"),
        ("year: 2027\nholidays: [2027-02-20]\nworkdays: [2027-02-20]\n", "2027-02-20 is listed both"),
        (
            "year: 2027\nholidays:\n  - {from: 2027-02-18, to: 2027-02-21}\nworkdays: [2027-02-20]\n",
            "2027-02-20 is listed both",
        ),
        ("year: 2027\nworkdays: [2027-02-22]\n", "2027-02-22 is a Monday.*Saturdays or Sundays"),
        ("year: 2027\nholidays:\n  - {from: 2027-05-05, to: 2027-05-01}\n", "'from' 2027-05-05 is after 'to'"),
        ("year: 2027\nholidays:\n  - {from: 2027-05-01}\n", "needs both 'from' and 'to'"),
        ("year: 2027\nholidays:\n  - {form: 2027-05-01, to: 2027-05-03}\n", "unknown key.*form"),
        ("source: x\nholidays: []\n", "missing 'year'"),
        ("year: '2027'\n", "'year' must be an integer"),
        ("year: true\n", "'year' must be an integer"),
        ("year: 2027\nholiday: [2027-06-09]\n", "unknown key.*holiday"),
        ("year: 2027\nholidays: {a: 2027-06-09}\n", "'holidays' must be a list"),
        ("year: 2027\nholidays: [2027-02-30]\n", "not valid YAML: day is out of range"),
        ("year: 2027\nholidays: ['2027-02-30']\n", "'2027-02-30' is not a date"),
        ("year: 2027\nholidays: [next monday]\n", "'next monday' is not a date"),
        ("year: 2027\nholidays: [2027-06-09 10:00:00]\n", "has a time of day"),
        ("year: 2027\nsource: [a, b]\n", "'source' must be text"),
        ("year: [2027\n", "not valid YAML"),
        ("- 2027-01-01\n", "expected a mapping"),
        ("", "expected a mapping"),
    ],
)
def test_holiday_file_errors(text, message):
    with pytest.raises(HolidayFileError, match=message) as info:
        parse_holiday_file(text)
    assert isinstance(info.value, ValueError)


def test_holiday_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "2027.yaml"
    bad.write_text("year: 2027\nworkdays: [2027-02-22]\n", encoding="utf-8")
    with pytest.raises(HolidayFileError, match=r"2027\.yaml: .*Saturdays or Sundays"):
        parse_holiday_file(bad)
    with pytest.raises(HolidayFileError, match="cannot read"):
        parse_holiday_file(tmp_path / "nope" / "2031.yaml")


def test_year_calendar_built_in_code_is_validated_too():
    with pytest.raises(HolidayFileError, match="outside the declared year"):
        YearCalendar(2027, holidays=frozenset({date(2028, 1, 3)}))
    with pytest.raises(HolidayFileError, match="Saturdays or Sundays"):
        YearCalendar(2027, holidays=frozenset(), workdays=frozenset({date(2027, 2, 22)}))


# ---------------------------------------------------------------------------
# Argument checks and the Shanghai clock
# ---------------------------------------------------------------------------


def test_bad_arguments():
    with pytest.raises(ValueError, match="days must be >= 0"):
        PLAIN.add_working_days(date(2026, 3, 2), -1)
    with pytest.raises(TypeError, match="today_in_shanghai"):
        PLAIN.add_working_days(datetime(2026, 3, 2, 20, 0, tzinfo=UTC), 1)
    with pytest.raises(TypeError):
        PLAIN.working_days_between(date(2026, 3, 2), "2026-03-05")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 2, 16, 15, 59, 59, tzinfo=UTC), date(2026, 2, 16)),  # 23:59:59 CST
        (datetime(2026, 2, 16, 16, 0, 0, tzinfo=UTC), date(2026, 2, 17)),    # midnight CST
        (datetime(2026, 12, 31, 17, 0, tzinfo=UTC), date(2027, 1, 1)),
        (datetime(2026, 3, 2, 8, 0, tzinfo=timezone(timedelta(hours=-5))), date(2026, 3, 2)),  # 21:00 CST
    ],
)
def test_today_in_shanghai(now, expected):
    assert today_in_shanghai(now) == expected


def test_today_in_shanghai_rejects_naive_datetimes():
    with pytest.raises(ValueError, match="timezone-aware"):
        today_in_shanghai(datetime(2026, 2, 16, 20, 0))
