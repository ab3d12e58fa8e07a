"""the owners' language: their SOP push reminders on Telegram are written in it (issue 9 × issue 13)

Revision ID: 0003_owner_language
Revises: 0003_files
Create Date: 2026-12-02 07:15:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_owner_language'
down_revision = '0003_files'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('owner_roster', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=False, server_default='ru'))


def downgrade() -> None:
    with op.batch_alter_table('owner_roster', schema=None) as batch_op:
        batch_op.drop_column('language')
