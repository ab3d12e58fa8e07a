"""sales accounts: channels.sales; the lead of a conversation (issue 15, CL-16 × EN-1)

Revision ID: 0003_sales
Revises: 0003_inbox_scale
Create Date: 2026-12-01 22:05:00
"""
import sqlalchemy as sa
from alembic import op

import shared.db

revision = '0003_sales'
down_revision = '0003_inbox_scale'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sales', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lead_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('lead_stage', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('lead_deal_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('lead_disqualified', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('lead_updated_at', shared.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_conversations_lead_id'), ['lead_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_lead_id'))
        for column in ('lead_updated_at', 'lead_disqualified', 'lead_deal_id', 'lead_stage', 'lead_id'):
            batch_op.drop_column(column)
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_column('sales')
