"""Wire formats of the window API: request bodies (loaded) and responses (dump schemas, for the
OpenAPI document and for clients and fuzzers that check what they get)."""
from marshmallow import Schema, fields, validate

from shared.catalog import CASE_KINDS, LEVELS
from shared.contracts import DELIVERIES, SPECIAL_PROCEDURES  # 特别程序: the clock pauses
from shared.openapi import MAX_ID
from shared.schemas import ApplicantSchema, QuerySchema, StrictSchema, UtcDateTime, one_of
from shared.vocabulary import CaseKind, CaseStatus, NoticeKind, Outcome


class SubmitCaseSchema(StrictSchema):
    item_code = fields.String(required=True, validate=validate.Length(1, 32))
    applicant = fields.Nested(ApplicantSchema, required=True)
    materials = fields.List(fields.String(validate=validate.Length(1, 32)), load_default=list)
    first_responder = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))
    via_agent = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))
    in_person = fields.Boolean(load_default=True, metadata={"description": "the applicant is at the window"})
    return_reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 500),
                                  metadata={"description": "not accepted (不予受理): the written reason"})
    delivery = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(DELIVERIES), metadata={
        "description": "how the result comes back: pickup at this centre (the default; also applicant.channel "
                       "pickup) or mail by EMS (also applicant.channel mail; needs mail_address); only what the "
                       "item's catalogue entry offers"})
    mail_address = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 500),
                                 metadata={"description": "where EMS takes the result (kept only for mail)"})


class MaterialsSchema(StrictSchema):
    materials = fields.List(fields.String(validate=validate.Length(1, 32)), required=True,
                            validate=validate.Length(min=1))


QUERY_CODE = validate.Length(1, 20)


class NoticePrintSchema(StrictSchema):
    """Printing a notice with the 查询码 just issued (a POST, so the code is in no URL or access log)."""

    query_code = fields.String(required=True, validate=QUERY_CODE)


class LookupSchema(StrictSchema):
    """The applicant's lookup (the portal asks for them): the case number and its 查询码."""

    case_number = fields.String(required=True, validate=validate.Length(1, 40))
    query_code = fields.String(required=True, validate=QUERY_CODE)


class PublicProgressSchema(Schema):
    """All an applicant's lookup shows: the status, the promised date, the next step."""

    case_number = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf([str(s) for s in CaseStatus]))
    status_text = fields.String(required=True)
    promised_date = fields.Date(allow_none=True, metadata={"description": "承诺办结日期"})
    completed_on = fields.Date(allow_none=True)
    next_step = fields.String(required=True, metadata={"description": "下一步"})


class IssuedQueryCodeSchema(Schema):
    """A new 查询码, in plaintext this once (only its hash is kept)."""

    case_number = fields.String(required=True)
    query_code = fields.String(required=True)
    track_url = fields.String(required=True, metadata={"description": "the progress page (the QR code's target)"})


class ReasonSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class PauseSchema(StrictSchema):
    procedure = fields.String(required=True, validate=validate.OneOf(SPECIAL_PROCEDURES))
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class ExtensionSchema(StrictSchema):
    days = fields.Integer(required=True, strict=True, validate=validate.Range(1, 60))
    reason = fields.String(required=True, validate=validate.Length(1, 500))


# --- responses ----------------------------------------------------------------------------------------

def _one_of(enum) -> validate.OneOf:
    return validate.OneOf([str(m) for m in enum])


class MaterialRefSchema(StrictSchema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class ApplicantViewSchema(StrictSchema):
    type = fields.String(required=True)
    name = fields.String(required=True)
    id_number = fields.String(metadata={"description": "masked"})
    credit_code = fields.String(metadata={"description": "masked"})
    phone = fields.String(required=True, metadata={"description": "masked"})


class PausedSchema(StrictSchema):
    since = fields.Date(required=True)
    procedure = fields.String(allow_none=True)


class ProgressSchema(StrictSchema):
    department = fields.String(required=True)
    lead = fields.Boolean(required=True)
    outcome = fields.String(allow_none=True, validate=_one_of(Outcome))
    reason = fields.String(allow_none=True)


class HistoryEntrySchema(StrictSchema):
    seq = fields.Integer(required=True)
    action = fields.String(required=True)
    actor = fields.String(required=True)
    at = UtcDateTime(required=True)
    reason = fields.String(allow_none=True)
    data = fields.Dict(required=True)


class NoticeRefSchema(StrictSchema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=_one_of(NoticeKind))
    title = fields.String(required=True)
    issued_at = UtcDateTime(required=True)
    sms_text = fields.String(required=True)


class TimelineEntrySchema(StrictSchema):
    """One hop of a case: a ledger action (who, when, why) or a notice issued (kind, when, by whom)."""

    at = UtcDateTime(required=True)
    action = fields.String(required=True, metadata={"description": "the ledger's action, or 'notice'"})
    actor = fields.String(required=True, metadata={
        "description": "who: the clerk, the town agent, the city approver; for a notice its responsible person"})
    reason = fields.String(allow_none=True)
    data = fields.Dict()
    notice_id = fields.Integer()
    notice_kind = fields.String(validate=_one_of(NoticeKind))
    title = fields.String()


class WaybillViewSchema(StrictSchema):
    tracking_number = fields.String(required=True, metadata={"description": "EMS运单号 (UPU S10)"})
    created_at = UtcDateTime(required=True)


class ResponsibilitySchema(StrictSchema):
    """收受分离: one centre's share of a case."""

    role = fields.String(required=True, validate=validate.OneOf(["accepting", "handling"]))
    town = fields.String(required=True, metadata={"description": "a town code, or city"})
    centre = fields.String(metadata={"description": "accepting: the centre's name"})
    first_responder = fields.String(metadata={"description": "accepting: 首问责任人"})
    office = fields.String(metadata={"description": "handling: the deciding department office"})
    department = fields.String()
    scope = fields.String(metadata={"description": "handling: the approvers' scope"})
    duties = fields.List(fields.String(), required=True)


class CaseSchema(StrictSchema):
    """A case as lists show it (numbers masked)."""

    case_number = fields.String(required=True)
    version = fields.Integer(required=True)
    status = fields.String(required=True, validate=_one_of(CaseStatus))
    kind = fields.String(required=True, validate=_one_of(CaseKind))
    item_code = fields.String(required=True)
    item_name = fields.String(required=True)
    catalog_version = fields.String(required=True)
    department = fields.String(required=True)
    departments = fields.List(fields.String(), required=True)
    accepting_town = fields.String(required=True)
    handling_town = fields.String(required=True)
    applicant = fields.Nested(ApplicantViewSchema, required=True)
    first_responder = fields.String(required=True)
    via_agent = fields.String(allow_none=True)
    village = fields.String(allow_none=True, metadata={"description": "the village station it came from"})
    station_submission = fields.String(allow_none=True, metadata={"description": "the station's record number"})
    accepted_at = UtcDateTime(required=True)
    clock_started_on = fields.Date(allow_none=True)
    deadline = fields.Date(allow_none=True)
    deadline_provisional = fields.Boolean(required=True)
    days_left = fields.Integer(allow_none=True, metadata={"description": "working days; negative when overdue"})
    missing_materials = fields.List(fields.Nested(MaterialRefSchema), required=True)
    deferred_materials = fields.List(fields.Nested(MaterialRefSchema), required=True)
    deferred_due = fields.Date(allow_none=True)
    paused = fields.Nested(PausedSchema, allow_none=True)
    extended_days = fields.Integer(allow_none=True)
    review_of = fields.String(allow_none=True)
    review_case = fields.String(allow_none=True)
    advice = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True, validate=_one_of(Outcome))
    reason = fields.String(allow_none=True)
    result_number = fields.String(allow_none=True)
    completed_on = fields.Date(allow_none=True)
    allowed_actions = fields.List(fields.String(), required=True)
    departments_not_served = fields.List(fields.String(), required=True)
    warning = fields.String(metadata={"description": "present while a department's work waits unserved"})
    delivery = fields.String(allow_none=True, validate=validate.OneOf(DELIVERIES),
                             metadata={"description": "pickup at the accepting centre, or EMS mail"})


class CaseDetailSchema(CaseSchema):
    """A case with its departments' progress, timeline and notices."""

    departments_progress = fields.List(fields.Nested(ProgressSchema), required=True)
    history = fields.List(fields.Nested(HistoryEntrySchema), required=True)
    notices = fields.List(fields.Nested(NoticeRefSchema), required=True)
    timeline = fields.List(fields.Nested(TimelineEntrySchema), required=True, metadata={
        "description": "every hop (history and notices) by time: initial review, relay, city decision, "
                       "return, decision, notices, with who and when"})
    waybill = fields.Nested(WaybillViewSchema, allow_none=True, metadata={"description": "the EMS waybill"})
    responsibilities = fields.List(fields.Nested(ResponsibilitySchema), required=True)
    query_code = fields.String(metadata={"description": "查询码, in plaintext only in the answer that opens the case "
                                                        "(201): print it on the notice"})
    track_url = fields.String(metadata={"description": "the progress page (the QR code's target), with query_code"})


class HandledCaseSchema(StrictSchema):
    """全城通办: a case another town's centre accepted that this town's department office handles, as the
    accepting centre last told (its ledger stays there; no applicant data here)."""

    case_number = fields.String(required=True)
    version = fields.Integer(required=True)
    responsibility = fields.String(required=True, validate=validate.OneOf(["handling"]))
    status = fields.String(required=True, validate=_one_of(CaseStatus))
    kind = fields.String(required=True, validate=_one_of(CaseKind))
    item_code = fields.String(required=True)
    item_name = fields.String(required=True)
    department = fields.String(required=True)
    accepting_town = fields.String(required=True)
    accepting_centre = fields.String(required=True)
    handling_town = fields.String(required=True)
    first_responder = fields.String(required=True)
    accepted_at = UtcDateTime(required=True)
    deadline = fields.Date(allow_none=True)
    delivery = fields.String(allow_none=True, validate=validate.OneOf(DELIVERIES))
    outcome = fields.String(allow_none=True, validate=_one_of(Outcome))
    completed_on = fields.Date(allow_none=True)
    tracking_number = fields.String(allow_none=True, metadata={"description": "EMS运单号 of a result sent by mail"})
    updated_at = UtcDateTime(required=True)
    responsibilities = fields.List(fields.Nested(ResponsibilitySchema), required=True)


class TransferListSchema(StrictSchema):
    transfers = fields.List(fields.Nested(HandledCaseSchema), required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class CaseListSchema(StrictSchema):
    cases = fields.List(fields.Nested(CaseSchema), required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class StatsSchema(StrictSchema):
    town = fields.String(required=True)
    cases = fields.Integer(required=True)
    accepted = fields.Integer(required=True)
    completed = fields.Integer(required=True)
    approved = fields.Integer(required=True)
    refused = fields.Integer(required=True)
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    by_kind = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, metadata={
        "description": "the catalogue's kind, plus supplement and returned as they happened"})
    department_decisions = fields.Integer(required=True)
    late_decisions = fields.Integer(required=True, metadata={
        "description": "departments' decisions that arrived after the case had moved on (closed by another "
                       "department's refusal, superseded): on the timeline, changing nothing"})
    from_villages = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, metadata={
        "description": "cases village stations relayed: cases, completed, returned"})
    escalated = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, metadata={
        "description": "escalated cases (上报件) after 初审: to_town_agent, completed"})
    city_wide = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, metadata={
        "description": "全城通办: handled_by_other_towns (accepted here), mailed, waybills, "
                       "handled_here_for_other_towns, handled_here_completed"})


class LedgerCheckSchema(StrictSchema):
    cases = fields.Integer(required=True)
    broken = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                         metadata={"description": "case number -> seq of the first broken link"})


class CatalogItemSummarySchema(StrictSchema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    item_type = fields.String(required=True)
    department = fields.String(required=True)
    level = fields.String(required=True)
    kind = fields.String(required=True)
    promised_days = fields.Integer(required=True)
    statutory_days = fields.Integer(required=True)
    fee_fen = fields.Integer(required=True)
    in_person = fields.Boolean(required=True)
    agent_allowed = fields.Boolean(required=True)
    city_wide = fields.Boolean(required=True)


class NamedRefSchema(StrictSchema):
    """A town or department of the catalogue: its code and name."""

    code = fields.String(required=True)
    name = fields.String(required=True)


class CatalogSchema(StrictSchema):
    version = fields.String(required=True)
    items = fields.List(fields.Nested(CatalogItemSummarySchema), required=True)
    towns = fields.List(fields.Nested(NamedRefSchema), metadata={
        "description": "the catalogue's towns: an applicant's household town for 全城通办"})
    departments = fields.List(fields.Nested(NamedRefSchema), metadata={"description": "the catalogue's departments"})


class CatalogItemSchema(Schema):
    """One item as the catalogue holds it (materials, limits, fee, basis …), with the catalogue version."""

    version = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    materials = fields.List(fields.Dict(), required=True)


# --- query arguments (shared.web.api's `query`) ----------------------------------------------------

class PageQuerySchema(QuerySchema):
    limit = fields.Integer(validate=validate.Range(0, MAX_ID), metadata={"description": "100 by default, at most 500"})
    offset = fields.Integer(validate=validate.Range(0, MAX_ID))
    status = fields.String(validate=one_of(CaseStatus))


class CaseListQuerySchema(PageQuerySchema):
    kind = fields.String(validate=one_of(CaseKind))
    item_code = fields.String()
    due_by = fields.Date(metadata={"description": "due on or before this day"})
    overdue = fields.Boolean()


class CatalogQuerySchema(QuerySchema):
    kind = fields.String(validate=one_of(CASE_KINDS))
    category = fields.String()
    department = fields.String()
    level = fields.String(validate=one_of(LEVELS))


class CatalogItemQuerySchema(QuerySchema):
    version = fields.String(metadata={"description": "a catalogue version this centre holds; the one in force "
                                                     "by default"})
