"""The window clerk's workbench (综合窗口) as plain functions, no I/O: finding an item, the application form built
from the item's materials checklist, checking what the clerk typed, the body of intake's `POST /cases`, the
service's field errors back onto the form, a case's next steps, today's cases.

The intake API takes the materials as the list of codes the applicant brought; a material's state on the form
(提交原件 / 提交复印件 / 容缺后补 / 未提交) becomes that list here. A material the catalogue wants as an original
(form original or both) brought only as a copy is not yet brought: intake then lists it as missing.
"""
from __future__ import annotations

from datetime import UTC, datetime

from services.portal.forms import detail_messages
from shared.pii import is_valid_credit_code, is_valid_mobile, is_valid_resident_id, normalise_resident_id
from shared.workdays import SHANGHAI

# --- names shown on the pages --------------------------------------------------------------------------

STATUS_NAMES = {"pending_materials": "待补正", "initial_review": "初审中", "in_review": "已受理·审查中",
                "paused": "中止（特别程序）", "completed": "已办结", "returned": "已退回（不予受理）",
                "consulted": "咨询告知"}
KIND_NAMES = {"instant": "即办件", "promised": "承诺件", "joint": "联办件", "escalated": "上报件",
              "consultation": "咨询告知件", "review": "复核件"}
OUTCOME_NAMES = {"approved": "准予", "refused": "不予"}
ACTION_NAMES = {"accept": "受理", "accept_for_initial_review": "受理（待初审）",
                "accept_incomplete": "收件（材料不全）",
                "consult": "咨询告知", "return": "退回", "supplement": "补正", "complete_materials": "材料补齐·受理",
                "complete_materials_for_initial_review": "材料补齐·待初审", "pass_initial_review": "初审通过",
                "request_review": "申请复核", "deliver_deferred": "容缺材料补交", "request_materials": "部门要求补材料",
                "pause": "中止（特别程序）", "resume": "恢复", "extend": "延期", "record_decision": "部门决定",
                "decide": "办结", "notice": "文书"}
DELIVERY_NAMES = {"pickup": "窗口领取", "mail": "邮寄（EMS）"}
FORM_NAMES = {"original": "原件", "copy": "复印件", "both": "原件及复印件"}
# a material's state on the form; the values are the form's, the intake API gets the codes brought
MATERIAL_STATES = {"original": "提交原件", "copy": "提交复印件", "deferred": "容缺后补", "none": "未提交"}
SPECIAL_PROCEDURES = ("现场勘察", "听证", "检验", "检测", "鉴定", "专家评审")  # as intake's PauseSchema takes them


def status_name(status: str | None) -> str:
    return STATUS_NAMES.get(status or "", status or "")


# --- finding an item -----------------------------------------------------------------------------------

def search_items(items: list[dict], query: str, limit: int = 50) -> list[dict]:
    """Items whose code or name contains the query (case-insensitive): the exact code first, then codes
    starting with it, then the rest by code. An empty query finds nothing (the list would be the catalogue)."""
    q = (query or "").strip().lower()
    if not q:
        return []

    def rank(item: dict) -> tuple:
        code = item["code"].lower()
        return (0 if code == q else 1 if code.startswith(q) else 2, item["code"])

    found = [i for i in items if q in i["code"].lower() or q in i["name"].lower()]
    return sorted(found, key=rank)[:limit]


# --- the materials checklist -----------------------------------------------------------------------------

def material_options(material: dict) -> list[str]:
    """The states a material may take: a required one that may follow acceptance (容缺) is 容缺后补 when not
    brought (intake defers it by itself), any other is 未提交."""
    absent = "deferred" if material.get("required", True) and material.get("deferrable") else "none"
    return ["original", "copy", absent]


def material_rows(item: dict, states: dict[str, str] | None = None) -> list[dict]:
    """The checklist as the form shows it: each material with its options and the chosen state (what the
    clerk chose, else not brought)."""
    states = states or {}
    rows = []
    for m in item.get("materials") or []:
        options = material_options(m)
        chosen = states.get(m["code"])
        rows.append({"code": m["code"], "name": m["name"], "issuer": m.get("issuer") or "",
                     "form": m.get("form", "original"), "form_name": FORM_NAMES.get(m.get("form", "original"), ""),
                     "required": m.get("required", True), "deferrable": bool(m.get("deferrable")),
                     "options": [(o, MATERIAL_STATES[o]) for o in options],
                     "chosen": chosen if chosen in options else options[-1]})
    return rows


def material_field(code: str) -> str:
    return f"material-{code}"


def states_from_form(item: dict, form: dict) -> dict[str, str]:
    return {m["code"]: form.get(material_field(m["code"]), "") for m in item.get("materials") or []}


def materials_brought(item: dict, states: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The codes for intake's `materials`, and problems by form field. A copy where the original is wanted
    is not brought (the window must see the original)."""
    codes, problems = [], {}
    for m in item.get("materials") or []:
        state = states.get(m["code"]) or material_options(m)[-1]
        if state not in material_options(m):
            problems[material_field(m["code"])] = (
                "此材料不可容缺后补" if state == "deferred" else "请选择材料的提交情况")
            continue
        if state == "original" or (state == "copy" and m.get("form") == "copy"):
            codes.append(m["code"])
    return codes, problems


# --- checking what the clerk typed ---------------------------------------------------------------------------

CHECKED_FIELDS = ("id_number", "credit_code", "phone", "email")


def check_field(name: str, value: str) -> str | None:
    """The message for one typed field (None when it is fine or empty: required-ness is checked on submit)."""
    value = (value or "").strip()
    if not value:
        return None
    if name == "id_number":
        if not is_valid_resident_id(normalise_resident_id(value)):
            return "居民身份证号码不正确：应为18位，校验位和出生日期须正确"
    elif name == "credit_code":
        if not is_valid_credit_code(value.upper()):
            return "统一社会信用代码不正确：应为18位，校验位须正确"
    elif name == "phone":
        if not is_valid_mobile(value.replace(" ", "")):
            return "手机号码不正确：应为11位大陆手机号"
    elif name == "email":
        if "@" not in value or value.startswith("@") or "." not in value.rsplit("@", 1)[-1] or " " in value:
            return "电子邮箱格式不正确"
    return None


# --- the application ---------------------------------------------------------------------------------------------

FORM_FIELDS = ("applicant_type", "name", "id_number", "phone", "email", "town", "delivery", "mail_address",
               "notify")


def form_values(form: dict, own_town: str) -> dict:
    """What the clerk typed, kept to show the form again (never lose it)."""
    values = {k: (form.get(k) or "").strip() for k in FORM_FIELDS}
    values["applicant_type"] = values["applicant_type"] if values["applicant_type"] == "organisation" else "person"
    values["town"] = values["town"] or own_town
    values["delivery"] = values["delivery"] or "pickup"
    values["notify"] = values["notify"] if values["notify"] == "email" else "sms"
    return values


def build_submission(item: dict, form: dict, own_town: str, towns: list[dict]) -> tuple[dict | None, dict, dict]:
    """From the posted form: (the body of intake's POST /cases or None, problems by field, the values typed)."""
    values = form_values(form, own_town)
    problems: dict[str, str] = {}
    if not values["name"]:
        problems["name"] = "请填写申请人姓名（单位名称）"
    identity = "id_number" if values["applicant_type"] == "person" else "credit_code"
    if not values["id_number"]:
        problems["id_number"] = "请填写证件号码"
    else:
        message = check_field(identity, values["id_number"])
        if message:
            problems["id_number"] = message
    if not values["phone"]:
        problems["phone"] = "请填写手机号码"
    elif check_field("phone", values["phone"]):
        problems["phone"] = check_field("phone", values["phone"])
    if values["email"] and check_field("email", values["email"]):
        problems["email"] = check_field("email", values["email"])
    if values["notify"] == "email" and not values["email"]:
        problems["email"] = "选择邮件通知时请填写电子邮箱"
    if values["town"] not in {t["code"] for t in towns} | {own_town}:
        problems["town"] = "请选择申请人户籍所在镇（街道）"
    if values["delivery"] not in item.get("delivery", ["pickup"]):
        problems["delivery"] = "此事项不提供该送达方式"
    if values["delivery"] == "mail" and not values["mail_address"]:
        problems["mail_address"] = "邮寄送达请填写邮寄地址"
    states = states_from_form(item, form)
    codes, material_problems = materials_brought(item, states)
    problems.update(material_problems)
    if problems:
        return None, problems, values
    applicant = {"type": values["applicant_type"], "name": values["name"], "phone": values["phone"].replace(" ", ""),
                 "channel": values["notify"]}
    if identity == "id_number":
        applicant["id_number"] = normalise_resident_id(values["id_number"])
    else:
        applicant["credit_code"] = values["id_number"].upper()
    if values["email"]:
        applicant["email"] = values["email"]
    if values["town"] != own_town:  # 全城通办: the applicant belongs to another town
        applicant["town"] = values["town"]
    body = {"item_code": item["code"], "applicant": applicant, "materials": codes, "delivery": values["delivery"]}
    if values["delivery"] == "mail":
        body["mail_address"] = values["mail_address"]
    return body, {}, values


# where the service's field names land on the form
SERVICE_FIELDS = {"id_number": "id_number", "credit_code": "id_number", "name": "name", "phone": "phone",
                  "email": "email", "town": "town", "applicant_town": "town", "delivery": "delivery",
                  "mail_address": "mail_address", "channel": "notify", "type": "applicant_type"}


def service_problems(details) -> tuple[dict[str, str], list[str]]:
    """A 4xx answer's `details` from intake as (problems by form field, the rest as sentences)."""
    by_field: dict[str, str] = {}
    rest: list[str] = []
    for path, message in detail_messages(details):
        target = SERVICE_FIELDS.get(path)
        if target:
            by_field[target] = message
        else:
            rest.append(f"{path}: {message}" if path else message)
    return by_field, rest


# --- a case's next steps ------------------------------------------------------------------------------------------

def next_steps(case: dict, own_town: str) -> list[dict]:
    """What can happen to the case now, as the clerk sees it: `action` steps the clerk posts to the intake
    API here (`step` names the endpoint), `text` steps say who does it and how. Only the accepting centre acts."""
    allowed = set(case.get("allowed_actions") or [])
    ours = case.get("accepting_town") == own_town and case.get("responsibility") != "handling"
    steps: list[dict] = []

    def action(step: str, title: str, text: str, **more):
        if ours:
            steps.append({"kind": "action", "step": step, "title": title, "text": text, **more})
        else:
            steps.append({"kind": "text", "title": title, "text": text + "（由受理中心办理）"})

    def say(title: str, text: str):
        steps.append({"kind": "text", "title": title, "text": text})

    missing = case.get("missing_materials") or []
    deferred = case.get("deferred_materials") or []
    if "supplement" in allowed or "complete_materials" in allowed:
        action("supplement", "补正", "申请人补交一次性告知书所列材料后勾选登记；全部补齐即受理并开始计时。",
               materials=missing)
    if "pass_initial_review" in allowed:
        action("initial-review", "初审通过", "上报件初审通过后，由镇代理员报送市级部门。")
    if "return" in allowed:
        action("return", "退回（不予受理）", "明显不符合条件或主要材料缺失时退回，须写明理由，系统出具不予受理通知书。")
    if "request_review" in allowed:
        if case.get("review_case"):
            say("复核", f"已申请复核，复核件 {case['review_case']} 由部门负责人办理。")
        else:
            action("review", "申请复核", "申请人对退回有异议时登记复核申请，由部门负责人复核。")
    if "deliver_deferred" in allowed and deferred:
        action("deferred", "容缺材料补交", "容缺受理承诺后补的材料送到时登记。", materials=deferred)
    if "pause" in allowed:
        action("pause", "中止（特别程序）", "需现场勘察、听证、检验、检测、鉴定或专家评审时中止计时，结束后恢复。",
               procedures=SPECIAL_PROCEDURES)
    if "resume" in allowed:
        action("resume", "恢复计时", "特别程序结束后恢复计时，办结期限顺延中止的工作日。")
    if "extend" in allowed:
        if case.get("extended_days"):
            say("延期", f"已延期 {case['extended_days']} 个工作日（每件只可延期一次）。")
        else:
            say("延期", "延期由审批人员在审批端提出（须写明理由），经部门负责人批准，每件只可延期一次；窗口无需操作。")
    if "decide" in allowed or "record_decision" in allowed:
        say("审批", "部门审批人员在审批端办理，作出决定后本件自动办结并发出办结通知。")
    if case.get("status") == "completed":
        pickup = case.get("delivery") != "mail"
        say("送达", "通知申请人到本中心窗口领取结果。" if pickup else "结果由 EMS 邮寄送达申请人。")
    if case.get("status") == "consulted":
        say("咨询告知", "已告知申请人办理地点与所需材料，无需其他操作。")
    return steps


# --- today's cases ------------------------------------------------------------------------------------------------

def accepted_on(case: dict):
    """The Asia/Shanghai date a case (JSON) was accepted."""
    at = datetime.fromisoformat(str(case["accepted_at"]).replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(SHANGHAI).date()


def todays_cases(cases: list[dict], today) -> list[dict]:
    """The cases accepted today (Asia/Shanghai), newest first."""
    mine = [c for c in cases if accepted_on(c) == today]
    return sorted(mine, key=lambda c: (str(c["accepted_at"]), c["case_number"]), reverse=True)


def local_time(value, with_date: bool = True) -> str:
    """An ISO time from a service shown in Asia/Shanghai time (YYYY-MM-DD HH:MM), or as given when not a time."""
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


class HandedCodes:
    """The query codes (查询码) the window just got for the cases it accepted, kept for a while in memory so that
    the notices printed at the desk carry the code (intake returns it once, when the case is accepted, and keeps
    only its hash). Keyed by the clerk's session: another desk never prints this one's code. After `ttl`
    seconds, or after a restart, a notice prints without the code; a new one is issued at the case's page."""

    def __init__(self, ttl: float = 1800.0, clock=None):
        import time

        self.ttl = ttl
        self.clock = clock or time.monotonic
        self._codes: dict[tuple[str, str], tuple[str, float]] = {}

    def keep(self, session: str, case_number: str, code: str | None) -> None:
        if code:
            now = self.clock()
            self._codes = {k: v for k, v in self._codes.items() if v[1] > now}  # forget the expired
            self._codes[(session, case_number)] = (code, now + self.ttl)

    def get(self, session: str, case_number: str) -> str | None:
        found = self._codes.get((session, case_number))
        return found[0] if found and found[1] > self.clock() else None
