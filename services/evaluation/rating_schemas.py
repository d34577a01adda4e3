"""Wire formats of 好差评 ratings, rectifications, appeals and 有诉即办 complaints: request bodies (loaded
strictly) and a dump schema for every response."""
from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.evaluation.rating_rules import (
    CHANNELS,
    COMPLAINT_CHANNELS,
    LEVELS,
    AppealStatus,
    ComplaintStatus,
    RectState,
    Stage,
)
from services.evaluation.ratings import LIST_LIMIT
from shared.pii import is_valid_mobile
from shared.schemas import TOWN_CODE, QuerySchema, StrictSchema, UtcDateTime, one_of

LEVEL = validate.Range(min=min(LEVELS), max=max(LEVELS))
LEVEL_TEXT = "1 非常满意, 2 满意, 3 基本满意, 4 不满意, 5 非常不满意"
TOWN = validate.Regexp(r"^\d{9}$")
DEPT = validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$")


def _mobile(data: dict, **_):
    if data.get("phone") is not None and not is_valid_mobile(data["phone"]):
        raise ValidationError("not a valid mainland mobile number", "phone")


# --- requests -----------------------------------------------------------------------------------------

class RaterSchema(StrictSchema):
    """Who rated, if they said: seen by supervisors only (the phone masked), never by the staff rated."""

    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 100))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=20))

    @validates_schema
    def _phone(self, data, **kw):
        _mobile(data, **kw)


class RateSchema(StrictSchema):
    """A rating of a case at a stage, through a channel."""

    case_number = fields.String(required=True, validate=validate.Length(1, 40))
    level = fields.Integer(required=True, strict=True, validate=LEVEL, metadata={"description": LEVEL_TEXT})
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    stage = fields.String(required=True, validate=validate.OneOf([str(s) for s in Stage]))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    rater = fields.Nested(RaterSchema, load_default=None, allow_none=True)


class FollowUpSchema(StrictSchema):
    """The rater's one follow-up rating, after the rectification."""

    level = fields.Integer(required=True, strict=True, validate=LEVEL, metadata={"description": LEVEL_TEXT})
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))


class CallbackSchema(StrictSchema):
    """回访: when the rater was called back, by whom, and what was said."""

    at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC,
                              metadata={"description": "when (default: now)"})
    by = fields.String(required=True, validate=validate.Length(1, 100))
    notes = fields.String(required=True, validate=validate.Length(1, 2000))


class RectifySchema(StrictSchema):
    measures = fields.String(required=True, validate=validate.Length(1, 2000),
                             metadata={"description": "整改措施: what was done"})


class CloseRectificationSchema(StrictSchema):
    """The rater declined to rate again: the rectification closes without a follow-up."""

    note = fields.String(required=True, validate=validate.Length(1, 1000))


class AppealSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(1, 2000))


class AppealDecisionSchema(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf([str(AppealStatus.UPHELD),
                                                                    str(AppealStatus.REJECTED)]))
    reason = fields.String(required=True, validate=validate.Length(1, 2000))


class ComplainantSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    phone = fields.String(required=True, validate=validate.Length(max=20))

    @validates_schema
    def _phone(self, data, **kw):
        _mobile(data, **kw)


class FileComplaintSchema(StrictSchema):
    """有诉即办: a complaint, accepted at once."""

    subject = fields.String(required=True, validate=validate.Length(1, 200))
    text = fields.String(required=True, validate=validate.Length(1, 4000))
    case_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 40))
    staff = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64),
                          metadata={"description": "the staff member complained of, if one"})
    town = fields.String(required=True, validate=TOWN)
    channel = fields.String(required=True, validate=validate.OneOf(COMPLAINT_CHANNELS),
                            metadata={"description": "hotline: 12345"})
    complainant = fields.Nested(ComplainantSchema, required=True)


class AssignComplaintSchema(StrictSchema):
    to = fields.String(required=True, validate=validate.Length(1, 64))
    department = fields.String(load_default=None, allow_none=True, validate=DEPT)


class ResolveComplaintSchema(StrictSchema):
    resolution = fields.String(required=True, validate=validate.Length(1, 4000))


# --- responses ----------------------------------------------------------------------------------------

class RaterViewSchema(Schema):
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True, metadata={"description": "masked"})


class FollowUpViewSchema(Schema):
    level = fields.Integer(required=True)
    level_name = fields.String(required=True)
    channel = fields.String(required=True)
    at = UtcDateTime(required=True)


class RatingViewSchema(Schema):
    id = fields.Integer(required=True)
    case_number = fields.String(required=True)
    stage = fields.String(required=True)
    level = fields.Integer(required=True, metadata={"description": LEVEL_TEXT})
    level_name = fields.String(required=True)
    bad = fields.Boolean(required=True)
    channel = fields.String(required=True)
    comment = fields.String(allow_none=True)
    kind = fields.String(allow_none=True)
    town = fields.String(required=True, metadata={"description": "the accepting town"})
    window = fields.String(required=True, metadata={"description": "the accepting centre's window"})
    handling_town = fields.String(allow_none=True)
    staff = fields.String(allow_none=True, metadata={"description": "首问负责人"})
    department = fields.String(allow_none=True)
    departments = fields.List(fields.String(), required=True)
    village = fields.String(allow_none=True)
    rated_at = UtcDateTime(required=True)
    rated_on = fields.Date(required=True)
    void = fields.Boolean(required=True)
    voided_at = UtcDateTime(allow_none=True)
    void_reason = fields.String(allow_none=True)
    follow_up = fields.Nested(FollowUpViewSchema, allow_none=True)
    rectification_id = fields.Integer(allow_none=True)
    rectification_state = fields.String(allow_none=True)
    appeal_id = fields.Integer(allow_none=True)
    appeal_status = fields.String(allow_none=True)
    rater = fields.Nested(RaterViewSchema, allow_none=True,
                          metadata={"description": "supervisors only; absent for everyone else"})
    recorded_by = fields.String(metadata={"description": "supervisors only"})


class RatingsListSchema(Schema):
    ratings = fields.List(fields.Nested(RatingViewSchema), required=True)


class RectificationViewSchema(Schema):
    id = fields.Integer(required=True)
    rating_id = fields.Integer(required=True)
    case_number = fields.String(required=True)
    level = fields.Integer(required=True)
    town = fields.String(required=True)
    department = fields.String(allow_none=True)
    staff = fields.String(allow_none=True)
    state = fields.String(required=True, metadata={"description": "open | called_back | rectified | closed"})
    opened_on = fields.Date(required=True)
    callback_due = fields.Date(required=True)
    rectify_due = fields.Date(required=True)
    next_due = fields.Date(allow_none=True)
    days_left = fields.Integer(allow_none=True, metadata={"description": "working days to the next due date"})
    overdue = fields.String(allow_none=True, metadata={"description": "callback | rectification (late), or null"})
    called_back_at = UtcDateTime(allow_none=True)
    called_back_by = fields.String(allow_none=True)
    callback_notes = fields.String(allow_none=True)
    measures = fields.String(allow_none=True)
    rectified_at = UtcDateTime(allow_none=True)
    rectified_by = fields.String(allow_none=True)
    closed_at = UtcDateTime(allow_none=True)
    closed_reason = fields.String(allow_none=True, metadata={"description": "follow_up | declined | appeal_upheld"})
    close_note = fields.String(allow_none=True)
    follow_up_level = fields.Integer(allow_none=True)


class RectificationsListSchema(Schema):
    today = fields.Date(required=True)
    rectifications = fields.List(fields.Nested(RectificationViewSchema), required=True)


class AppealViewSchema(Schema):
    id = fields.Integer(required=True)
    rating_id = fields.Integer(required=True)
    case_number = fields.String(required=True)
    level = fields.Integer(required=True)
    reason = fields.String(required=True)
    appellant = fields.String(required=True)
    appealed_at = UtcDateTime(required=True)
    status = fields.String(required=True, metadata={"description": "pending | upheld | rejected"})
    decided_by = fields.String(allow_none=True)
    decided_at = UtcDateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)


class AppealsListSchema(Schema):
    appeals = fields.List(fields.Nested(AppealViewSchema), required=True)


class ComplainantViewSchema(Schema):
    name = fields.String(required=True)
    phone = fields.String(required=True, metadata={"description": "masked"})


class ComplaintViewSchema(Schema):
    number = fields.String(required=True)
    town = fields.String(required=True)
    channel = fields.String(required=True)
    subject = fields.String(required=True)
    text = fields.String(required=True)
    case_number = fields.String(allow_none=True)
    staff = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "received | acknowledged | assigned | resolved"})
    received_at = UtcDateTime(required=True)
    due = fields.Date(required=True)
    days_left = fields.Integer(allow_none=True, metadata={"description": "working days to the due date (open)"})
    overdue = fields.Boolean(required=True)
    acknowledged_at = UtcDateTime(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
    assigned_to = fields.String(allow_none=True)
    assigned_at = UtcDateTime(allow_none=True)
    resolution = fields.String(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolved_at = UtcDateTime(allow_none=True)
    resolved_on_time = fields.Boolean(allow_none=True)
    complainant = fields.Nested(ComplainantViewSchema, allow_none=True,
                                metadata={"description": "the window, supervisors and services only"})


class ComplaintsListSchema(Schema):
    today = fields.Date(required=True)
    overdue = fields.Integer(required=True)
    complaints = fields.List(fields.Nested(ComplaintViewSchema), required=True)


# --- query arguments (shared.web.api's `query`) ----------------------------------------------------

class RatingsQuerySchema(QuerySchema):
    case_number = fields.String()
    town = fields.String(validate=TOWN_CODE)
    department = fields.String()
    level = fields.Integer(validate=validate.Range(min(LEVELS), max(LEVELS)))
    limit = fields.Integer(validate=validate.Range(1, LIST_LIMIT))


class RectificationsQuerySchema(QuerySchema):
    state = fields.String(validate=one_of(RectState, "all"), metadata={"description": "not closed by default"})


class AppealsQuerySchema(QuerySchema):
    status = fields.String(validate=one_of(AppealStatus, "all"), metadata={"description": "pending by default"})


class ComplaintsQuerySchema(QuerySchema):
    status = fields.String(validate=one_of(ComplaintStatus, "all"), metadata={"description": "open by default"})
    town = fields.String(validate=TOWN_CODE)
    overdue = fields.Boolean()
