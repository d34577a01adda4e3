"""Wire formats of the agent API: a dump schema for every response (the OpenAPI document and clients
that check responses use them). The agent API takes no request bodies."""
from marshmallow import Schema, fields


class ReplySchema(Schema):
    case_number = fields.String(required=True)
    agent = fields.String(required=True, metadata={"description": "the village agent who submitted the case"})
    outcome = fields.String(required=True)
    item_name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "to_reply | replied"})
    created_at = fields.DateTime(required=True)


class RepliesSchema(Schema):
    replies = fields.List(fields.Nested(ReplySchema), required=True)


class AgentStatsSchema(Schema):
    replies_owed = fields.Integer(required=True)
    agent_cases = fields.Integer(required=True)


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
    decided_at = fields.DateTime(required=True)


class EscalationHopSchema(Schema):
    hop = fields.String(required=True, metadata={"description": "escalated | relayed | decided | returned"})
    by = fields.String(required=True)
    at = fields.DateTime(required=True)
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
    escalated_at = fields.DateTime(required=True)
    relayed_by = fields.String(allow_none=True)
    relayed_at = fields.DateTime(allow_none=True)
    decided_at = fields.DateTime(allow_none=True, metadata={"description": "when the case's outcome was known"})
    returned_by = fields.String(allow_none=True)
    returned_at = fields.DateTime(allow_none=True)
    decisions = fields.List(fields.Nested(EscalationDecisionSchema), required=True)


class EscalationDetailSchema(EscalationSchema):
    hops = fields.List(fields.Nested(EscalationHopSchema), required=True)


class EscalationsSchema(Schema):
    today = fields.Date(required=True)
    escalations = fields.List(fields.Nested(EscalationSchema), required=True,
                              metadata={"description": "overdue first, then by the city's deadline"})
