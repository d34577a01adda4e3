"""The item catalogue (事项目录 / 实施清单) that city IT publishes for every town ("三级同一").

Loaded from a YAML file, validated, versioned: a case keeps the version it was accepted under,
so loading a new version never changes a case already accepted.

Every version city IT loads is a record on the deployment's reference stream, and every service that
needs the catalogue keeps every version in its database (`shared.reference`): this module only parses
and validates.
"""
from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from marshmallow import (
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from shared.schemas import StrictSchema
from shared.vocabulary import ITEM_KINDS

SAMPLE_CATALOG = Path(__file__).parent / "data" / "catalog" / "sample-city.yaml"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: 10x faster, same safety

CATEGORIES = ("农业生产", "民生保障", "行政政务", "党的建设")
ITEM_TYPES = ("行政许可", "行政确认", "行政给付", "行政裁决", "行政奖励", "其他行政权力", "公共服务")
CASE_KINDS = tuple(str(k) for k in ITEM_KINDS)  # an item's kind (a case may also be a review: CaseKind)
LEVELS = ("village", "town", "city")
DELIVERY = ("pickup", "mail")


class CatalogError(ValueError):
    """The catalogue file is not valid; `details` says where, `problems` says it line by line."""

    def __init__(self, message: str, details=None, problems: list[str] | None = None):
        if problems:
            text = f"{message}: " + "; ".join(problems)
        else:
            text = message if details is None else f"{message}: {details}"
        super().__init__(text)
        self.message = message
        self.details = details
        self.problems = list(problems) if problems else ([] if details is None else [str(details)])


class MaterialSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,32}$"))
    name = fields.String(required=True, validate=validate.Length(1, 200))
    issuer = fields.String(load_default="申请人")
    form = fields.String(load_default="original", validate=validate.OneOf(["original", "copy", "both"]))
    required = fields.Boolean(load_default=True)
    deferrable = fields.Boolean(load_default=False)  # 容缺受理: may be supplied after acceptance


class ItemSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9-]{2,32}$"))
    name = fields.String(required=True, validate=validate.Length(1, 200))
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    item_type = fields.String(required=True, validate=validate.OneOf(ITEM_TYPES))
    department = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$"))
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    kind = fields.String(required=True, validate=validate.OneOf(CASE_KINDS))
    statutory_days = fields.Integer(required=True, validate=validate.Range(0, 365))
    promised_days = fields.Integer(required=True, validate=validate.Range(0, 365))
    materials = fields.List(fields.Nested(MaterialSchema), load_default=list)
    fee_fen = fields.Integer(load_default=0, validate=validate.Range(min=0))
    fee_basis = fields.String(load_default=None, allow_none=True)
    in_person = fields.Boolean(load_default=False)
    agent_allowed = fields.Boolean(load_default=True)
    city_wide = fields.Boolean(load_default=True)
    co_departments = fields.List(fields.String(), load_default=list)
    delivery = fields.List(fields.String(validate=validate.OneOf(DELIVERY)), load_default=lambda: ["pickup"])
    auto_decide = fields.Boolean(load_default=False)  # instant items decided by a catalogue rule
    basis = fields.String(load_default=None, allow_none=True)  # legal basis (设定依据)
    guide = fields.String(load_default=None, allow_none=True)  # where to go and what to bring (consultation)

    @validates_schema(skip_on_field_errors=False)
    def _limits(self, data, **_):
        # runs even when some fields failed, so one pass reports every problem; absent fields are skipped
        problems: dict[str, list[str]] = {}

        def fail(field, message):
            problems.setdefault(field, []).append(message)

        kind, level = data.get("kind"), data.get("level")
        promised, statutory = data.get("promised_days"), data.get("statutory_days")
        co = data.get("co_departments", [])
        if promised is not None and statutory is not None and promised > statutory:
            fail("promised_days", "promised limit cannot exceed the statutory limit")
        if kind == "instant" and promised not in (None, 0):
            fail("promised_days", "an instant item is finished the same working day (0 days)")
        if data.get("auto_decide") and kind not in (None, "instant"):
            fail("auto_decide", "only an instant item is decided by a catalogue rule")
        if kind == "joint" and not co:
            fail("co_departments", "a joint item names its co-departments")
        if data.get("department") in co:
            fail("co_departments", "the lead department cannot also be a co-department")
        if len(co) != len(set(co)):
            fail("co_departments", "co-departments repeat")
        if kind == "escalated" and level not in (None, "city"):
            fail("level", "an escalated item is beyond the town's authority: its level is city")
        if kind == "consultation" and not (data.get("guide") or "").strip():
            fail("guide", "a consultation item tells the applicant where to go (guide)")
        if data.get("in_person") and data.get("agent_allowed"):
            fail("agent_allowed", "an item that needs the applicant in person cannot be submitted by a village "
                                  "agent (set agent_allowed: false)")
        if (data.get("fee_fen") or 0) > 0 and not (data.get("fee_basis") or "").strip():
            fail("fee_basis", "a fee names its basis (收费依据)")
        codes = [m.get("code") for m in data.get("materials", []) if m.get("code")]
        if len(codes) != len(set(codes)):
            fail("materials", "material codes repeat")
        if problems:
            raise ValidationError(problems)


class VillageSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{12}$"))
    name = fields.String(required=True)


class TownSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{9}$"))
    name = fields.String(required=True)
    villages = fields.List(fields.Nested(VillageSchema), load_default=list)


class DepartmentSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$"))
    name = fields.String(required=True)


class CatalogSchema(StrictSchema):
    # the version names the stored file (`<version>.yaml`) and is kept on every case: letters, digits, . _ -
    version = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$", error="version must be 1-32 letters, digits, '.', '_' or '-'"))
    city = fields.Dict(required=True)
    supervision_phone = fields.String(load_default="12345")
    towns = fields.List(fields.Nested(TownSchema), required=True, validate=validate.Length(min=1))
    departments = fields.List(fields.Nested(DepartmentSchema), required=True, validate=validate.Length(min=1))
    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1))

    @validates_schema(skip_on_field_errors=False)
    def _references(self, data, **_):
        # runs even when some fields failed (lists keep their indices; failed entries are partial)
        problems: dict = {}

        def fail(section, index, message, sub=None, sub_index=None):
            entry = problems.setdefault(section, {}).setdefault(index, {})
            if sub:
                entry = entry.setdefault(sub, {}).setdefault(sub_index, {})
            entry.setdefault("_schema", []).append(message)

        depts = set()
        for i, dept in enumerate(data.get("departments", [])):
            if dept.get("code") in depts:
                fail("departments", i, f"department code {dept['code']} repeats")
            depts.add(dept.get("code"))
        seen = set()
        for i, item in enumerate(data.get("items", []) if "departments" in data else []):
            code = item.get("code")
            if code is not None and code in seen:
                fail("items", i, f"item code {code} repeats")
            seen.add(code)
            for dept in [item.get("department"), *item.get("co_departments", [])]:
                if dept is not None and dept not in depts:
                    fail("items", i, f"unknown department {dept}")
        towns, villages = set(), set()
        city = str((data.get("city") or {}).get("code", ""))
        for i, town in enumerate(data.get("towns", [])):
            tcode = town.get("code")
            if tcode is None:
                continue
            if tcode in towns:
                fail("towns", i, f"town code {tcode} repeats")
            towns.add(tcode)
            if not tcode.startswith(city):
                fail("towns", i, f"town {tcode} is not inside city {city}")
            for j, village in enumerate(town.get("villages", [])):
                vcode = village.get("code")
                if vcode is None:
                    continue
                if not vcode.startswith(tcode):
                    fail("towns", i, f"village is not inside town {tcode}", "villages", j)
                if vcode in villages:
                    fail("towns", i, f"village code {vcode} repeats", "villages", j)
                villages.add(vcode)
        if problems:
            raise ValidationError(problems)


@dataclass(frozen=True)
class Catalog:
    version: str
    data: dict

    @property
    def items(self) -> dict[str, dict]:
        return {i["code"]: i for i in self.data["items"]}

    @property
    def towns(self) -> dict[str, dict]:
        return {t["code"]: t for t in self.data["towns"]}

    @property
    def departments(self) -> dict[str, dict]:
        return {d["code"]: d for d in self.data["departments"]}

    def item(self, code: str) -> dict | None:
        return self.items.get(code)

    def summary(self) -> dict:
        """Counts for people and dashboards: items by kind, category, department and level."""
        items = self.data["items"]
        return {
            "version": self.version,
            "city": dict(self.data["city"]),
            "items": len(items),
            "towns": len(self.data["towns"]),
            "villages": sum(len(t["villages"]) for t in self.data["towns"]),
            "departments": len(self.data["departments"]),
            "by_kind": {k: n for k in CASE_KINDS if (n := sum(1 for i in items if i["kind"] == k))},
            "by_category": {c: n for c in CATEGORIES if (n := sum(1 for i in items if i["category"] == c))},
            "by_department": dict(Counter(i["department"] for i in items)),
            "by_level": {lv: n for lv in LEVELS if (n := sum(1 for i in items if i["level"] == lv))},
            "in_person": sum(1 for i in items if i["in_person"]),
            "agent_allowed": sum(1 for i in items if i["agent_allowed"]),
            "city_wide": sum(1 for i in items if i["city_wide"]),
            "with_fee": sum(1 for i in items if i["fee_fen"] > 0),
        }

    def summary_line(self) -> str:
        return (f"version {self.version}, {len(self.data['items'])} items, {len(self.data['towns'])} towns, "
                f"{len(self.data['departments'])} departments")


def _describe(messages, raw) -> list[str]:
    """marshmallow's nested messages as readable lines: `items[3] (MZ-0004).promised_days: ...`."""
    lines: list[str] = []

    def label(section, index, rows):
        if isinstance(index, int) and isinstance(rows, list) and 0 <= index < len(rows) \
                and isinstance(rows[index], dict) and rows[index].get("code") not in (None, ""):
            return f"{section}[{index}] ({rows[index]['code']})"
        return f"{section}[{index}]" if isinstance(index, int) else f"{section}.{index}"

    def walk(node, path, rows):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, int):
                    here = label(path or "?", key, rows)
                    child = rows[key] if isinstance(rows, list) and 0 <= key < len(rows) else None
                    walk(value, here, child)
                else:
                    here = key if not path else (path if key == "_schema" else f"{path}.{key}")
                    child = rows.get(key) if isinstance(rows, dict) else None
                    walk(value, here, child)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value, path, rows)
        else:
            lines.append(f"{path}: {node}" if path else str(node))

    walk(messages, "", raw)
    # one entity's problems together, entities in file order (items[2] before items[10])
    return sorted(lines, key=lambda line: _natural_key(line.split(":", 1)[0].split(" ", 1)[0]))


def parse_catalog(text: str) -> Catalog:
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise CatalogError("catalogue is not valid YAML", str(exc)) from None
    if not isinstance(raw, dict):
        raise CatalogError("catalogue must be a YAML mapping")
    if isinstance(raw.get("version"), float):
        # YAML reads 2026.10 as the number 2026.1: a different version than the one written
        raise CatalogError("catalogue is invalid", {"version": ["quote the version"]},
                           [f"version: write it in quotes (version: \"{raw['version']}\" was read as a number; "
                            + "2026.10 would become 2026.1)"])
    if "version" in raw and raw["version"] is not None:
        raw["version"] = str(raw["version"])
    try:
        data = CatalogSchema().load(raw)
    except ValidationError as exc:
        raise CatalogError("catalogue is invalid", exc.messages, _describe(exc.messages, raw)) from None
    return Catalog(version=data["version"], data=data)


@functools.lru_cache(maxsize=8)
def parse_catalog_shared(text: str) -> Catalog:
    """`parse_catalog` once per text and process: every instance of `tongban up` (one process) follows
    the same reference stream and would otherwise parse the same catalogue again (a Catalog is frozen)."""
    return parse_catalog(text)


def load_catalog(path: str | Path = SAMPLE_CATALOG) -> Catalog:
    return parse_catalog(Path(path).read_text(encoding="utf-8"))


_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


def _natural_key(version: str):
    """"2026.2" < "2026.10": digit runs compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", version) if part]
