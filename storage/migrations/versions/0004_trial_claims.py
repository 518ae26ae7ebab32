"""trial claims: one row per (study, condition, rep) taken by the process that runs it, so
that concurrent resumes of one study split the work instead of repeating it

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'trial_claim',
        sa.Column('study_id', sa.Integer(), nullable=False),
        sa.Column('condition_id', sa.Integer(), nullable=False),
        sa.Column('rep', sa.Integer(), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=True),
        sa.Column('host', sa.String(length=255), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['study_id'], ['study.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['condition_id'], ['condition.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('study_id', 'condition_id', 'rep'),
    )


def downgrade() -> None:
    op.drop_table('trial_claim')
