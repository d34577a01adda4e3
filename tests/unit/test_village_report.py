"""The monthly village table (村(社区)便民服务办理情况统计表) from the agent's tables, on SQLite and PostgreSQL:
every count of a test month with services in it and around it, the CSV and the XLSX read back, the
scope rules, and `tongban report village` run against the database."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from services.agent import views
from services.agent.models import Reply, StationService
from services.agent.service import VERSIONS
from shared.auth import Principal, Scope
from shared.catalog import SAMPLE_CATALOG, load_catalog
from shared.db import make_engine, migrate, store_reference
from shared.errors import NotPermitted, RuleViolation
from shared.reference import CATALOG, make_record

TOWN_A, TOWN_B = "320583101", "320583102"  # 玉山镇, 巴城镇
CHENGBEI, CHENGNAN, TONGXIN = "320583101001", "320583101002", "320583101004"  # 城北社区, 城南社区, 同心村
UNLISTED = "320583101099"  # a village the catalogue does not (or no longer) list
HUBIN = "320583102001"  # 湖滨村
AG, LIFE, ADMIN, PARTY = "农业生产", "民生保障", "行政政务", "党的建设"
MONTH = views.Month(2026, 10)
CATALOG_TEXT = SAMPLE_CATALOG.read_text(encoding="utf-8")


def _service(n, village, mode, status, category, served_on, completed_on=None, case_number=None):
    return StationService(
        number=f"ST-{n:04d}", request_key=f"key-{n}", village=village, town=village[:9], agent=f"agent-{village}",
        mode=mode, status=status, item_code="MZ-0001", item_name="某事项", item_category=category,
        item_level="village" if status == "done" else "town", catalog_version="2026.1", applicant_name="张三",
        applicant_id_masked="110105********002X", applicant_phone="13812345678", content="代办", materials=[],
        fee_fen=0, served_at=datetime.combine(served_on, datetime.min.time(), tzinfo=UTC), served_on=served_on,
        case_number=case_number, completed_on=completed_on,
        completed_at=datetime.combine(completed_on, datetime.min.time(), tzinfo=UTC) if completed_on else None)


def _reply(n, village, status, replied_on, service_id=None, case_number=None):
    return Reply(case_number=case_number or f"C-REPLY-{n}", agent="agent-x", outcome="approved", item_name="某事项",
                 status=status, created_at=datetime(2026, 9, 1, tzinfo=UTC), village=village, service_id=service_id,
                 replied_on=replied_on, method="phone" if replied_on else None,
                 replied_at=datetime.combine(replied_on, datetime.min.time(), tzinfo=UTC) if replied_on else None)


def _fill(session):
    d = date
    services = {
        # 城北社区, in October
        1: _service(1, CHENGBEI, "submission", "relayed", LIFE, d(2026, 10, 1)),
        2: _service(2, CHENGBEI, "submission", "accepted", LIFE, d(2026, 10, 31), case_number="C-2"),
        3: _service(3, CHENGBEI, "submission", "completed", LIFE, d(2026, 10, 5), d(2026, 10, 20), "C-3"),
        4: _service(4, CHENGBEI, "submission", "refused", ADMIN, d(2026, 10, 10)),
        5: _service(5, CHENGBEI, "help_only", "helped", ADMIN, d(2026, 10, 11)),
        6: _service(6, CHENGBEI, "submission", "done", AG, d(2026, 10, 12), d(2026, 10, 12)),
        7: _service(7, CHENGBEI, "submission", "rejected", LIFE, d(2026, 10, 15)),
        # 城北社区, around October: served before and completed in it, served in it and completed after, neither
        8: _service(8, CHENGBEI, "submission", "completed", LIFE, d(2026, 9, 28), d(2026, 10, 8), "C-8"),
        9: _service(9, CHENGBEI, "submission", "completed", LIFE, d(2026, 10, 30), d(2026, 11, 2), "C-9"),
        10: _service(10, CHENGBEI, "submission", "relayed", LIFE, d(2026, 9, 30)),
        11: _service(11, CHENGBEI, "help_only", "helped", AG, d(2026, 11, 1)),
        # 同心村, a village not in the catalogue, and 巴城镇's 湖滨村
        12: _service(12, TONGXIN, "submission", "accepted", PARTY, d(2026, 10, 20), case_number="C-12"),
        13: _service(13, UNLISTED, "help_only", "helped", LIFE, d(2026, 10, 7)),
        14: _service(14, HUBIN, "help_only", "helped", AG, d(2026, 10, 3)),
        15: _service(15, HUBIN, "submission", "refused", ADMIN, d(2026, 10, 31)),
    }
    session.add_all(services.values())
    session.flush()
    session.add_all([
        _reply(1, CHENGBEI, "replied", d(2026, 10, 21), services[3].id, "C-3"),
        _reply(2, CHENGBEI, "replied", d(2026, 10, 9), services[8].id, "C-8"),
        _reply(3, TONGXIN, "replied", d(2026, 10, 25), None, "C-12"),  # no service id: found by its case
        _reply(4, CHENGBEI, "to_reply", None, services[9].id, "C-9"),  # owed, not made
        _reply(5, CHENGBEI, "replied", d(2026, 9, 30)),
        _reply(6, CHENGBEI, "replied", d(2026, 11, 1)),
        _reply(7, None, "replied", d(2026, 10, 10)),  # not a station's: no village
        _reply(8, HUBIN, "replied", d(2026, 10, 16)),  # its service unknown: 未分类
    ])
    session.commit()


def counts(**given):
    return {k: given.get(k, 0) for k in views.COLUMNS}


CHENGBEI_ROWS = {
    AG: counts(services=1, submissions=1, done_at_station=1),
    LIFE: counts(services=5, submissions=5, relayed=5, completed=2, replies=2),
    ADMIN: counts(services=2, refused=1, help_only=1),
    PARTY: counts(),
}
CHENGBEI_SUBTOTAL = counts(services=8, submissions=6, refused=1, help_only=1, done_at_station=1, relayed=5,
                           completed=2, replies=2)
TONGXIN_SUBTOTAL = counts(services=1, submissions=1, relayed=1, replies=1)
TOWN_A_TOTAL = counts(services=10, submissions=7, refused=1, help_only=2, done_at_station=1, relayed=6,
                      completed=2, replies=3)
TOWN_B_TOTAL = counts(services=2, refused=1, help_only=1, replies=1)
CITY_TOTAL = counts(services=12, submissions=7, refused=2, help_only=3, done_at_station=1, relayed=6, completed=2,
                    replies=4)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def agent_db(request, tmp_path_factory):
    """The agent's database, migrated, holding the sample catalogue and the test month's services."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('agent') / 'agent.db'}"
    else:
        url = request.getfixturevalue("postgres").new("agent")
    engine = make_engine(url)
    migrate(engine, VERSIONS)
    store_reference(engine, make_record(CATALOG, CATALOG_TEXT, "test"), 0)
    with Session(engine) as session:
        _fill(session)
    yield url, engine
    engine.dispose()


def _table(engine, town=None, village=None):
    with Session(engine) as session:
        return views.village_report(session, load_catalog(), MONTH, town, village)


def _rows(village_table):
    return {r["category"]: {k: r[k] for k in views.COLUMNS} for r in village_table["categories"]}


def test_the_city_table_counts_every_column_of_the_month_per_village_category_town_and_city(agent_db):
    _, engine = agent_db
    report = _table(engine)
    assert report["title"] == views.TITLE and report["month"] == "2026-10" and report["town"] is None
    # every town of the catalogue, in its order; every category, and the one for a reply of no known service
    assert [t["town"] for t in report["towns"]] == list(load_catalog().towns)
    assert report["categories"] == [AG, LIFE, ADMIN, PARTY, views.UNCLASSIFIED]
    towns = {t["town"]: t for t in report["towns"]}
    a = towns[TOWN_A]
    assert a["name"] == "玉山镇"
    # the catalogue's villages, even with nothing this month, then one it does not list that had services
    assert [(v["village"], v["name"]) for v in a["villages"]] == [
        (CHENGBEI, "城北社区"), (CHENGNAN, "城南社区"), ("320583101003", "朝阳社区"), (TONGXIN, "同心村"),
        (UNLISTED, UNLISTED)]
    villages = {v["village"]: v for v in a["villages"]}
    assert _rows(villages[CHENGBEI]) == {**CHENGBEI_ROWS, views.UNCLASSIFIED: counts()}
    assert villages[CHENGBEI]["subtotal"] == CHENGBEI_SUBTOTAL
    assert _rows(villages[TONGXIN])[PARTY] == TONGXIN_SUBTOTAL == villages[TONGXIN]["subtotal"]
    assert villages[UNLISTED]["subtotal"] == counts(services=1, help_only=1)
    assert villages[CHENGNAN]["subtotal"] == counts() and set(_rows(villages[CHENGNAN])) == set(report["categories"])
    assert a["total"] == TOWN_A_TOTAL
    assert {r["category"]: r["services"] for r in a["by_category"]} == {AG: 1, LIFE: 6, ADMIN: 2, PARTY: 1,
                                                                        views.UNCLASSIFIED: 0}
    b = towns[TOWN_B]
    hubin = {v["village"]: v for v in b["villages"]}[HUBIN]
    assert _rows(hubin)[AG] == counts(services=1, help_only=1)
    assert _rows(hubin)[ADMIN] == counts(services=1, refused=1)
    assert _rows(hubin)[views.UNCLASSIFIED] == counts(replies=1)
    assert b["total"] == TOWN_B_TOTAL
    assert all(t["total"] == counts() for code, t in towns.items() if code not in (TOWN_A, TOWN_B))
    assert report["total"] == CITY_TOTAL


def test_one_town_one_village_and_another_month(agent_db):
    _, engine = agent_db
    a = _table(engine, TOWN_A)
    assert [t["town"] for t in a["towns"]] == [TOWN_A] and a["total"] is None
    assert a["categories"] == [AG, LIFE, ADMIN, PARTY]  # nothing unclassified in this town
    assert a["towns"][0]["total"] == TOWN_A_TOTAL
    own = _table(engine, TOWN_A, CHENGBEI)["towns"][0]
    assert [v["village"] for v in own["villages"]] == [CHENGBEI]
    assert own["total"] == CHENGBEI_SUBTOTAL
    with Session(engine) as session:
        november = views.village_report(session, load_catalog(), views.Month(2026, 11), TOWN_A)
    assert november["towns"][0]["total"] == counts(services=1, help_only=1, completed=1, replies=1)
    with Session(engine) as session, pytest.raises(RuleViolation):
        views.village_report(session, load_catalog(), MONTH, "999999999")


def test_the_csv_has_a_bom_chinese_headings_subtotals_and_totals(agent_db):
    _, engine = agent_db
    data = views.render_csv(_table(engine))
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["月份", "镇(街道)代码", "镇(街道)", "村(社区)代码", "村(社区)", "事项类别",
                       "服务总数", "代办受理", "不予代办", "帮办", "站内办结", "报送", "办结", "回复"]
    body = rows[1:]
    assert all(r[0] == "2026-10" for r in body)
    by_key = {(r[3], r[5]): [int(x) for x in r[6:]] for r in body if r[3]}
    assert by_key[(CHENGBEI, LIFE)] == list(CHENGBEI_ROWS[LIFE].values())
    assert by_key[(CHENGBEI, views.SUBTOTAL)] == list(CHENGBEI_SUBTOTAL.values())
    assert by_key[(HUBIN, views.UNCLASSIFIED)] == list(counts(replies=1).values())
    town_totals = {r[1]: [int(x) for x in r[6:]] for r in body if r[4] == views.TOWN_TOTAL}
    assert len(town_totals) == 12
    assert town_totals[TOWN_A] == list(TOWN_A_TOTAL.values()) and town_totals[TOWN_B] == list(TOWN_B_TOTAL.values())
    assert body[-1][2] == views.CITY_TOTAL and [int(x) for x in body[-1][6:]] == list(CITY_TOTAL.values())


def test_the_xlsx_has_a_sheet_per_town_with_title_bold_frozen_headings_and_a_totals_row(agent_db):
    _, engine = agent_db
    wb = load_workbook(io.BytesIO(views.render_xlsx(_table(engine))))
    names = [t["name"] for t in load_catalog().towns.values()]
    assert wb.sheetnames == [*names, views.CITY_TOTAL]
    ws = wb["玉山镇"]
    assert ws["A1"].value == "村(社区)便民服务办理情况统计表（2026年10月）"
    assert "玉山镇" in ws["A2"].value and "2026-10" in ws["A2"].value
    headings = [c.value for c in ws[3]]
    assert headings == ["村(社区)", "村(社区)代码", "事项类别", "服务总数", "代办受理", "不予代办", "帮办", "站内办结",
                        "报送", "办结", "回复"]
    assert all(c.font.bold for c in ws[3]) and ws.freeze_panes == "A4"
    assert ws.column_dimensions["A"].width >= 12
    # five villages, each its five categories and a 小计, then the 合计
    assert ws.max_row == 3 + 5 * 6 + 1
    values = [[c.value for c in row] for row in ws.iter_rows(min_row=4)]
    assert values[0][:3] == ["城北社区", CHENGBEI, AG] and values[0][3:] == list(CHENGBEI_ROWS[AG].values())
    assert values[5][2] == views.SUBTOTAL and values[5][3:] == list(CHENGBEI_SUBTOTAL.values())
    assert values[-1][0] == views.TOWN_TOTAL and values[-1][3:] == list(TOWN_A_TOTAL.values())
    assert ws.cell(ws.max_row, 1).font.bold
    empty = wb["陆家镇"]
    assert [c.value for c in empty[empty.max_row]][3:] == [0] * len(views.COLUMNS)
    city = wb[views.CITY_TOTAL]
    rows = [[c.value for c in row] for row in city.iter_rows(min_row=4)]
    assert [r[0] for r in rows] == [*names, views.CITY_TOTAL]
    assert rows[1][1] == TOWN_B and rows[1][2:] == list(TOWN_B_TOTAL.values())
    assert rows[-1][2:] == list(CITY_TOTAL.values())
    # one town asked for: its sheet only
    one = load_workbook(io.BytesIO(views.render_xlsx(_table(engine, TOWN_B))))
    assert one.sheetnames == ["巴城镇"]


def test_the_cli_writes_the_table_from_the_agent_database(agent_db, tmp_path):
    url, _ = agent_db
    env = {**os.environ, "TONGBAN_DATABASE_URL": url, "PYTHONPATH": os.getcwd()}

    def tongban(*args, **kw):
        return subprocess.run([sys.executable, "-m", "tongban.cli", "report", "village", *args], env=kw.get("env", env),
                              capture_output=True, timeout=120, cwd=tmp_path)

    r = tongban("--month", "2026-10", "--town", TOWN_A)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout.decode("utf-8-sig"))))
    assert rows[-1][4] == views.TOWN_TOTAL and [int(x) for x in rows[-1][6:]] == list(TOWN_A_TOTAL.values())
    r = tongban("--month", "2026-10", "--format", "xlsx")
    assert r.returncode == 0, r.stderr
    assert "village-2026-10.xlsx" in r.stderr.decode()
    wb = load_workbook(tmp_path / "village-2026-10.xlsx")
    last = [c.value for c in wb[views.CITY_TOTAL][wb[views.CITY_TOTAL].max_row]]
    assert last[0] == views.CITY_TOTAL and last[2:] == list(CITY_TOTAL.values())
    if url.startswith("sqlite"):  # the refusals are the same on both databases: once is enough
        bad = tongban("--month", "2026-1x")
        assert bad.returncode == 2 and bad.stdout == b""
        assert bad.stderr.decode().strip().count("\n") == 0 and "YYYY-MM" in bad.stderr.decode()
        unknown = tongban("--month", "2026-10", "--town", "999999999")
        assert unknown.returncode == 2 and "not in the catalogue" in unknown.stderr.decode()
        missing_env = {**env, "TONGBAN_DATA_DIR": str(tmp_path / "none")}
        missing_env.pop("TONGBAN_DATABASE_URL")
        missing = tongban("--month", "2026-10", env=missing_env)
        assert missing.returncode == 2 and "no agent database" in missing.stderr.decode()
        assert missing.stderr.decode().strip().count("\n") == 0


def _principal(role, scope, subject="someone"):
    return Principal(subject=subject, role=role, scope=Scope.parse(scope), expires_at=0, issued_at=0)


def test_who_sees_which_table():
    assert views.report_scope(_principal("supervisor", "city"), None) == (None, None)
    assert views.report_scope(_principal("service", "city"), TOWN_B) == (TOWN_B, None)
    assert views.report_scope(_principal("clerk", f"town:{TOWN_A}"), None) == (TOWN_A, None)
    assert views.report_scope(_principal("town_agent", f"town:{TOWN_A}"), TOWN_A) == (TOWN_A, None)
    with pytest.raises(NotPermitted):
        views.report_scope(_principal("clerk", f"town:{TOWN_A}"), TOWN_B)
    assert views.report_scope(_principal("agent", f"village:{CHENGBEI}"), None) == (TOWN_A, CHENGBEI)
    with pytest.raises(NotPermitted):
        views.report_scope(_principal("agent", f"village:{CHENGBEI}"), TOWN_B)
    with pytest.raises(NotPermitted):
        views.report_scope(_principal("approver", f"department:minzheng@{TOWN_A}"), TOWN_A)


@pytest.mark.parametrize("text", ["", None, "2026-13", "2026-00", "2026-1", "26-10", "2026-10-01", "october"])
def test_a_bad_month_is_refused(text):
    with pytest.raises(RuleViolation):
        views.parse_month(text)


def test_months_and_formats():
    assert (views.parse_month("2026-12").first, views.parse_month("2026-12").end) == (date(2026, 12, 1),
                                                                                      date(2027, 1, 1))
    assert views.parse_month(" 2027-02 ").end == date(2027, 3, 1)
    assert views.parse_format(None) == "json" and views.parse_format("XLSX") == "xlsx"
    with pytest.raises(RuleViolation):
        views.parse_format("pdf")
    assert views.filename({"month": "2026-10", "town": None}, "csv") == "village-2026-10.csv"
    assert views.filename({"month": "2026-10", "town": TOWN_A}, "xlsx") == f"village-2026-10-{TOWN_A}.xlsx"
