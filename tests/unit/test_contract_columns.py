"""Every string of every contract has a maximum, no larger than any column that stores it.

What passes the contract must never fail a column (PostgreSQL refuses a value longer than its
String(n); SQLite would silently store it). The walker goes through the envelope and every payload
in PAYLOADS, into Nested and List fields, and finds the columns of every service's tables that keep
each field: by column name, plus ALIASES for fields kept under another name.
"""
from __future__ import annotations

import sqlalchemy as sa
from marshmallow import EXCLUDE, Schema, fields, validate

from services.agent import models as agent_models
from services.approval import models as approval_models
from services.evaluation import models as evaluation_models
from services.intake import models as intake_models
from services.notify import models as notify_models
from shared.contracts import PAYLOADS, PRODUCED_VERSIONS, Contract, EnvelopeSchema
from shared.db import plumbing_metadata

METADATA = {
    "plumbing": plumbing_metadata,  # outbox and inbox, in every service's database
    "intake": intake_models.Base.metadata,
    "approval": approval_models.Base.metadata,
    "agent": agent_models.Base.metadata,
    "notify": notify_models.Base.metadata,
    "evaluation": evaluation_models.Base.metadata,
}

# Fields stored under another column name, by path "<type>.<field>" (any version; "envelope.<field>"
# for the envelope; "[]" for a list's items; "." into a nested schema). Read from the use cases.
ALIASES: dict[str, set[str]] = {
    # the plumbing's inbox and notify's known_cases keep the message type
    "envelope.type": {"inbox.message_type", "known_cases.heard_from"},
    # intake: Window.apply_decision records the decider as the history's actor
    "case.decided.decided_by": {"case_actions.actor"},
    # intake: apply_department_action records `by` as the actor; approval logs the same person
    "case.department.by": {"case_actions.actor", "work_actions.actor", "extensions.requested_by"},
    "case.department.procedure": {"cases.pause_procedure"},
    # agent: Station keeps the agent of an agent's case and of the reply owed
    "case.accepted.via_agent": {"agent_cases.agent", "replies.agent"},
    "case.completed.via_agent": {"agent_cases.agent", "replies.agent"},
    # departments are department codes wherever they are kept
    "case.routed.departments[]": {"cases.department", "work_items.department", "department_decisions.department",
                                  "extensions.department", "posts.department"},
    "case.routed.lead_department": {"cases.department"},
    # notify: Notifier._queue keeps the notice's text, kind and recipient in the delivery
    "notice.issued.sms_text": {"deliveries.text"},
    "notice.issued.notice_kind": {"notices.kind"},
    "notice.issued.contact.phone": {"deliveries.recipient", "cases.applicant_phone"},
    "notice.issued.contact.name": {"cases.applicant_name"},
    "notice.issued.contact.channel": {"cases.contact_channel"},
}

# Same name, another thing: columns the name match finds that never store the field.
NOT_STORED_IN: dict[str, set[str]] = {
    # a requested material's name is kept in cases.missing (JSON), not as an applicant's name
    "case.department.materials[].name": {"contacts.name"},
    # how the villager signed the authorisation is kept in station_services.authorisation (JSON), not as the
    # way the agent replied (replies.method)
    "station.submitted.authorisation.method": {"replies.method"},
    # the portal's revocation set goes whole into the reference stream (reference_records.text, Text), never
    # into a complaint's or a supervision notice's text
    "staff.revocations.text": {"complaints.text", "supervision_notices.text"},
    "reference.loaded.text": {"complaints.text", "supervision_notices.text"},
}


def columns() -> tuple[dict[str, list[sa.Column]], dict[str, sa.Column]]:
    """Every column of every service: by column name, and by "table.column"."""
    by_name: dict[str, list[sa.Column]] = {}
    by_qualified: dict[str, sa.Column] = {}
    for metadata in METADATA.values():
        for table in metadata.tables.values():
            for column in table.columns:
                by_name.setdefault(column.name, []).append(column)
                by_qualified[f"{table.name}.{column.name}"] = column
    return by_name, by_qualified


def max_length(field: fields.Field) -> int | None:
    """The longest string the field's validators let through, or None if nothing bounds it."""
    bounds = []
    validators = list(field.validators)
    for v in validators:
        if isinstance(v, validate.Length):
            bounds += [b for b in (v.max, v.equal) if b is not None]
        elif isinstance(v, validate.OneOf):
            bounds.append(max(len(str(choice)) for choice in v.choices))
    return min(bounds) if bounds else None


def walk(schema: Schema, prefix: str):
    """(path, column name to match, field) of every String field, into Nested and List fields;
    also (path, None, schema) for every schema met, so its handling of unknown fields is checked."""
    yield prefix, None, schema
    for name, field in schema.fields.items():
        key = field.data_key or name
        path = f"{prefix}.{key}"
        if isinstance(field, fields.List):
            path, field = f"{path}[]", field.inner
        if isinstance(field, fields.Nested):
            yield from walk(field.schema, path)
        elif isinstance(field, fields.String):
            yield path, key, field


def contracts() -> list[tuple[str, Schema]]:
    """The envelope and every payload, named as ALIASES name them."""
    return [("envelope", EnvelopeSchema())] + [(type_, cls()) for (type_, _version), cls in sorted(PAYLOADS.items())]


def problems(named_schemas: list[tuple[str, Schema]]) -> tuple[list[str], set[str]]:
    """What is wrong with these contracts: an unbounded string, a maximum longer than a column that
    stores the field, a schema that rejects unknown fields, an alias naming no column."""
    by_name, by_qualified = columns()
    found, seen_paths = [], set()
    for root, schema in named_schemas:
        for path, key, item in walk(schema, root):
            seen_paths.add(path)
            if key is None:
                if item.unknown != EXCLUDE:
                    found.append(f"{path}: unknown fields must be excluded, not {item.unknown!r}")
                continue
            limit = max_length(item)
            if limit is None:
                found.append(f"{path}: a string without a maximum length")
                continue
            stored_in = {f"{c.table.name}.{c.name}": c for c in by_name.get(key, [])}
            for qualified in ALIASES.get(path, set()):
                if qualified not in by_qualified:
                    found.append(f"{path}: alias {qualified} is no column of any service")
                else:
                    stored_in[qualified] = by_qualified[qualified]
            for qualified in NOT_STORED_IN.get(path, set()):
                stored_in.pop(qualified, None)
            for qualified, column in sorted(stored_in.items()):
                length = getattr(column.type, "length", None) if isinstance(column.type, sa.String) else None
                if length is not None and limit > length:
                    found.append(f"{path}: up to {limit} characters, but {qualified} is String({length})")
    return found, seen_paths


def test_every_contract_string_is_bounded_by_every_column_storing_it():
    found, _ = problems(contracts())
    assert found == []


def test_every_alias_names_a_field_of_some_contract():
    _, paths = problems(contracts())
    assert set(ALIASES) - paths == set() and set(NOT_STORED_IN) - paths == set()


def test_the_envelope_case_number_fits_the_case_number_columns():
    by_name, _ = columns()
    narrowest = min(c.type.length for c in by_name["case_number"])
    assert narrowest == 40
    assert max_length(EnvelopeSchema().fields["case_number"]) <= narrowest


def test_every_produced_version_is_a_known_contract():
    assert all((type_, version) in PAYLOADS for type_, version in PRODUCED_VERSIONS.items())
    assert {type_ for type_, _ in PAYLOADS} == set(PRODUCED_VERSIONS)


# --- the walker can fail -----------------------------------------------------------------------------

class _Phone(Contract):
    phone = fields.String(validate=validate.Length(max=30))  # contacts.phone is String(20)


class _Strict(Schema):
    code = fields.String(validate=validate.Length(max=5))


class _TooLong(Contract):
    case_number = fields.String(validate=validate.Length(1, 50))  # the columns are String(40)
    kind = fields.String(validate=validate.OneOf(["a" * 21]))  # cases.kind is String(20)
    note = fields.String()  # unbounded
    contact = fields.Nested(_Phone)
    department = fields.List(fields.String(validate=validate.Length(max=33)))  # department columns: 32
    strict = fields.Nested(_Strict)  # rejects unknown fields
    fine = fields.String(validate=validate.Length(max=9))


def test_the_walker_finds_what_is_too_long_unbounded_or_strict():
    found, _ = problems([("fake", _TooLong())])
    text = "\n".join(found)
    assert "fake.case_number: up to 50 characters, but cases.case_number is String(40)" in found
    assert "fake.kind: up to 21 characters, but cases.kind is String(20)" in found
    assert "fake.note: a string without a maximum length" in found
    assert "fake.contact.phone: up to 30 characters, but contacts.phone is String(20)" in found
    assert "fake.department[]: up to 33 characters, but work_items.department is String(32)" in found
    assert "fake.strict: unknown fields must be excluded, not 'raise'" in found
    assert "fake.fine" not in text and "fake.strict.code" not in text


def test_the_walker_reads_aliases_and_reports_dead_ones(monkeypatch):
    class _Decided(Contract):
        decided_by = fields.String(validate=validate.Length(max=64))
        by = fields.String(validate=validate.Length(max=65))

    monkeypatch.setitem(ALIASES, "fake.by", {"case_actions.actor"})
    monkeypatch.setitem(ALIASES, "fake.decided_by", {"no_table.no_column"})
    found, _ = problems([("fake", _Decided())])
    assert found == ["fake.decided_by: alias no_table.no_column is no column of any service",
                     "fake.by: up to 65 characters, but case_actions.actor is String(64)"]
