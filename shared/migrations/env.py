"""Alembic environment shared by every service: the service passes its connection in.

For autogenerate (scripts/new_migration.py) the service's metadata is passed too; the outbox
and inbox tables belong to shared plumbing and are created by shared.db, so they are skipped.
"""
from alembic import context

from shared.db import plumbing_metadata

config = context.config
connection = config.attributes["connection"]


def include_object(obj, name, type_, reflected, compare_to):
    if type_ == "table" and name in plumbing_metadata.tables:
        return False
    if type_ == "index" and getattr(obj, "table", None) is not None and obj.table.name in plumbing_metadata.tables:
        return False
    return True


context.configure(connection=connection, target_metadata=config.attributes.get("target_metadata"),
                  render_as_batch=True, include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
