"""the supervision board's counts (open cases by office, department, deadline, clock), the open cases'
deadline index the board's page reads in order, the decisions per office and day (the forecast's rate)

Revision ID: 0006board
Revises: 0003figures
Create Date: 2026-12-07 12:00:00
"""
from collections import Counter
from datetime import UTC

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
    op.create_table('decision_counts',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('office', sa.String(length=9), nullable=False),
    sa.Column('department', sa.String(length=40), nullable=False),
    sa.Column('decisions', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'office', 'department', name=op.f('pk_decision_counts'))
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
    # the decisions of the events stored so far
    from services.evaluation.models_board import decision_counted
    from shared.db import add_to_counters
    events = sa.table('case_events', sa.column('type'), sa.column('data', sa.JSON()),
                      sa.column('occurred_at', sa.DateTime(timezone=True)))
    decided = Counter()
    for type_, data, occurred_at in bind.execute(sa.select(*events.c).where(events.c.type == 'case.decided')):
        if occurred_at is not None and occurred_at.tzinfo is None:  # SQLite keeps no zone: stored as UTC
            occurred_at = occurred_at.replace(tzinfo=UTC)
        row = decision_counted(type_, data, occurred_at)
        if row is not None:
            decided[(row['day'], row['office'], row['department'])] += 1
    table = sa.Table('decision_counts', sa.MetaData(), sa.Column('day', sa.Date()), sa.Column('office', sa.String()),
                     sa.Column('department', sa.String()), sa.Column('decisions', sa.Integer()))
    add_to_counters(bind, table, ('day', 'office', 'department'), 'decisions',
                    [{'day': d, 'office': o, 'department': dept, 'decisions': n}
                     for (d, o, dept), n in sorted(decided.items())])


def downgrade():
    op.drop_index('ix_case_views_open_deadline', table_name='case_views')
    op.drop_table('decision_counts')
    op.drop_table('board_counts')
