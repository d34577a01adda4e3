"""The item catalogue (事项目录 / 实施清单) that city IT publishes for every town ("三级同一").

Loaded from a YAML file, validated, versioned: a case keeps the version it was accepted under,
so loading a new version never changes a case already accepted.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

SAMPLE_CATALOG = Path(__file__).parent / "data" / "catalog" / "sample-city.yaml"

CATEGORIES = ("农业生产", "民生保障", "行政政务", "党的建设")
ITEM_TYPES = ("行政许可", "行政确认", "行政给付", "行政裁决", "行政奖励", "其他行政权力", "公共服务")
CASE_KINDS = ("instant", "promised", "joint", "escalated", "consultation")
LEVELS = ("village", "town", "city")
DELIVERY = ("pickup", "mail")


class CatalogError(ValueError):
    """The catalogue file is not valid; `details` says where."""

    def __init__(self, message: str, details=None):
        super().__init__(message if details is None else f"{message}: {details}")
        self.details = details


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class MaterialSchema(_Strict):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,32}$"))
    name = fields.String(required=True, validate=validate.Length(1, 200))
    issuer = fields.String(load_default="申请人")
    form = fields.String(load_default="original", validate=validate.OneOf(["original", "copy", "both"]))
    required = fields.Boolean(load_default=True)
    deferrable = fields.Boolean(load_default=False)  # 容缺受理: may be supplied after acceptance


class ItemSchema(_Strict):
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

    @validates_schema
    def _limits(self, data, **_):
        if data["promised_days"] > data["statutory_days"]:
            raise ValidationError("promised limit cannot exceed the statutory limit", "promised_days")
        if data["kind"] == "instant" and data["promised_days"] != 0:
            raise ValidationError("an instant item is finished the same working day (0 days)", "promised_days")
        if data["kind"] == "joint" and not data["co_departments"]:
            raise ValidationError("a joint item names its co-departments", "co_departments")
        codes = [m["code"] for m in data["materials"]]
        if len(codes) != len(set(codes)):
            raise ValidationError("material codes repeat", "materials")


class VillageSchema(_Strict):
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{12}$"))
    name = fields.String(required=True)


class TownSchema(_Strict):
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{9}$"))
    name = fields.String(required=True)
    villages = fields.List(fields.Nested(VillageSchema), load_default=list)


class DepartmentSchema(_Strict):
    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$"))
    name = fields.String(required=True)


class CatalogSchema(_Strict):
    version = fields.String(required=True, validate=validate.Length(1, 32))
    city = fields.Dict(required=True)
    supervision_phone = fields.String(load_default="12345")
    towns = fields.List(fields.Nested(TownSchema), required=True, validate=validate.Length(min=1))
    departments = fields.List(fields.Nested(DepartmentSchema), required=True, validate=validate.Length(min=1))
    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1))

    @validates_schema
    def _references(self, data, **_):
        depts = {d["code"] for d in data["departments"]}
        problems = {}
        seen = set()
        for item in data["items"]:
            if item["code"] in seen:
                problems[item["code"]] = "item code repeats"
            seen.add(item["code"])
            for dept in [item["department"], *item["co_departments"]]:
                if dept not in depts:
                    problems[item["code"]] = f"unknown department {dept}"
        for town in data["towns"]:
            for village in town["villages"]:
                if not village["code"].startswith(town["code"]):
                    problems[village["code"]] = f"village is not inside town {town['code']}"
        if problems:
            raise ValidationError(problems, "items")


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


def parse_catalog(text: str) -> Catalog:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError("catalogue is not valid YAML", str(exc)) from None
    if not isinstance(raw, dict):
        raise CatalogError("catalogue must be a YAML mapping")
    if "version" in raw:
        raw["version"] = str(raw["version"])
    try:
        data = CatalogSchema().load(raw)
    except ValidationError as exc:
        raise CatalogError("catalogue is invalid", exc.messages) from None
    return Catalog(version=data["version"], data=data)


def load_catalog(path: str | Path = SAMPLE_CATALOG) -> Catalog:
    return parse_catalog(Path(path).read_text(encoding="utf-8"))
