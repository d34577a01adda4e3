"""the monthly figures' counters, and the reference records (calendar and catalogue)

Revision ID: 0003figures
Revises: 0002
Create Date: 2026-12-07 10:00:00
"""
from alembic import op
import sqlalchemy as sa

from shared.db import create_reference_tables


revision = '0003figures'
down_revision = '0003ratings'
branch_labels = None
depends_on = None


def upgrade():
    create_reference_tables(op)  # if not there yet (another evaluation migration may make them first)
    op.create_table('figure_counts',
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('dimension', sa.String(length=12), nullable=False),
    sa.Column('town', sa.String(length=9), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('office', sa.String(length=50), nullable=False),
    sa.Column('measure', sa.String(length=30), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('month', 'dimension', 'town', 'key', 'office', 'measure', name=op.f('pk_figure_counts'))
    )
    op.create_table('figure_cases',
    sa.Column('case_number', sa.String(length=40), nullable=False),
    sa.Column('window', sa.String(length=9), nullable=False),
    sa.Column('town', sa.String(length=9), nullable=False),
    sa.Column('staff', sa.String(length=100), nullable=True),
    sa.Column('village', sa.String(length=12), nullable=True),
    sa.Column('offices', sa.JSON(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=True),
    sa.Column('received_month', sa.String(length=7), nullable=True),
    sa.Column('clock_started_on', sa.Date(), nullable=True),
    sa.Column('completed_month', sa.String(length=7), nullable=True),
    sa.Column('completed_on', sa.Date(), nullable=True),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('finish_days', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('case_number', name=op.f('pk_figure_cases'))
    )
    op.create_table('figure_ratings',
    sa.Column('rating_id', sa.String(length=64), nullable=False),
    sa.Column('case_number', sa.String(length=40), nullable=True),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('follow_up', sa.Boolean(), nullable=False),
    sa.Column('rows', sa.JSON(), nullable=False),
    sa.Column('voided', sa.Boolean(), nullable=False),
    sa.Column('rectified', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('rating_id', name=op.f('pk_figure_ratings'))
    )
    op.create_table('figure_complaints',
    sa.Column('complaint_id', sa.String(length=64), nullable=False),
    sa.Column('case_number', sa.String(length=40), nullable=True),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('rows', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('complaint_id', name=op.f('pk_figure_complaints'))
    )


def downgrade():
    op.drop_table('figure_complaints')
    op.drop_table('figure_ratings')
    op.drop_table('figure_cases')
    op.drop_table('figure_counts')
