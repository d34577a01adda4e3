"""query codes: the salted hash of each case's 查询码 (services.intake.query_codes)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 01:29:37.859519
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('query_code_hash', sa.String(length=120), nullable=True))


def downgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('query_code_hash')
