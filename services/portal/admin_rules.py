"""City IT's pages, the parts without I/O: the add-user form's problems in Chinese next to their field, the
staff list's states, the instances' health, the reference replica summed up for a page."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.portal.directory_rules import MIN_PASSWORD
from shared import auth

#: the roles a person may have (service is for machines, minted with `tongban token`)
PERSON_ROLES = tuple(r for r in auth.ROLES if r != "service")
FORM_FIELDS = ("staff_number", "name", "role", "scope", "password")
SCOPE_HELP = "city、town:九位镇代码、department:部门代码[@九位镇代码] 或 village:十二位村代码"
SCOPE_KIND_HELP = {"city": "city", "town": "town:九位镇代码", "department": "department:部门代码[@九位镇代码]",
                   "village": "village:十二位村代码"}


def field_problem(message: str) -> tuple[str, str]:
    """(form field, what to tell city IT) for a staff directory refusal (DirectoryError's English text)."""
    text = str(message)
    if text.startswith("staff number") and text.endswith("is taken"):
        return "staff_number", "该工号已被使用。"
    if text.startswith("staff number"):
        return "staff_number", "工号须为 1–64 个字符，不含空格。"
    if text.startswith("name"):
        return "name", "姓名须为 1–50 个字符，首尾不含空格。"
    if text.startswith("role"):
        return "role", "请选择岗位。"
    if text.startswith("scope: the role "):  # a well-formed scope the role does not work in
        role = text.removeprefix("scope: the role ").split(" ", 1)[0]
        kinds = "或".join(SCOPE_KIND_HELP[k] for k in auth.ROLE_SCOPE_KINDS.get(role, ()))
        return "scope", f"此岗位的范围须为 {kinds}。"
    if text.startswith("scope"):
        return "scope", f"范围格式不正确，应为 {SCOPE_HELP}。"
    if text.startswith("password"):
        return "password", f"密码至少 {MIN_PASSWORD} 个字符（留空则自动生成）。"
    return "", text


def new_user_form(form: dict) -> dict:
    """The add form's values, stripped (the password kept as typed; empty: one is generated)."""
    values = {k: (form.get(k) or "").strip() for k in FORM_FIELDS if k != "password"}
    values["password"] = form.get("password") or ""
    return values


def user_state(user: dict) -> tuple[str, str]:
    """(state, 中文) of a directory entry: disabled first, then locked, else active."""
    if user.get("disabled"):
        return "disabled", "已停用"
    if user.get("locked_until"):
        return "locked", "已锁定"
    return "active", "正常"


@dataclass(frozen=True)
class InstanceHealth:
    instance: str
    url: str
    state: str  # "ok" | "degraded" | "down"
    label: str  # 正常 / 异常 / 无响应
    detail: str


def instance_health(instance: str, url: str, status: int | None, body) -> InstanceHealth:
    """One instance's /health answer (None: it did not answer) as a line of the overview."""
    if status is None:
        return InstanceHealth(instance, url, "down", "无响应", str(body or ""))
    checks = body.get("checks") if isinstance(body, dict) else None
    failing = sorted(k for k, v in (checks or {}).items() if v != "ok")  # each check: "ok" or "error: ..."
    if status == 200 and not failing:
        return InstanceHealth(instance, url, "ok", "正常", "")
    return InstanceHealth(instance, url, "degraded", "异常", ", ".join(failing) or f"HTTP {status}")


def health_order(lines: list[InstanceHealth]) -> list[InstanceHealth]:
    """What needs looking at first: down, then degraded, then the healthy ones, each by name."""
    rank = {"down": 0, "degraded": 1, "ok": 2}
    return sorted(lines, key=lambda h: (rank.get(h.state, 0), h.instance))


@dataclass(frozen=True)
class ReferenceLine:
    name: str  # a catalogue version, or a year
    active: bool
    loaded_at: datetime | None
    loaded_by: str


def catalogue_lines(versions: list[str], active: str | None, records) -> list[ReferenceLine]:
    """The catalogue versions, newest loaded first, the active one marked; `records` the replica's catalogue
    records (for who loaded each version and when: the first record of a version)."""
    first = {}
    for r in records:
        first.setdefault(r.version, r)
    lines = [ReferenceLine(v, v == active, getattr(first.get(v), "loaded_at", None),
                           getattr(first.get(v), "loaded_by", "")) for v in versions]
    return list(reversed(lines))


def calendar_lines(loaded_years, year_records: dict, this_year: int) -> list[ReferenceLine]:
    """The calendar years loaded from holiday notices, newest first; `active` marks this year."""
    lines = []
    for year in sorted(set(loaded_years) | set(year_records), reverse=True):
        r = year_records.get(year)
        lines.append(ReferenceLine(str(year), year == this_year, getattr(r, "loaded_at", None),
                                   getattr(r, "loaded_by", "")))
    return lines
