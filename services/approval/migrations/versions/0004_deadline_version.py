"""the ledger's deadline reaches the work item: the case version whose deadline it shows; merges the two heads

Revision ID: 0004_deadline_version
Revises: 0003ref, 0003_step_refusals
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_deadline_version'
down_revision = ('0003ref', '0003_step_refusals')
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deadline_version', sa.Integer(), nullable=True))
    # what every existing item shows is the deadline of the version routed to it
    op.execute("UPDATE work_items SET deadline_version = case_version")


def downgrade():
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_column('deadline_version')
