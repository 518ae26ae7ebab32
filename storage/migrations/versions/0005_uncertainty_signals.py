"""uncertainty signals: a JSON summary on every model call (models/uncertainty.py), and the
entropy and margin of each decision's option distribution

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('model_call') as batch:
        batch.add_column(sa.Column('uncertainty', sa.JSON(), nullable=True))
    with op.batch_alter_table('decision') as batch:
        batch.add_column(sa.Column('entropy', sa.Float(), nullable=True))
        batch.add_column(sa.Column('margin', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('decision') as batch:
        batch.drop_column('margin')
        batch.drop_column('entropy')
    with op.batch_alter_table('model_call') as batch:
        batch.drop_column('uncertainty')
