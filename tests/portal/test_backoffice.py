"""The approver's workbench through the portal, with requests as the browser: the worklist by urgency (red,
yellow, the rest), claiming and deciding a promised case (then decided at the centre), the extension asked by
the approver and approved by the department head, and a refusal without a reason kept on the page."""
from __future__ import annotations

import re
from datetime import date

from shared.catalog import load_catalog
from shared.clock import Clock
from shared.workdays import WorkingCalendar
from tests.portal.support import add_user, csrf_of, sign_in
from tests.support import TOWN_B, wait_for

SCOPE = f"department:renshe@{TOWN_B}"


class MovableToday(Clock):
    """Real time, but the approval desk's "today" may be moved on (to make work red and yellow)."""

    today_is: date | None = None

    def today(self) -> date:
        return self.today_is or super().today()


def required(code: str) -> list[str]:
    return [m["code"] for m in load_catalog().item(code)["materials"] if m["required"]]


def test_approver_works_the_list_by_urgency_claims_and_decides(city):
    clock = MovableToday()
    city.start("portal", f"intake-{TOWN_B}")
    city.start("approval-renshe", build={"clock": clock})
    add_user(city, "approver-7", "王审批", "approver", SCOPE)
    add_user(city, "head-1", "赵科长", "department_head", SCOPE)
    portal = city.url("portal")

    # submitted out of order: 15, 10, 7 and 5 working days
    numbers = {}
    for code in ("RS-0008", "RS-0003", "RS-0007", "RS-0001"):
        r = city.submit(code, TOWN_B, materials=required(code))
        assert r.status_code == 201, r.text
        numbers[code] = r.json()["case_number"]
    token = city.token("approver", SCOPE, "approver-7")
    wait_for(lambda: len(city.call("GET", "approval-renshe", "/work-items", token).json()["items"]) == 4,
             what="four work items at the department")

    approver = sign_in(city.url("portal"), "approver-7", lands="/approver")
    # the desk's today one working day past RS-0001's deadline: it is red, RS-0007 (two days later) yellow
    deadline = date.fromisoformat(city.case(numbers["RS-0001"], TOWN_B)["deadline"])
    clock.today_is = WorkingCalendar().add_working_days(deadline, 1).date
    page = approver.get(portal + "/approver").text
    order = [code for code in sorted(numbers, key=lambda c: page.index(numbers[c]))]
    assert order == ["RS-0001", "RS-0007", "RS-0003", "RS-0008"]
    rows = re.findall(r'<tr class="urgency-(\w+)">', page)
    assert rows == ["red", "yellow", "green", "green"]
    assert "红牌·已超期" in page and "黄牌·临近期限" in page, "the colour is said in words too"
    clock.today_is = None
    ids = {code: int(re.search(rf'href="/approver/items/(\d+)">{n}<', page).group(1)) for code, n in numbers.items()}

    # claim from the list, then refuse without a reason: kept on the page, nothing decided
    item_id = ids["RS-0001"]
    csrf = csrf_of(page)
    r = approver.post(portal + f"/approver/items/{item_id}/claim", data={"csrf_token": csrf})
    assert r.status_code == 200 and "已认领" in r.text and "approver-7" in r.text
    r = approver.post(portal + f"/approver/items/{item_id}/decision", data={"csrf_token": csrf, "outcome": "refused"})
    assert r.status_code == 400 and "不予批准须写明理由" in r.text
    assert city.case(numbers["RS-0001"], TOWN_B)["status"] == "in_review"
    # and a form without its CSRF token does nothing
    assert approver.post(portal + f"/approver/items/{item_id}/decision",
                         data={"outcome": "refused", "reason": "x"}).status_code == 403

    r = approver.post(portal + f"/approver/items/{item_id}/decision",
                      data={"csrf_token": csrf, "outcome": "refused", "reason": "参保信息与实际不符"})
    assert r.status_code == 200 and "已作出决定" in r.text and "参保信息与实际不符" in r.text
    done = wait_for(lambda: (c := city.case(numbers["RS-0001"], TOWN_B))["status"] == "completed" and c,
                    what="the case decided at the centre")
    assert done["outcome"] == "refused" and done["reason"] == "参保信息与实际不符"
    assert done["history"][-1]["actor"] == "approver-7"
    # deciding again: the service's reason on the page, not a 500
    r = approver.post(portal + f"/approver/items/{item_id}/decision",
                      data={"csrf_token": csrf, "outcome": "approved"})
    assert r.status_code == 409 and 'role="alert"' in r.text

    # an extension: the approver asks, the department head approves
    other = ids["RS-0003"]
    r = approver.post(portal + f"/approver/items/{other}/extension",
                      data={"csrf_token": csrf, "days": "2", "reason": "需补充调查参保记录"})
    assert r.status_code == 200 and "待部门负责人批准" in r.text
    assert "批准延期</button>" not in r.text, "only the department head approves"
    head = sign_in(city.url("portal"), "head-1", lands="/approver")
    page = head.get(portal + f"/approver/items/{other}").text
    assert "批准延期</button>" in page
    r = head.post(portal + f"/approver/items/{other}/extension/approve", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 200 and "已批准，已报受理中心" in r.text

    # a special procedure stops the clock and ends; then the materials, all at once, back to the window
    third = ids["RS-0007"]
    r = approver.post(portal + f"/approver/items/{third}/procedure",
                      data={"csrf_token": csrf, "procedure": "现场勘察", "reason": "核实就业困难情况"})
    assert r.status_code == 200 and "特别程序已启动" in r.text and "结束特别程序</button>" in r.text
    r = approver.post(portal + f"/approver/items/{third}/procedure/end",
                      data={"csrf_token": csrf, "reason": "勘察属实"})
    assert r.status_code == 200 and "特别程序已结束" in r.text
    r = approver.post(portal + f"/approver/items/{third}/materials",
                      data={"csrf_token": csrf, "material": ["proof"], "other": "劳动合同解除证明",
                            "reason": "证明不全"})
    assert r.status_code == 200 and "已一次性告知补正材料" in r.text, r.text
    assert "劳动合同解除证明" in r.text
    wait_for(lambda: city.case(numbers["RS-0007"], TOWN_B)["status"] == "pending_materials",
             what="the case back at the window for materials")

    # the AB posts page: the head sets the post and records an absence; an approver only reads
    r = head.post(portal + "/approver/posts", data={"csrf_token": csrf_of(page), "a": "approver-7", "b": "approver-8"})
    assert r.status_code == 200 and "AB岗已设置" in r.text and "approver-8" in r.text
    r = head.post(portal + "/approver/posts/absences", data={
        "csrf_token": csrf_of(page), "holder": "approver-7", "from": "2026-01-01T00:00", "to": "2099-01-01T00:00",
        "reason": "培训"})
    assert r.status_code == 200 and "已登记不在岗" in r.text and "培训" in r.text
    posts = approver.get(portal + "/approver/posts").text
    assert "培训" in posts and "登记不在岗" not in posts
    assert approver.post(portal + "/approver/posts", data={"csrf_token": csrf, "a": "x", "b": "y"}).status_code == 403
