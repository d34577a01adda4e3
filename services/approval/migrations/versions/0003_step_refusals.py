"""what the ledger lets the department ask (extension_days_max) and the ledger's refusals

Revision ID: 0003_step_refusals
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_step_refusals'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extension_days_max', sa.Integer(), nullable=True))
    with op.batch_alter_table('extensions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refused_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('refused_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('extensions', schema=None) as batch_op:
        batch_op.drop_column('refused_at')
        batch_op.drop_column('refused_reason')
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_column('extension_days_max')
