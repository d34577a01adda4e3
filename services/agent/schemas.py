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
