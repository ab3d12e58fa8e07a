"""deadline breach event id; indexes on deadlines.task_id and leads.created_at

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 18:50:00

Issue 7 §1: a deadline keeps the event id of its breach, so a later-recorded fact in time retracts
exactly that breach (`DeadlineMet.revises_breach_event_id`). Issue 7 §7: `deadlines.task_id` (read
for every finished task) and `leads.created_at` (the funnel's month, the leads list's default sort)
are indexed.
"""
import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('breach_event_id', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_deadlines_task_id'), ['task_id'], unique=False)
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leads_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leads_created_at'))
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deadlines_task_id'))
        batch_op.drop_column('breach_event_id')
