"""Wire formats of the window API."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.contracts import SPECIAL_PROCEDURES  # 特别程序: the clock pauses
from shared.pii import is_valid_credit_code, is_valid_mobile, is_valid_resident_id, normalise_resident_id


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class ApplicantSchema(_Strict):
    type = fields.String(load_default="person", validate=validate.OneOf(["person", "organisation"]))
    name = fields.String(required=True, validate=validate.Length(1, 100))
    id_number = fields.String(load_default=None, allow_none=True, metadata={"description": "居民身份证 number (GB 11643)"})
    credit_code = fields.String(load_default=None, allow_none=True, metadata={"description": "统一社会信用代码 (GB 32100)"})
    phone = fields.String(required=True)
    channel = fields.String(load_default="sms", validate=validate.OneOf(["sms", "email", "pickup", "mail"]))
    email = fields.Email(load_default=None, allow_none=True)
    town = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\d{9}$"),
                         metadata={"description": "the applicant's own town, for 全城通办 routing"})

    @validates_schema
    def _identity(self, data, **_):
        if data["type"] == "person":
            value = data.get("id_number")
            if not value:
                raise ValidationError("a person applies with a 居民身份证 number", "id_number")
            if not is_valid_resident_id(normalise_resident_id(value)):
                raise ValidationError("not a valid 居民身份证 number (GB 11643 check digit or birth date wrong)",
                                      "id_number")
        else:
            value = (data.get("credit_code") or "").strip().upper()
            if not is_valid_credit_code(value):
                raise ValidationError("not a valid 统一社会信用代码 (GB 32100 check character wrong)", "credit_code")
        if not is_valid_mobile(data["phone"]):
            raise ValidationError("not a valid mainland mobile number", "phone")


class SubmitCaseSchema(_Strict):
    item_code = fields.String(required=True, validate=validate.Length(1, 32))
    applicant = fields.Nested(ApplicantSchema, required=True)
    materials = fields.List(fields.String(validate=validate.Length(1, 32)), load_default=list)
    first_responder = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))
    via_agent = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))
    in_person = fields.Boolean(load_default=True, metadata={"description": "the applicant is at the window"})
    return_reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 500),
                                  metadata={"description": "not accepted (不予受理): the written reason"})


class MaterialsSchema(_Strict):
    materials = fields.List(fields.String(validate=validate.Length(1, 32)), required=True,
                            validate=validate.Length(min=1))


class ReasonSchema(_Strict):
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class PauseSchema(_Strict):
    procedure = fields.String(required=True, validate=validate.OneOf(SPECIAL_PROCEDURES))
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class ExtensionSchema(_Strict):
    days = fields.Integer(required=True, strict=True, validate=validate.Range(1, 60))
    reason = fields.String(required=True, validate=validate.Length(1, 500))
