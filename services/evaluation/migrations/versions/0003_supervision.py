"""deadline supervision: warnings and supervision notices; the reference stream's tables (the calendar)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 10:00:00
"""
import sqlalchemy as sa
from alembic import op

from shared.db import create_reference_tables, drop_reference_tables

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    # the working calendar comes from the reference stream (create_all: a no-op where another migration
    # made these tables already)
    create_reference_tables(op)
    op.create_table('supervision_warnings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_number', sa.String(length=40), nullable=False),
    sa.Column('colour', sa.String(length=10), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('rule', sa.String(length=60), nullable=False),
    sa.Column('working_days_left', sa.Integer(), nullable=False),
    sa.Column('accepting_town', sa.String(length=9), nullable=False),
    sa.Column('handling_town', sa.String(length=9), nullable=True),
    sa.Column('department', sa.String(length=40), nullable=True),
    sa.Column('first_responder', sa.String(length=100), nullable=True),
    sa.Column('item_name', sa.String(length=200), nullable=True),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.String(length=30), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supervision_warnings')),
    sa.UniqueConstraint('case_number', 'colour', 'deadline',
                        name=op.f('uq_supervision_warnings_case_number_colour_deadline'))
    )
    with op.batch_alter_table('supervision_warnings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_supervision_warnings_accepting_town'), ['accepting_town'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervision_warnings_case_number'), ['case_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervision_warnings_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervision_warnings_resolved_at'), ['resolved_at'], unique=False)

    op.create_table('supervision_notices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('warning_id', sa.Integer(), nullable=False),
    sa.Column('case_number', sa.String(length=40), nullable=False),
    sa.Column('accepting_town', sa.String(length=9), nullable=False),
    sa.Column('handling_town', sa.String(length=9), nullable=True),
    sa.Column('department', sa.String(length=40), nullable=True),
    sa.Column('department_head', sa.String(length=60), nullable=True),
    sa.Column('supervisor', sa.String(length=20), nullable=False),
    sa.Column('text', sa.String(length=500), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['warning_id'], ['supervision_warnings.id'],
                            name=op.f('fk_supervision_notices_warning_id_supervision_warnings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supervision_notices')),
    sa.UniqueConstraint('warning_id', name=op.f('uq_supervision_notices_warning_id'))
    )
    with op.batch_alter_table('supervision_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_supervision_notices_case_number'), ['case_number'], unique=False)


def downgrade():
    with op.batch_alter_table('supervision_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_supervision_notices_case_number'))
    op.drop_table('supervision_notices')
    with op.batch_alter_table('supervision_warnings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_supervision_warnings_resolved_at'))
        batch_op.drop_index(batch_op.f('ix_supervision_warnings_department'))
        batch_op.drop_index(batch_op.f('ix_supervision_warnings_case_number'))
        batch_op.drop_index(batch_op.f('ix_supervision_warnings_accepting_town'))
    op.drop_table('supervision_warnings')
    drop_reference_tables(op)
