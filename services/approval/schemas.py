"""Wire formats of the approver API."""
from marshmallow import RAISE, Schema, fields, validate


class DecisionSchema(Schema):
    class Meta:
        unknown = RAISE

    outcome = fields.String(required=True, validate=validate.OneOf(["approved", "refused"]))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    result_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 100))
