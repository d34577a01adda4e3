"""The monthly figures through the real broker: a test month's cases at a window (instant, promised on time and
late with a manual clock, incomplete, returned, a consultation, a village station's submission) reach the
evaluation service, whose report matches them in JSON, CSV and XLSX (read back), narrowed by scope; the
`tongban report monthly` command reads the same figures from its database; the open cases gauge."""
from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook

from services.evaluation import figures
from services.evaluation.figures import RatingFacts
from services.evaluation.service import VERSIONS
from shared.clock import ManualClock
from shared.store import Store
from tests.service.test_notify_once import metric
from tests.support import TOWN_A, TOWN_B, VALID_ID, VALID_PHONE, wait_for

INTAKE = f"intake-{TOWN_A}"
VILLAGE = f"{TOWN_A}001"  # 城北社区
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
AUTHORISATION = {"by": "李四", "matters": "代为申请就业登记", "signed_at": "2026-11-02T09:00:00+08:00",
                 "method": "手写签名"}


def completed(city, number):
    return wait_for(lambda: (c := city.case(number))["status"] == "completed" and c, what=f"{number} completed")


@pytest.mark.full  # long
def test_a_months_cases_make_the_report_in_three_formats_and_the_cli(city, tmp_path):
    clock = ManualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))  # Monday 2 Nov 2026, 09:00 in Shanghai
    city.start(INTAKE, build={"clock": clock})
    city.start("approval-minzheng", "approval-renshe", "agent")
    city.start("evaluation", extra={"figures_refresh_seconds": 0.3})

    instant = city.submit("MZ-0001").json()["case_number"]  # 即办件, decided at once
    completed(city, instant)
    on_time = city.submit("RS-0001").json()  # 承诺件, 5 working days: due Monday 9 Nov
    late = city.submit("RS-0001").json()
    assert on_time["deadline"] == "2026-11-09"
    incomplete = city.submit("RS-0001", materials=["idcard"]).json()  # 补办件, left waiting for the form
    assert incomplete["status"] == "pending_materials"
    assert city.submit("RS-0001", return_reason="申请人不属于灵活就业人员").json()["status"] == "returned"
    assert city.submit("MZ-0012", materials=[]).json()["status"] == "consulted"
    r = city.call("POST", "agent", "/station/submissions", city.token("agent", f"village:{VILLAGE}", "agent-cb"),
                  {"item_code": "RS-0001", "materials": ["idcard", "form"], "authorisation": AUTHORISATION,
                   "applicant": {"name": "李四", "id_number": VALID_ID, "phone": VALID_PHONE}},
                  headers={"Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text

    clock.advance(days=2)  # Wednesday 4 Nov: two working days
    city.decide("renshe", on_time["case_number"], TOWN_A)
    completed(city, on_time["case_number"])
    clock.advance(days=8)  # Thursday 12 Nov: past the deadline, eight working days after acceptance
    city.decide("renshe", late["case_number"], TOWN_A)
    done_late = completed(city, late["case_number"])
    assert done_late["completed_on"] == "2026-11-12"

    supervisor = city.token("supervisor", "city", "supervisor-1")

    def get(token, query):
        return city.call("GET", "evaluation", f"/reports/monthly?{query}", token)

    def window_a():
        r = get(supervisor, "month=2026-11")
        rows = {row["key"]: row for d in r.json()["dimensions"] if d["dimension"] == "window" for row in d["rows"]}
        return r.status_code == 200 and rows.get(TOWN_A, {}).get("received") == 7 and \
            rows[TOWN_A]["completed"] == 3 and rows[TOWN_A]
    w = wait_for(window_a, what="the evaluation's figures of the month")
    assert (w["instant"], w["promised"], w["supplement"], w["returned"], w["consultation"], w["joint"]) == \
        (1, 3, 1, 1, 1, 0)
    assert (w["on_time"], w["late"], w["on_time_rate"], w["avg_days"]) == (2, 1, 66.67, 3.33)  # (0 + 2 + 8) / 3
    assert w["name"] == "玉山镇便民服务中心" and w["ratings"] == 0 and w["satisfaction_rate"] is None

    # a rating and a bad one rectified, as the ratings code will hand them over (its own transaction)
    store = Store(city.settings("evaluation").db_url, VERSIONS, "unused")
    try:
        with store.transaction() as tx:
            figures.on_rating(tx, RatingFacts("t-1", 2, datetime(2026, 11, 12, 3, tzinfo=UTC),
                                              case_number=on_time["case_number"]))
            figures.on_rating(tx, RatingFacts("t-2", 5, datetime(2026, 11, 12, 3, tzinfo=UTC),
                                              case_number=late["case_number"]))
            figures.on_rectification_closed(tx, "t-2")
    finally:
        store.dispose()

    report = get(supervisor, "month=2026-11").json()
    dims = {d["dimension"]: {row["key"]: row for row in d["rows"]} for d in report["dimensions"]}
    w = dims["window"][TOWN_A]
    assert (w["ratings"], w["satisfied"], w["bad"], w["satisfaction_rate"], w["rectification_rate"]) == \
        (2, 1, 1, 50.0, 100.0)
    assert dims["village"][VILLAGE]["name"] == "城北社区" and dims["village"][VILLAGE]["promised"] == 1
    assert dims["staff"]["agent-cb"]["received"] == 1 and dims["staff"]["clerk-1"]["received"] == 5
    assert dims["town"][TOWN_A]["received"] == 7
    renshe = dims["department"][f"renshe@{TOWN_A}"]
    assert renshe["name"] == "人社（玉山镇）" and renshe["received"] == 5 and renshe["completed"] == 2
    assert dims["department"][f"minzheng@{TOWN_A}"]["instant"] == 1

    # CSV: every row of the JSON, to the digit
    r = get(supervisor, "month=2026-11&format=csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert 'filename="monthly-2026-11.csv"' in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    keys = list(figures.rules.COLUMNS)
    expected = [[d["heading"], row["key"], *("" if row[k] is None else str(row[k]) for k in keys)]
                for d in report["dimensions"] for row in d["rows"]]
    assert [[x[1], x[2], *x[5:]] for x in rows[1:]] == expected

    # XLSX: a sheet per dimension with Chinese headings, the same numbers read back
    r = get(supervisor, "month=2026-11&format=xlsx")
    assert r.status_code == 200 and r.headers["Content-Type"] == XLSX
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["村", "窗口", "人员", "乡镇", "部门"]
    assert [c.value for c in wb["窗口"][3]][:6] == ["代码", "名称", "镇(街道)", "受理总数", "即办件", "承诺件"]
    for d in report["dimensions"]:
        read = [[c.value for c in row] for row in wb[d["heading"]].iter_rows(min_row=4)]
        assert read == [[row["key"], row["name"], row["town_name"], *(row[k] for k in keys)] for row in d["rows"]]

    # the command line reads the evaluation database: the same XLSX figures
    out = tmp_path / "monthly.xlsx"
    city.tongban("report", "monthly", "--month", "2026-11", "--format", "xlsx", "--output", str(out))
    cli = load_workbook(out)
    assert [[c.value for c in row] for row in cli["窗口"].iter_rows(min_row=4)] == \
        [[c.value for c in row] for row in wb["窗口"].iter_rows(min_row=4)]
    cli_csv = city.tongban("report", "monthly", "--month", "2026-11", "--dept", "renshe").stdout
    office = next(x for x in csv.reader(io.StringIO(cli_csv.lstrip("\ufeff"))) if x[1] == "部门")
    assert office[2] == f"renshe@{TOWN_A}" and office[5] == "5"
    bad = city.tongban("report", "monthly", "--month", "2026-13", check=False)
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr

    # who sees what
    head = get(city.token("department_head", f"department:renshe@{TOWN_A}"), "month=2026-11").json()
    assert head["department"] == f"renshe@{TOWN_A}"
    head_dims = {d["dimension"]: d["rows"] for d in head["dimensions"]}
    assert [x["key"] for x in head_dims["department"]] == [f"renshe@{TOWN_A}"]
    assert head_dims["window"][0]["received"] == 5 and head_dims["window"][0]["instant"] == 0
    town_b = get(city.token("supervisor", f"town:{TOWN_B}"), "month=2026-11").json()
    assert all(not d["rows"] for d in town_b["dimensions"]), "nothing of town A"
    assert get(city.token("supervisor", f"town:{TOWN_B}"), f"month=2026-11&town={TOWN_A}").status_code == 403
    assert get(city.token("department_head", f"department:renshe@{TOWN_A}"),
               "month=2026-11&dept=minzheng").status_code == 403
    assert get(city.token("approver", f"department:renshe@{TOWN_A}"), "month=2026-11").status_code == 403
    assert get(city.token("clerk", f"town:{TOWN_A}"), "month=2026-11").status_code == 403
    assert get(None, "month=2026-11").status_code == 401
    for query in ("month=2026-13", "", "month=2026-11&format=pdf", "month=2026-11&town=12",
                  "month=2026-11&dept=RENSHE"):
        r = get(supervisor, query)
        assert r.status_code == 400 and r.json()["error"] == "bad_request", query

    # operators' metrics: the one open case (waiting for its form) by status, town and department
    wait_for(lambda: metric(city, "evaluation", "tongban_open_cases", status="pending_materials", town=TOWN_A,
                            department="renshe") == 1.0, what="the open cases gauge")
    assert metric(city, "evaluation", "tongban_open_cases", status="in_review", town=TOWN_A,
                  department="renshe") == 1.0, "the village's submission, not decided"
