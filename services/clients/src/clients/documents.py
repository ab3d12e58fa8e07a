"""CL-12: "payment details" (individual) or "invoice" (legal entity), rendered from Jinja templates with
the client's data and the agency's details (settings), stored with the deal and served as printable HTML.

The amount is the deal's latest payment (what the client paid for the period now ending). Invoice
numbers are `<YYYY>-<n>` counted per year of the document date in the agency time zone, from a counter
row incremented atomically (`next_number`) and backed by a unique constraint: unique under
concurrency, and a rolled-back transaction may leave a gap (numbers are never reused).
"""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from clients.models import Client, Deal, Document, DocumentCounter, Payment

_env = Environment(loader=PackageLoader("clients", "templates"), autoescape=select_autoescape(["html"]))

SERVICE_NAMES = {"account_management": "Ведение аккаунта Instagram",
                 "complex_promotion": "Комплексное продвижение в Instagram"}


def document_kind(client: Client) -> str:
    """CL-12: an individual gets payment details, a legal entity an invoice."""
    return "invoice" if client.payer_type == "legal" else "payment_details"


async def next_number(session: AsyncSession, year: int) -> int:
    """CL-12: the year's next document number. The counter row is created if missing (a concurrent
    creator wins quietly) and incremented with `UPDATE … RETURNING`, which takes the row lock: a second
    transaction waits for the first to finish and reads its value, so no two get the same number."""
    dialect = session.bind.dialect.name
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(insert_(DocumentCounter).values(year=year, n=0).on_conflict_do_nothing(
        index_elements=["year"]))
    return (await session.execute(update(DocumentCounter).where(DocumentCounter.year == year)
                                  .values(n=DocumentCounter.n + 1).returning(DocumentCounter.n))).scalar_one()


async def render_document(ctx, deal: Deal, at: datetime) -> Document:
    from clients.services import rule_values

    session = ctx.session
    client = await session.get(Client, deal.client_id)
    payment = (await session.execute(select(Payment).where(Payment.deal_id == deal.id)
                                     .order_by(Payment.paid_at.desc()))).scalars().first()
    rv = await rule_values(session, at)
    kind = document_kind(client)
    local = ctx.cal.local(at)
    number = f"{local.year}-{await next_number(session, local.year)}"
    html = _env.get_template(f"{kind}.html").render(
        number=number, date=local.strftime("%d.%m.%Y"), client=client, deal=deal, payment=payment, agency=rv,
        service=SERVICE_NAMES[deal.service_kind],
        period_end=ctx.cal.local(deal.period_end).strftime("%d.%m.%Y") if deal.period_end else "")
    document = Document(deal_id=deal.id, kind=kind, number=number, html=html, created_at=at)
    session.add(document)
    await session.flush()
    return document
