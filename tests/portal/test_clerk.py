"""The window clerk's workbench (综合窗口) over HTTP, as a browser uses it: find an item, fill its form, the outcome
with its printable notice, the one-time notice, a wrong ID number, another town's case, today's cases."""
import re

import requests

from tests.portal.support import add_user, csrf_of, hidden, sign_in
from tests.support import TOWN_A, TOWN_B, VALID_ID, VALID_PHONE


def form_key_of(html: str) -> str:
    return hidden(html, "form_key")


def signed_in_clerk(city) -> tuple[requests.Session, str]:
    add_user(city, "clerk-21", "李娜", "clerk", f"town:{TOWN_A}")
    portal = city.url("portal")
    return sign_in(portal, "clerk-21", lands="/clerk"), portal


def application(html: str, **changes) -> dict:
    form = {"csrf_token": csrf_of(html), "form_key": form_key_of(html), "applicant_type": "person",
            "name": "王秀英", "id_number": VALID_ID, "phone": VALID_PHONE, "email": "", "notify": "sms",
            "town": TOWN_A, "delivery": "pickup", "material-idcard": "original", "material-photo": "original"}
    form.update(changes)
    return form


def test_clerk_accepts_prints_tells_what_is_missing_and_lists_today(city):
    city.start("portal", f"intake-{TOWN_A}", f"intake-{TOWN_B}")
    browser, portal = signed_in_clerk(city)

    # find the item by name; the result links to its form
    r = browser.get(portal + "/clerk", params={"q": "老年人优待"})
    assert r.status_code == 200 and 'href="/clerk/new/MZ-0001"' in r.text
    assert "MZ-0001" in browser.get(portal + "/clerk", params={"q": "mz-0001"}).text
    assert "没有找到" in browser.get(portal + "/clerk", params={"q": "没有这种事项"}).text
    live = browser.get(portal + "/clerk", params={"q": "老年人", "partial": "1"}, headers={"HX-Request": "true"})
    assert "MZ-0001" in live.text and "<html" not in live.text  # htmx: the results only

    # the form: every material with its states, the towns for 全城通办, the clerk's own town chosen
    form_page = browser.get(portal + "/clerk/new/MZ-0001")
    html = form_page.text
    assert form_page.status_code == 200 and "居民身份证" in html and "一寸免冠照片" in html
    for state in ("提交原件", "提交复印件", "未提交"):
        assert state in html
    assert '<label for="id_number">' in html and 'hx-post="/clerk/check?field=id_number"' in html
    assert f'<option value="{TOWN_A}" selected>' in html and "巴城镇" in html

    # checked as typed
    check = browser.post(portal + "/clerk/check?field=id_number", data={"id_number": "110105194912310021"},
                         headers={"X-CSRF-Token": csrf_of(html)})
    assert check.status_code == 200 and "居民身份证号码不正确" in check.text
    ok = browser.post(portal + "/clerk/check?field=phone", data={"phone": VALID_PHONE},
                      headers={"X-CSRF-Token": csrf_of(html)})
    assert ok.status_code == 200 and ok.text.strip() == ""

    # an invalid ID number: the form again, the message by the field, everything typed kept
    bad = browser.post(portal + "/clerk/new/MZ-0001",
                       data=application(html, id_number="110105194912310021", name="赵六", phone="13900001111",
                                        **{"material-photo": "none"}))
    assert bad.status_code == 400 and "居民身份证号码不正确" in bad.text
    assert 'value="赵六"' in bad.text and 'value="110105194912310021"' in bad.text and 'value="13900001111"' in bad.text
    assert 'id="material-photo-none" name="material-photo" value="none" checked' in bad.text

    # a complete application: accepted, its 受理通知书 printable as a PDF
    done = browser.post(portal + "/clerk/new/MZ-0001", data=application(html))
    assert done.status_code == 200 and "/clerk/cases/" in done.url, done.text
    complete_number = done.url.rsplit("/", 1)[1].split("?")[0]
    assert "已受理" in done.text and "受理通知书" in done.text and "<td>民政</td>" in done.text
    pdf_link = re.search(rf'href="(/clerk/cases/{complete_number}/notices/\d+\.pdf)"', done.text).group(1)
    pdf = browser.get(portal + pdf_link)
    assert pdf.status_code == 200 and pdf.headers["Content-Type"].startswith("application/pdf")
    assert pdf.content.startswith(b"%PDF")
    # the case really is at the window, accepted
    token = city.token("clerk", f"town:{TOWN_A}", "clerk-21")
    case = city.call("GET", f"intake-{TOWN_A}", f"/cases/{complete_number}", token).json()
    assert case["status"] in ("in_review", "completed") and case["first_responder"] == "clerk-21"

    # an incomplete one (the photo only as... not brought): the one-time notice lists what is missing
    second_form = browser.get(portal + "/clerk/new/MZ-0001").text
    incomplete = browser.post(portal + "/clerk/new/MZ-0001",
                              data=application(second_form, name="钱七", **{"material-photo": "none"}))
    assert incomplete.status_code == 200 and "一次性告知" in incomplete.text
    missing = re.search(r'<ul class="missing">(.*?)</ul>', incomplete.text, re.S).group(1)
    assert "一寸免冠照片" in missing and "居民身份证" not in missing
    incomplete_number = incomplete.url.rsplit("/", 1)[1].split("?")[0]
    assert city.call("GET", f"intake-{TOWN_A}", f"/cases/{incomplete_number}", token).json()["status"] == \
        "pending_materials"
    # its next step is 补正, an action on intake's API: the photo arrives, the case is accepted
    assert f'action="/clerk/cases/{incomplete_number}/supplement"' in incomplete.text
    supplemented = browser.post(portal + f"/clerk/cases/{incomplete_number}/supplement",
                                data={"csrf_token": csrf_of(incomplete.text), "materials": "photo"})
    assert supplemented.status_code == 200 and "补正材料已登记" in supplemented.text
    assert city.call("GET", f"intake-{TOWN_A}", f"/cases/{incomplete_number}", token).json()["status"] in (
        "in_review", "completed")

    # another town's case: a 404 page, as if it did not exist
    other = city.submit(town=TOWN_B)
    assert other.status_code == 201, other.text
    r = browser.get(portal + f"/clerk/cases/{other.json()['case_number']}")
    assert r.status_code == 404 and "未找到" in r.text
    assert browser.get(portal + f"/clerk/cases/{other.json()['case_number']}/notices/1.pdf").status_code == 404

    # today's cases: both, newest first, the applicant's ID masked
    today = browser.get(portal + "/clerk/today")
    assert today.status_code == 200
    assert today.text.index(incomplete_number) < today.text.index(complete_number)
    assert VALID_ID not in today.text and "*" in today.text
    assert other.json()["case_number"] not in today.text
