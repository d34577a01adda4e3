"""An OpenAPI 3.0.3 document for a service class, built from its `@api` endpoints.

Every method carrying `api_route` (see shared.web.api) becomes one operation; request bodies are
the endpoints' marshmallow schemas, converted to JSON Schema here (no apispec).
"""
from __future__ import annotations

import re

from marshmallow import RAISE, Schema, fields, missing, validate

_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")  # werkzeug: <name>, <int:name>, <string(length=2):name>
_CONVERTERS = {"int": {"type": "integer"}, "float": {"type": "number"},
               "uuid": {"type": "string", "format": "uuid"}}  # anything else (string, path, any) is a string

# most specific first: Email is a String, AwareDateTime a DateTime, Integer and Float are Numbers
_FIELD_TYPES = [
    (fields.Email, {"type": "string", "format": "email"}),
    (fields.String, {"type": "string"}),
    (fields.Boolean, {"type": "boolean"}),
    (fields.Integer, {"type": "integer"}),
    (fields.Float, {"type": "number"}),
    (fields.Number, {"type": "number"}),
    (fields.Date, {"type": "string", "format": "date"}),
    (fields.DateTime, {"type": "string", "format": "date-time"}),
]

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "details": {}},
}

_ERRORS = {400: "Bad request: unreadable or invalid body or parameters", 401: "Missing or invalid bearer token",
           403: "The token's role or scope may not do this", 404: "Not found",
           409: "Conflicts with the current state"}


def build_openapi(service_cls: type, title: str, version: str) -> dict:
    components: dict[str, dict] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict] = {}
    for name in sorted(dir(service_cls)):
        route = getattr(getattr(service_cls, name, None), "api_route", None)
        if route is None:
            continue
        method, path, roles, schema, public = route
        oa_path, parameters = convert_path(path)
        item = paths.setdefault(oa_path, {})
        if method.lower() in item:
            raise ValueError(f"{method} {path} is declared twice")
        item[method.lower()] = _operation(name, getattr(service_cls, name), method, roles, schema, public,
                                          parameters, components)
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    }


def convert_path(path: str) -> tuple[str, list[dict]]:
    """`/cases/<string:case_number>` -> (`/cases/{case_number}`, [its path parameter])."""
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": dict(_CONVERTERS.get(converter, {"type": "string"}))}
                  for converter, name in _PARAM.findall(path)]
    return _PARAM.sub(r"{\2}", path), parameters


def _operation(name, fn, method, roles, schema, public, parameters, components) -> dict:
    op = {"operationId": name}
    doc = (fn.__doc__ or "").strip()
    if doc:
        op["summary"] = doc.splitlines()[0]
    if parameters:
        op["parameters"] = parameters
    if schema is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": schema_ref(schema(), components)}}}
    op["security"] = [] if public else [{"bearerAuth": []}]
    if roles and not public:
        op["x-roles"] = list(roles)

    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    responses = {"200": ok}
    if method == "POST":
        responses["201"] = {**ok, "description": "Created"}
    codes = [400] if schema is not None or parameters else []
    codes += [] if public else [401, 403]
    codes += [404] if parameters else []
    codes += [409] if method == "POST" else []
    for code in codes:
        responses[str(code)] = {"description": _ERRORS[code], "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op["responses"] = responses
    return op


def schema_ref(schema: Schema, components: dict) -> dict:
    """Register `schema`'s class in `components` (once) and return a $ref to it."""
    key = type(schema).__name__
    if key not in components:
        components[key] = {}  # placeholder first: a schema nesting itself ends here
        components[key] = _object_schema(schema, components)
    return {"$ref": f"#/components/schemas/{key}"}


def _object_schema(schema: Schema, components: dict) -> dict:
    properties, required = {}, []
    for name, field in schema.fields.items():
        if field.dump_only:
            continue  # not accepted on load
        key = field.data_key or name
        properties[key] = field_schema(field, components)
        if field.required:
            required.append(key)
    out = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if schema.unknown == RAISE:
        out["additionalProperties"] = False
    return out


def field_schema(field: fields.Field, components: dict) -> dict:
    if isinstance(field, fields.Nested):
        out = schema_ref(field.schema, components)
        if field.many:
            out = {"type": "array", "items": out}
    elif isinstance(field, fields.List):
        out = {"type": "array", "items": field_schema(field.inner, components)}
    elif isinstance(field, fields.Dict):
        values = field.value_field
        out = {"type": "object", "additionalProperties": field_schema(values, components) if values else True}
    else:  # Raw and anything unknown accept any JSON value
        out = next((dict(s) for cls, s in _FIELD_TYPES if isinstance(field, cls)), {})

    for v in field.validators:
        out.update(_validator_keywords(v, out.get("type")))
    if field.allow_none and "enum" in out:
        out["enum"] = [*out["enum"], None]

    more = {}
    if field.metadata.get("description"):
        more["description"] = field.metadata["description"]
    if field.load_default is not missing and not callable(field.load_default):
        more["default"] = field.load_default
    if field.allow_none and out:
        more["nullable"] = True
    if "$ref" in out and more:  # siblings of $ref are ignored in OpenAPI 3.0
        out = {"allOf": [out]}
    return {**out, **more}


def _validator_keywords(v, json_type: str | None) -> dict:
    """What JSON Schema can say of a marshmallow validator; custom ones (check digits...) say nothing."""
    if isinstance(v, validate.OneOf):
        return {"enum": list(v.choices)}
    if isinstance(v, validate.Length):
        low, high = ("minItems", "maxItems") if json_type == "array" else ("minLength", "maxLength")
        if json_type not in ("array", "string"):
            return {}
        if v.equal is not None:
            return {low: v.equal, high: v.equal}
        return {k: n for k, n in ((low, v.min), (high, v.max)) if n is not None}
    if isinstance(v, validate.Regexp):
        pattern = v.regex.pattern  # marshmallow matches at the start, JSON Schema searches
        return {"pattern": pattern if pattern.startswith("^") else f"^(?:{pattern})"}
    if isinstance(v, validate.Range):
        out = {}
        if v.min is not None:
            out["minimum"] = v.min
            if not v.min_inclusive:
                out["exclusiveMinimum"] = True
        if v.max is not None:
            out["maximum"] = v.max
            if not v.max_inclusive:
                out["exclusiveMaximum"] = True
        return out
    return {}
