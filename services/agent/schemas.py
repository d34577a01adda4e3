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
