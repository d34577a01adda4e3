"""Wire formats of the evaluation API: a dump schema for every response. No request bodies."""
from marshmallow import Schema, fields, validate

from services.evaluation.supervision import BOARD_PAGE_MAX, MAX_HORIZON_DAYS
from services.evaluation.supervision_rules import WARNED
from shared.schemas import TOWN_CODE, QuerySchema, TableQuerySchema, UtcDateTime


class CaseEventSchema(Schema):
    type = fields.String(required=True)
    case_version = fields.Integer(required=True)
    producer = fields.String(required=True)
    occurred_at = UtcDateTime(required=True)
    data = fields.Dict(keys=fields.String(), required=True,
                       metadata={"description": "the event's payload, without contact details or notice texts"})


class CaseEventsSchema(Schema):
    case_number = fields.String(required=True)
    events = fields.List(fields.Nested(CaseEventSchema), required=True)


class EvaluationStatsSchema(Schema):
    cases_by_event = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


# --- deadline supervision (电子监察), the board and the breach forecast ---------------------------------

class BoardCaseSchema(Schema):
    case_number = fields.String(required=True)
    item_code = fields.String(allow_none=True)
    item_name = fields.String(allow_none=True)
    kind = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    accepting_town = fields.String(required=True)
    handling_town = fields.String(allow_none=True)
    department = fields.String(allow_none=True, metadata={"description": "the lead department"})
    first_responder = fields.String(allow_none=True)
    deadline = fields.Date(allow_none=True)
    working_days_left = fields.Integer(allow_none=True, metadata={"description": "negative: working days overdue"})
    colour = fields.String(required=True, metadata={"description": "red, yellow or green"})
    paused = fields.Boolean(required=True, metadata={"description": "the clock stands still (paused, materials)"})


class ForecastBreachSchema(Schema):
    case_number = fields.String(required=True)
    deadline = fields.Date(required=True)
    position = fields.Integer(required=True, metadata={"description": "in the office's queue, 1 = decided first"})
    working_days_available = fields.Integer(required=True)
    expected_decision = fields.Date(allow_none=True, metadata={"description": "at the recent rate"})


class OfficeForecastSchema(Schema):
    town = fields.String(required=True, metadata={"description": "the office's town, or city for a city bureau"})
    department = fields.String(required=True)
    open_cases = fields.Integer(required=True)
    overdue = fields.Integer(required=True)
    decisions = fields.Integer(required=True, metadata={"description": "decisions by people in the window"})
    window_days = fields.Integer(required=True)
    horizon_days = fields.Integer(required=True)
    rate = fields.Float(required=True, metadata={"description": "decisions per working day"})
    breaches = fields.Integer(required=True)
    needed_rate = fields.Float(required=True)
    needed_per_day = fields.Integer(required=True)
    extra_per_day = fields.Float(required=True)
    first_breaches = fields.List(fields.Nested(ForecastBreachSchema))


class ForecastSummarySchema(Schema):
    horizon_days = fields.Integer(required=True)
    window_days = fields.Integer(required=True)
    breaches = fields.Integer(required=True)
    offices = fields.List(fields.Nested(OfficeForecastSchema), required=True)


class BoardOfficeSchema(Schema):
    town = fields.String(required=True, metadata={"description": "the office's town, or city for a city bureau"})
    department = fields.String(required=True)
    red = fields.Integer(required=True)
    yellow = fields.Integer(required=True)
    green = fields.Integer(required=True)
    paused = fields.Integer(required=True, metadata={"description": "of those, clock stopped"})
    total = fields.Integer(required=True)


class BoardSchema(Schema):
    as_of = fields.Date(required=True)
    town = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    open_cases = fields.Integer(required=True, metadata={"description": "all open cases in view"})
    offices = fields.List(fields.Nested(BoardOfficeSchema), required=True,
                          metadata={"description": "open cases per office and colour, most red first"})
    cases = fields.List(fields.Nested(BoardCaseSchema), required=True,
                        metadata={"description": "the most urgent open cases, ?limit= of them (default 100)"})
    forecast = fields.Nested(ForecastSummarySchema, required=True)


class ForecastSchema(ForecastSummarySchema):
    as_of = fields.Date(required=True)


class WarningSchema(Schema):
    id = fields.Integer(required=True)
    case_number = fields.String(required=True)
    colour = fields.String(required=True)
    rule = fields.String(required=True)
    deadline = fields.Date(required=True)
    working_days_left = fields.Integer(required=True)
    accepting_town = fields.String(required=True)
    handling_town = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    first_responder = fields.String(allow_none=True, metadata={"description": "首问负责人"})
    item_name = fields.String(allow_none=True)
    raised_at = UtcDateTime(required=True)
    resolved_at = UtcDateTime(allow_none=True)
    resolution = fields.String(allow_none=True)


class WarningsSchema(Schema):
    warnings = fields.List(fields.Nested(WarningSchema), required=True)


class SupervisionNoticeSchema(Schema):
    id = fields.Integer(required=True)
    warning_id = fields.Integer(required=True)
    case_number = fields.String(required=True)
    accepting_town = fields.String(required=True)
    handling_town = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    department_head = fields.String(allow_none=True, metadata={"description": "addressed to: department:<code>[@town]"})
    supervisor = fields.String(required=True, metadata={"description": "addressed to: town:<code> or city"})
    text = fields.String(required=True)
    issued_at = UtcDateTime(required=True)


class SupervisionNoticesSchema(Schema):
    notices = fields.List(fields.Nested(SupervisionNoticeSchema), required=True)


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


# --- query arguments (shared.web.api's `query`) ----------------------------------------------------

DEPARTMENT_CODE = validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$")


class ScopeQuerySchema(QuerySchema):
    """Narrowed to a town or a department; another's than the caller's is not found (404)."""

    town = fields.String(validate=TOWN_CODE)
    department = fields.String(validate=DEPARTMENT_CODE)


class BoardQuerySchema(ScopeQuerySchema):
    limit = fields.Integer(validate=validate.Range(1, BOARD_PAGE_MAX))


class ForecastQuerySchema(ScopeQuerySchema):
    days = fields.Integer(validate=validate.Range(1, MAX_HORIZON_DAYS), metadata={"description": "working days"})


class WarningsQuerySchema(ScopeQuerySchema):
    colour = fields.String(validate=validate.OneOf(WARNED))
    case = fields.String(metadata={"description": "a case number"})
    open = fields.Boolean()


class MonthlyReportQuerySchema(TableQuerySchema):
    dept = fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,31}(@([0-9]{9}|city))?$"),
                         metadata={"description": "CODE, CODE@TOWN or CODE@city"})
