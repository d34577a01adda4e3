"""Wire formats every service shares: the error body and the platform routes' responses
(/health, /health/live, /openapi.json), as dump schemas for the OpenAPI document."""
from __future__ import annotations

from marshmallow import INCLUDE, RAISE, Schema, fields, validate


class StrictSchema(Schema):
    """A request body or file read strictly: an unknown field is an error, said back to the sender."""

    class Meta:
        unknown = RAISE


class ErrorSchema(Schema):
    """The body of every 4xx and 5xx answer (shared.web.error_response)."""

    error = fields.String(required=True, metadata={"description": "a code: bad_request, unauthorized, forbidden, "
                                                                  "not_found, conflict, internal …"})
    message = fields.String(required=True, metadata={"description": "what is wrong, for people"})
    details = fields.Raw(metadata={"description": "what is wrong field by field, when known"})


class OutboxHealthSchema(Schema):
    """Nothing required: empty until the first checks complete, and when the database did not answer."""

    backlog = fields.Integer(metadata={"description": "outbox rows not yet published"})
    oldest_unsent_seconds = fields.Float()
    unroutable = fields.Integer(metadata={"description": "rows no queue took last time"})
    relay = fields.String(validate=validate.OneOf(["on", "off"]))


class HealthSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "degraded"]))
    instance = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                         metadata={"description": 'each check: "ok", or what failed ("error: …", "unknown: …")'})
    outbox = fields.Nested(OutboxHealthSchema, required=True)
    checked_seconds_ago = fields.Float(required=True, allow_none=True,
                                       metadata={"description": "age of the checks; null before the first"})


class OpenApiDocumentSchema(Schema):
    """An OpenAPI 3.0 document (its own structure is OpenAPI's, not repeated here)."""

    class Meta:
        unknown = INCLUDE  # documented as allowing further properties (x- extensions …)

    openapi = fields.String(required=True)
    info = fields.Dict(required=True)
    paths = fields.Dict(required=True)
    components = fields.Dict()
