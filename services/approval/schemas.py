"""Wire formats of the approver API.

Only what JSON Schema can say is checked here (the OpenAPI document must stay true); the rules that
need more (a refusal's reason, `to` after `from`, A and B two people) are the desk's, with a 400.
"""
from marshmallow import RAISE, Schema, fields, validate

from shared.contracts import SPECIAL_PROCEDURES

STAFF_ID = validate.Length(1, 64)
REASON = validate.Length(1, 500)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class DecisionSchema(_Strict):
    outcome = fields.String(required=True, validate=validate.OneOf(["approved", "refused"]))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    result_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 100),
                                  metadata={"description": "certificate or document number (default: by rule)"})
    valid_until = fields.Date(load_default=None, allow_none=True,
                              metadata={"description": "an approval's validity: the last day it holds"})


class RequestedMaterialSchema(_Strict):
    code = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 32))
    name = fields.String(required=True, validate=validate.Length(1, 200))


class MaterialsRequestSchema(_Strict):
    materials = fields.List(fields.Nested(RequestedMaterialSchema), required=True,
                            validate=validate.Length(1, 30),
                            metadata={"description": "every missing material at once (一次性告知)"})
    reason = fields.String(required=True, validate=REASON)


class ProcedureSchema(_Strict):
    procedure = fields.String(required=True, validate=validate.OneOf(SPECIAL_PROCEDURES),
                              metadata={"description": "the special procedure (特别程序) that stops the clock"})
    reason = fields.String(required=True, validate=REASON)


class ProcedureEndSchema(_Strict):
    reason = fields.String(required=True, validate=REASON,
                           metadata={"description": "what the procedure found, e.g. 专家评审结束"})


class ExtensionRequestSchema(_Strict):
    days = fields.Integer(required=True, strict=True, validate=validate.Range(1, 60),
                          metadata={"description": "working days added to the deadline"})
    reason = fields.String(required=True, validate=REASON)


class PostSchema(_Strict):
    a = fields.String(required=True, validate=STAFF_ID, metadata={"description": "the A holder's staff id"})
    b = fields.String(required=True, validate=STAFF_ID, metadata={"description": "the B holder's staff id"})
    head = fields.String(load_default=None, allow_none=True, validate=STAFF_ID,
                         metadata={"description": "the department head, the fallback when A and B are away "
                                                  "(default: the department head setting the post)"})


class AbsenceSchema(_Strict):
    holder = fields.String(required=True, validate=STAFF_ID)
    from_ = fields.DateTime(required=True, data_key="from",
                            metadata={"description": "away from this moment on (a time without offset, or a "
                                                     "date at 00:00, is Asia/Shanghai)"})
    to = fields.DateTime(required=True,
                         metadata={"description": "back at this moment (exclusive): a leave of 2-4 November is "
                                                  "from 2026-11-02 to 2026-11-05"})
    reason = fields.String(required=True, validate=REASON,
                           metadata={"description": "leave, training, meeting …"})
