"""leads from conversations: lead channel, contact keys, spam / wrong number; lead_conversations (issue 15)

Revision ID: 0006_sales
Revises: 0006
Create Date: 2026-12-01 22:10:00

The contact keys of existing leads are filled here with the same normalisation the service uses
(`clients.inbox_leads`), so a person entered by hand is matched when they write to a sales account.
"""

import sqlalchemy as sa
from alembic import op

import shared.db

revision = '0006_sales'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lead_conversations',
                    sa.Column('conversation_id', sa.String(length=36), nullable=False),
                    sa.Column('lead_id', sa.String(length=36), nullable=True),
                    sa.Column('channel_id', sa.String(length=36), nullable=False),
                    sa.Column('channel_kind', sa.String(length=20), nullable=False),
                    sa.Column('customer_name', sa.String(length=300), nullable=False),
                    sa.Column('customer_handle', sa.String(length=300), nullable=False),
                    sa.Column('first_message_at', shared.db.UTCDateTime(timezone=True), nullable=True),
                    sa.Column('answered_by', sa.String(length=100), nullable=True),
                    sa.Column('answered_at', shared.db.UTCDateTime(timezone=True), nullable=True),
                    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('conversation_id'))
    with op.batch_alter_table('lead_conversations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_conversations_lead_id'), ['lead_id'], unique=False)
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=20), server_default='', nullable=False))
        batch_op.add_column(sa.Column('phone_key', sa.String(length=30), server_default='', nullable=False))
        batch_op.add_column(sa.Column('email_key', sa.String(length=300), server_default='', nullable=False))
        batch_op.add_column(sa.Column('instagram_key', sa.String(length=100), server_default='', nullable=False))
        batch_op.add_column(sa.Column('disqualified', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('disqualified_at', shared.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_leads_phone_key'), ['phone_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_email_key'), ['email_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_instagram_key'), ['instagram_key'], unique=False)
    from clients.inbox_leads import email_key, instagram_key, phone_key

    conn = op.get_bind()
    leads = sa.table('leads', sa.column('id', sa.String), sa.column('phone', sa.String),
                     sa.column('email', sa.String), sa.column('instagram', sa.String),
                     sa.column('phone_key', sa.String), sa.column('email_key', sa.String),
                     sa.column('instagram_key', sa.String))
    for row in conn.execute(sa.select(leads.c.id, leads.c.phone, leads.c.email, leads.c.instagram)).all():
        conn.execute(leads.update().where(leads.c.id == row.id).values(
            phone_key=phone_key(row.phone or ""), email_key=email_key(row.email or ""),
            instagram_key=instagram_key(row.instagram or "")))


def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        for index in ('ix_leads_instagram_key', 'ix_leads_email_key', 'ix_leads_phone_key'):
            batch_op.drop_index(batch_op.f(index))
        for column in ('disqualified_at', 'disqualified', 'instagram_key', 'email_key', 'phone_key', 'channel'):
            batch_op.drop_column(column)
    with op.batch_alter_table('lead_conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_conversations_lead_id'))
    op.drop_table('lead_conversations')
