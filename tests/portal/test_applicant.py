"""The applicant's own lookup at the portal: the query code printed on the notice finds the case, wrong input
reveals nothing and is rate-limited, and after completion a rating and a complaint reach evaluation."""
import re

import requests

from tests.portal.support import hidden
from tests.support import TOWN_A, VALID_PHONE, wait_for
from tests.unit.test_notices import pdf_text, squeeze


def form_token(html: str) -> str:
    return hidden(html, "form_token")


def proof_of(html: str) -> str:
    return hidden(html, "proof")


def test_the_code_on_the_notice_tracks_the_case_then_rating_and_complaint(city, tmp_path):
    portal = city.url("portal")
    city.start("portal", f"intake-{TOWN_A}", "approval-minzheng", "evaluation", extra={"portal_url": portal})
    intake, clerk = f"intake-{TOWN_A}", city.token("clerk", f"town:{TOWN_A}", "clerk-1")
    r = city.submit("MZ-0001")
    assert r.status_code == 201, r.text
    number, code = r.json()["case_number"], r.json()["query_code"]
    assert r.json()["track_url"] == f"{portal}/track?case={number}"
    # the plaintext is in that answer only: not in the case, the list, or the history
    assert code not in city.call("GET", intake, f"/cases/{number}", clerk).text
    assert code not in city.call("GET", intake, "/cases", clerk).text

    # printed on the acceptance notice (with the code just issued), with the QR link
    notice = next(n for n in city.case(number)["notices"] if n["kind"] in ("acceptance", "promise"))
    pdf = city.call("POST", intake, f"/cases/{number}/notices/{notice['id']}.pdf", clerk, {"query_code": code})
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    printed = re.search(r"查询码：([A-Z0-9]{8})", squeeze(pdf_text(pdf.content, tmp_path))).group(1)
    assert printed == code and f"{portal}/track?case={number}" in squeeze(pdf_text(pdf.content, tmp_path))
    assert city.call("POST", intake, f"/cases/{number}/notices/{notice['id']}.pdf", clerk,
                     {"query_code": "WRONG234"}).status_code == 400

    # the applicant scans the QR code: the form with the case number filled in
    browser = requests.Session()
    page = browser.get(f"{portal}/track", params={"case": number})
    assert page.status_code == 200 and f'value="{number}"' in page.text
    token = form_token(page.text)
    found = browser.post(f"{portal}/track", data={"form_token": token, "case_number": number, "query_code": printed,
                                                  "via": "qr"})
    assert found.status_code == 200, found.text
    assert "承诺办结日期" in found.text and "下一步" in found.text
    assert "张三" not in found.text and VALID_PHONE not in found.text

    # a wrong code and an unknown case: the same answer
    wrong = browser.post(f"{portal}/track", data={"form_token": token, "case_number": number,
                                                  "query_code": "ZZZZ2345"})
    unknown = browser.post(f"{portal}/track", data={"form_token": token, "case_number": f"{TOWN_A}-20200101-09999",
                                                    "query_code": printed})
    assert wrong.status_code == unknown.status_code == 404
    message = re.compile(r'<p class="problem" role="alert">([^<]+)</p>')
    assert message.search(wrong.text).group(1) == message.search(unknown.text).group(1)
    # a form posted without this browser's token is refused
    assert requests.post(f"{portal}/track", data={"form_token": token, "case_number": number,
                                                  "query_code": printed}).status_code == 403

    # once completed (the instant item is decided at once), the applicant rates and complains
    wait_for(lambda: city.case(number)["status"] == "completed", what="the case completed")
    done = browser.post(f"{portal}/track", data={"form_token": token, "case_number": number, "query_code": printed,
                                                 "via": "qr"})
    assert "已办结" in done.text and 'name="level"' in done.text
    proof = proof_of(done.text)
    rate = {"form_token": token, "case_number": number, "proof": proof, "via": "qr", "level": "4",
            "comment": "等候时间较长"}
    rated = wait_for(lambda: (lambda r: r.status_code == 200 and r)(browser.post(f"{portal}/track/rate", data=rate)),
                     what="evaluation heard of the case")
    assert "感谢您的评价" in rated.text
    listed = city.call("GET", "evaluation", f"/ratings?case_number={number}", city.ops).json()["ratings"]
    assert [(x["level"], x["channel"], x["stage"]) for x in listed] == [(4, "qr_code", "completion")]
    again = browser.post(f"{portal}/track/rate", data={**rate, "level": "1"})
    assert again.status_code == 409 and "已评价过" in again.text
    # without the proof of a lookup nothing is recorded
    assert browser.post(f"{portal}/track/rate", data={**rate, "proof": "1.x"}).status_code == 403
    complained = browser.post(f"{portal}/track/complain", data={
        "form_token": token, "case_number": number, "proof": proof, "text": "窗口态度不好", "name": "张三",
        "phone": VALID_PHONE})
    assert complained.status_code == 200 and "投诉已受理" in complained.text
    complaints = city.call("GET", "evaluation", "/complaints", city.ops).json()["complaints"]
    assert [c["case_number"] for c in complaints] == [number]

    # two wrong attempts so far from this address: three more, then even the right code is refused (429)
    for _ in range(3):
        assert browser.post(f"{portal}/track", data={"form_token": token, "case_number": number,
                                                     "query_code": "ZZZZ2345"}).status_code == 404
    sixth = browser.post(f"{portal}/track", data={"form_token": token, "case_number": number, "query_code": printed})
    assert sixth.status_code == 429 and "次数过多" in sixth.text


def test_a_new_code_replaces_the_lost_one(city):
    city.start(f"intake-{TOWN_A}")
    intake, clerk = f"intake-{TOWN_A}", city.token("clerk", f"town:{TOWN_A}", "clerk-1")
    first = city.submit("MZ-0001").json()
    number = first["case_number"]
    lookup = lambda code: city.call("POST", intake, "/public/lookup", city.ops,  # noqa: E731
                                    {"case_number": number, "query_code": code})
    assert lookup(first["query_code"]).status_code == 200
    assert set(lookup(first["query_code"]).json()) == {"case_number", "status", "status_text", "promised_date",
                                                       "completed_on", "next_step"}
    new = city.call("POST", intake, f"/cases/{number}/query-code", clerk)
    assert new.status_code == 200 and new.json()["query_code"] != first["query_code"]
    assert lookup(first["query_code"]).status_code == 404 and lookup(new.json()["query_code"]).status_code == 200
    assert "query_code_issued" in [h["action"] for h in city.case(number)["history"]]
    # only the portal's service may look up; a clerk may not
    assert city.call("POST", intake, "/public/lookup", clerk,
                     {"case_number": number, "query_code": new.json()["query_code"]}).status_code == 403
