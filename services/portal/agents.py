"""Portal pages: village agent and town agent workbenches (代办员, 镇代理员).

A village agent submits for a villager with the authorisation (代办 with 委托) or records help only (帮办); what
the station may not do (an item that needs the applicant in person …) is refused by the agent service, and the
page says its reason. Each form carries a fresh idempotency key, so a form posted twice makes one service.
Then the replies owed (回复) and the station's log (服务台账). The town agent sees the escalations (上报件) in
flight against the city's deadline and relays them or brings the decision back."""
from __future__ import annotations

import uuid
from urllib.parse import quote

from services.portal import workbench_rules as rules
from services.portal.pages import Page, View, page, redirect
from shared.auth import parse_scope

AGENT = "agent"  # the agent service's instance
KEY_MAX = 200  # the agent API's Idempotency-Key bound
HOP_DONE = {"relayed": "已报送市级部门。", "returned": "已将市级部门的决定带回镇中心。"}

NAMES = {"STATION_STATUS": rules.STATION_STATUS, "ESCALATION_STATUS": rules.ESCALATION_STATUS,
         "REPLY_METHODS": rules.REPLY_METHODS, "OUTCOMES": rules.OUTCOMES, "KINDS": rules.KIND_NAMES}


def _village(view: View) -> tuple[str, str]:
    scope = parse_scope(view.user.scope)
    return scope.village or "", scope.town or ""


class AgentPages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""

    # --- the village station: submit or help --------------------------------------------------------------

    def _catalogue_instance(self, town: str) -> str | None:
        instances = self.upstreams.instances("intake-")
        if not instances:
            return None
        return f"intake-{town}" if f"intake-{town}" in instances else instances[0]

    def _station_page(self, view: View, code: str | None, status: int = 200, problem: str | None = None,
                      problems: dict | None = None, flash: str | None = None, form: dict | None = None,
                      served: dict | None = None, keep_key: bool = False):
        """The station's form: choose an item, then submit with authorisation or record help only."""
        _village_code, town = _village(view)
        instance = self._catalogue_instance(town)
        items, item = [], None
        if instance:
            listed = view.call("GET", instance, "/catalog")
            items = listed.body.get("items", []) if listed.ok else []
            if code:
                one = view.call("GET", instance, f"/catalog/items/{quote(code)}")
                item = one.body if one.ok else None
        if code and item is None and not problem:
            status, problem = 404, f"目录中没有事项 {code}。"
        form = form or {}
        key = form.get("request_key") if keep_key and form.get("request_key") else str(uuid.uuid4())
        return status, Page("agents/station.html.j2", {
            # one key per form: the help form's is its own, so the two never answer for each other
            "items": items, "item": item, "code": code or "", "request_key": key, "help_key": str(uuid.uuid4()),
            "form": form,
            "chosen": set(form.get("material_codes", [])), "problem": problem, "problems": problems or {},
            "flash": flash, "served": served, "sign_methods": rules.SIGN_METHODS, **NAMES})

    @page("GET", "/agent", roles=("agent",))
    def agent_station(self, view: View):
        return self._station_page(view, (view.query.get("item") or "").strip() or None)

    def _serve(self, view: View, path: str, parsed: rules.Parsed, code: str | None):
        """Send a station service once per the form's key; the page says what the service did."""
        form = {**view.form, "material_codes": view.request.form.getlist("material")}
        key = (view.form.get("request_key") or "").strip()
        if not key or len(key) > KEY_MAX:
            return self._station_page(view, code, 400, "表单缺少防重复提交编号，请重新打开页面填写。", form=form)
        if not parsed.ok:
            return self._station_page(view, code, 400, "请更正标出的内容。", parsed.problems, form=form, keep_key=True)
        answer = self.upstreams.call(view.user, "POST", AGENT, path, body=parsed.body,
                                     headers={"Idempotency-Key": key})
        if not answer.ok:
            status = answer.status if 400 <= answer.status < 500 else 502
            return self._station_page(view, code, status, answer.message(), rules.service_problems(answer.body),
                                      form=form, keep_key=True)
        record = answer.body
        if record["status"] == "refused":  # logged at the station, nothing submitted: say why
            return self._station_page(view, code, 200, f"不予代办：{record['reason']}", served=record)
        again = "（同一表单已提交过，未重复办理）" if answer.status == 200 else ""
        label = rules.STATION_STATUS.get(record["status"], record["status"])
        return self._station_page(view, code, flash=f"已登记服务 {record['number']}：{label}{again}", served=record)

    @page("POST", "/agent/submit", roles=("agent",))
    def agent_submit(self, view: View):
        """代办 with the villager's authorisation."""
        _village_code, town = _village(view)
        form = {**view.form, "material_codes": view.request.form.getlist("material")}
        return self._serve(view, "/station/submissions", rules.submission_body(form, town),
                           (view.form.get("item_code") or "").strip() or None)

    @page("POST", "/agent/help", roles=("agent",))
    def agent_help(self, view: View):
        """帮办: the villager declined to authorise; the help is logged, nothing is submitted."""
        return self._serve(view, "/station/help", rules.help_body(view.form),
                           (view.form.get("item_code") or "").strip() or None)

    # --- replies owed and the station's log ---------------------------------------------------------------

    @page("GET", "/agent/replies", roles=("agent",))
    def agent_replies(self, view: View):
        return self._replies_page(view, flash="已记录回复。" if view.query.get("done") == "replied" else None)

    def _replies_page(self, view: View, status: int = 200, problem: str | None = None,
                      problems: dict | None = None, flash: str | None = None, case_number: str | None = None):
        answer = view.call("GET", AGENT, "/replies")
        owed = rules.oldest_first(answer.body["replies"]) if answer.ok else []
        return status, Page("agents/replies.html.j2", {
            "replies": owed, "problem": problem or (None if answer.ok else answer.message()),
            "problems": problems or {}, "flash": flash, "failed": case_number, "form": view.form, **NAMES})

    @page("POST", "/agent/replies/<string:case_number>", roles=("agent",))
    def agent_reply(self, view: View):
        """回复: how and when the villager was told, and what was said."""
        number = view.params["case_number"]
        parsed = rules.reply_body(view.form)
        if not parsed.ok:
            return self._replies_page(view, 400, "请更正标出的内容。", parsed.problems, case_number=number)
        answer = view.call("POST", AGENT, f"/replies/{quote(number)}", body=parsed.body)
        if answer.ok:
            return redirect("/agent/replies?done=replied")
        status = answer.status if 400 <= answer.status < 500 else 502
        return self._replies_page(view, status, answer.message(), rules.service_problems(answer.body),
                                  case_number=number)

    @page("GET", "/agent/services", roles=("agent",))
    def agent_services(self, view: View):
        """The station's log (服务台账), oldest first; ?month=YYYY-MM."""
        month = (view.query.get("month") or "").strip()
        answer = view.call("GET", AGENT, "/station/services", params={"month": month} if month else None)
        return (200 if answer.ok else (answer.status if answer.status < 500 else 502)), Page(
            "agents/services.html.j2", {"services": answer.body["services"] if answer.ok else [], "month": month,
                                        "problem": None if answer.ok else answer.message(), **NAMES})

    # --- the town agent: escalations (上报件) --------------------------------------------------------------

    @page("GET", "/town-agent", roles=("town_agent",))
    def town_agent_escalations(self, view: View):
        """Escalations in flight, overdue first, with the city's deadline; ?status= (returned, closed …)."""
        return self._escalations_page(view, flash=HOP_DONE.get(view.query.get("done", "")))

    def _escalations_page(self, view: View, status: int = 200, problem: str | None = None,
                          flash: str | None = None):
        wanted = view.query.get("status", "")
        answer = view.call("GET", AGENT, "/escalations", params={"status": wanted} if wanted else None)
        listed = answer.body["escalations"] if answer.ok else []  # in flight unless another status is asked
        return status, Page("agents/escalations.html.j2", {
            "escalations": rules.escalations_in_order(listed), "today": answer.body["today"] if answer.ok else None,
            "wanted": wanted, "problem": problem or (None if answer.ok else answer.message()), "flash": flash,
            **NAMES})

    @page("GET", "/town-agent/escalations/<string:case_number>", roles=("town_agent",))
    def town_agent_escalation(self, view: View):
        answer = view.call("GET", AGENT, f"/escalations/{quote(view.params['case_number'])}")
        if not answer.ok:
            return 404, Page("error.html.j2", {"title": "未找到", "message": "没有这件上报件，或不在您的职责范围内。"})
        return Page("agents/escalation.html.j2", {"e": answer.body, **NAMES})

    def _hop(self, view: View, action: str, done: str):
        answer = view.call("POST", AGENT, f"/escalations/{quote(view.params['case_number'])}/{action}")
        if answer.ok:
            return redirect(f"/town-agent?done={done}")
        status = answer.status if 400 <= answer.status < 500 else 502
        return self._escalations_page(view, status, answer.message())

    @page("POST", "/town-agent/escalations/<string:case_number>/relay", roles=("town_agent",))
    def town_agent_relay(self, view: View):
        """报送: the work to the city department(s), once."""
        return self._hop(view, "relay", "relayed")

    @page("POST", "/town-agent/escalations/<string:case_number>/return", roles=("town_agent",))
    def town_agent_return(self, view: View):
        """The city's decision back to the town's ledger, once decided."""
        return self._hop(view, "return", "returned")
