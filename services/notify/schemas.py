"""Wire formats of the notify API: a dump schema for every response. No request bodies."""
from marshmallow import Schema, fields


class DeliverySchema(Schema):
    id = fields.Integer(required=True)
    notice_kind = fields.String(required=True)
    notice_id = fields.Integer(required=True)
    channel = fields.String(required=True)
    text = fields.String(required=True, metadata={"description": "the text sent, ID and phone numbers masked"})
    status = fields.String(required=True, metadata={"description": "queued | sending | sent | failed | in_doubt"})
    attempts = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    sent_at = fields.DateTime(required=True, allow_none=True)


class DeliveriesSchema(Schema):
    case_number = fields.String(required=True)
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)


class NotifyStatsSchema(Schema):
    by_kind = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                          metadata={"description": "notices sent, by kind"})
    total = fields.Integer(required=True)
    result = fields.Integer(required=True)
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
