"""The probe service's reference replica: every platform follows the reference stream (the staff directory's token
revocations at least)."""
from alembic import op

from shared.db import create_reference_tables, drop_reference_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    create_reference_tables(op)


def downgrade():
    drop_reference_tables(op)
