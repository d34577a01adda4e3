"""Wire formats of the window API."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from shared.pii import is_valid_mobile, is_valid_resident_id, normalise_resident_id


class ApplicantSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(1, 100))
    id_number = fields.String(required=True)
    phone = fields.String(required=True)
    channel = fields.String(load_default="sms", validate=validate.OneOf(["sms", "email", "pickup", "mail"]))
    email = fields.Email(load_default=None, allow_none=True)

    @validates("id_number")
    def _id(self, value, **_):
        if not is_valid_resident_id(normalise_resident_id(value)):
            raise ValidationError("not a valid 居民身份证 number (GB 11643 check digit or birth date wrong)")

    @validates("phone")
    def _phone(self, value, **_):
        if not is_valid_mobile(value):
            raise ValidationError("not a valid mainland mobile number")


class SubmitCaseSchema(Schema):
    class Meta:
        unknown = RAISE

    item_code = fields.String(required=True, validate=validate.Length(1, 32))
    applicant = fields.Nested(ApplicantSchema, required=True)
    materials = fields.List(fields.String(validate=validate.Length(1, 32)), load_default=list)
    first_responder = fields.String(load_default=None, validate=validate.Length(1, 64))
    via_agent = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))
