"""reference records: notify follows the reference stream too (the staff directory's token revocations)

Revision ID: 0004
Revises: 0003
"""
from shared.db import create_reference_tables, drop_reference_tables
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    create_reference_tables(op)


def downgrade():
    drop_reference_tables(op)
