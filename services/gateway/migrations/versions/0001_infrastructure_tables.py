"""infrastructure tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 06:18:01.398226
"""
from shared.infra_migrations import downgrade_0001, upgrade_0001

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_0001()


def downgrade() -> None:
    downgrade_0001()
