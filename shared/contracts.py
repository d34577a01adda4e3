"""Versioned message contracts: the envelope every message carries and each type's payload.

A message is a fact about one case. Routing keys carry what consumers filter on:

    case.accepted.<accepting town>
    case.routed.<department>.<handling town or "city">     work for a department (its approval instance)
    case.decided.<department>.<accepting town>               the decision, back to the centre owning the ledger
    case.department.<department>.<accepting town>            the back office asks the ledger for a step
                                                             (more materials, special procedure, extension)
    case.step_refused.<department>.<handling town>           the ledger refused a step the department asked for
    case.deadline_moved.<department>.<handling town>         the ledger moved the deadline or stopped/restarted
                                                             the clock of work the department has not decided
    case.updated.<accepting town>                            any other step in the ledger (supplement, pause …)
    case.completed.<accepting town>                          the ledger closed the case (agent, evaluation)
    notice.issued.<accepting town>                           the centre issued a notice (文书): notify delivers it
    notice.sent.<accepting town>                             notify delivered a notice
    notice.fallback.<accepting town>                         notify: a channel failed for good, the next one is
                                                             to be tried (to notify's own queue: retried apart)
    case.escalated.<accepting town>                          初审 passed: the town agent relays the work (agent)
    case.transfer.<handling town>                            全城通办: the accepting centre's record of a case
                                                             another town's office handles (its intake keeps it)
    station.submitted.<town>                                 a village station relays a submission (报送) to
                                                             the town's intake (the envelope's case number is the
                                                             station's submission number, version 0)
    station.refused.<town>                                   the town could not open a case from a submission
    escalation.relayed.<accepting town>                      the town agent took the work to the city department
    escalation.decided.<department>.<accepting town>         a city department decided relayed work: to the
                                                             town agent, not the ledger
    escalation.returned.<accepting town>                     the town agent brought the city's decision back
    supervision.warned.<accepting town>                      evaluation's deadline supervision (电子监察) raised a
                                                             yellow or red warning (督办) on an open case

A consumer that gets a body it cannot read raises MalformedMessage: the message goes to the
dead-letter queue at once instead of being retried.

How contracts evolve (services are deployed one at a time, so old and new run side by side):

- Consumers read tolerantly: the envelope and every payload and nested schema (they all derive from
  Contract) ignore fields they do not know. A field they know is still checked strictly.
- Adding an OPTIONAL field to a version is allowed in place: consumers not yet upgraded ignore it,
  upgraded ones must treat its absence as the old meaning (`load_default`).
- Anything else is a new schema version of the type: a new required field, a field removed or
  renamed, a field whose type, bounds or meaning change. Consumers first: add `XxxV2` to PAYLOADS
  beside `XxxV1` and handle both (`message.schema_version` says which), deploy every consumer; then
  producers: set PRODUCED_VERSIONS[type] to 2 (what make_message sends) once every consumer knows it.
  V1 is removed only when no producer sends it any more and no queue, retry queue or dead-letter
  queue still holds a V1 message (an operator may replay dead letters long after).
- A consumer accepts every (type, version) in PAYLOADS; an unknown version is a MalformedMessage
  (dead-lettered at once, replayable once the consumer knows it).
- Every string has a maximum length no larger than the narrowest database column any service stores
  it in (tests/unit/test_contract_columns.py checks it), so what passes the contract never fails a
  column; a text kept in an unbounded column still has a sane maximum. Widening a bound later is a
  change of meaning for the consumers that store it: a new version, after their columns are widened.
"""
from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from shared.pii import is_valid_mobile
from shared.vocabulary import CaseKind, DepartmentStep, NoticeKind, Outcome

TOWN_CODE = validate.Regexp(r"^\d{9}$", error="must be a 9-digit town code")
DEPT_CODE = validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$", error="must be a department code (lowercase)")
HANDLING_TOWN = validate.Regexp(r"^(\d{9}|city)$", error="must be a 9-digit town code or 'city'")
# the same, with the explicit maximum the column check reads (a Regexp's bound cannot be read back)
TOWN = [validate.Length(max=9), TOWN_CODE]
DEPT = [validate.Length(max=32), DEPT_CODE]
HANDLING = [validate.Length(max=9), HANDLING_TOWN]
VILLAGE = [validate.Length(max=12), validate.Regexp(r"^\d{12}$", error="must be a 12-digit village code")]
DELIVERIES = ("pickup", "mail")  # how a result reaches the applicant: pickup at the accepting centre, EMS mail
CASE_KINDS = tuple(str(k) for k in CaseKind)
NOTICE_KINDS = tuple(str(k) for k in NoticeKind)
OUTCOMES = tuple(str(o) for o in Outcome)


class DeadLetterNow(Exception):
    """A message that waiting cannot fix: dead-lettered at once with the reason, never retried."""

    def __init__(self, reason: str, details=None):
        super().__init__(reason)
        self.reason = reason
        self.details = details


class MalformedMessage(DeadLetterNow):
    """A body that is not a valid contract."""


class Unacceptable(DeadLetterNow):
    """A well-formed message this receiver must not act on: a case it does not hold, work for another
    department. Acking it would lose it silently; retrying cannot help."""


# --- payloads ----------------------------------------------------------------------------------
# Maximum lengths: never more than the narrowest column storing the field in any service (see the
# module docstring); texts kept only in unbounded columns or JSON get a sane maximum.
CASE_NUMBER_MAX = 40  # every service's case_number columns are String(40)
STAFF_MAX = 64  # decided_by, actor, agent, first_responder columns
REASON_MAX = 500  # a reason as a person types it (the HTTP APIs allow 500)
LEDGER_REASON_MAX = 600  # a reason the ledger relays: a joint case's refusal is "<department>: <reason>"
RESULT_NUMBER_MAX = 100  # result_number columns
ITEM_CODE_MAX = 32  # item_code columns
NAME_MAX = 200  # item and material names, titles
STATUS_MAX = 20  # status columns
ACTION_MAX = 40  # case_actions.action, work_actions.action
CHANNEL_MAX = 10  # contacts.channel, deliveries.channel
TRACKING_NUMBER_MAX = 20  # waybills.tracking_number (an EMS S10 number is 13 characters)
TEXT_MAX = 2000  # a station's service record: what was asked, how it was solved


class Contract(Schema):
    """Every payload and nested schema: fields a newer producer added are ignored (rolling deploys)."""

    class Meta:
        unknown = EXCLUDE


class ContactSchema(Contract):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    phone = fields.String(required=True, validate=validate.Length(max=20))
    channel = fields.String(load_default="sms", validate=validate.OneOf(["sms", "email", "pickup", "mail", "log"]))
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=200))

    @validates_schema
    def _phone(self, data, **_):
        if not is_valid_mobile(data["phone"]):
            raise ValidationError("not a valid mainland mobile number", "phone")


class CaseAcceptedV1(Contract):
    accepting_town = fields.String(required=True, validate=TOWN)
    handling_town = fields.String(required=True, validate=HANDLING)
    item_code = fields.String(required=True, validate=validate.Length(1, ITEM_CODE_MAX))
    item_name = fields.String(required=True, validate=validate.Length(1, NAME_MAX))
    department = fields.String(required=True, validate=DEPT)
    kind = fields.String(required=True, validate=validate.OneOf(CASE_KINDS))
    status = fields.String(required=True, validate=validate.Length(max=STATUS_MAX))
    deadline = fields.Date(required=True, allow_none=True)
    first_responder = fields.String(required=True, validate=validate.Length(1, STAFF_MAX))
    via_agent = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=STAFF_MAX))
    # added (tolerant readers): the village station a case came from, and the station's submission number
    village = fields.String(load_default=None, allow_none=True, validate=VILLAGE)
    station_submission = fields.String(load_default=None, allow_none=True,
                                       validate=validate.Length(max=CASE_NUMBER_MAX))


class CaseUpdatedV1(Contract):
    accepting_town = fields.String(required=True, validate=TOWN)
    action = fields.String(required=True, validate=validate.Length(1, ACTION_MAX))
    status = fields.String(required=True, validate=validate.Length(max=STATUS_MAX))
    deadline = fields.Date(required=True, allow_none=True)
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=LEDGER_REASON_MAX))
    # added (tolerant readers): the village agent who submitted the case (the station follows its progress)
    via_agent = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=STAFF_MAX))


class CaseRoutedV1(Contract):
    accepting_town = fields.String(required=True, validate=TOWN)
    handling_town = fields.String(required=True, validate=HANDLING)
    item_code = fields.String(required=True, validate=validate.Length(1, ITEM_CODE_MAX))
    item_name = fields.String(required=True, validate=validate.Length(1, NAME_MAX))
    department = fields.String(required=True, validate=DEPT)
    kind = fields.String(required=True, validate=validate.OneOf(CASE_KINDS))
    deadline = fields.Date(required=True)
    auto_decide = fields.Boolean(required=True)
    lead_department = fields.String(required=True, validate=DEPT)
    departments = fields.List(fields.String(validate=DEPT), required=True)
    # added (tolerant readers): what the back office may still ask of the ledger. The working days an
    # extension may add, 0 once the case has had its one extension; absent (None) from older producers.
    extension_days_max = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))
    # added (tolerant readers): the town agent who relayed escalated work (上报件); the department sends its
    # decision back through them (escalation.decided). None: the ledger routed the work itself
    relayed_by = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=STAFF_MAX))


class CaseDecidedV1(Contract):
    accepting_town = fields.String(required=True, validate=TOWN)
    handling_town = fields.String(required=True, validate=HANDLING)
    department = fields.String(required=True, validate=DEPT)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=REASON_MAX))
    result_number = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=RESULT_NUMBER_MAX))
    decided_by = fields.String(required=True, validate=validate.Length(1, STAFF_MAX))
    work_item_id = fields.Integer(required=True)

    @validates_schema
    def _reason_for_refusal(self, data, **_):
        if data["outcome"] == "refused" and not data.get("reason"):
            raise ValidationError("a refusal needs a reason", "reason")


DEPARTMENT_ACTIONS = tuple(str(s) for s in DepartmentStep)
SPECIAL_PROCEDURES = ("现场勘察", "听证", "检验", "检测", "鉴定", "专家评审")


class RequestedMaterialSchema(Contract):
    code = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 32))
    name = fields.String(required=True, validate=validate.Length(1, NAME_MAX))


class CaseDepartmentActionV1(Contract):
    """A department asks the centre that owns the case to take a step; the case version is the one routed."""

    accepting_town = fields.String(required=True, validate=TOWN)
    handling_town = fields.String(required=True, validate=HANDLING)
    department = fields.String(required=True, validate=DEPT)
    work_item_id = fields.Integer(required=True)
    action = fields.String(required=True, validate=validate.OneOf(DEPARTMENT_ACTIONS))
    by = fields.String(required=True, validate=validate.Length(1, STAFF_MAX))
    reason = fields.String(required=True, validate=validate.Length(1, REASON_MAX))
    materials = fields.List(fields.Nested(RequestedMaterialSchema), load_default=list)  # request_materials
    procedure = fields.String(load_default=None, allow_none=True,
                              validate=validate.OneOf(SPECIAL_PROCEDURES))  # start_procedure
    days = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 60))  # extend
    approved_by = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(max=STAFF_MAX))  # extend: the department head

    @validates_schema
    def _what_each_action_needs(self, data, **_):
        needs = {"request_materials": "materials", "start_procedure": "procedure", "extend": "days"}
        field = needs.get(data["action"])
        if field and not data.get(field):
            raise ValidationError(f"{data['action']} needs {field}", field)
        if data["action"] == "extend" and not data.get("approved_by"):
            raise ValidationError("an extension needs the approving head", "approved_by")


class CaseStepRefusedV1(Contract):
    """The ledger refused a step a department asked for (case.department): its reason, for the work item.

    The case version is the one the department asked on."""

    accepting_town = fields.String(required=True, validate=TOWN)
    handling_town = fields.String(required=True, validate=HANDLING)
    department = fields.String(required=True, validate=DEPT)
    work_item_id = fields.Integer(required=True)
    step = fields.String(required=True, validate=validate.OneOf(DEPARTMENT_ACTIONS))
    reason = fields.String(required=True, validate=validate.Length(1, REASON_MAX))
    days = fields.Integer(load_default=None, allow_none=True)  # extend: the days asked


class CaseDeadlineMovedV1(Contract):
    """The ledger (the deadline's one owner) moved an open case's deadline, or stopped or restarted its clock,
    after routing: sent to each department yet to decide, so its work item ranks and shows the ledger's date.

    The case version is the ledger's after the change: a receiver ignores one older than it has applied."""

    accepting_town = fields.String(required=True, validate=TOWN)
    handling_town = fields.String(required=True, validate=HANDLING)
    department = fields.String(required=True, validate=DEPT)
    deadline = fields.Date(required=True)
    deadline_provisional = fields.Boolean(required=True)  # counted on a guessed calendar (year not yet known)
    paused_since = fields.Date(required=True, allow_none=True)  # the clock stopped on this day; None: it runs
    action = fields.String(required=True, validate=validate.Length(1, ACTION_MAX))  # the ledger's step
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=LEDGER_REASON_MAX))


class CaseCompletedV1(Contract):
    accepting_town = fields.String(required=True, validate=TOWN)
    department = fields.String(required=True, validate=DEPT)
    item_name = fields.String(required=True, validate=validate.Length(max=NAME_MAX))
    kind = fields.String(required=True, validate=validate.OneOf(CASE_KINDS))
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=LEDGER_REASON_MAX))
    result_number = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=RESULT_NUMBER_MAX))
    completed_on = fields.Date(required=True)
    deadline = fields.Date(required=True, allow_none=True)
    on_time = fields.Boolean(required=True)
    via_agent = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=STAFF_MAX))
    # added (tolerant readers): the village station, how the result reaches the applicant, the EMS waybill
    village = fields.String(load_default=None, allow_none=True, validate=VILLAGE)
    delivery = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(DELIVERIES))
    tracking_number = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Length(max=TRACKING_NUMBER_MAX))


class NoticeIssuedV1(Contract):
    accepting_town = fields.String(required=True, validate=TOWN)
    notice_id = fields.Integer(required=True)
    notice_kind = fields.String(required=True, validate=validate.OneOf(NOTICE_KINDS))
    title = fields.String(required=True, validate=validate.Length(max=NAME_MAX))
    sms_text = fields.String(required=True, validate=validate.Length(1, 1000))
    contact = fields.Nested(ContactSchema, required=True)


class NoticeSentV1(Contract):
    accepting_town = fields.String(required=True, validate=TOWN)
    notice_kind = fields.String(required=True, validate=validate.OneOf(NOTICE_KINDS))
    channel = fields.String(required=True, validate=validate.Length(max=CHANNEL_MAX))
    delivery_id = fields.Integer(required=True)


class NoticeFallbackV1(Contract):
    """A delivery failed for good on one channel: `delivery_id` is the new delivery on the next channel.
    Its own message, so that the next channel gets every wait of the bus's retries afresh."""

    accepting_town = fields.String(required=True, validate=TOWN)
    notice_id = fields.Integer(required=True)
    notice_kind = fields.String(required=True, validate=validate.OneOf(NOTICE_KINDS))
    channel = fields.String(required=True, validate=validate.Length(max=CHANNEL_MAX))
    delivery_id = fields.Integer(required=True)
    fallback_of = fields.Integer(required=True)


# --- village stations, town agents, 全城通办 (issue 9) --------------------------------------------

class AuthorisationSchema(Contract):
    """委托: the villager's authorisation for the agent to submit on their behalf."""

    by = fields.String(required=True, validate=validate.Length(1, 100))  # who authorised (the villager)
    matters = fields.String(required=True, validate=validate.Length(1, 200))  # for what
    signed_at = fields.AwareDateTime(required=True, default_timezone=UTC)  # when
    method = fields.String(required=True, validate=validate.Length(1, 20))  # how signed (手写签名, 按手印 …)


class StationApplicantSchema(Contract):
    type = fields.String(load_default="person", validate=validate.OneOf(["person", "organisation"]))
    name = fields.String(required=True, validate=validate.Length(1, 100))
    id_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=18))
    credit_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=18))
    phone = fields.String(required=True, validate=validate.Length(max=20))
    channel = fields.String(load_default="sms", validate=validate.Length(1, CHANNEL_MAX))
    town = fields.String(load_default=None, allow_none=True, validate=TOWN)  # household town (全城通办)


class StationSubmittedV1(Contract):
    """报送: a village station relays a villager's submission to the town centre; the envelope's case number
    is the station's submission number, its case version 0."""

    town = fields.String(required=True, validate=TOWN)
    village = fields.String(required=True, validate=VILLAGE)
    agent = fields.String(required=True, validate=validate.Length(1, STAFF_MAX))
    item_code = fields.String(required=True, validate=validate.Length(1, ITEM_CODE_MAX))
    applicant = fields.Nested(StationApplicantSchema, required=True)
    materials = fields.List(fields.String(validate=validate.Length(1, 32)), load_default=list)
    authorisation = fields.Nested(AuthorisationSchema, required=True)
    fee_fen = fields.Integer(load_default=0, validate=validate.Range(min=0))


class StationRefusedV1(Contract):
    """The town could not open a case from a station's submission (e.g. the catalogue changed): why."""

    town = fields.String(required=True, validate=TOWN)
    village = fields.String(required=True, validate=VILLAGE)
    agent = fields.String(required=True, validate=validate.Length(1, STAFF_MAX))
    reason = fields.String(required=True, validate=validate.Length(1, LEDGER_REASON_MAX))


class CaseEscalatedV1(Contract):
    """初审 passed: the work of an escalated case (上报件) goes to the town agent, who relays it to the city
    department(s). The case version is the routed one: decisions must name it."""

    accepting_town = fields.String(required=True, validate=TOWN)
    handling_town = fields.String(required=True, validate=HANDLING)
    item_code = fields.String(required=True, validate=validate.Length(1, ITEM_CODE_MAX))
    item_name = fields.String(required=True, validate=validate.Length(1, NAME_MAX))
    kind = fields.String(required=True, validate=validate.OneOf(CASE_KINDS))
    deadline = fields.Date(required=True)
    auto_decide = fields.Boolean(required=True)
    lead_department = fields.String(required=True, validate=DEPT)
    departments = fields.List(fields.String(validate=DEPT), required=True, validate=validate.Length(min=1))
    extension_days_max = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))
    reviewed_by = fields.String(required=True, validate=validate.Length(1, STAFF_MAX))  # who passed 初审


class EscalationRelayedV1(Contract):
    """The town agent took the work to the city department(s): a hop on the case's timeline."""

    accepting_town = fields.String(required=True, validate=TOWN)
    departments = fields.List(fields.String(validate=DEPT), required=True)
    relayed_by = fields.String(required=True, validate=validate.Length(1, STAFF_MAX))
    relayed_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class EscalationReturnedV1(CaseDecidedV1):
    """The town agent brought a city department's decision back to the town's ledger (the decision's fields,
    when the city decided, who brought it back and when)."""

    decided_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    returned_by = fields.String(required=True, validate=validate.Length(1, STAFF_MAX))
    returned_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class CaseTransferV1(Contract):
    """全城通办 (收受分离): the accepting centre's record of a case another town's department office handles,
    sent to that town's centre whenever it changes (the case version orders them)."""

    accepting_town = fields.String(required=True, validate=TOWN)
    handling_town = fields.String(required=True, validate=TOWN)
    item_code = fields.String(required=True, validate=validate.Length(1, ITEM_CODE_MAX))
    item_name = fields.String(required=True, validate=validate.Length(1, NAME_MAX))
    department = fields.String(required=True, validate=DEPT)
    kind = fields.String(required=True, validate=validate.OneOf(CASE_KINDS))
    status = fields.String(required=True, validate=validate.Length(max=STATUS_MAX))
    deadline = fields.Date(required=True, allow_none=True)
    accepted_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    first_responder = fields.String(required=True, validate=validate.Length(1, STAFF_MAX))
    delivery = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(DELIVERIES))
    outcome = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(OUTCOMES))
    completed_on = fields.Date(load_default=None, allow_none=True)
    tracking_number = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Length(max=TRACKING_NUMBER_MAX))


# --- deadline supervision (issue 10) ------------------------------------------------------------

WARNING_COLOURS = ("yellow", "red")
RULE_MAX = 60  # supervision_warnings.rule


class SupervisionWarnedV1(Contract):
    """督办: evaluation's watcher found an open case close to (yellow) or past (red) its deadline. Raised once per
    case, colour and deadline; the case version is the one evaluation had seen."""

    warning_id = fields.Integer(required=True)
    colour = fields.String(required=True, validate=validate.OneOf(WARNING_COLOURS))
    rule = fields.String(required=True, validate=validate.Length(1, RULE_MAX))
    accepting_town = fields.String(required=True, validate=TOWN)
    handling_town = fields.String(load_default=None, allow_none=True, validate=HANDLING)
    department = fields.String(load_default=None, allow_none=True, validate=DEPT)
    first_responder = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=STAFF_MAX))
    deadline = fields.Date(required=True)
    working_days_left = fields.Integer(required=True)  # negative: working days overdue
    raised_at = fields.AwareDateTime(required=True, default_timezone=UTC)


# --- the staff directory (issue 11) ----------------------------------------------------------------

class ReferenceRecordV1(Contract):
    """A reference record (shared.reference) the portal publishes through its outbox: routed from the events
    exchange into the reference stream (bound on `staff.revocations.#` and `reference.loaded.#`), which every
    service follows. The envelope's case_number is the record's kind (no case)."""

    version = fields.String(required=True, validate=validate.Length(1, 64))
    sha256 = fields.String(required=True, validate=[validate.Length(64, 64), validate.Regexp(r"^[0-9a-f]{64}$")])
    text = fields.String(required=True, validate=validate.Length(max=4_000_000))  # the whole file or set
    loaded_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    loaded_by = fields.String(load_default="portal", validate=validate.Length(max=100))


class StaffRevocationsV1(ReferenceRecordV1):
    """The staff directory's token revocations (kind "staff": shared.tokens.Revocations as text)."""

    kind = fields.String(required=True, validate=[validate.Equal("staff"), validate.Length(max=10)])


class ReferenceLoadedV1(ReferenceRecordV1):
    """A catalogue or a year's calendar city IT loaded at the portal's /admin/reference."""

    kind = fields.String(required=True, validate=[validate.OneOf(("catalog", "calendar")), validate.Length(max=10)])


PAYLOADS: dict[tuple[str, int], type[Schema]] = {
    ("staff.revocations", 1): StaffRevocationsV1,
    ("reference.loaded", 1): ReferenceLoadedV1,
    ("case.accepted", 1): CaseAcceptedV1,
    ("case.routed", 1): CaseRoutedV1,
    ("case.decided", 1): CaseDecidedV1,
    ("case.department", 1): CaseDepartmentActionV1,
    ("case.step_refused", 1): CaseStepRefusedV1,
    ("case.deadline_moved", 1): CaseDeadlineMovedV1,
    ("case.updated", 1): CaseUpdatedV1,
    ("case.completed", 1): CaseCompletedV1,
    ("notice.issued", 1): NoticeIssuedV1,
    ("notice.sent", 1): NoticeSentV1,
    ("notice.fallback", 1): NoticeFallbackV1,
    ("case.escalated", 1): CaseEscalatedV1,
    ("case.transfer", 1): CaseTransferV1,
    ("station.submitted", 1): StationSubmittedV1,
    ("station.refused", 1): StationRefusedV1,
    ("escalation.relayed", 1): EscalationRelayedV1,
    ("escalation.decided", 1): CaseDecidedV1,  # a city department's decision, on its way through the town agent
    ("escalation.returned", 1): EscalationReturnedV1,
    ("supervision.warned", 1): SupervisionWarnedV1,
}

# the version make_message sends of each type: raised to N only once every consumer knows (type, N)
PRODUCED_VERSIONS: dict[str, int] = {type_: 1 for type_, _version in PAYLOADS}


# --- routing keys --------------------------------------------------------------------------------

def rk_accepted(accepting_town: str) -> str:
    return f"case.accepted.{accepting_town}"


def rk_routed(department: str, handling_town: str) -> str:
    return f"case.routed.{department}.{handling_town}"


def rk_decided(department: str, accepting_town: str) -> str:
    return f"case.decided.{department}.{accepting_town}"


def rk_updated(accepting_town: str) -> str:
    return f"case.updated.{accepting_town}"


def rk_notice_issued(accepting_town: str) -> str:
    return f"notice.issued.{accepting_town}"


def rk_department_action(department: str, accepting_town: str) -> str:
    return f"case.department.{department}.{accepting_town}"


def rk_step_refused(department: str, handling_town: str) -> str:
    """case.decided in reverse: from the ledger to the department's office that asked."""
    return f"case.step_refused.{department}.{handling_town}"


def rk_deadline_moved(department: str, handling_town: str) -> str:
    """Like case.step_refused: from the ledger to the department's office holding the work."""
    return f"case.deadline_moved.{department}.{handling_town}"


def rk_completed(accepting_town: str) -> str:
    return f"case.completed.{accepting_town}"


def rk_notice_sent(accepting_town: str) -> str:
    return f"notice.sent.{accepting_town}"


def rk_notice_fallback(accepting_town: str) -> str:
    return f"notice.fallback.{accepting_town}"


def rk_escalated(accepting_town: str) -> str:
    return f"case.escalated.{accepting_town}"


def rk_transfer(handling_town: str) -> str:
    return f"case.transfer.{handling_town}"


def rk_station_submitted(town: str) -> str:
    return f"station.submitted.{town}"


def rk_station_refused(town: str) -> str:
    return f"station.refused.{town}"


def rk_escalation_relayed(accepting_town: str) -> str:
    return f"escalation.relayed.{accepting_town}"


def rk_escalation_decided(department: str, accepting_town: str) -> str:
    return f"escalation.decided.{department}.{accepting_town}"


def rk_escalation_returned(accepting_town: str) -> str:
    return f"escalation.returned.{accepting_town}"




def rk_supervision_warned(accepting_town: str) -> str:
    return f"supervision.warned.{accepting_town}"


# --- the envelope ----------------------------------------------------------------------------------

class EnvelopeSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # a newer producer may add envelope fields (and payload fields: see Contract)

    message_id = fields.String(required=True, validate=validate.Length(8, 64))  # inbox, outbox, case_events
    type = fields.String(required=True, validate=validate.Length(1, 40))  # notify's known_cases.heard_from
    schema_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    case_number = fields.String(required=True, validate=validate.Length(1, CASE_NUMBER_MAX))
    case_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    producer = fields.String(required=True, validate=validate.Length(1, 100))  # case_events.producer
    payload = fields.Dict(required=True)


@dataclass(frozen=True)
class Message:
    type: str
    case_number: str
    case_version: int
    payload: dict
    producer: str
    schema_version: int = 1
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_wire(self) -> dict:
        schema = _schema(PAYLOADS[(self.type, self.schema_version)])
        return {
            "message_id": self.message_id,
            "type": self.type,
            "schema_version": self.schema_version,
            "case_number": self.case_number,
            "case_version": self.case_version,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat(),
            "producer": self.producer,
            "payload": schema.dump(self.payload),
        }


@functools.cache
def _schema(schema_cls: type[Schema]) -> Schema:
    """One instance per contract schema: building a marshmallow Schema deep-copies its fields, which cost
    more than the load or dump itself; an instance is reusable (loads and dumps keep no state on it)."""
    return schema_cls()


def make_message(type_: str, case_number: str, case_version: int, payload: dict, producer: str,
                 occurred_at: datetime | None = None, schema_version: int | None = None) -> Message:
    """Build an outgoing message; the payload is validated now, so a bad one never leaves.

    It is sent as PRODUCED_VERSIONS[type_] unless a version is named."""
    if schema_version is None:
        schema_version = PRODUCED_VERSIONS.get(type_, 1)
    schema_cls = PAYLOADS.get((type_, schema_version))
    if schema_cls is None:
        raise ValueError(f"no contract {type_} v{schema_version}")
    schema = _schema(schema_cls)
    try:
        loaded = schema.load(schema.dump(payload))
    except ValidationError as exc:
        raise ValueError(f"{type_} payload invalid: {exc.messages}") from None
    extra = {} if occurred_at is None else {"occurred_at": occurred_at}
    message = Message(type=type_, case_number=case_number, case_version=case_version,
                      payload=loaded, producer=producer, schema_version=schema_version, **extra)
    errors = _schema(EnvelopeSchema).validate(message.to_wire())
    if errors:
        raise ValueError(f"{type_} envelope invalid: {errors}")
    return message


def decode(body) -> Message:
    """Read a wire body into a Message, or raise MalformedMessage saying what is wrong."""
    if not isinstance(body, dict):
        raise MalformedMessage(f"body must be a JSON object, got {type(body).__name__}")
    try:
        env = _schema(EnvelopeSchema).load(body)
    except ValidationError as exc:
        raise MalformedMessage("bad envelope", exc.messages) from None
    schema_cls = PAYLOADS.get((env["type"], env["schema_version"]))
    if schema_cls is None:
        raise MalformedMessage(f"unknown contract {env['type']} v{env['schema_version']}")
    try:
        payload = _schema(schema_cls).load(env["payload"])
    except ValidationError as exc:
        raise MalformedMessage(f"bad {env['type']} payload", exc.messages) from None
    return Message(type=env["type"], case_number=env["case_number"], case_version=env["case_version"],
                   payload=payload, producer=env["producer"], schema_version=env["schema_version"],
                   message_id=env["message_id"], occurred_at=env["occurred_at"])
