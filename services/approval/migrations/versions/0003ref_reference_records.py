"""reference records: every catalogue and calendar version read from the reference stream

Revision ID: 0003ref
Revises: 0002
"""
from shared.db import create_reference_tables, drop_reference_tables
from alembic import op

revision = '0003ref'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    create_reference_tables(op)


def downgrade():
    drop_reference_tables(op)
