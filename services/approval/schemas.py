"""Wire formats of the approver API.

Only what JSON Schema can say is checked here (the OpenAPI document must stay true); the rules that
need more (a refusal's reason, `to` after `from`, A and B two people) are the desk's, with a 400.
"""
from marshmallow import Schema, fields, validate

from shared.contracts import SPECIAL_PROCEDURES
from shared.openapi import MAX_ID
from shared.schemas import QuerySchema, StrictSchema, UtcDateTime, comma_list_of
from shared.vocabulary import CaseKind, ExtensionStatus, Outcome, WorkItemStatus

STAFF_ID = validate.Length(1, 64)
REASON = validate.Length(1, 500)


class DecisionSchema(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf([str(o) for o in Outcome]))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    result_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 100),
                                  metadata={"description": "certificate or document number (default: by rule)"})
    valid_until = fields.Date(load_default=None, allow_none=True,
                              metadata={"description": "an approval's validity: the last day it holds"})


class RequestedMaterialSchema(StrictSchema):
    code = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 32))
    name = fields.String(required=True, validate=validate.Length(1, 200))


class MaterialsRequestSchema(StrictSchema):
    materials = fields.List(fields.Nested(RequestedMaterialSchema), required=True,
                            validate=validate.Length(1, 30),
                            metadata={"description": "every missing material at once (一次性告知)"})
    reason = fields.String(required=True, validate=REASON)


class ProcedureSchema(StrictSchema):
    procedure = fields.String(required=True, validate=validate.OneOf(SPECIAL_PROCEDURES),
                              metadata={"description": "the special procedure (特别程序) that stops the clock"})
    reason = fields.String(required=True, validate=REASON)


class ProcedureEndSchema(StrictSchema):
    reason = fields.String(required=True, validate=REASON,
                           metadata={"description": "what the procedure found, e.g. 专家评审结束"})


class ExtensionRequestSchema(StrictSchema):
    # 60 is the message contract's bound, not the rule: the case's ledger decides (see extension_days_max)
    days = fields.Integer(required=True, strict=True, validate=validate.Range(1, 60),
                          metadata={"description": "working days added to the deadline; at most the work "
                                                   "item's extension_days_max (the centre's rule)"})
    reason = fields.String(required=True, validate=REASON)


class PostSchema(StrictSchema):
    a = fields.String(required=True, validate=STAFF_ID, metadata={"description": "the A holder's staff id"})
    b = fields.String(required=True, validate=STAFF_ID, metadata={"description": "the B holder's staff id"})
    head = fields.String(load_default=None, allow_none=True, validate=STAFF_ID,
                         metadata={"description": "the department head, the fallback when A and B are away "
                                                  "(default: the department head setting the post)"})


class AbsenceSchema(StrictSchema):
    holder = fields.String(required=True, validate=STAFF_ID)
    from_ = UtcDateTime(required=True, data_key="from",
                            metadata={"description": "away from this moment on (a time without offset, or a "
                                                     "date at 00:00, is Asia/Shanghai)"})
    to = UtcDateTime(required=True,
                         metadata={"description": "back at this moment (exclusive): a leave of 2-4 November is "
                                                  "from 2026-11-02 to 2026-11-05"})
    reason = fields.String(required=True, validate=REASON,
                           metadata={"description": "leave, training, meeting …"})


# --- responses ----------------------------------------------------------------------------------------

class ExtensionViewSchema(StrictSchema):
    days = fields.Integer(required=True)
    reason = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf([str(s) for s in ExtensionStatus]),
                           metadata={"description": "requested, approved (sent to the centre), or refused by "
                                                    "the centre's ledger (refused_reason says why)"})
    requested_by = fields.String(required=True)
    requested_at = UtcDateTime(required=True)
    approved_by = fields.String(allow_none=True)
    approved_at = UtcDateTime(allow_none=True)
    work_item_id = fields.Integer(required=True)
    refused_reason = fields.String(allow_none=True)
    refused_at = UtcDateTime(allow_none=True)


class WorkItemSchema(StrictSchema):
    id = fields.Integer(required=True)
    case_number = fields.String(required=True)
    case_version = fields.Integer(required=True)
    item_code = fields.String(required=True)
    item_name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf([str(k) for k in CaseKind]))
    handling_town = fields.String(required=True)
    accepting_town = fields.String(required=True)
    deadline = fields.Date(required=True)
    days_left = fields.Integer(allow_none=True)
    overdue = fields.Boolean(required=True)
    status = fields.String(required=True, validate=validate.OneOf([str(s) for s in WorkItemStatus]))
    paused = fields.Boolean(required=True)
    assignee = fields.String(allow_none=True)
    procedure = fields.String(allow_none=True)
    requested_materials = fields.List(fields.Nested(RequestedMaterialSchema), allow_none=True)
    outcome = fields.String(allow_none=True, validate=validate.OneOf([str(o) for o in Outcome]))
    reason = fields.String(allow_none=True)
    result_number = fields.String(allow_none=True)
    valid_until = fields.Date(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = UtcDateTime(allow_none=True)
    superseded_by = fields.Integer(allow_none=True)
    extension_days_max = fields.Integer(allow_none=True, metadata={
        "description": "working days an extension may still add, as the centre said when routing (0: none)"})
    relayed_by = fields.String(allow_none=True, metadata={
        "description": "the town agent who relayed escalated work (上报件): the decision goes back through them"})


class WorkActionSchema(StrictSchema):
    action = fields.String(required=True)
    actor = fields.String(required=True)
    at = UtcDateTime(required=True)
    reason = fields.String(allow_none=True)
    data = fields.Dict(required=True)
    idempotency_key = fields.String(required=True)


class RefusedStepSchema(StrictSchema):
    step = fields.String(required=True)
    reason = fields.String(required=True, metadata={"description": "the centre's ledger's reason"})
    at = UtcDateTime(required=True)


class WorkItemDetailSchema(WorkItemSchema):
    extension = fields.Nested(ExtensionViewSchema, allow_none=True)
    history = fields.List(fields.Nested(WorkActionSchema), required=True)
    refused_steps = fields.List(fields.Nested(RefusedStepSchema), required=True)


class WorklistSchema(StrictSchema):
    department = fields.String(required=True)
    today = fields.Date(required=True)
    items = fields.List(fields.Nested(WorkItemSchema), required=True)
    paused = fields.List(fields.Nested(WorkItemSchema), required=True)


class AbsenceViewSchema(StrictSchema):
    id = fields.Integer(required=True)
    office = fields.String(required=True)
    holder = fields.String(required=True)
    from_ = UtcDateTime(required=True, data_key="from")
    to = UtcDateTime(required=True)
    reason = fields.String(required=True)
    recorded_by = fields.String(required=True)
    moved_work_items = fields.List(fields.Integer(), metadata={"description": "after POST: the work that moved"})


class OnDutySchema(StrictSchema):
    holder = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    because = fields.String(allow_none=True)


class PostViewSchema(StrictSchema):
    office = fields.String(required=True)
    a = fields.String(required=True)
    b = fields.String(required=True)
    head = fields.String(allow_none=True)
    on_duty = fields.Nested(OnDutySchema, required=True)
    absences = fields.List(fields.Nested(AbsenceViewSchema), required=True)
    updated_by = fields.String(required=True)
    updated_at = UtcDateTime(required=True)


class PostsSchema(StrictSchema):
    department = fields.String(required=True)
    posts = fields.List(fields.Nested(PostViewSchema), required=True)


class HandoverSchema(StrictSchema):
    id = fields.Integer(required=True)
    work_item_id = fields.Integer(required=True)
    case_number = fields.String(required=True)
    from_ = fields.String(allow_none=True, data_key="from")
    to = fields.String(allow_none=True)
    role = fields.String(required=True)
    at = UtcDateTime(required=True)
    reason = fields.String(allow_none=True)
    actor = fields.String(required=True)


class HandoversSchema(StrictSchema):
    department = fields.String(required=True)
    office = fields.String(required=True)
    handovers = fields.List(fields.Nested(HandoverSchema), required=True)


class StatsSchema(Schema):
    """Counts by status and outcome, handovers, head fallbacks and approved extensions."""

    department = fields.String(required=True)
    received = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    paused = fields.Integer(required=True)
    waiting_materials = fields.Integer(required=True)
    decided = fields.Integer(required=True)
    withdrawn = fields.Integer(required=True)
    superseded = fields.Integer(required=True)
    approved = fields.Integer(required=True)
    refused = fields.Integer(required=True)
    handovers = fields.Integer(required=True)
    head_fallbacks = fields.Integer(required=True)
    extensions = fields.Integer(required=True)


class WorklistQuerySchema(QuerySchema):
    limit = fields.Integer(validate=validate.Range(0, MAX_ID), metadata={"description": "100 by default, at most 500"})
    status = fields.String(validate=comma_list_of(WorkItemStatus, "open", "all"),
                           metadata={"description": "open (default), all, or statuses separated by commas"})
    assignee = fields.String(metadata={"description": "me, none (unassigned), or a staff number"})
