"""the process (pid, host) that wrote each session and study row, so that
`tinmen db check` can tell a 'running' row whose process died from a live one

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

OWNED = ('session', 'study')


def upgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('pid', sa.Integer(), nullable=True))
            batch.add_column(sa.Column('host', sa.String(length=255), nullable=True))


def downgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('host')
            batch.drop_column('pid')
