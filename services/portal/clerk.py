"""Portal pages: 综合窗口 (window clerk) workbench. Find an item, the application form built from its materials
checklist, the outcome with its notices to print, a case's page with its next steps, today's cases. Every call
goes to the clerk's own centre, `intake-<town>`; the rules are in clerk_rules."""
from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from werkzeug.wrappers import Response

from services.portal import clerk_rules as rules
from services.portal.forms import town_of_scope
from services.portal.pages import Page, View, page, redirect, render
from shared.workdays import today_in_shanghai

CLERK = ("clerk",)
CASE_NUMBER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
ITEM_CODE = re.compile(r"^[A-Za-z0-9-]{1,32}$")
# what the case page says after a step the clerk took (?done=<step>)
DONE = {"supplement": "补正材料已登记。", "return": "已退回，已出具不予受理通知书。", "review": "复核申请已登记。",
        "initial-review": "初审通过，已报送。", "pause": "已中止计时（特别程序）。", "resume": "已恢复计时。",
        "deferred": "容缺材料已登记。"}
STEPS = tuple(DONE)
TODAY_PAGE = 500


def _town(view: View) -> str | None:
    return town_of_scope(view.user.scope or "")


def _not_found(message: str = "没有这个办件，或它不属于本中心。"):
    return 404, Page("error.html.j2", {"title": "未找到", "message": message})


class ClerkPages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""

    handed_codes = rules.HandedCodes()  # one per portal process (see HandedCodes)

    # --- helpers (not entrypoints) ------------------------------------------------------------------

    def _intake(self, view: View) -> str:
        return f"intake-{_town(view)}"

    def _catalog(self, view: View) -> tuple[dict | None, str | None]:
        answer = view.call("GET", self._intake(view), "/catalog")
        if not answer.ok:
            return None, answer.message() or "事项目录暂不可用"
        return answer.body, None

    def _item(self, view: View, code: str) -> dict | None:
        if not ITEM_CODE.match(code or ""):
            return None
        answer = view.call("GET", self._intake(view), f"/catalog/items/{quote(code)}")
        return answer.body if answer.ok else None

    def _form_page(self, view: View, item: dict, towns: list[dict], values: dict, states: dict,
                   problems: dict | None = None, problem: str | None = None, status: int = 200):
        # one key per form shown (kept when shown again): a resend or a double click is the same application
        values = {**values, "form_key": (view.form.get("form_key") or uuid.uuid4().hex)[:64]}
        context = {"title": f"受理：{item['name']}", "item": item, "towns": towns, "values": values,
                   "materials": rules.material_rows(item, states), "problems": problems or {},
                   "problem": problem, "deliveries": [(d, rules.DELIVERY_NAMES.get(d, d))
                                                      for d in item.get("delivery") or ["pickup"]],
                   "kind_name": rules.KIND_NAMES.get(item.get("kind"), item.get("kind"))}
        return status, Page("clerk/form.html.j2", context)

    def _case_page(self, view: View, number: str, flash: str | None = None, problem: str | None = None,
                   status: int = 200):
        if not CASE_NUMBER.match(number or ""):
            return _not_found()
        answer = view.call("GET", self._intake(view), f"/cases/{number}")
        if answer.status in (403, 404) or not answer.ok:
            # a case one may not see looks like one that does not exist
            return _not_found() if answer.status in (400, 403, 404) else (
                502, Page("error.html.j2", {"title": "服务出错", "message": answer.message()}))
        case = answer.body
        catalog, _ = self._catalog(view)
        departments = {d["code"]: d["name"] for d in (catalog or {}).get("departments") or []}
        context = {"title": f"办件 {number}", "case": case, "flash": flash, "problem": problem,
                   "department_names": departments,
                   "steps": rules.next_steps(case, _town(view)), "rules": rules,
                   "query_code": self.handed_codes.get(view.session.token_hash, number),
                   "one_time": [n for n in case.get("notices") or [] if n["kind"] == "one_time_notice"]}
        return status, Page("clerk/case.html.j2", context)

    # --- pages -----------------------------------------------------------------------------------

    @page("GET", "/clerk", roles=CLERK)
    def clerk_home(self, view: View):
        """Find an item by name or code (事项查询); with htmx the results follow the typing."""
        query = (view.query.get("q") or "").strip()[:64]
        catalog, problem = self._catalog(view) if query else (None, None)
        found = rules.search_items(catalog["items"], query) if catalog else []
        context = {"title": "受理·查找事项", "q": query, "found": found, "searched": bool(query),
                   "problem": problem, "rules": rules}
        if view.request.headers.get("HX-Request") and view.query.get("partial"):
            return Page("clerk/_results.html.j2", context)
        return Page("clerk/search.html.j2", context)

    @page("GET", "/clerk/new/<string:code>", roles=CLERK)
    def clerk_form(self, view: View):
        """The application form: the item's materials checklist, the applicant, the household town, delivery."""
        item = self._item(view, view.params["code"])
        if item is None:
            return _not_found("目录中没有这个事项。")
        catalog, _ = self._catalog(view)
        towns = (catalog or {}).get("towns") or []
        return self._form_page(view, item, towns, rules.form_values({}, _town(view)), {})

    @page("POST", "/clerk/new/<string:code>", roles=CLERK)
    def clerk_submit(self, view: View):
        """Submit to the clerk's intake (POST /cases); problems are shown by the form, what was typed kept."""
        item = self._item(view, view.params["code"])
        if item is None:
            return _not_found("目录中没有这个事项。")
        catalog, _ = self._catalog(view)
        towns = (catalog or {}).get("towns") or []
        own = _town(view)
        states = rules.states_from_form(item, view.form)
        body, problems, values = rules.build_submission(item, view.form, own, towns)
        if body is None:
            return self._form_page(view, item, towns, values, states, problems, "请更正标出的内容后再提交。", 400)
        key = (view.form.get("form_key") or "")[:64]
        answer = self.upstreams.call(view.user, "POST", self._intake(view), "/cases", body=body,
                                     headers={"Idempotency-Key": key} if key else None)
        if not answer.ok:
            by_field, rest = rules.service_problems(answer.body.get("details") if isinstance(answer.body, dict)
                                                    else None)
            message = answer.message() if not by_field else "请更正标出的内容后再提交。"
            if rest:
                message = f"{message}（{'；'.join(rest)}）" if by_field else answer.message()
            status = answer.status if 400 <= answer.status < 500 else 502
            return self._form_page(view, item, towns, values, states, by_field, message or "提交失败", status)
        number = answer.body["case_number"]
        self.handed_codes.keep(view.session.token_hash, number, answer.body.get("query_code"))
        return redirect(f"/clerk/cases/{number}?done=new")

    @page("POST", "/clerk/check", roles=CLERK)
    def clerk_check(self, view: View):
        """One typed field checked as typed (htmx, on change): the message fragment, empty when fine."""
        name = view.query.get("field") or ""
        if name not in rules.CHECKED_FIELDS:
            return Response("", status=400, mimetype="text/html")
        if name == "id_number" and view.form.get("applicant_type") == "organisation":
            name = "credit_code"
        value = view.form.get("id_number" if name == "credit_code" else name) or ""
        return render("clerk/_check.html.j2", message=rules.check_field(name, value))

    @page("GET", "/clerk/cases/<string:case_number>", roles=CLERK)
    def clerk_case(self, view: View):
        """A case: status, kind, deadline, its notices to print, the timeline, departments' progress, next steps."""
        done = view.query.get("done")
        flash = "已提交。" if done == "new" else DONE.get(done or "")
        return self._case_page(view, view.params["case_number"], flash=flash)

    @page("POST", "/clerk/cases/<string:case_number>/<string:step>", roles=CLERK)
    def clerk_step(self, view: View):
        """A step at the window on the intake API (补正, 退回, 复核, 初审, 中止, 恢复, 容缺补交)."""
        number, step = view.params["case_number"], view.params["step"]
        if step not in STEPS or not CASE_NUMBER.match(number):
            return _not_found()
        form = view.request.form
        if step in ("supplement", "deferred"):
            body = {"materials": [m for m in form.getlist("materials") if m]}
            if not body["materials"]:
                return self._case_page(view, number, problem="请勾选申请人带来的材料。", status=400)
        elif step in ("return", "review"):
            body = {"reason": (form.get("reason") or "").strip()}
            if not body["reason"]:
                return self._case_page(view, number, problem="请填写理由。", status=400)
        elif step == "pause":
            body = {"procedure": form.get("procedure") or "", "reason": (form.get("reason") or "").strip()}
            if body["procedure"] not in rules.SPECIAL_PROCEDURES or not body["reason"]:
                return self._case_page(view, number, problem="请选择特别程序并填写理由。", status=400)
        else:
            body = None
        answer = view.call("POST", self._intake(view), f"/cases/{number}/{step}", body=body)
        if answer.status == 404:
            return _not_found()
        if not answer.ok:
            status = answer.status if 400 <= answer.status < 500 else 502
            return self._case_page(view, number, problem=f"未能办理：{answer.message()}", status=status)
        return redirect(f"/clerk/cases/{number}?done={step}")

    @page("GET", "/clerk/cases/<string:case_number>/notices/<int:notice_id>.pdf", roles=CLERK)
    def clerk_notice_pdf(self, view: View):
        """A notice to print: intake's PDF, passed on as application/pdf."""
        number, notice_id = view.params["case_number"], view.params["notice_id"]
        if not CASE_NUMBER.match(number):
            return _not_found()
        code = self.handed_codes.get(view.session.token_hash, number)
        # with the code just handed over: printed on the notice (in the body of a POST, never in a URL)
        answer = view.call("POST" if code else "GET", self._intake(view), f"/cases/{number}/notices/{notice_id}.pdf",
                           body={"query_code": code} if code else None)
        if not answer.ok or not isinstance(answer.body, bytes) or not answer.content_type.startswith("application/pdf"):
            return _not_found("没有这份文书。")
        response = Response(answer.body, status=200, mimetype="application/pdf")
        response.headers["Content-Disposition"] = f'inline; filename="{number}-{notice_id}.pdf"'
        response.headers["Cache-Control"] = "no-store"
        return response

    @page("GET", "/clerk/today", roles=CLERK)
    def clerk_today(self, view: View):
        """Today's cases of the clerk's centre, newest first (applicant numbers masked by intake)."""
        today = today_in_shanghai(datetime.now(UTC))
        cases, offset, problem = [], 0, None
        while True:  # intake lists newest first: read pages until one reaches back before today
            answer = view.call("GET", self._intake(view), "/cases", params={"limit": TODAY_PAGE, "offset": offset})
            if not answer.ok:
                problem = f"办件列表暂不可用：{answer.message()}"
                break
            batch = answer.body["cases"]
            cases += rules.todays_cases(batch, today)
            if len(batch) < TODAY_PAGE or rules.accepted_on(batch[-1]) != today or offset > 20 * TODAY_PAGE:
                break
            offset += TODAY_PAGE
        return Page("clerk/today.html.j2", {"title": "今日办件", "cases": rules.todays_cases(cases, today),
                                            "today": today, "problem": problem, "rules": rules})
