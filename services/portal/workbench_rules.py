"""The back office's and the agents' workbenches: plain rules, no I/O.

Urgency of an approver's work (red: overdue; yellow: at most `yellow_days` working days left, as the deadline
supervision (电子监察) counts it; then the rest by deadline), the town agent's escalations (overdue first), the
replies owed (oldest first), and turning the pages' form fields into the services' request bodies (with the
field problems a person can fix next to the form)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.portal.forms import detail_messages

DEFAULT_YELLOW_DAYS = 1  # the city's default; TONGBAN_YELLOW_DAYS (settings.extra["yellow_days"]) changes it
RED, YELLOW, GREEN, PAUSED = "red", "yellow", "green", "paused"
COLOUR_ORDER = {RED: 0, YELLOW: 1, GREEN: 2, PAUSED: 3}
# the colour is always said in words too (never colour alone)
COLOUR_LABELS = {RED: "红牌·已超期", YELLOW: "黄牌·临近期限", GREEN: "正常", PAUSED: "计时暂停"}

WORK_STATUS = {"pending": "待办", "paused": "特别程序中", "waiting_materials": "待补正材料", "decided": "已决定",
               "withdrawn": "已撤回", "superseded": "已被新版本取代"}
KIND_NAMES = {"instant": "即办件", "promised": "承诺件", "supplement": "补办件", "joint": "联办件",
              "returned": "退回件", "escalated": "上报件", "consultation": "咨询告知件"}
OUTCOMES = {"approved": "准予（批准）", "refused": "不予批准", "returned": "退回"}
EXTENSION_STATUS = {"requested": "待部门负责人批准", "approved": "已批准，已报受理中心", "refused": "受理中心未同意"}
STATION_STATUS = {"refused": "不予代办", "helped": "帮办", "done": "站内办结", "relayed": "已报送镇中心",
                  "accepted": "镇中心已受理", "completed": "已办结", "rejected": "镇中心退回"}
ESCALATION_STATUS = {"awaiting_relay": "待报送", "relayed": "已报送市级部门", "decided": "市级部门已决定",
                     "returned": "已带回镇中心", "closed": "已结束"}
REPLY_METHODS = {"phone": "电话", "visit": "上门"}
SIGN_METHODS = ("手写签名", "按手印", "电子签名")
SPECIAL_PROCEDURES = ("现场勘察", "听证", "检验", "检测", "鉴定", "专家评审")  # as the approval API takes them


def yellow_days_of(extra: dict | None) -> int:
    """The yellow threshold from the settings' extras (the same variable evaluation reads)."""
    try:
        return max(0, int((extra or {}).get("yellow_days", DEFAULT_YELLOW_DAYS)))
    except (TypeError, ValueError):
        return DEFAULT_YELLOW_DAYS


def day_of(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def colour_of(item: dict, today: date, yellow_days: int = DEFAULT_YELLOW_DAYS) -> str:
    """A work item's standing: paused (clock stopped), red (past its deadline), yellow (at most `yellow_days`
    working days left; an instant case can only go red), else green."""
    if item.get("paused"):
        return PAUSED
    deadline, left = day_of(item.get("deadline")), item.get("days_left")
    if item.get("overdue") or (deadline is not None and deadline < today):
        return RED
    if left is not None and left <= yellow_days and item.get("kind") != "instant":
        return YELLOW
    return GREEN


def by_urgency(items: list[dict], today: date, yellow_days: int = DEFAULT_YELLOW_DAYS) -> list[dict]:
    """The worklist by urgency: red, yellow, the rest, then paused; within each by deadline, then id.
    Each item comes back with its `colour` and `colour_label`."""
    shown = [{**i, "colour": (c := colour_of(i, today, yellow_days)), "colour_label": COLOUR_LABELS[c]}
             for i in items]
    return sorted(shown, key=lambda i: (COLOUR_ORDER[i["colour"]], day_of(i.get("deadline")) or date.max,
                                        i.get("id") or 0))


def escalations_in_order(escalations: list[dict]) -> list[dict]:
    """Escalations overdue first, then by the city's deadline (the agent API's order, kept if it changes)."""
    return sorted(escalations, key=lambda e: (not e.get("overdue"), day_of(e.get("deadline")) or date.max,
                                              e.get("case_number") or ""))


def oldest_first(replies: list[dict]) -> list[dict]:
    return sorted(replies, key=lambda r: (str(r.get("created_at") or ""), r.get("case_number") or ""))


# --- forms into request bodies --------------------------------------------------------------------------

@dataclass
class Parsed:
    """A request body made from a form, or the problems (field -> message) that stop it."""

    body: dict
    problems: dict

    @property
    def ok(self) -> bool:
        return not self.problems


def _text(form: dict, name: str) -> str:
    return (form.get(name) or "").strip()


def _require(form: dict, problems: dict, name: str, message: str) -> str:
    value = _text(form, name)
    if not value:
        problems[name] = message
    return value


def decision_body(form: dict) -> Parsed:
    """Approve (document number and validity optional) or refuse (a reason required)."""
    problems: dict = {}
    outcome = _text(form, "outcome")
    if outcome not in ("approved", "refused"):
        problems["outcome"] = "请选择准予或不予批准"
    reason = _text(form, "reason")
    if outcome == "refused" and not reason:
        problems["reason"] = "不予批准须写明理由"
    body = {"outcome": outcome, "reason": reason or None}
    if outcome == "approved":
        if _text(form, "result_number"):
            body["result_number"] = _text(form, "result_number")
        if _text(form, "valid_until"):
            try:
                body["valid_until"] = date.fromisoformat(_text(form, "valid_until")).isoformat()
            except ValueError:
                problems["valid_until"] = "有效期请填写日期，如 2027-12-31"
    return Parsed(body, problems)


def materials_body(form: dict, listed: list[dict]) -> Parsed:
    """一次性告知: the catalogue's materials ticked (form field `material` may repeat: `form_lists`) plus any
    others typed one per line; all at once, with a reason."""
    problems: dict = {}
    names = {m["code"]: m["name"] for m in listed}
    chosen = [{"code": code, "name": names[code]} for code in form.get("material_codes", []) if code in names]
    chosen += [{"code": None, "name": line.strip()[:200]} for line in _text(form, "other").splitlines()
               if line.strip()]
    if not chosen:
        problems["material"] = "请勾选或填写需要补正的材料（一次性告知全部）"
    reason = _require(form, problems, "reason", "请写明补正理由")
    return Parsed({"materials": chosen, "reason": reason}, problems)


def procedure_body(form: dict) -> Parsed:
    problems: dict = {}
    procedure = _text(form, "procedure")
    if procedure not in SPECIAL_PROCEDURES:
        problems["procedure"] = "请选择特别程序"
    reason = _require(form, problems, "reason", "请写明启动特别程序的理由")
    return Parsed({"procedure": procedure, "reason": reason}, problems)


def reason_body(form: dict, message: str) -> Parsed:
    problems: dict = {}
    return Parsed({"reason": _require(form, problems, "reason", message)}, problems)


def extension_body(form: dict) -> Parsed:
    problems: dict = {}
    try:
        days = int(_text(form, "days"))
        if not 1 <= days <= 60:
            raise ValueError
    except ValueError:
        problems["days"] = "延期天数请填写 1 至 60 的工作日数"
        days = 0
    reason = _require(form, problems, "reason", "延期须写明理由")
    return Parsed({"days": days, "reason": reason}, problems)


def absence_body(form: dict) -> Parsed:
    """An absence: holder, from, to (datetime-local values, Asia/Shanghai as the API reads them), reason."""
    problems: dict = {}
    holder = _require(form, problems, "holder", "请选择不在岗人员")
    start = _require(form, problems, "from", "请填写开始时间")
    end = _require(form, problems, "to", "请填写结束时间")
    if start and end and end <= start:
        problems["to"] = "结束时间须晚于开始时间"
    reason = _require(form, problems, "reason", "请写明原因（请假、培训、会议等）")
    return Parsed({"holder": holder, "from": _seconds(start), "to": _seconds(end), "reason": reason}, problems)


def _seconds(value: str) -> str:
    # <input type=datetime-local> gives 2026-11-02T09:00; the API reads a time without offset as Shanghai's
    return value + ":00" if len(value) == 16 else value


def post_body(form: dict) -> Parsed:
    problems: dict = {}
    a = _require(form, problems, "a", "请填写A岗工号")
    b = _require(form, problems, "b", "请填写B岗工号")
    if a and a == b:
        problems["b"] = "A岗与B岗须为两人"
    body = {"a": a, "b": b}
    if _text(form, "head"):
        body["head"] = _text(form, "head")
    return Parsed(body, problems)


def submission_body(form: dict, town: str) -> Parsed:
    """代办 with the villager's authorisation (委托: who, for what, when, how signed)."""
    problems: dict = {}
    applicant = {"type": "person", "name": _require(form, problems, "name", "请填写申请人姓名"),
                 "id_number": _require(form, problems, "id_number", "请填写居民身份证号码"),
                 "phone": _require(form, problems, "phone", "请填写手机号码"), "town": town}
    signed_at = _require(form, problems, "signed_at", "请填写委托签署时间")
    authorisation = {"by": _require(form, problems, "auth_by", "请填写委托人"),
                     "matters": _require(form, problems, "auth_matters", "请填写委托事项"),
                     "signed_at": _with_zone(signed_at),
                     "method": _require(form, problems, "auth_method", "请选择签署方式")}
    try:
        fee = int(_text(form, "fee_fen") or 0)
        if fee < 0:
            raise ValueError
    except ValueError:
        problems["fee_fen"] = "收费请填写非负整数（分）"
        fee = 0
    body = {"item_code": _require(form, problems, "item_code", "请选择事项"), "applicant": applicant,
            "materials": list(form.get("material_codes", [])), "authorisation": authorisation, "fee_fen": fee}
    if _text(form, "content"):
        body["content"] = _text(form, "content")
    return Parsed(body, problems)


def help_body(form: dict) -> Parsed:
    """帮办: the villager declined to authorise; what they asked and how the agent helped."""
    problems: dict = {}
    body = {"content": _require(form, problems, "content", "请填写群众诉求"),
            "solution": _require(form, problems, "solution", "请填写帮办情况"),
            "applicant": {"name": _require(form, problems, "name", "请填写姓名"),
                          "phone": _require(form, problems, "phone", "请填写手机号码")}}
    if _text(form, "item_code"):
        body["item_code"] = _text(form, "item_code")
    return Parsed(body, problems)


def reply_body(form: dict) -> Parsed:
    problems: dict = {}
    method = _text(form, "method")
    if method not in REPLY_METHODS:
        problems["method"] = "请选择回复方式（电话或上门）"
    body = {"method": method, "what_said": _require(form, problems, "what_said", "请填写回复内容")}
    if _text(form, "at"):
        body["at"] = _with_zone(_text(form, "at"))
    return Parsed(body, problems)


def _with_zone(value: str) -> str:
    """A datetime-local value is a Shanghai wall time: say so (the agent API wants an aware time)."""
    if not value or "+" in value[10:] or value.endswith("Z"):
        return value
    return _seconds(value) + "+08:00"


def service_problems(body) -> dict:
    """A service's 400 details as field -> message (nested names flattened: applicant.phone -> phone)."""
    details = body.get("details") if isinstance(body, dict) else None
    return {field: message for field, message in detail_messages(details) if field}
