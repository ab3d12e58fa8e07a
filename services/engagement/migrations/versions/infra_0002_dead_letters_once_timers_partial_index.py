"""infrastructure tables 0002: one dead letter per message, partial pending-timers index, retention indexes

Revision ID: infra_0002
Revises: 0001
Create Date: 2026-12-01 19:00:00
"""
from shared.infra_migrations import downgrade_0002, upgrade_0002

revision = 'infra_0002'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_0002()


def downgrade() -> None:
    downgrade_0002()
