"""instagram connection status: last check and last Graph error

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:55:00
"""
import sqlalchemy as sa
from alembic import op

import shared.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instagram_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checked_at', shared.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instagram_accounts', schema=None) as batch_op:
        batch_op.drop_column('last_error')
        batch_op.drop_column('checked_at')
