"""the supervision board's counts (open cases by office, department, deadline, clock) and the open cases'
deadline index the board's page reads in order

Revision ID: 0006board
Revises: 0003figures
Create Date: 2026-12-07 12:00:00
"""
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = '0006board'
down_revision = '0003figures'
branch_labels = None
depends_on = None

_OPEN = ('pending_materials', 'initial_review', 'in_review', 'paused')
_FIELDS = ('status', 'accepting_town', 'handling_town', 'department', 'departments', 'kind', 'deadline',
           'paused_since')


def upgrade():
    op.create_table('board_counts',
    sa.Column('accepting_town', sa.String(length=9), nullable=False),
    sa.Column('handling_town', sa.String(length=9), nullable=False),
    sa.Column('department', sa.String(length=40), nullable=False),
    sa.Column('lead', sa.Boolean(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('instant', sa.Boolean(), nullable=False),
    sa.Column('stopped', sa.Boolean(), nullable=False),
    sa.Column('cases', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('accepting_town', 'handling_town', 'department', 'lead', 'deadline', 'instant',
                            'stopped', name=op.f('pk_board_counts'))
    )
    open_list = ", ".join(f"'{s}'" for s in _OPEN)
    op.create_index('ix_case_views_open_deadline', 'case_views', ['deadline', 'case_number'],
                    postgresql_where=sa.text(f"status IN ({open_list})"),
                    sqlite_where=sa.text(f"status IN ({open_list})"))
    # the counts of the cases open now (the board's rules as they are at this revision)
    from services.evaluation import supervision_rules as rules
    from services.evaluation.models_board import add_counts
    bind = op.get_bind()
    types = {'departments': sa.JSON(), 'deadline': sa.Date(), 'paused_since': sa.Date()}
    view = sa.table('case_views', *(sa.column(f, types.get(f)) for f in _FIELDS))
    counts = Counter()
    for row in bind.execute(sa.select(*view.c).where(view.c.status.in_(_OPEN))):
        counts.update(rules.board_keys(**dict(zip(_FIELDS, row, strict=True))))
    add_counts(bind, counts)


def downgrade():
    op.drop_index('ix_case_views_open_deadline', table_name='case_views')
    op.drop_table('board_counts')
