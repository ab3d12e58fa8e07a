"""care teams: an agent's team (EN-6: a senior agent reads their team's report)

Revision ID: 0003_teams
Revises: 0003_inbox
Create Date: 2026-12-02 02:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_teams'
down_revision = '0003_inbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents') as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f('ix_agents_team'), ['team'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('agents') as batch_op:
        batch_op.drop_index(batch_op.f('ix_agents_team'))
        batch_op.drop_column('team')
