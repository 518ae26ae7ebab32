"""agent import paths on sessions and studies; one per-session sequence over beliefs,
decisions, model calls and human inputs

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

SEQUENCED = ('belief', 'decision', 'model_call', 'human_input')


def upgrade() -> None:
    for table in ('session', 'study'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('graph_ref', sa.String(length=500), nullable=True))
            batch.add_column(sa.Column('graph_version', sa.String(length=40), nullable=True))
    for table in SEQUENCED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        op.create_index(f'ix_{table}_session_seq', table, ['session_id', 'seq'])


def downgrade() -> None:
    for table in SEQUENCED:
        op.drop_index(f'ix_{table}_session_seq', table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column('seq')
    for table in ('session', 'study'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('graph_version')
            batch.drop_column('graph_ref')
