"""Wire formats of the agent API: request bodies (loaded strictly) and a dump schema for every response
(the OpenAPI document and clients that check responses use them)."""
from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.pii import is_valid_mobile
from shared.schemas import ApplicantSchema, StrictSchema


class ReplySchema(Schema):
    case_number = fields.String(required=True, metadata={"description": "the case, or the station record the "
                                                                         "town refused to open a case for"})
    agent = fields.String(required=True, metadata={"description": "the village agent who submitted the case"})
    village = fields.String(allow_none=True)
    outcome = fields.String(required=True, metadata={"description": "approved | refused | returned (不予受理)"})
    item_name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "to_reply | replied"})
    created_at = fields.DateTime(required=True)
    method = fields.String(allow_none=True, metadata={"description": "phone | visit"})
    replied_at = fields.DateTime(allow_none=True)
    replied_by = fields.String(allow_none=True)
    what_said = fields.String(allow_none=True)


class RepliesSchema(Schema):
    replies = fields.List(fields.Nested(ReplySchema), required=True)


class AgentStatsSchema(Schema):
    replies_owed = fields.Integer(required=True)
    agent_cases = fields.Integer(required=True)


# --- village stations (村/社区便民服务站) --------------------------------------------------------------

class StationAuthorisationSchema(StrictSchema):
    """委托: who authorised the agent, for what, when and how it was signed."""

    by = fields.String(required=True, validate=validate.Length(1, 100), metadata={"description": "the villager"})
    matters = fields.String(required=True, validate=validate.Length(1, 200))
    signed_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    method = fields.String(required=True, validate=validate.Length(1, 20),
                           metadata={"description": "how signed: 手写签名, 按手印, 电子签名 …"})


class StationSubmissionSchema(StrictSchema):
    """代办: what a village agent submits for a villager who authorised it."""

    item_code = fields.String(required=True, validate=validate.Length(1, 32))
    applicant = fields.Nested(ApplicantSchema, required=True)
    materials = fields.List(fields.String(validate=validate.Length(1, 32)), load_default=list,
                            validate=validate.Length(max=50))
    authorisation = fields.Nested(StationAuthorisationSchema, required=True)
    fee_fen = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0),
                             metadata={"description": "what the station charges: never beyond the statutory fee"})
    content = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 2000),
                            metadata={"description": "what the villager asks (default: from the item)"})


class HelpApplicantSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    phone = fields.String(required=True, validate=validate.Length(max=20))

    @validates_schema
    def _phone(self, data, **_):
        if not is_valid_mobile(data["phone"]):
            raise ValidationError("not a valid mainland mobile number", "phone")


class StationHelpSchema(StrictSchema):
    """帮办: the villager declined to authorise; what they asked and how the agent helped."""

    content = fields.String(required=True, validate=validate.Length(1, 2000))
    solution = fields.String(required=True, validate=validate.Length(1, 2000))
    item_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 32))
    applicant = fields.Nested(HelpApplicantSchema, required=True)


class RecordReplySchema(StrictSchema):
    """回复: how the agent told the villager, when, and what was said."""

    method = fields.String(required=True, validate=validate.OneOf(["phone", "visit"]))
    at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC,
                              metadata={"description": "when (default: now)"})
    what_said = fields.String(required=True, validate=validate.Length(1, 2000))


class StationApplicantViewSchema(Schema):
    name = fields.String(required=True)
    id_number = fields.String(allow_none=True, metadata={"description": "masked (an ID or a credit code)"})
    phone = fields.String(required=True, metadata={"description": "masked"})


class StationServiceSchema(Schema):
    """One service of a station's log (服务台账): time, person, content, solution, status."""

    number = fields.String(required=True)
    village = fields.String(required=True)
    town = fields.String(required=True)
    agent = fields.String(required=True)
    mode = fields.String(required=True, metadata={"description": "submission | help_only"})
    status = fields.String(required=True, metadata={
        "description": "refused | helped | done | relayed | accepted | completed | rejected"})
    item_code = fields.String(allow_none=True)
    item_name = fields.String(allow_none=True)
    item_category = fields.String(allow_none=True)
    item_level = fields.String(allow_none=True)
    catalog_version = fields.String(required=True)
    applicant = fields.Nested(StationApplicantViewSchema, required=True)
    content = fields.String(required=True)
    solution = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    authorisation = fields.Dict(allow_none=True)
    materials = fields.List(fields.String(), required=True)
    fee_fen = fields.Integer(required=True)
    served_at = fields.DateTime(required=True)
    served_on = fields.Date(required=True)
    case_number = fields.String(allow_none=True)
    case_status = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    completed_on = fields.Date(allow_none=True)
    reply = fields.Nested(ReplySchema, allow_none=True, metadata={"description": "in a single record's view"})


class StationServicesSchema(Schema):
    services = fields.List(fields.Nested(StationServiceSchema), required=True,
                           metadata={"description": "oldest first"})
