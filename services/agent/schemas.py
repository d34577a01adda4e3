"""Wire formats of the agent API: request bodies (loaded strictly) and a dump schema for every response
(the OpenAPI document and clients that check responses use them)."""
from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.agent.domain import ReplyStatus, ServiceStatus
from services.agent.escalation_domain import STATUSES as ESCALATION_STATUSES
from shared.pii import is_valid_mobile
from shared.schemas import MONTH, ApplicantSchema, QuerySchema, StrictSchema, UtcDateTime, comma_list_of, one_of


class ReplySchema(Schema):
    case_number = fields.String(required=True, metadata={"description": "the case, or the station record the "
                                                                         "town refused to open a case for"})
    agent = fields.String(required=True, metadata={"description": "the village agent who submitted the case"})
    village = fields.String(allow_none=True)
    outcome = fields.String(required=True, metadata={"description": "approved | refused | returned (不予受理)"})
    item_name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "to_reply | replied"})
    created_at = UtcDateTime(required=True)
    method = fields.String(allow_none=True, metadata={"description": "phone | visit"})
    replied_at = UtcDateTime(allow_none=True)
    replied_by = fields.String(allow_none=True)
    what_said = fields.String(allow_none=True)


class RepliesSchema(Schema):
    replies = fields.List(fields.Nested(ReplySchema), required=True)


class StationCountsSchema(Schema):
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                            metadata={"description": "refused | helped | done | relayed | accepted | completed | "
                                                     "rejected"})
    by_mode = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                          metadata={"description": "submission | help_only"})


class EscalationCountsSchema(Schema):
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                            metadata={"description": "awaiting_relay | relayed | decided | returned | closed"})


class AgentStatsSchema(Schema):
    replies_owed = fields.Integer(required=True)
    replies_made = fields.Integer(required=True)
    agent_cases = fields.Integer(required=True)
    station = fields.Nested(StationCountsSchema, required=True, metadata={"description": "the stations' log"})
    escalations = fields.Nested(EscalationCountsSchema, required=True)


# --- the monthly village table (村(社区)便民服务办理情况统计表) ------------------------------------

class VillageCountsSchema(Schema):
    services = fields.Integer(required=True, metadata={"description": "服务总数: every service logged"})
    submissions = fields.Integer(required=True, metadata={"description": "代办受理: accepted at the station"})
    refused = fields.Integer(required=True, metadata={"description": "不予代办: refused at the station"})
    help_only = fields.Integer(required=True, metadata={"description": "帮办: helped only, nothing submitted"})
    done_at_station = fields.Integer(required=True, metadata={"description": "站内办结: done at the station"})
    relayed = fields.Integer(required=True, metadata={"description": "报送: relayed to the town centre"})
    completed = fields.Integer(required=True, metadata={"description": "办结: relayed cases finished in the month"})
    replies = fields.Integer(required=True, metadata={"description": "回复: replies made in the month"})


class CategoryCountsSchema(VillageCountsSchema):
    category = fields.String(required=True, metadata={"description": "item category (事项类别)"})


class VillageRowsSchema(Schema):
    village = fields.String(required=True)
    name = fields.String(required=True)
    categories = fields.List(fields.Nested(CategoryCountsSchema), required=True)
    subtotal = fields.Nested(VillageCountsSchema, required=True, metadata={"description": "小计"})


class TownTableSchema(Schema):
    town = fields.String(required=True)
    name = fields.String(required=True)
    villages = fields.List(fields.Nested(VillageRowsSchema), required=True)
    by_category = fields.List(fields.Nested(CategoryCountsSchema), required=True)
    total = fields.Nested(VillageCountsSchema, required=True, metadata={"description": "合计"})


class ColumnSchema(Schema):
    key = fields.String(required=True)
    heading = fields.String(required=True)


class VillageReportSchema(Schema):
    title = fields.String(required=True)
    month = fields.String(required=True, metadata={"description": "YYYY-MM, of Asia/Shanghai dates"})
    town = fields.String(required=True, allow_none=True, metadata={"description": "the town asked for, if any"})
    village = fields.String(required=True, allow_none=True,
                            metadata={"description": "a village agent's own village: the table is only its rows"})
    catalog_version = fields.String(required=True)
    columns = fields.List(fields.Nested(ColumnSchema), required=True)
    categories = fields.List(fields.String(), required=True)
    towns = fields.List(fields.Nested(TownTableSchema), required=True)
    total = fields.Nested(VillageCountsSchema, required=True, allow_none=True,
                          metadata={"description": "全市合计, when no town was asked for"})
# --- the town agents' escalations (上报件) ------------------------------------------------------------

class EscalationDecisionSchema(Schema):
    department = fields.String(required=True)
    outcome = fields.String(required=True)
    reason = fields.String(allow_none=True)
    result_number = fields.String(allow_none=True)
    decided_by = fields.String(required=True, metadata={"description": "the city department's approver"})
    decided_at = UtcDateTime(required=True)


class EscalationHopSchema(Schema):
    hop = fields.String(required=True, metadata={"description": "escalated | relayed | decided | returned"})
    by = fields.String(required=True)
    at = UtcDateTime(required=True)
    department = fields.String(metadata={"description": "decided: the city department"})
    outcome = fields.String(metadata={"description": "decided: its decision"})


class EscalationSchema(Schema):
    case_number = fields.String(required=True)
    accepting_town = fields.String(required=True)
    item_code = fields.String(required=True)
    item_name = fields.String(required=True)
    lead_department = fields.String(required=True)
    departments = fields.List(fields.String(), required=True, metadata={"description": "the work to relay"})
    case_version = fields.Integer(required=True, metadata={"description": "the routed version of the case"})
    status = fields.String(required=True,
                           metadata={"description": "awaiting_relay | relayed | decided | returned | closed"})
    deadline = fields.Date(required=True, metadata={"description": "the city's deadline"})
    days_left = fields.Integer(allow_none=True, metadata={
        "description": "working days to the city's deadline; negative when overdue; none once out of flight"})
    overdue = fields.Boolean(required=True)
    reviewed_by = fields.String(required=True, metadata={"description": "who passed 初审 at the town"})
    escalated_at = UtcDateTime(required=True)
    relayed_by = fields.String(allow_none=True)
    relayed_at = UtcDateTime(allow_none=True)
    decided_at = UtcDateTime(allow_none=True, metadata={"description": "when the case's outcome was known"})
    returned_by = fields.String(allow_none=True)
    returned_at = UtcDateTime(allow_none=True)
    decisions = fields.List(fields.Nested(EscalationDecisionSchema), required=True)


class EscalationDetailSchema(EscalationSchema):
    hops = fields.List(fields.Nested(EscalationHopSchema), required=True)


class EscalationsSchema(Schema):
    today = fields.Date(required=True)
    escalations = fields.List(fields.Nested(EscalationSchema), required=True,
                              metadata={"description": "overdue first, then by the city's deadline"})

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
    served_at = UtcDateTime(required=True)
    served_on = fields.Date(required=True)
    case_number = fields.String(allow_none=True)
    case_status = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    completed_at = UtcDateTime(allow_none=True)
    completed_on = fields.Date(allow_none=True)
    reply = fields.Nested(ReplySchema, allow_none=True, metadata={"description": "in a single record's view"})


class StationServicesSchema(Schema):
    services = fields.List(fields.Nested(StationServiceSchema), required=True,
                           metadata={"description": "oldest first"})


# --- query arguments (shared.web.api's `query`) ----------------------------------------------------

class RepliesQuerySchema(QuerySchema):
    status = fields.String(validate=one_of(ReplyStatus, "all"), metadata={"description": "to_reply by default"})


class StationServicesQuerySchema(QuerySchema):
    month = fields.String(validate=MONTH, metadata={"description": "YYYY-MM"})
    status = fields.String(validate=one_of(ServiceStatus))


class EscalationsQuerySchema(QuerySchema):
    status = fields.String(validate=comma_list_of(ESCALATION_STATUSES),
                           metadata={"description": "statuses separated by commas; those in flight by default"})
