"""client search text; indexes for the pipeline board and the clients list

Revision ID: 0006
Revises: infra_0002
Create Date: 2026-12-01 22:00:00

Issue 9 "Lists that scale": the board and the Clients page search a client by a part of the name,
phone, Instagram or e-mail in any case (`clients.search_text`, lower-cased by the application as
`leads.search_text`: SQLite's lower() knows ASCII only). Each board column reads its newest deals by
stage (`deals(stage, first_payment_at)`, `deals(stage, lost_at)`); the per-column sums join payments
and refunds by deal (already indexed).
"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = 'infra_0002'
branch_labels = None
depends_on = None

CLIENTS = sa.table("clients", sa.column("id"), sa.column("full_name"), sa.column("phone"), sa.column("instagram"),
                   sa.column("email"), sa.column("search_text"))


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), server_default='', nullable=False))
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.create_index('ix_deals_stage_first_payment_at', ['stage', 'first_payment_at'], unique=False)
        batch_op.create_index('ix_deals_stage_lost_at', ['stage', 'lost_at'], unique=False)
    bind = op.get_bind()
    # Self-contained on purpose (a migration must not change when the application code does).
    for row in bind.execute(sa.select(CLIENTS)).mappings().all():
        text = " ".join(str(row[k]).strip().lower() for k in ("full_name", "phone", "instagram", "email") if row[k])
        digits = "".join(ch for ch in text if ch.isdigit())
        bind.execute(CLIENTS.update().where(CLIENTS.c.id == row["id"]).values(search_text=f"{text} {digits}".strip()))


def downgrade() -> None:
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.drop_index('ix_deals_stage_lost_at')
        batch_op.drop_index('ix_deals_stage_first_payment_at')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('search_text')
