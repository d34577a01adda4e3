"""the first responder's name (首问负责人), as the notices print it

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 23:48:41.903823
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_responder_name', sa.String(length=50), nullable=True))


def downgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('first_responder_name')
