"""The supervisor's workbench (电子监察) over HTTP, as a browser uses it: a bad rating made through evaluation's
API shows with its rectification, a callback posted through the page's form reaches evaluation, a complaint
is acknowledged, the monthly figures download as CSV and XLSX, and another town's supervisor sees none of it."""
import csv
import io
import re

import openpyxl
import requests

from tests.portal.support import PASSWORD, add_user, csrf_of, sign_in
from tests.support import TOWN_A, TOWN_B, VALID_PHONE, wait_for


def test_the_supervisors_workbench(city):
    city.start("portal", f"intake-{TOWN_A}", "evaluation")
    add_user(city, "sup-a", "李监察", "supervisor", f"town:{TOWN_A}")
    add_user(city, "sup-b", "王监察", "supervisor", f"town:{TOWN_B}")
    portal = city.url("portal")
    sup_api = city.token("supervisor", f"town:{TOWN_A}", "sup-api")
    window = city.token("clerk", f"town:{TOWN_A}", "window-device-1")

    # a promised case rated badly at acceptance on the window's device; a complaint about it
    r = city.submit("RS-0001", TOWN_A)
    assert r.status_code == 201, r.text
    number = r.json()["case_number"]
    wait_for(lambda: any(e["type"] == "case.accepted" for e in city.call(
        "GET", "evaluation", f"/cases/{number}/events", city.ops).json().get("events", [])),
        what="evaluation heard the acceptance")
    rating = city.call("POST", "evaluation", "/ratings", window, {
        "case_number": number, "level": 5, "channel": "window_device", "stage": "acceptance", "comment": "态度生硬"})
    assert rating.status_code == 201, rating.text
    rect_id = rating.json()["rectification_id"]
    complaint = city.call("POST", "evaluation", "/complaints", window, {
        "subject": "窗口态度差", "text": "工作人员不耐烦", "case_number": number, "town": TOWN_A, "channel": "window",
        "complainant": {"name": "张三", "phone": VALID_PHONE}})
    assert complaint.status_code == 201, complaint.text
    complaint_number = complaint.json()["number"]

    browser = sign_in(city.url("portal"), "sup-a", lands="/supervisor")
    board = browser.get(portal + "/supervisor")
    assert board.status_code == 200 and "督办看板" in board.text and "超期预测" in board.text
    assert "红色预警（已超期）" in board.text, "the colours have words"
    assert number in board.text and "正常" in board.text, "the open case, on time"

    # the bad rating, with its rectification's due dates and the callback form
    page = browser.get(portal + "/supervisor/ratings")
    assert page.status_code == 200
    bad_section = page.text.split('id="appeals-h"')[0]
    assert number in bad_section and "非常不满意" in bad_section and "态度生硬" in bad_section
    assert "待回访" in bad_section and "回访期限" in bad_section and "整改期限" in bad_section
    assert f'action="/supervisor/rectifications/{rect_id}/callback"' in page.text
    assert VALID_PHONE not in page.text

    # the callback through the page's form reaches evaluation
    r = browser.post(portal + f"/supervisor/rectifications/{rect_id}/callback",
                     data={"csrf_token": csrf_of(page.text), "by": "李监察", "notes": "已电话回访，申请人接受道歉"})
    assert r.status_code == 200 and "已记录回访" in r.text, r.text[-2000:]
    assert r.history[0].status_code == 303 and r.history[0].headers["Location"] == \
        f"/supervisor/ratings?done=callback#rect-{rect_id}"
    rect = next(x for x in city.call("GET", "evaluation", "/rectifications?state=all", sup_api).json()[
        "rectifications"] if x["id"] == rect_id)
    assert rect["state"] == "called_back" and rect["callback_notes"] == "已电话回访，申请人接受道歉"
    assert rect["called_back_by"] == "李监察"
    assert f'action="/supervisor/rectifications/{rect_id}/rectify"' in r.text, "the next step is offered"
    # a refused step shows the service's word on the page (and nothing changes)
    again = browser.post(portal + f"/supervisor/rectifications/{rect_id}/callback",
                         data={"csrf_token": csrf_of(r.text), "by": "李监察", "notes": "again"})
    assert again.status_code == 409 and 'role="alert"' in again.text
    # an empty measures field: the service's field problem next to the form, what was typed kept
    empty = browser.post(portal + f"/supervisor/rectifications/{rect_id}/rectify",
                         data={"csrf_token": csrf_of(r.text), "measures": ""})
    assert empty.status_code == 400 and f'id="rect-{rect_id}-rectify-measures-error"' in empty.text
    # without the CSRF token nothing is done
    assert browser.post(portal + f"/supervisor/rectifications/{rect_id}/rectify",
                        data={"measures": "x"}).status_code == 403

    # complaints: listed, acknowledged through the page
    page = browser.get(portal + "/supervisor/complaints")
    assert complaint_number in page.text and "窗口态度差" in page.text
    r = browser.post(portal + f"/supervisor/complaints/{complaint_number}/acknowledge",
                     data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 200 and "已告知投诉人" in r.text
    assert city.call("GET", "evaluation", f"/complaints/{complaint_number}", sup_api).json()["status"] == "acknowledged"

    # the month's figures, as a table and as files
    page = browser.get(portal + "/supervisor/figures")
    assert page.status_code == 200 and "受理总数" in page.text and "差评数" in page.text
    month = re.search(r'name="month" type="month" value="(\d{4}-\d{2})"', page.text).group(1)
    assert browser.get(portal + "/supervisor/figures?month=2025-13").status_code == 400
    got = browser.get(portal + f"/supervisor/figures.csv?month={month}")
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("text/csv")
    assert got.headers["Content-Disposition"] == \
        f'attachment; filename="tongban-monthly-{month}-{TOWN_A}.csv"'
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["月份", "维度"] and "受理总数" in rows[0] and len(rows) > 1
    got = browser.get(portal + f"/supervisor/figures.xlsx?month={month}")
    assert got.status_code == 200 and got.headers["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert got.headers["Content-Disposition"].endswith('.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(got.content))
    assert book.sheetnames and any("受理总数" in str(c.value) for ws in book for row in ws.iter_rows()
                                   for c in row if c.value)

    # another town's supervisor: the rating and the complaint simply are not there
    other = sign_in(city.url("portal"), "sup-b", lands="/supervisor")
    page = other.get(portal + "/supervisor/ratings")
    assert page.status_code == 200 and number not in page.text and "没有待处理的差评" in page.text
    assert complaint_number not in other.get(portal + "/supervisor/complaints").text
    # and a clerk has no supervisor's pages
    add_user(city, "clerk-5", "张敏", "clerk", f"town:{TOWN_A}")
    clerk = requests.Session()
    clerk.post(portal + "/login", data={"staff_number": "clerk-5", "password": PASSWORD})
    assert clerk.get(portal + "/supervisor/ratings").status_code == 403
