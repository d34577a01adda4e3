"""Wire formats of the evaluation API: a dump schema for every response. No request bodies."""
from marshmallow import Schema, fields


class CaseEventSchema(Schema):
    type = fields.String(required=True)
    case_version = fields.Integer(required=True)
    producer = fields.String(required=True)
    occurred_at = fields.DateTime(required=True)
    data = fields.Dict(keys=fields.String(), required=True,
                       metadata={"description": "the event's payload, without contact details or notice texts"})


class CaseEventsSchema(Schema):
    case_number = fields.String(required=True)
    events = fields.List(fields.Nested(CaseEventSchema), required=True)


class EvaluationStatsSchema(Schema):
    cases_by_event = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
