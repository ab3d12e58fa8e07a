"""care inbox pages: reply templates (with the seeds' scripts #3 and #4), notes and mentions, the change feed,
conversation category and priority

Revision ID: 0003_inbox
Revises: 0003_email
Create Date: 2026-12-01 22:00:00
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import shared.db

revision = '0003_inbox'
down_revision = '0003_email'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Seed 001's scripts, as examples the senior agent edits (the seed names them; their wording is ours). They are the
# agency's own data, written in its working language (Russian), like the templates the team adds.
SEED_TEMPLATES = [
    ("seed-script-3-first-call", "script", "запуск", "Скрипт №3: первый звонок",
     "Здравствуйте, {customer_name}! Меня зовут {agent_name}, я ваш менеджер в агентстве по проекту "
     "{client_name}. Спасибо за оплату! Расскажу, как пройдёт запуск: сначала короткая анкета, затем "
     "контент-план на согласование. Когда вам удобно созвониться?"),
    ("seed-script-4-renewal", "script", "продление", "Скрипт №4: продление",
     "Здравствуйте, {customer_name}! Это {agent_name}, ваш менеджер по проекту {client_name}. Через 3 дня "
     "заканчивается срок обслуживания. Подведём итоги месяца и обсудим продление?"),
    ("seed-template-greeting", "template", "", "Приветствие",
     "Здравствуйте, {customer_name}! Меня зовут {agent_name}, чем могу помочь?"),
]


def upgrade() -> None:
    op.add_column('conversations', sa.Column('category', sa.String(length=50), nullable=True))
    op.add_column('conversations', sa.Column('priority', sa.String(length=10), server_default='normal',
                                             nullable=False))
    op.create_index(op.f('ix_conversations_category'), 'conversations', ['category'], unique=False)
    templates = op.create_table(
        'reply_templates',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('category', sa.String(length=50), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reply_templates')))
    op.create_index(op.f('ix_reply_templates_category'), 'reply_templates', ['category'], unique=False)
    op.create_table(
        'notes',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('conversation_id', sa.String(length=36), nullable=False),
        sa.Column('author', sa.String(length=100), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('mentions', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                                name=op.f('fk_notes_conversation_id_conversations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notes')))
    op.create_index(op.f('ix_notes_conversation_id'), 'notes', ['conversation_id'], unique=False)
    op.create_table(
        'note_mentions',
        sa.Column('note_id', sa.String(length=36), nullable=False),
        sa.Column('login', sa.String(length=100), nullable=False),
        sa.Column('conversation_id', sa.String(length=36), nullable=False),
        sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('read_at', shared.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['note_id'], ['notes.id'], name=op.f('fk_note_mentions_note_id_notes')),
        sa.PrimaryKeyConstraint('note_id', 'login', name=op.f('pk_note_mentions')))
    op.create_index('ix_note_mentions_login_unread', 'note_mentions', ['login', 'read_at'], unique=False)
    op.create_table(
        'changes',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('conversation_id', sa.String(length=36), nullable=False),
        sa.Column('at', shared.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_changes')))
    op.create_index(op.f('ix_changes_at'), 'changes', ['at'], unique=False)
    now = datetime.now(UTC)
    op.bulk_insert(templates, [
        {"id": tid, "kind": kind, "category": category, "title": title, "body": body, "created_at": now,
         "created_by": "seed", "updated_at": now, "updated_by": "seed"}
        for tid, kind, category, title, body in SEED_TEMPLATES])


def downgrade() -> None:
    op.drop_index(op.f('ix_changes_at'), table_name='changes')
    op.drop_table('changes')
    op.drop_index('ix_note_mentions_login_unread', table_name='note_mentions')
    op.drop_table('note_mentions')
    op.drop_index(op.f('ix_notes_conversation_id'), table_name='notes')
    op.drop_table('notes')
    op.drop_index(op.f('ix_reply_templates_category'), table_name='reply_templates')
    op.drop_table('reply_templates')
    op.drop_index(op.f('ix_conversations_category'), table_name='conversations')
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('priority')
        batch.drop_column('category')
