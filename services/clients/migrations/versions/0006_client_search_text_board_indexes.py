"""client search text; a deal's money on its row; indexes for the pipeline board and the clients list

Revision ID: 0006
Revises: infra_0002
Create Date: 2026-12-01 22:00:00

Issue 9 "Lists that scale": the board and the Clients page search a client by a part of the name,
phone, Instagram or e-mail in any case (`clients.search_text`, lower-cased by the application as
`leads.search_text`: SQLite's lower() knows ASCII only). Each board column reads its newest deals by
stage (`deals(stage, first_payment_at, id)`, `deals(stage, lost_at, id)`: an index walk, no sort). A column's sums and the Clients
page's totals read the deal's own `paid_total` / `currency` / `last_paid_at` (what rules.net_paid makes
of its payments and refunds, kept by the application after each payment and refund), not every payment.
"""
from decimal import Decimal

import shared.db
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = 'infra_0002'
branch_labels = None
depends_on = None

DEALS = sa.table("deals", sa.column("id"), sa.column("paid_total", sa.Numeric(14, 2)), sa.column("currency"),
                 sa.column("last_paid_at", shared.db.UTCDateTime(timezone=True)))
PAYMENTS = sa.table("payments", sa.column("deal_id"), sa.column("currency"), sa.column("amount", sa.Numeric(14, 2)),
                    sa.column("paid_at", shared.db.UTCDateTime(timezone=True)))
REFUNDS = sa.table("refunds", sa.column("deal_id"), sa.column("currency"), sa.column("amount", sa.Numeric(14, 2)))
CLIENTS = sa.table("clients", sa.column("id"), sa.column("full_name"), sa.column("phone"), sa.column("instagram"),
                   sa.column("email"), sa.column("search_text"))


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), server_default='', nullable=False))
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.create_index('ix_deals_stage_first_payment_at', ['stage', 'first_payment_at', 'id'], unique=False)
        batch_op.create_index('ix_deals_stage_lost_at', ['stage', 'lost_at', 'id'], unique=False)
        batch_op.add_column(sa.Column('paid_total', sa.Numeric(precision=14, scale=2), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('currency', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('last_paid_at', shared.db.UTCDateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    # A deal's money as rules.net_paid has it: the currency of its first payment; the payments in that
    # currency minus the refunds in it.
    paid: dict = {}
    for row in bind.execute(sa.select(PAYMENTS.c.deal_id, PAYMENTS.c.currency, PAYMENTS.c.amount, PAYMENTS.c.paid_at)
                            .order_by(PAYMENTS.c.deal_id, PAYMENTS.c.paid_at)).all():
        entry = paid.setdefault(row.deal_id, {"currency": row.currency, "total": Decimal(0), "last": row.paid_at})
        if row.currency == entry["currency"]:
            entry["total"] += Decimal(row.amount)
        entry["last"] = max(entry["last"], row.paid_at)
    for row in bind.execute(sa.select(REFUNDS.c.deal_id, REFUNDS.c.currency, REFUNDS.c.amount)).all():
        entry = paid.get(row.deal_id)
        if entry is not None and row.currency == entry["currency"]:
            entry["total"] -= Decimal(row.amount)
    for deal_id, entry in paid.items():
        bind.execute(DEALS.update().where(DEALS.c.id == deal_id).values(
            paid_total=entry["total"].quantize(Decimal("0.01")), currency=entry["currency"],
            last_paid_at=entry["last"]))
    # Self-contained on purpose (a migration must not change when the application code does).
    for row in bind.execute(sa.select(CLIENTS)).mappings().all():
        text = " ".join(str(row[k]).strip().lower() for k in ("full_name", "phone", "instagram", "email") if row[k])
        digits = "".join(ch for ch in text if ch.isdigit())
        bind.execute(CLIENTS.update().where(CLIENTS.c.id == row["id"]).values(search_text=f"{text} {digits}".strip()))


def downgrade() -> None:
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.drop_column('last_paid_at')
        batch_op.drop_column('currency')
        batch_op.drop_column('paid_total')
        batch_op.drop_index('ix_deals_stage_lost_at')
        batch_op.drop_index('ix_deals_stage_first_payment_at')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('search_text')
