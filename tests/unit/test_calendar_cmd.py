"""`tongban calendar load|show|due` (tongban/calendar_cmd.py).

2026 expectations are the State Council's 2026 notice (see tests/unit/test_workdays.py):
春节 2026-02-15..23 off with 2026-02-14 (Sat) and 2026-02-28 (Sat) worked; 国庆 2026-10-01..07 off with
2026-10-10 (Sat) worked. 2027 uses the repository's sample file (春节 2027-02-05..13 off), which the
chinese-calendar package (1.11, data up to 2026) does not know.
"""
from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, date
from pathlib import Path

import pytest

from shared.reference import StreamClient
from tests.unit.streams import MemoryStream
from tongban import calendar_cmd

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_2027 = REPO_ROOT / "shared" / "data" / "holidays" / "2027.yaml"


@pytest.fixture
def stream(monkeypatch):
    """The deployment's reference stream, in memory (the service tests use RabbitMQ's)."""
    s = MemoryStream()
    monkeypatch.setattr(calendar_cmd, "open_stream", lambda: s)
    return s


def run(capsys, *argv):
    parser = argparse.ArgumentParser(prog="tongban")
    calendar_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["calendar", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def due_json(capsys, *argv):
    code, out, err = run(capsys, "due", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


# -- due ----------------------------------------------------------------------------------------
def test_due_across_the_2026_spring_festival(stream, capsys):
    code, out, _ = run(capsys, "due", "2026-02-13", "5")
    assert code == 0
    assert "2026-02-13 + 5 working days = 2026-02-27 (Friday)" in out
    assert "PROVISIONAL" not in out
    assert "2026-02-14" in out  # the make-up Saturday is counted and the clerk is told so
    assert due_json(capsys, "2026-02-13", "5") == {
        "start": "2026-02-13", "days": 5, "due": "2026-02-27", "weekday": "Friday", "provisional": False}


def test_due_zero_days_is_the_same_day_if_working_else_the_next_working_day(stream, capsys):
    assert due_json(capsys, "2026-02-13", "0")["due"] == "2026-02-13"
    assert due_json(capsys, "2026-02-15", "0")["due"] == "2026-02-24"  # in the middle of 春节
    assert due_json(capsys, "2026-02-14", "0")["due"] == "2026-02-14"  # a make-up Saturday


def test_2027_is_provisional_until_its_file_is_loaded(stream, capsys):
    before = due_json(capsys, "2027-02-04", "3")
    assert before["provisional"] is True
    assert before["due"] == "2027-02-09"  # weekends only: Fri 5, Mon 8, Tue 9
    code, out, _ = run(capsys, "due", "2027-02-04", "3")
    assert code == 0 and "PROVISIONAL: 2027 is not in the calendar; weekends only" in out

    code, out, err = run(capsys, "load", str(SAMPLE_2027))
    assert code == 0, err
    assert out.startswith("loaded 2027: 29 holidays, 5 make-up working days (SAMPLE")
    assert [r.text for r in stream.records] == [SAMPLE_2027.read_text(encoding="utf-8")]

    after = due_json(capsys, "2027-02-04", "3")
    assert after["provisional"] is False
    assert date.fromisoformat(after["due"]) > date(2027, 2, 13)  # after the sample's 春节 holiday
    assert after == {"start": "2027-02-04", "days": 3, "due": "2027-02-17", "weekday": "Wednesday",
                     "provisional": False}
    code, out, _ = run(capsys, "due", "2027-02-04", "3")
    assert "PROVISIONAL" not in out and "= 2027-02-17 (Wednesday)" in out


def test_due_today_uses_the_shanghai_date(stream, capsys, monkeypatch):
    from datetime import datetime

    seen = []

    def fake_today(now_utc):
        seen.append(now_utc)
        return date(2026, 2, 13)

    monkeypatch.setattr(calendar_cmd, "today_in_shanghai", fake_today)
    assert due_json(capsys, "today", "5")["start"] == "2026-02-13"
    assert seen and seen[0].tzinfo is not None
    assert abs((datetime.now(UTC) - seen[0]).total_seconds()) < 60


@pytest.mark.parametrize("bad_date", ["2026-02-30", "13/02/2026", "yesterday", "2026-2-3", ""])
def test_bad_date_exits_2_with_a_message(stream, capsys, bad_date):
    code, out, err = run(capsys, "due", bad_date, "3")
    assert code == 2 and out == ""
    assert "is not a date" in err and "YYYY-MM-DD" in err


@pytest.mark.parametrize("bad_days,message", [("-1", "0 or more"), ("three", "not a number"),
                                              ("1000000000", "at most")])
def test_bad_days_exits_2_with_a_message(stream, capsys, bad_days, message):
    code, out, err = run(capsys, "due", "2026-02-13", bad_days)
    assert code == 2 and out == ""
    assert message in err


def test_json_output_stays_clean_when_the_year_is_unknown(stream, capsys):
    # the unknown-year warning from shared.workdays must not land in stdout
    code, out, _ = run(capsys, "due", "2030-03-01", "2", "--json")
    assert code == 0
    assert json.loads(out)["provisional"] is True
    code, out, _ = run(capsys, "show", "2030-03", "--json")
    assert code == 0
    assert json.loads(out)["source"].startswith("UNKNOWN YEAR")


# -- show ---------------------------------------------------------------------------------------
def test_show_october_2026_marks_national_day_and_the_make_up_saturday(stream, capsys):
    code, out, _ = run(capsys, "show", "2026-10")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"]
    assert lines[2].split() == ["1*", "2*", "3*", "4*"]  # Oct 1 is a Thursday
    assert lines[3].split() == ["5*", "6*", "7*", "8", "9", "10+", "11"]
    assert "legend" in out and "国庆节" in out
    assert "source: chinese-calendar package" in out

    code, out, _ = run(capsys, "show", "2026-10", "--json")
    assert code == 0
    view = json.loads(out)
    assert view["month"] == "2026-10" and view["source"] == "chinese-calendar package"
    days = {d["date"]: d for d in view["days"]}
    assert len(days) == 31
    for k in range(1, 8):
        d = days[f"2026-10-{k:02d}"]
        assert d["working"] is False and "国庆节" in d["holiday"] and d["makeup"] is False
    assert days["2026-10-08"] == {"date": "2026-10-08", "working": True, "holiday": None, "makeup": False}
    assert days["2026-10-10"] == {"date": "2026-10-10", "working": True, "holiday": None, "makeup": True}
    assert days["2026-10-11"] == {"date": "2026-10-11", "working": False, "holiday": None, "makeup": False}


def test_show_says_where_the_data_comes_from(stream, capsys):
    code, out, _ = run(capsys, "show", "2027-02")
    assert code == 0
    assert "UNKNOWN YEAR: weekends only" in out and "tongban calendar load FILE" in out
    assert "*" not in out.split("legend")[0]  # nothing marked without data

    assert run(capsys, "load", str(SAMPLE_2027))[0] == 0
    code, out, _ = run(capsys, "show", "2027-02")
    assert re.search(r"source: loaded notice of \d{4}-\d\d-\d\d \d\d:\d\d UTC by .+ \(sha256 [0-9a-f]{12}\)", out)
    assert "春节" in out
    week = next(line for line in out.splitlines() if line.split()[:1] == ["15"])
    assert week.split() == ["15", "16", "17", "18", "19", "20+", "21"]  # 2027-02-20 is a make-up Saturday
    code, out, _ = run(capsys, "show", "2027-02", "--json")
    days = {d["date"]: d for d in json.loads(out)["days"]}
    assert days["2027-02-05"]["holiday"] == "春节" and days["2027-02-05"]["working"] is False
    assert days["2027-02-20"]["makeup"] is True


@pytest.mark.parametrize("bad", ["2026-13", "2026", "October", "2026-10-01"])
def test_show_bad_month_exits_2(stream, capsys, bad):
    code, out, err = run(capsys, "show", bad)
    assert code == 2 and out == "" and "YYYY-MM" in err


# -- load ---------------------------------------------------------------------------------------
def test_loading_the_same_content_again_is_a_no_op(stream, capsys):
    assert run(capsys, "load", str(SAMPLE_2027))[0] == 0
    code, out, _ = run(capsys, "load", str(SAMPLE_2027))
    assert code == 0
    assert "already loaded (same content)" in out and "replaced" not in out
    assert len(stream.records) == 1  # one version


def test_a_corrected_notice_replaces_the_year_and_says_so(stream, capsys, tmp_path):
    assert run(capsys, "load", str(SAMPLE_2027))[0] == 0
    corrected = tmp_path / "2027-corrected.yaml"
    text = SAMPLE_2027.read_text(encoding="utf-8").replace("2027-02-20   # Sat", "2027-02-21   # Sun")
    corrected.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "load", str(corrected))
    assert code == 0, err
    assert "replaced the 2027 calendar" in out
    assert "2027-02-20" in out and "2027-02-21" in out
    assert [r.text for r in stream.records][-1] == text and len(stream.records) == 2
    days = {d["date"]: d for d in json.loads(run(capsys, "show", "2027-02", "--json")[1])["days"]}
    assert days["2027-02-20"]["working"] is False and days["2027-02-21"]["makeup"] is True


@pytest.mark.parametrize("content,message", [
    ("year: 2027\nholidays: [2027-02-30]\n", "not valid YAML"),
    ("year: 2027\nholidays: [2027-01-01]\nworkdays: [2027-02-22]\n", "Saturdays or Sundays"),
    ("year: 2027\nholidays: [2026-12-31]\n", "outside the declared year"),
    ("year: 2027\n", "no holidays"),
    ("- just a list\n", "expected a mapping"),
])
def test_a_bad_file_exits_2_and_stores_nothing(stream, capsys, tmp_path, content, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "load", str(bad))
    assert code == 2 and out == ""
    assert message in err and str(bad) in err
    assert stream.records == []


def test_a_missing_file_exits_2(stream, capsys, tmp_path):
    code, out, err = run(capsys, "load", str(tmp_path / "nope.yaml"))
    assert code == 2 and out == "" and "cannot read" in err


def test_no_broker_is_reported_not_a_traceback(capsys, monkeypatch):
    monkeypatch.setattr(calendar_cmd, "open_stream",
                        lambda: StreamClient("amqp://guest:guest@127.0.0.1:1//", "unit", connect_timeout=1))
    for argv in (("due", "2026-02-13", "5"), ("load", str(SAMPLE_2027))):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        assert "cannot reach the deployment's reference stream" in err and "TONGBAN_AMQP_URL" in err
