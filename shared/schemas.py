"""Wire formats every service shares: the applicant a window or a village station takes a submission for,
the error body and the platform routes' responses (/health, /health/live, /openapi.json), as dump schemas
for the OpenAPI document."""
from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.pii import is_valid_credit_code, is_valid_mobile, is_valid_resident_id, normalise_resident_id
from shared.tables import FORMATS as TABLE_FORMATS
from shared.vocabulary import ContactChannel


class UtcDateTime(fields.DateTime):
    """A timestamp sent with its zone: what the databases hand back without one (SQLite keeps none) is UTC,
    as every timestamp is stored, so it leaves as RFC 3339 `date-time`, as the document says."""

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class QuerySchema(Schema):
    """An operation's query arguments (shared.web.api's `query`): what the document offers and the edge
    checks; arguments it does not name are left alone."""

    class Meta:
        unknown = EXCLUDE


# query arguments several services take, as their handlers read them
TOWN_CODE = validate.Regexp(r"^[0-9]{9}$")
MONTH = validate.Regexp(r"^(19|[2-9][0-9])[0-9]{2}-(0[1-9]|1[0-2])$")  # YYYY-MM (shared.tables.parse_month)


def one_of(choices, *more: str) -> validate.OneOf:
    """A query argument that takes one of an enum's values (and, say, `all`)."""
    return validate.OneOf([*map(str, choices), *more])


def comma_list_of(choices, *more: str) -> validate.Regexp:
    """`a,b,c` of the choices (and the words `more`, alone)."""
    word = "|".join(map(str, choices))
    return validate.Regexp(rf"^(?:(?:{word})(?:,(?:{word}))*" + "".join(f"|{m}" for m in more) + ")$")


class TableQuerySchema(QuerySchema):
    """A monthly table: the month, and the form it comes in (shared.tables)."""

    month = fields.String(required=True, validate=MONTH, metadata={"description": "YYYY-MM"})
    format = fields.String(validate=validate.OneOf(list(TABLE_FORMATS)), metadata={"description": "json (default)"})
    town = fields.String(validate=TOWN_CODE)


class StrictSchema(Schema):
    """A request body or file read strictly: an unknown field is an error, said back to the sender."""

    class Meta:
        unknown = RAISE


class ApplicantSchema(StrictSchema):
    """The applicant (申请人) as a window clerk or a village agent types them in: a person with a valid
    居民身份证 number (GB 11643) or an organisation with a valid 统一社会信用代码 (GB 32100), and a mobile."""

    type = fields.String(load_default="person", validate=validate.OneOf(["person", "organisation"]))
    name = fields.String(required=True, validate=validate.Length(1, 100))
    id_number = fields.String(load_default=None, allow_none=True,
                              metadata={"description": "居民身份证 number (GB 11643)"})
    credit_code = fields.String(load_default=None, allow_none=True,
                                metadata={"description": "统一社会信用代码 (GB 32100)"})
    phone = fields.String(required=True)
    channel = fields.String(load_default="sms", validate=validate.OneOf([str(c) for c in ContactChannel]))
    email = fields.Email(load_default=None, allow_none=True)
    town = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\d{9}$"),
                         metadata={"description": "the applicant's own town, for 全城通办 routing"})

    @validates_schema
    def _identity(self, data, **_):
        if data["type"] == "person":
            value = data.get("id_number")
            if not value:
                raise ValidationError("a person applies with a 居民身份证 number", "id_number")
            if not is_valid_resident_id(normalise_resident_id(value)):
                raise ValidationError("not a valid 居民身份证 number (GB 11643 check digit or birth date wrong)",
                                      "id_number")
        else:
            value = (data.get("credit_code") or "").strip().upper()
            if not is_valid_credit_code(value):
                raise ValidationError("not a valid 统一社会信用代码 (GB 32100 check character wrong)", "credit_code")
        if not is_valid_mobile(data["phone"]):
            raise ValidationError("not a valid mainland mobile number", "phone")


class ErrorSchema(Schema):
    """The body of every 4xx and 5xx answer (shared.web.error_response)."""

    error = fields.String(required=True, metadata={"description": "a code: bad_request, unauthorized, forbidden, "
                                                                  "not_found, conflict, internal …"})
    message = fields.String(required=True, metadata={"description": "what is wrong, for people"})
    details = fields.Raw(metadata={"description": "what is wrong field by field, when known"})


class OutboxHealthSchema(Schema):
    """Nothing required: empty until the first checks complete, and when the database did not answer."""

    backlog = fields.Integer(metadata={"description": "outbox rows not yet published"})
    oldest_unsent_seconds = fields.Float()
    unroutable = fields.Integer(metadata={"description": "rows no queue took last time"})
    relay = fields.String(validate=validate.OneOf(["on", "off"]))


class HealthSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "degraded"]))
    instance = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                         metadata={"description": 'each check: "ok", or what failed ("error: …", "unknown: …")'})
    outbox = fields.Nested(OutboxHealthSchema, required=True)
    checked_seconds_ago = fields.Float(required=True, allow_none=True,
                                       metadata={"description": "age of the checks; null before the first"})


class OpenApiDocumentSchema(Schema):
    """An OpenAPI 3.0 document (its own structure is OpenAPI's, not repeated here)."""

    class Meta:
        unknown = INCLUDE  # documented as allowing further properties (x- extensions …)

    openapi = fields.String(required=True)
    info = fields.Dict(required=True)
    paths = fields.Dict(required=True)
    components = fields.Dict()
