"""care teams and client contacts: an agent's team (EN-6: a senior agent reads their team's report); the client
account's contact person (EN-5: told of a question by e-mail or Telegram) and each question's notice

Revision ID: 0003_teams
Revises: 0003_inbox
Create Date: 2026-12-02 02:40:00
"""
import sqlalchemy as sa
from alembic import op

import shared.db

revision = '0003_teams'
down_revision = '0003_inbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents') as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f('ix_agents_team'), ['team'], unique=False)
    with op.batch_alter_table('care_settings') as batch_op:
        batch_op.add_column(sa.Column('contact_email', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('contact_telegram', sa.String(length=64), nullable=False, server_default=''))
    with op.batch_alter_table('client_questions') as batch_op:
        batch_op.add_column(sa.Column('notice_via', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('notice_to', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('notice_state', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('notice_error', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('notice_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('notice_next_at', shared.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('notice_sent_at', shared.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_client_questions_notice_state'), ['notice_state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('client_questions') as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_questions_notice_state'))
        for column in ('notice_sent_at', 'notice_next_at', 'notice_attempts', 'notice_error', 'notice_state',
                       'notice_to', 'notice_via'):
            batch_op.drop_column(column)
    with op.batch_alter_table('care_settings') as batch_op:
        batch_op.drop_column('contact_telegram')
        batch_op.drop_column('contact_email')
    with op.batch_alter_table('agents') as batch_op:
        batch_op.drop_index(batch_op.f('ix_agents_team'))
        batch_op.drop_column('team')
