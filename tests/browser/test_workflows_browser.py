"""The workbenches in real Chromium, as people use them: the window clerk accepts a complete case with the keyboard
only and opens its printed notice, an incomplete one gets the one-time notice, the approver decides it, the village
agent's page refuses an in-person item. Steps run in the browser worker; the checks against the services here."""
from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest

from tests.browser import steps
from tests.browser.support import PASSWORD, add_staff
from tests.support import TOWN_A, VALID_ID, VALID_PHONE, wait_for

pytestmark = pytest.mark.full  # a real Chromium: long; the portal's HTTP tests stay in CI

VILLAGE = TOWN_A + "001"
PROMISED_ITEM = "RS-0001"  # 灵活就业人员社会保险登记: promised, decided by the town's 人社 office
IN_PERSON_ITEM = "MZ-0006"  # 结婚登记: the applicant in person, never through an agent


# --- steps (run in the browser worker) -------------------------------------------------------------

def choose_radio(page, name: str, value: str) -> None:
    """Keyboard only: Tab into the radio group (onto its checked radio, or its first when none is), then the
    arrow keys until `value` is chosen."""
    group = f'input[name="{name}"]'
    steps.tab_to(page, f"{group}:checked" if page.locator(f"{group}:checked").count() else f"{group} >> nth=0")
    target = page.locator(f'{group}[value="{value}"]')
    for key in ["ArrowRight"] * 6 + ["ArrowLeft"] * 12:
        if target.is_checked():
            return
        page.keyboard.press(key)
    raise AssertionError(f"{name}={value} could not be chosen with the arrow keys")


def type_into(page, selector: str, text: str) -> None:
    steps.tab_to(page, selector)
    page.keyboard.type(text)


def clerk_accepts(page, portal: str, item: str, materials: dict, name: str, shot: str) -> dict:
    """From the clerk's search to the outcome page, keyboard only: type the item code, Enter, Tab to the item,
    Enter, choose each material's state, type the applicant, Tab to 提交受理, Enter."""
    page.goto(portal + "/clerk")
    steps.tab_to(page, "#q")
    page.keyboard.type(item)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    steps.tab_to(page, f'a[href="/clerk/new/{item}"]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    for code, state in materials.items():
        choose_radio(page, f"material-{code}", state)
    type_into(page, "#name", name)
    type_into(page, "#id_number", VALID_ID)
    type_into(page, "#phone", VALID_PHONE)
    steps.shot(page, f"{shot}-form")
    steps.tab_to(page, "form.clerk-form button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    steps.shot(page, shot)
    return {**steps.page_state(page), "main": page.locator("main").inner_text()}


def printed_notice(page, portal: str) -> dict:
    """Tab to the first notice's 打印 link and fetch what it opens (with this browser's session)."""
    steps.tab_to(page, 'a[aria-label^="打印"]')
    href = page.evaluate("() => document.activeElement.getAttribute('href')")
    response = page.request.get(portal + href)
    return {"href": href, "status": response.status, "content_type": response.headers.get("content-type"),
            "pdf": base64.b64encode(response.body()).decode()}


def approver_decides(page, portal: str, case_number: str) -> dict:
    """The worklist, the case's work item, claim, approve: keyboard only."""
    page.goto(portal + "/approver")
    steps.shot(page, "worklist")
    steps.tab_to(page, f'a[href^="/approver/items/"]:text("{case_number}")')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    steps.tab_to(page, 'form[action$="/claim"] button')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    steps.tab_to(page, "#outcome-approved")
    page.keyboard.press("Space")
    steps.tab_to(page, "#decide button[type=submit]")
    steps.shot(page, "decision")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    steps.shot(page, "decided")
    return steps.page_state(page)


def applicant_looks_up(page, portal: str, case_number: str, query_code: str) -> dict:
    """The QR code's link on a phone-sized screen: the case number is filled in, the query code typed."""
    page.goto(f"{portal}/track?case={case_number}")
    type_into(page, "#query_code", query_code)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    steps.shot(page, "applicant-status")
    return {**steps.page_state(page), "main": page.locator("main").inner_text()}


def applicant_rates(page, level: int, comment: str) -> dict:
    """On the status page: the level, a comment, 提交评价."""
    choose_radio(page, "level", str(level))
    type_into(page, "#comment", comment)
    steps.tab_to(page, 'form[action="/track/rate"] button[type=submit]')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    steps.shot(page, "applicant-rated")
    return {**steps.page_state(page), "main": page.locator("main").inner_text()}


def supervisor_ratings(page, portal: str) -> dict:
    page.goto(portal + "/supervisor/ratings")
    steps.shot(page, "supervisor-ratings")
    return {**steps.page_state(page), "main": page.locator("main").inner_text()}


def agent_tries_in_person_item(page, portal: str, item: str) -> dict:
    """The station's page on a tablet: choose the item, fill in the villager and the authorisation, submit."""
    page.goto(portal + "/agent")
    page.select_option("#item", item)
    with page.expect_navigation():
        page.locator("#choose button").click()
    page.fill("#name", "王秀英")
    page.fill("#id-number", VALID_ID)
    page.fill("#phone", VALID_PHONE)
    page.fill("#auth-by", "王秀英")
    page.fill("#signed-at", "2026-12-01T09:30")
    with page.expect_navigation():
        page.locator("#submit button[type=submit]").click()
    steps.shot(page, "in-person-refused")
    return steps.page_state(page)


# --- the tests --------------------------------------------------------------------------------------

def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_a_case_from_the_window_to_the_applicants_rating_and_the_supervisor(city, browser, tmp_path):
    """The clerk accepts (keyboard only) and prints the notice, an incomplete application gets the one-time
    notice, the approver decides, the applicant looks the case up with the notice's query code and rates it
    badly, and the supervisor sees the bad rating."""
    city.start("portal", f"intake-{TOWN_A}", "approval-renshe", "evaluation")
    portal = city.url("portal")
    add_staff(city, "clerk-31", "clerk", f"town:{TOWN_A}", name="张敏")
    add_staff(city, "renshe-a", "approver", f"department:renshe@{TOWN_A}", name="赵刚")
    add_staff(city, "sup-31", "supervisor", f"town:{TOWN_A}", name="钱敏")
    signed = browser.run(steps.sign_in, portal=portal, staff_number="clerk-31", password=PASSWORD)
    assert signed["path"] == "/clerk"

    # complete: accepted, its 受理通知书 printed
    done = browser.run(clerk_accepts, portal=portal, item=PROMISED_ITEM, name="王秀英", shot="accepted",
                       materials={"idcard": "original", "form": "original"})
    assert done["path"].startswith("/clerk/cases/"), done
    number = done["path"].rsplit("/", 1)[1]
    assert "已受理" in done["main"] and "承诺办理通知书" in done["main"]  # a promised case: 承诺件
    case = city.case(number)
    assert case["status"] == "in_review" and case["item_code"] == PROMISED_ITEM
    printed = browser.run(printed_notice, portal=portal)
    assert printed["status"] == 200 and printed["content_type"].startswith("application/pdf")
    text = pdf_text(base64.b64decode(printed["pdf"]), tmp_path)
    assert number in text.replace(" ", "") and "张敏" in text
    query_code = re.search(r"查询码：\s*([A-Z0-9]{8})", text).group(1)  # printed with its QR code
    assert query_code in done["main"], "the clerk's page shows the code handed over"

    # incomplete: the one-time notice names what is missing
    short = browser.run(clerk_accepts, portal=portal, item=PROMISED_ITEM, name="李四", shot="one-time-notice",
                        materials={"idcard": "original"})
    assert "一次性告知" in short["main"] and "社会保险登记表" in short["main"], short
    assert city.case(short["path"].rsplit("/", 1)[1])["status"] == "pending_materials"

    # the approver, at another desk, decides the complete case
    browser.fresh()
    browser.run(steps.sign_in, portal=portal, staff_number="renshe-a", password=PASSWORD)
    wait_for(lambda: city.call("GET", "approval-renshe", "/work-items",
                               city.token("approver", f"department:renshe@{TOWN_A}", "renshe-a")).json()["items"],
             what="the work item at the desk")
    decided = browser.run(approver_decides, portal=portal, case_number=number)
    assert decided["alert"] is None, decided
    final = wait_for(lambda: (c := city.case(number))["status"] == "completed" and c, what="decided at intake")
    assert final["outcome"] == "approved" and final["history"][-1]["actor"] == "renshe-a"

    # the applicant, with no sign-in, on a tablet: the notice's code shows the case, which they rate badly
    browser.use_tablet()
    seen = browser.run(applicant_looks_up, portal=portal, case_number=number, query_code=query_code)
    assert "办结" in seen["main"] and "评价" in seen["main"], seen
    assert "王秀英" not in seen["main"] and VALID_ID not in seen["main"], "status, date and next step only"
    wait_for(lambda: city.listed("evaluation", f"/cases/{number}/events", "events"), what="evaluation knows it")
    rated = browser.run(applicant_rates, level=5, comment="窗口让我等了很久")
    assert rated["alert"] is None, rated

    # the town's supervisor sees it among the bad ratings, with its rectification
    browser.fresh()
    browser.run(steps.sign_in, portal=portal, staff_number="sup-31", password=PASSWORD)
    ratings = browser.run(supervisor_ratings, portal=portal)
    assert "窗口让我等了很久" in ratings["main"] and "非常不满意" in ratings["main"] and number in ratings["main"]


def test_village_agents_page_refuses_an_in_person_item(city, browser):
    city.start("portal", f"intake-{TOWN_A}", "agent")
    add_staff(city, "agent-31", "agent", f"village:{VILLAGE}", name="陈代办")
    browser.use_tablet()  # a village station's tablet
    browser.run(steps.sign_in, portal=city.url("portal"), staff_number="agent-31", password=PASSWORD)
    refused = browser.run(agent_tries_in_person_item, portal=city.url("portal"), item=IN_PERSON_ITEM)
    assert refused["alert"] and "不予代办" in refused["alert"] and "本人" in refused["alert"], refused
    services = city.call("GET", "agent", "/station/services", city.token("agent", f"village:{VILLAGE}", "agent-31"))
    assert all(s.get("status") != "relayed" for s in services.json().get("services", []))
