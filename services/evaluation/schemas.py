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


class MonthlyRowSchema(Schema):
    key = fields.String(required=True, metadata={"description": "village or town code, staff id, or dept@town|city"})
    name = fields.String(required=True)
    town = fields.String(required=True, metadata={"description": "the town the row belongs to ('city': a bureau)"})
    town_name = fields.String(required=True)
    received = fields.Integer(required=True)
    instant = fields.Integer(required=True)
    promised = fields.Integer(required=True)
    supplement = fields.Integer(required=True)
    joint = fields.Integer(required=True)
    returned = fields.Integer(required=True)
    escalated = fields.Integer(required=True)
    consultation = fields.Integer(required=True)
    review = fields.Integer(required=True)
    completed = fields.Integer(required=True)
    on_time = fields.Integer(required=True)
    late = fields.Integer(required=True)
    on_time_rate = fields.Float(required=True, allow_none=True, metadata={"description": "percent, 2 decimals"})
    avg_days = fields.Float(required=True, allow_none=True, metadata={"description": "working days, 2 decimals"})
    ratings = fields.Integer(required=True)
    satisfied = fields.Integer(required=True)
    bad = fields.Integer(required=True)
    satisfaction_rate = fields.Float(required=True, allow_none=True)
    rectified = fields.Integer(required=True)
    rectification_rate = fields.Float(required=True, allow_none=True)
    complaints = fields.Integer(required=True)


class MonthlyDimensionSchema(Schema):
    dimension = fields.String(required=True)
    heading = fields.String(required=True)
    rows = fields.List(fields.Nested(MonthlyRowSchema), required=True)


class MonthlyColumnSchema(Schema):
    key = fields.String(required=True)
    heading = fields.String(required=True)


class MonthlyReportSchema(Schema):
    title = fields.String(required=True)
    month = fields.String(required=True)
    town = fields.String(required=True, allow_none=True)
    department = fields.String(required=True, allow_none=True)
    columns = fields.List(fields.Nested(MonthlyColumnSchema), required=True)
    dimensions = fields.List(fields.Nested(MonthlyDimensionSchema), required=True)
