"""inbox at scale (issue 11 benchmark: 100,000 conversations, 1,000,000 messages, p95 ≤ 150 ms): list indexes

Every filter of `GET /conversations` has an index that also gives the list's order (newest activity first,
`last_activity_at DESC, id DESC`, read backwards), so a page reads ~`limit` index entries whatever the table
size: status, assignee (mine / an agent / unassigned = NULL), channel kind, channel account, client account (a
care agent sees the accounts they serve). Tags use the primary key of conversation_tags and its tag index.

Search (`q`, a substring of name, handle and last message, kept lower-cased in `search_text`): on PostgreSQL a
trigram GIN index (`pg_trgm`, a trusted extension since PostgreSQL 13) serves `LIKE '%q%'` for q of 3+
characters; shorter q and SQLite read the rows. If the extension cannot be created, the migration goes on
without it (search then reads the rows) and says so in the log.

Revision ID: 0003_inbox_scale
Revises: 0003_monitoring
Create Date: 2026-12-01 22:00:00
"""
import logging

import sqlalchemy as sa
from alembic import op

revision = '0003_inbox_scale'
down_revision = '0003_monitoring'
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

INDEXES = {
    "ix_conversations_status_activity": ["status", "last_activity_at", "id"],
    "ix_conversations_assignee_activity": ["assignee", "last_activity_at", "id"],
    "ix_conversations_kind_activity": ["kind", "last_activity_at", "id"],
    "ix_conversations_channel_activity": ["channel_id", "last_activity_at", "id"],
    "ix_conversations_account_activity": ["account", "last_activity_at", "id"],
}


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_status_activity')   # (status, last_activity_at): now with id
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        savepoint = bind.begin_nested()
        try:
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            bind.execute(sa.text("CREATE INDEX ix_conversations_search_trgm ON conversations "
                                 "USING gin (search_text gin_trgm_ops)"))
            savepoint.commit()
        except sa.exc.DBAPIError as exc:
            savepoint.rollback()
            log.warning("pg_trgm unavailable, conversation search reads the rows: %s", exc)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("DROP INDEX IF EXISTS ix_conversations_search_trgm"))
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
        batch_op.create_index('ix_conversations_status_activity', ['status', 'last_activity_at'], unique=False)
