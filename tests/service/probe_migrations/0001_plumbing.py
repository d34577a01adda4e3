"""The probe service's schema: only the outbox and inbox every service has."""
from alembic import op

from shared.db import create_plumbing_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    create_plumbing_tables(op)


def downgrade():
    pass
