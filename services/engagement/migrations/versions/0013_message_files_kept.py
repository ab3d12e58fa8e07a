"""customers' files kept for ENGAGEMENT_FILE_KEEP_DAYS: an index for the hourly look for those past their time

Revision ID: 0003_files_kept
Revises: 0003_owner_language
Create Date: 2026-12-02 10:20:00
"""
from alembic import op

revision = '0003_files_kept'
down_revision = '0003_owner_language'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('message_files', schema=None) as batch_op:
        batch_op.create_index('ix_message_files_kept', ['state', 'stored_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('message_files', schema=None) as batch_op:
        batch_op.drop_index('ix_message_files_kept')
