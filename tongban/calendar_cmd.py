"""`tongban calendar …`: the working-day calendar (工作日历) that every deadline is counted on.

City IT loads each year's State Council holiday notice as a YAML file (format: `shared/workdays.py`);
`load` publishes it as a record on the running deployment's reference stream (`shared.reference`;
TONGBAN_AMQP_URL, TONGBAN_BUS_PREFIX), every service keeps it in its database, and intake recounts
provisional deadlines when it arrives. A year loaded again with other dates replaces it (a corrected
notice). `show` and `due` count on the years read from the stream. A loaded year wins over the
chinese-calendar package; a year known to neither is counted on weekends only, and every answer that
relied on it says so.

Every handler takes the parsed `args` and returns the exit code: 0 done, 2 refused (bad file, bad date,
bad number of days, no broker), with the reason on stderr.
"""
from __future__ import annotations

import calendar as _stdcal
import contextlib
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from shared.reference import CALENDAR, Book, StreamClient, calendar_of
from shared.workdays import (
    HolidayFileError,
    WorkingCalendar,
    YearCalendar,
    parse_holiday_file,
    today_in_shanghai,
)

PACKAGE_SOURCE = "chinese-calendar package"
UNKNOWN_SOURCE = "UNKNOWN YEAR: weekends only"
LOAD_HINT = "load the year's holiday notice with `tongban calendar load FILE`"
#: More working days than any statutory time limit; stops `due 2026-01-01 999999999` from spinning.
MAX_DAYS = 10_000
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_RE = re.compile(r"^(\d{4})-(\d{1,2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def open_stream() -> StreamClient:
    """The deployment's reference stream, as the admin the AMQP URL names (who may publish to it)."""
    from shared.config import Settings

    settings = Settings.from_env("tongban", instance="tongban")
    return StreamClient(settings.amqp_url, settings.bus_prefix)


def _broker_problem(exc: Exception) -> str:
    return (f"cannot reach the deployment's reference stream ({exc.__class__.__name__}: {exc}); "
            "check TONGBAN_AMQP_URL and TONGBAN_BUS_PREFIX")


def _fail(command: str, message: str) -> int:
    print(f"tongban calendar {command}: {message}", file=sys.stderr)
    return 2


@contextlib.contextmanager
def _logs_to_stderr():
    """shared.workdays warns about unknown years through structlog, whose unconfigured default prints
    to stdout; keep such warnings on stderr so `--json` output stays parseable."""
    import structlog

    if structlog.is_configured():
        yield
        return
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:
        yield
    finally:
        structlog.reset_defaults()


def _book(command: str) -> Book | int:
    try:
        return open_stream().book()
    except Exception as exc:  # kombu/amqp errors come in many classes; all mean the same here
        return _fail(command, _broker_problem(exc))


def _working_calendar(command: str) -> WorkingCalendar | int:
    book = _book(command)
    if isinstance(book, int):
        return book
    cal = calendar_of(book)
    cal.records = book.calendar_years()  # where each loaded year came from, for `source_of`
    return cal


def _package_knows(year: int) -> bool:
    import chinese_calendar

    try:
        chinese_calendar.get_holiday_detail(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def source_of(cal: WorkingCalendar, year: int) -> str:
    if year in cal.loaded_years:
        r = getattr(cal, "records", {}).get(year)
        if r is None:
            return "loaded notice"
        return f"loaded notice of {r.loaded_at:%Y-%m-%d %H:%M} UTC by {r.loaded_by} (sha256 {r.sha256[:12]})"
    if _package_knows(year):
        return PACKAGE_SOURCE
    return UNKNOWN_SOURCE


@dataclass(frozen=True)
class DayInfo:
    date: date
    working: bool
    holiday: str | None  # the holiday's name when the day is part of an official holiday, else None
    makeup: bool  # a Saturday/Sunday that is worked (调休上班)


def _package_name(english: str) -> str:
    import chinese_calendar

    for h in chinese_calendar.Holiday:
        if h.value == english:
            return f"{h.chinese} ({english})"
    return english


def day_info(cal: WorkingCalendar, d: date) -> DayInfo:
    working = cal.is_working_day(d)
    makeup = working and d.weekday() >= 5
    loaded: YearCalendar | None = cal.loaded_years.get(d.year)
    if loaded is not None:
        holiday = (loaded.names.get(d) or "holiday") if d in loaded.holidays else None
        return DayInfo(d, working, holiday, makeup)
    holiday = None
    if not working and _package_knows(d.year):
        import chinese_calendar

        is_holiday, name = chinese_calendar.get_holiday_detail(d)
        if is_holiday and name:
            holiday = _package_name(name)
        elif d.weekday() < 5:  # a weekday off without a name: still not an ordinary day
            holiday = "holiday"
    return DayInfo(d, working, holiday, makeup)


# -- load ---------------------------------------------------------------------------------------
def _summary(yc: YearCalendar) -> str:
    return f"{len(yc.holidays)} holidays, {len(yc.workdays)} make-up working days"


def _changes(old: YearCalendar, new: YearCalendar) -> list[str]:
    out = []
    for label, before, after in (("holiday", old.holidays, new.holidays),
                                 ("make-up working day", old.workdays, new.workdays)):
        added, removed = sorted(after - before), sorted(before - after)
        if added:
            out.append(f"now a {label}: " + _spans(added))
        if removed:
            out.append(f"no longer a {label}: " + _spans(removed))
    return out


def _spans(days: list[date]) -> str:
    """'2027-02-05..2027-02-13, 2027-06-09' for sorted dates."""
    runs: list[list[date]] = []
    for d in days:
        if runs and d == runs[-1][-1] + timedelta(days=1):
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(r[0].isoformat() if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


def _parse_text(text: str, label: str) -> YearCalendar:
    # a trailing newline makes sure parse_holiday_file reads it as YAML text, never as a path
    try:
        return parse_holiday_file(text if "\n" in text else text + "\n")
    except HolidayFileError as exc:
        message = str(exc)
        message = message.removeprefix("<text>: ")
        raise HolidayFileError(f"{label}: {message}") from None


def cmd_load(args) -> int:
    try:
        data = Path(args.file).read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _fail("load", f"cannot read {args.file}: {exc}")
    try:
        yc = _parse_text(text, args.file)
    except HolidayFileError as exc:
        return _fail("load", f"not a valid holiday file: {exc}")
    if not yc.holidays:
        # `year: 2027` alone parses, but loading it would silently turn every holiday into a working day
        return _fail("load", f"{args.file} declares no holidays for {yc.year}; every State Council notice has "
                             "some (元旦, 春节, …), so this is not a complete holiday file")

    book = _book("load")
    if isinstance(book, int):
        return book
    old_record = book.calendar_years().get(yc.year)
    stream = open_stream()
    record, published = None, False
    try:
        from shared.reference import make_record

        record = make_record(CALENDAR, text)
        if not book.has(record):
            stream.publish(record)
            published = True
    except Exception as exc:
        return _fail("load", _broker_problem(exc))
    if not published:
        print(f"{yc.year} already loaded (same content), nothing published: {_summary(yc)} "
              f"({yc.source or 'no source given'})")
        return 0

    print(f"loaded {yc.year}: {_summary(yc)} ({yc.source or 'no source given'})")
    if old_record is not None:
        try:
            old = _parse_text(old_record.text, f"the {yc.year} notice loaded before")
        except HolidayFileError:
            old = None
        changes = _changes(old, yc) if old is not None else []
        if old is None:
            print(f"replaced the {yc.year} calendar (the previous one was not a valid holiday file)")
        elif changes:
            print(f"replaced the {yc.year} calendar (was: {_summary(old)}):")
            for line in changes:
                print(f"  - {line}")
        else:
            print(f"replaced the {yc.year} calendar file (same dates; only the text changed)")
    if _package_knows(yc.year):
        print(f"this file overrides the chinese-calendar package's data for {yc.year}")
    print(f"published to {stream.prefix}'s reference stream; intake services recount provisional deadlines "
          "from it")
    return 0


# -- show ---------------------------------------------------------------------------------------
def _parse_month(text: str) -> tuple[int, int] | None:
    m = _MONTH_RE.match(text.strip())
    if not m:
        return None
    year, month = int(m.group(1)), int(m.group(2))
    if not (1 <= year <= 9999 and 1 <= month <= 12):
        return None
    return year, month


def cmd_show(args) -> int:
    ym = _parse_month(args.month)
    if ym is None:
        return _fail("show", f"{args.month!r} is not a month; give YYYY-MM, e.g. 2026-10")
    year, month = ym
    cal = _working_calendar("show")
    if isinstance(cal, int):
        return cal
    ndays = _stdcal.monthrange(year, month)[1]
    with _logs_to_stderr():
        days = [day_info(cal, date(year, month, k)) for k in range(1, ndays + 1)]
    source = source_of(cal, year)

    if args.json:
        print(json.dumps({
            "month": f"{year:04d}-{month:02d}",
            "source": source,
            "days": [{"date": d.date.isoformat(), "working": d.working, "holiday": d.holiday,
                      "makeup": d.makeup} for d in days],
        }, ensure_ascii=False))
        return 0

    width = 7 * 4 - 2
    print(f"{_stdcal.month_name[month]} {year}".center(width).rstrip())
    print("  ".join(w[:2] for w in WEEKDAYS))
    cells = ["    "] * days[0].date.weekday()
    for d in days:
        mark = "*" if d.holiday else "+" if d.makeup else " "
        cells.append(f"{d.date.day:>2}{mark} ")
    for i in range(0, len(cells), 7):
        print("".join(cells[i:i + 7]).rstrip())
    print()
    print("legend: * holiday (day off)   + make-up working day (调休上班, a weekend day that is worked)")
    if source == UNKNOWN_SOURCE:
        print(f"source: {UNKNOWN_SOURCE} — {LOAD_HINT}")
        return 0
    for line in _name_lines(days):
        print(line)
    print(f"source: {source}")
    return 0


def _name_lines(days: list[DayInfo]) -> list[str]:
    """'  2026-10-01..2026-10-07  off: 国庆节 (National Day)' for each run of days with the same holiday name,
    then one line per make-up working day."""
    lines, run = [], []
    for d in days + [None]:
        if run and (d is None or d.holiday != run[-1].holiday or d.date != run[-1].date + timedelta(days=1)):
            span = run[0].date.isoformat() if len(run) == 1 else f"{run[0].date}..{run[-1].date}"
            lines.append(f"  {span}  off: {run[-1].holiday}")
            run = []
        if d is not None and d.holiday:
            run.append(d)
    for d in days:
        if d.makeup:
            lines.append(f"  {d.date}  make-up working day ({WEEKDAYS[d.date.weekday()]})")
    return lines


# -- due ----------------------------------------------------------------------------------------
def _parse_date(text: str) -> date | None:
    text = text.strip()
    if text.lower() == "today":
        return today_in_shanghai(datetime.now(UTC))
    if not _DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def cmd_due(args) -> int:
    start = _parse_date(args.date)
    if start is None:
        return _fail("due", f"{args.date!r} is not a date; give YYYY-MM-DD (e.g. 2026-02-13) or 'today'")
    try:
        days = int(args.days.strip())
    except ValueError:
        return _fail("due", f"{args.days!r} is not a number of working days; give a whole number >= 0")
    if days < 0:
        return _fail("due", f"the number of working days must be 0 or more, got {days}")
    if days > MAX_DAYS:
        return _fail("due", f"{days} working days is more than any time limit (at most {MAX_DAYS})")
    cal = _working_calendar("due")
    if isinstance(cal, int):
        return cal
    try:
        with _logs_to_stderr():
            deadline = cal.add_working_days(start, days)
            first = start if days == 0 else start + timedelta(days=1)
            span = [day_info(cal, first + timedelta(days=k)) for k in range((deadline.date - first).days + 1)]
    except OverflowError:
        return _fail("due", f"{start} + {days} working days is past the end of the calendar")
    due = deadline.date
    weekday = WEEKDAYS[due.weekday()]
    unknown = [y for y in range(first.year, due.year + 1) if source_of(cal, y) == UNKNOWN_SOURCE]

    if args.json:
        print(json.dumps({"start": start.isoformat(), "days": days, "due": due.isoformat(), "weekday": weekday,
                          "provisional": deadline.provisional}, ensure_ascii=False))
        return 0

    unit = "working day" if days == 1 else "working days"
    print(f"{start} + {days} {unit} = {due} ({weekday})")
    if days == 0:
        print(f"  0 days: the same day if {start} is a working day, else the next working day")
    else:
        print(f"  {start} itself is not counted")
    holidays = sorted({d.holiday for d in span if d.holiday})
    if holidays:
        print("  skips: " + ", ".join(holidays))
    makeups = [d.date for d in span if d.makeup]
    if makeups:
        print("  counts the make-up working day(s): "
              + ", ".join(f"{d} ({WEEKDAYS[d.weekday()]})" for d in makeups))
    if deadline.provisional:
        years = ", ".join(str(y) for y in unknown) or "a year in this span"
        verb = "is" if len(unknown) <= 1 else "are"
        print(f"PROVISIONAL: {years} {verb} not in the calendar; weekends only — {LOAD_HINT}")
    return 0


def register(subparsers) -> None:
    """Add `calendar` and its subcommands to the `tongban` parser's subparsers."""
    cal = subparsers.add_parser("calendar", help="the working-day calendar: load, show, due")
    sub = cal.add_subparsers(dest="calendar_command", required=True)

    load = sub.add_parser("load", help="check a year's holiday file and publish it to the running deployment")
    load.add_argument("file", help="YAML holiday file (format: shared/workdays.py)")
    load.set_defaults(func=cmd_load)

    show = sub.add_parser("show", help="a month, Monday first, holidays and make-up working days marked")
    show.add_argument("month", help="YYYY-MM, e.g. 2026-10")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    due = sub.add_parser("due", help="the deadline DAYS working days after DATE (DATE itself not counted)")
    due.add_argument("date", help="YYYY-MM-DD or 'today' (Asia/Shanghai)")
    due.add_argument("days", help="working days, 0 or more (0: the same day if it is a working day)")
    due.add_argument("--json", action="store_true")
    due.set_defaults(func=cmd_due)
