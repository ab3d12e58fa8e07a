"""e-mail channel: the IMAP poller's state per mailbox (UIDVALIDITY, last UID, IDLE, last error)

Revision ID: 0003_email
Revises: 0003_sales
Create Date: 2026-12-01 22:00:00
"""
import sqlalchemy as sa
from alembic import op

import shared.db

revision = '0003_email'
down_revision = '0003_sales'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mailbox_states',
    sa.Column('channel_id', sa.String(length=36), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.Column('idle', sa.Boolean(), nullable=False),
    sa.Column('checked_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_mailbox_states_channel_id_channels')),
    sa.PrimaryKeyConstraint('channel_id', name=op.f('pk_mailbox_states'))
    )


def downgrade() -> None:
    op.drop_table('mailbox_states')
