"""Wire formats of the notify API: a dump schema for every response. No request bodies."""
from marshmallow import Schema, fields

from shared.schemas import UtcDateTime


class DeliverySchema(Schema):
    id = fields.Integer(required=True)
    notice_kind = fields.String(required=True)
    notice_id = fields.Integer(required=True)
    channel = fields.String(required=True)
    text = fields.String(required=True, metadata={"description": "the text sent, ID and phone numbers masked"})
    status = fields.String(required=True, metadata={
        "description": "queued | sending | sent | failed (tried again) | in_doubt (maybe sent, never again) | "
                       "dead_lettered (failed for good; the next channel has a delivery of its own) | "
                       "recorded (an EMS waybill)"})
    attempts = fields.Integer(required=True, metadata={"description": "sends tried on this channel"})
    created_at = UtcDateTime(required=True)
    sent_at = UtcDateTime(required=True, allow_none=True)
    segments = fields.Integer(allow_none=True, metadata={"description": "SMS: the parts the operator bills"})
    fallback_of = fields.Integer(allow_none=True, metadata={
        "description": "the delivery (on another channel) that failed for good before this one"})
    recipient = fields.String(allow_none=True, metadata={
        "description": "masked: 138****5678, z***@example.com, or the window that holds the notice"})
    channel_status = fields.String(allow_none=True, metadata={"description": "what the channel answered"})
    dead_letter_reason = fields.String(allow_none=True, metadata={"description": "why this channel failed for good"})
    tracking_number = fields.String(allow_none=True, metadata={"description": "EMS: the waybill (channel ems)"})
    last_error = fields.String(allow_none=True)


class DeliveriesSchema(Schema):
    case_number = fields.String(required=True)
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)


class NotifyStatsSchema(Schema):
    by_kind = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                          metadata={"description": "notices sent, by kind"})
    total = fields.Integer(required=True)
    result = fields.Integer(required=True)
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    by_channel = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Integer()),
                             metadata={"description": "deliveries by channel, then by status"})
