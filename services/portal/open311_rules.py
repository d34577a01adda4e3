"""Open311 GeoReport v2 mapped onto the catalogue and the window: pure functions, no I/O.

- A catalogue item is a service (`service_code` = item code, `group` = the competent department); items the
  applicant must bring in person (结婚登记 …) are not offered online.
- A service's definition: its attributes are the applicant's ID number, their household town for a city-wide
  item (全城通办), and the materials checklist (a multivaluelist of the materials handed in).
- A request is the window's POST /cases body; the service request id is the case number.
- A request's status: `open` until the case is completed, returned or consulted (`closed`), with nothing
  personal in it.
- Errors answer in the specification's format: `[{"code": <HTTP status>, "description": "..."}]`.
"""
from __future__ import annotations

from datetime import date, datetime, time

from shared.vocabulary import TERMINAL_CASE_STATUSES

STATUS_NOTES = {"pending_materials": "材料不齐，已一次性告知需补正的材料", "initial_review": "初审中",
                "in_review": "审查办理中", "paused": "特别程序中，暂停计时", "completed": "已办结",
                "returned": "不予受理（已退回）", "consulted": "已告知"}
KIND_NAMES = {"instant": "即办件", "promised": "承诺件", "joint": "联办件", "escalated": "上报件",
              "consultation": "咨询告知件"}


class Open311Error(Exception):
    """An answer in the specification's error format, with its HTTP status."""

    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status, self.description = status, description

    def body(self) -> list[dict]:
        return [{"code": self.status, "description": self.description}]


def offered(item: dict) -> bool:
    """Whether an item can be asked for through an online channel."""
    return not item.get("in_person")


def service_of(item: dict, department_names: dict[str, str]) -> dict:
    days = item.get("promised_days") or 0
    limit = "当场办结" if days == 0 else f"承诺{days}个工作日办结"
    return {
        "service_code": item["code"], "service_name": item["name"],
        "description": f"{item.get('item_type', '')}·{KIND_NAMES.get(item.get('kind'), item.get('kind'))}，{limit}",
        "metadata": True,  # every item has attributes: the ID number and the materials
        "type": "realtime",
        "keywords": ",".join(k for k in (item.get("category"), item.get("item_type"), KIND_NAMES.get(item.get("kind")),
                                         "全城通办" if item.get("city_wide") else None) if k),
        "group": department_names.get(item["department"], item["department"]),
    }


def definition_of(item: dict) -> dict:
    """The service definition: what a request for this item must say."""
    attributes = [{
        "variable": True, "code": "id_number", "datatype": "string", "required": True,
        "datatype_description": "18位居民身份证号码（GB 11643）", "order": 1, "description": "申请人居民身份证号码"}]
    if item.get("city_wide"):
        attributes.append({
            "variable": True, "code": "applicant_town", "datatype": "string", "required": False,
            "datatype_description": "9位乡镇（街道）代码", "order": 2,
            "description": "申请人户籍所在镇（街道），全城通办时按此转办"})
    materials = item.get("materials") or []
    listed = "；".join(f"{m['name']}（{'必需' if m.get('required', True) else '可选'}"
                      f"{'，可容缺后补' if m.get('deferrable') else ''}）" for m in materials)
    attributes.append({
        "variable": True, "code": "materials", "datatype": "multivaluelist", "required": False,
        "datatype_description": "已提交的材料（可多选）", "order": len(attributes) + 1,
        "description": f"申请材料：{listed}" if listed else "申请材料",
        "values": [{"key": m["code"], "name": m["name"]} for m in materials]})
    return {"service_code": item["code"], "attributes": attributes}


def request_fields(form: dict[str, list[str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Split a request's arguments (each a list of values, as a form posts them) into the plain fields and the
    attributes: `attribute[code]`, `attribute[code][]` (several values), or a JSON `attribute` object."""
    plain: dict[str, str] = {}
    attributes: dict[str, list[str]] = {}
    for key, values in form.items():
        if key.startswith("attribute[") and "]" in key:
            code = key[len("attribute["):key.index("]")]
            attributes.setdefault(code, []).extend(str(v) for v in values if v not in (None, ""))
        elif values:
            plain[key] = values[-1]
    return plain, attributes


def json_request_fields(body: dict) -> dict[str, list[str]]:
    """A JSON request as form-like lists (the `attribute` object flattened to `attribute[code]`)."""
    out: dict[str, list[str]] = {}
    for key, value in body.items():
        if key == "attribute" and isinstance(value, dict):
            for code, v in value.items():
                out[f"attribute[{code}]"] = [str(x) for x in v] if isinstance(v, list) else [str(v)]
        elif isinstance(value, (str, int, float)):
            out[key] = [str(value)]
        else:
            raise Open311Error(400, f"{key} must be a string")
    return out


def case_body(plain: dict[str, str], attributes: dict[str, list[str]], item: dict) -> dict:
    """The window's POST /cases body for a request, or a 400 naming what is missing."""
    missing = [f for f in ("first_name", "phone") if not (plain.get(f) or "").strip()]
    if not attributes.get("id_number"):
        missing.append("attribute[id_number]")
    if missing:
        raise Open311Error(400, f"{', '.join(missing)} required")
    name = (plain.get("last_name", "").strip() + plain["first_name"].strip())[:100]
    known = {m["code"] for m in item.get("materials") or []}
    materials = attributes.get("materials", [])
    unknown = sorted(set(materials) - known)
    if unknown:
        raise Open311Error(400, f"attribute[materials]: not materials of {item['code']}: {', '.join(unknown)}")
    applicant = {"type": "person", "name": name, "id_number": attributes["id_number"][0].strip(),
                 "phone": plain["phone"].strip(), "channel": "sms"}
    if plain.get("email"):
        applicant["email"] = plain["email"].strip()
    if attributes.get("applicant_town"):
        applicant["town"] = attributes["applicant_town"][0].strip()
    return {"item_code": item["code"], "applicant": applicant, "materials": sorted(set(materials)),
            "in_person": False}


def service_notice(case: dict) -> str:
    """What the applicant is told at once: the case number, its status, and how to follow it."""
    status = STATUS_NOTES.get(case.get("status"), case.get("status"))
    text = f"受理号{case['case_number']}：{status}。"
    if case.get("deadline") and case.get("status") not in TERMINAL_CASE_STATUSES:
        text += f"承诺办结日期{case['deadline']}。"
    if case.get("query_code"):
        text += f"查询码{case['query_code']}，请凭受理号和查询码查询进度（{case.get('track_url', '/track')}）。"
    return text


def _datetime(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return datetime.combine(value, time(17, 0)).isoformat()
    return str(value)


def request_of(case: dict, department_names: dict[str, str] | None = None) -> dict:
    """A case as a service request: nothing personal (no name, no ID, no phone)."""
    history = case.get("history") or []
    updated = max((h["at"] for h in history if h.get("at")), default=case.get("accepted_at"))
    closed = case.get("status") in TERMINAL_CASE_STATUSES
    department = case.get("department")
    return {
        "service_request_id": case["case_number"], "status": "closed" if closed else "open",
        "status_notes": STATUS_NOTES.get(case.get("status"), case.get("status")),
        "service_name": case.get("item_name"), "service_code": case.get("item_code"),
        "agency_responsible": (department_names or {}).get(department, department),
        "service_notice": None, "requested_datetime": _datetime(case.get("accepted_at")),
        "updated_datetime": _datetime(updated),
        "expected_datetime": None if closed else _datetime(case.get("deadline")),
        "address": None, "address_id": None, "zipcode": None, "lat": None, "long": None, "media_url": None,
    }


def department_names(catalog: dict) -> dict[str, str]:
    """Department code -> name from intake's GET /catalog (its `departments`: a list of {code, name})."""
    return {d["code"]: d["name"] for d in catalog.get("departments") or [] if isinstance(d, dict)}
