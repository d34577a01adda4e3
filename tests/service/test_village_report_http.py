"""`GET /reports/village` on a running agent: the monthly village table as JSON, CSV and XLSX, and who may
see which table. One city (the agent alone); the services are put in its database as a station logs them."""
from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from openpyxl import load_workbook
from sqlalchemy.orm import Session

from services.agent.models import Reply, StationService
from shared.db import make_engine
from tests.support import TOWN_A, TOWN_B, wait_for

CHENGBEI, TONGXIN, HUBIN = f"{TOWN_A}001", f"{TOWN_A}004", f"{TOWN_B}001"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _service(n, village, mode, status, served_on, category="民生保障", completed_on=None):
    at = datetime.combine(served_on, datetime.min.time(), tzinfo=UTC)
    return StationService(
        number=f"ST-{n}", request_key=f"k-{n}", village=village, town=village[:9], agent="agent-1", mode=mode,
        status=status, item_code="MZ-0001", item_name="某事项", item_category=category, item_level="town",
        catalog_version="2026.1", applicant_name="李四", applicant_id_masked="110105********002X",
        applicant_phone="13812345678", content="代办", materials=[], fee_fen=0, served_at=at, served_on=served_on,
        case_number=f"C-{n}" if status == "completed" else None, completed_on=completed_on, completed_at=None)


def test_the_village_table_over_http_in_three_formats_for_whoever_may_see_it(city):
    city.start("agent")
    engine = make_engine(city.settings("agent").db_url)
    with Session(engine) as session:
        done = _service(1, CHENGBEI, "submission", "completed", date(2026, 10, 3), completed_on=date(2026, 10, 9))
        session.add_all([done,
                         _service(2, CHENGBEI, "help_only", "helped", date(2026, 10, 31), category="农业生产"),
                         _service(3, TONGXIN, "submission", "refused", date(2026, 10, 1), category="行政政务"),
                         _service(4, HUBIN, "submission", "relayed", date(2026, 10, 15)),
                         _service(5, CHENGBEI, "submission", "relayed", date(2026, 11, 1))])  # another month
        session.flush()
        session.add(Reply(case_number="C-1", agent="agent-1", outcome="approved", item_name="某事项", status="replied",
                          created_at=datetime(2026, 10, 9, tzinfo=UTC), village=CHENGBEI, service_id=done.id,
                          replied_on=date(2026, 10, 10)))
        session.commit()
    engine.dispose()
    supervisor = city.token("supervisor", "city")

    def get(token, query):
        return city.call("GET", "agent", f"/reports/village?{query}", token)

    r = wait_for(lambda: (lambda r: r if r.status_code == 200 else None)(get(supervisor, "month=2026-10")),
                 what="the agent's village table")
    table = r.json()
    assert table["month"] == "2026-10" and len(table["towns"]) == 12
    assert table["total"] == {"services": 4, "submissions": 2, "refused": 1, "help_only": 1, "done_at_station": 0,
                              "relayed": 2, "completed": 1, "replies": 1}
    a = next(t for t in table["towns"] if t["town"] == TOWN_A)
    chengbei = next(v for v in a["villages"] if v["village"] == CHENGBEI)
    assert chengbei["name"] == "城北社区" and chengbei["subtotal"]["replies"] == 1
    assert chengbei["subtotal"]["services"] == 2 and chengbei["subtotal"]["completed"] == 1

    r = get(city.token("clerk", f"town:{TOWN_A}"), "month=2026-10&format=csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert f'filename="village-2026-10-{TOWN_A}.csv"' in r.headers["Content-Disposition"]  # its own town
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["月份", "镇(街道)代码", "镇(街道)"] and rows[-1][4] == "合计"
    assert [int(x) for x in rows[-1][6:]] == [3, 1, 1, 1, 0, 1, 1, 1]

    r = get(city.token("service", "city", "ops"), f"month=2026-10&town={TOWN_B}&format=xlsx")
    assert r.status_code == 200 and r.headers["Content-Type"] == XLSX
    assert f'filename="village-2026-10-{TOWN_B}.xlsx"' in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["巴城镇"]
    ws = wb["巴城镇"]
    assert ws["A1"].value.startswith("村(社区)便民服务办理情况统计表") and ws.freeze_panes == "A4"
    assert [c.value for c in ws[ws.max_row]][0] == "合计" and [c.value for c in ws[ws.max_row]][3] == 1

    # a village agent: its own village's rows only
    own = get(city.token("agent", f"village:{CHENGBEI}", "agent-1"), "month=2026-10").json()
    assert [v["village"] for t in own["towns"] for v in t["villages"]] == [CHENGBEI] and own["village"] == CHENGBEI

    # who may not, and what is not a table
    assert get(city.token("clerk", f"town:{TOWN_A}"), f"month=2026-10&town={TOWN_B}").status_code == 403
    assert get(city.token("agent", f"village:{CHENGBEI}"), f"month=2026-10&town={TOWN_B}").status_code == 403
    assert get(city.token("approver", f"department:minzheng@{TOWN_A}"), "month=2026-10").status_code == 403
    assert get(city.token("clerk", "department:minzheng"), "month=2026-10").status_code == 403
    assert get(None, "month=2026-10").status_code == 401
    for query in ("month=2026-13", "", "month=2026-10&format=pdf", "month=2026-10&town=12"):
        r = get(supervisor, query)
        assert r.status_code == 400 and r.json()["error"] == "bad_request", query
