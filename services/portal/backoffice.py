"""Portal pages: approver and department head workbench (后台审批).

The worklist by urgency (red, yellow, the rest), one work item with its facts and every step the approval
API offers (claim, decide, ask for materials all at once, special procedures, the extension and, for the
department head, its approval), and the office's AB posts (AB岗) with absences and handovers. Every step is
the approval service's: this module only turns forms into its requests and its answers into pages."""
from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from services.portal import workbench_rules as rules
from services.portal.pages import Page, View, page, redirect
from shared.auth import parse_scope
from shared.workdays import today_in_shanghai

ROLES = ("approver", "department_head")
# ?done=<step> after a step succeeded (post, redirect, get): what the page then says
DONE = {"claimed": "已认领。", "decided": "已作出决定，结果已发往受理中心。",
        "materials": "已一次性告知补正材料，案件退回窗口，计时暂停。",
        "procedure": "特别程序已启动，计时暂停。", "procedure_end": "特别程序已结束，恢复计时。",
        "extension": "延期申请已提交，待部门负责人批准。", "extension_approved": "延期已批准，已报受理中心调整期限。",
        "absence": "已登记不在岗，其待办已按AB岗移交。", "post": "AB岗已设置。"}


def _desk(view: View) -> tuple[str, str | None, str]:
    """The approver's instance, their office (a town code or None for the city level) and its name."""
    scope = parse_scope(view.user.scope)
    office = scope.town or "city"
    return f"approval-{scope.department}", scope.town, office


def _form(view: View) -> dict:
    """The form, with repeated checkboxes (material) as a list."""
    return {**view.form, "material_codes": view.request.form.getlist("material")}


class BackOfficePages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""

    # --- the worklist -----------------------------------------------------------------------------------

    @page("GET", "/approver", roles=ROLES)
    def approver_worklist(self, view: View):
        """Open work by urgency, with red/yellow said in words as well as colour; ?assignee=me|none."""
        instance, _town, office = _desk(view)
        who = view.query.get("assignee", "")
        params = {"status": "open", **({"assignee": who} if who in ("me", "none") else {})}
        answer = view.call("GET", instance, "/work-items", params=params)
        if not answer.ok:
            return answer.status if answer.status < 500 else 502, Page(
                "backoffice/worklist.html.j2", {"items": [], "paused": [], "who": who, "office": office,
                                                "today": None, "problem": answer.message(), **self._names()})
        body = answer.body
        today = rules.day_of(body["today"])
        yellow = rules.yellow_days_of(self.platform.settings.extra)
        return Page("backoffice/worklist.html.j2", {
            "items": rules.by_urgency(body["items"], today, yellow),
            "paused": rules.by_urgency(body["paused"], today, yellow), "today": today, "who": who,
            "office": office, "yellow_days": yellow, "flash": DONE.get(view.query.get("done", "")),
            **self._names()})

    @staticmethod
    def _names() -> dict:
        return {"STATUS": rules.WORK_STATUS, "KINDS": rules.KIND_NAMES, "OUTCOMES": rules.OUTCOMES,
                "EXTENSION_STATUS": rules.EXTENSION_STATUS}

    # --- one work item ------------------------------------------------------------------------------------

    @page("GET", "/approver/items/<int:item_id>", roles=ROLES)
    def approver_item(self, view: View):
        return self._item_page(view, view.params["item_id"])

    def _item_page(self, view: View, item_id: int, status: int = 200, problem: str | None = None,
                   problems: dict | None = None, step: str | None = None):
        instance, town, _office = _desk(view)
        answer = view.call("GET", instance, f"/work-items/{item_id}")
        if not answer.ok:  # one out of scope answers like one that does not exist
            return 404, Page("error.html.j2", {"title": "未找到", "message": "没有这件待办，或不在您的职责范围内。"})
        item = answer.body
        yellow = rules.yellow_days_of(self.platform.settings.extra)
        colour = rules.colour_of(item, today_in_shanghai(datetime.now(UTC)), yellow)
        return status, Page("backoffice/item.html.j2", {
            "item": item, "colour": colour, "colour_label": rules.COLOUR_LABELS[colour],
            "materials": self._catalogue_materials(view, town, item["item_code"]),
            "procedures": rules.SPECIAL_PROCEDURES, "problem": problem, "problems": problems or {}, "step": step,
            "form": view.form, "flash": DONE.get(view.query.get("done", "")), **self._names()})

    def _catalogue_materials(self, view: View, town: str | None, code: str) -> list[dict]:
        """The item's materials checklist from a window's catalogue (any town's: one city catalogue)."""
        instances = self.upstreams.instances("intake-")
        if not instances:
            return []
        instance = f"intake-{town}" if town and f"intake-{town}" in instances else instances[0]
        answer = view.call("GET", instance, f"/catalog/items/{quote(code)}")
        return answer.body.get("materials", []) if answer.ok and isinstance(answer.body, dict) else []

    def _step(self, view: View, path: str, parsed: rules.Parsed | None, done: str, step: str):
        """Send a step to the approval API; on success back to the item (post, redirect, get), else the item
        page again with the service's reason (and field problems next to the form)."""
        item_id = view.params["item_id"]
        if parsed is not None and not parsed.ok:
            return self._item_page(view, item_id, 400, "请更正标出的内容。", parsed.problems, step)
        instance, _town, _office = _desk(view)
        answer = view.call("POST", instance, f"/work-items/{item_id}{path}",
                           body=parsed.body if parsed is not None else None)
        if answer.ok:
            return redirect(f"/approver/items/{item_id}?done={done}")
        if answer.status == 404:
            return self._item_page(view, item_id)
        status = answer.status if 400 <= answer.status < 500 else 502
        return self._item_page(view, item_id, status, answer.message(), rules.service_problems(answer.body), step)

    @page("POST", "/approver/items/<int:item_id>/claim", roles=ROLES)
    def approver_claim(self, view: View):
        return self._step(view, "/claim", None, "claimed", "claim")

    @page("POST", "/approver/items/<int:item_id>/decision", roles=ROLES)
    def approver_decide(self, view: View):
        return self._step(view, "/decision", rules.decision_body(view.form), "decided", "decide")

    @page("POST", "/approver/items/<int:item_id>/materials", roles=ROLES)
    def approver_materials(self, view: View):
        instance, town, _office = _desk(view)
        answer = view.call("GET", instance, f"/work-items/{view.params['item_id']}")
        listed = self._catalogue_materials(view, town, answer.body["item_code"]) if answer.ok else []
        return self._step(view, "/materials", rules.materials_body(_form(view), listed), "materials", "materials")

    @page("POST", "/approver/items/<int:item_id>/procedure", roles=ROLES)
    def approver_procedure(self, view: View):
        return self._step(view, "/procedure", rules.procedure_body(view.form), "procedure", "procedure")

    @page("POST", "/approver/items/<int:item_id>/procedure/end", roles=ROLES)
    def approver_procedure_end(self, view: View):
        return self._step(view, "/procedure/end", rules.reason_body(view.form, "请写明特别程序的结论"),
                          "procedure_end", "procedure_end")

    @page("POST", "/approver/items/<int:item_id>/extension", roles=ROLES)
    def approver_extension(self, view: View):
        return self._step(view, "/extension", rules.extension_body(view.form), "extension", "extension")

    @page("POST", "/approver/items/<int:item_id>/extension/approve", roles=("department_head",))
    def approver_extension_approve(self, view: View):
        return self._step(view, "/extension/approve", None, "extension_approved", "extension_approve")

    # --- AB posts, absences, handovers ------------------------------------------------------------------

    @page("GET", "/approver/posts", roles=ROLES)
    def approver_posts(self, view: View):
        return self._posts_page(view)

    def _posts_page(self, view: View, status: int = 200, problem: str | None = None, problems: dict | None = None):
        instance, _town, office = _desk(view)
        answer = view.call("GET", instance, "/posts")
        posts = answer.body["posts"] if answer.ok else []
        handovers = {}
        for post in posts:
            h = view.call("GET", instance, f"/posts/{post['office']}/handovers")
            handovers[post["office"]] = list(reversed(h.body["handovers"])) if h.ok else []  # newest first
        return status, Page("backoffice/posts.html.j2", {
            "posts": posts, "handovers": handovers, "office": office,
            "may_manage": view.user.role == "department_head", "problem": problem or (
                None if answer.ok else answer.message()), "problems": problems or {}, "form": view.form,
            "flash": DONE.get(view.query.get("done", ""))})

    def _manage(self, view: View, method: str, path: str, parsed: rules.Parsed, done: str):
        if not parsed.ok:
            return self._posts_page(view, 400, "请更正标出的内容。", parsed.problems)
        instance, _town, office = _desk(view)
        answer = view.call(method, instance, f"/posts/{office}{path}", body=parsed.body)
        if answer.ok:
            return redirect(f"/approver/posts?done={done}")
        status = answer.status if 400 <= answer.status < 500 else 502
        return self._posts_page(view, status, answer.message(), rules.service_problems(answer.body))

    @page("POST", "/approver/posts/absences", roles=("department_head",))
    def approver_absence(self, view: View):
        """Record an absence of the office's A, B or head (their open work moves to who is present)."""
        return self._manage(view, "POST", "/absences", rules.absence_body(view.form), "absence")

    @page("POST", "/approver/posts", roles=("department_head",))
    def approver_set_post(self, view: View):
        """Set the office's A and B holders (and the head who falls back)."""
        return self._manage(view, "PUT", "", rules.post_body(view.form), "post")

