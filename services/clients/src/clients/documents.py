"""CL-12: "payment details" (individual) or "invoice" (legal entity), rendered from Jinja templates with
the client's data and the agency's details (settings), stored with the deal and served as printable HTML.

The amount is the deal's latest payment (what the client paid for the period now ending). Invoice
numbers are `<YYYY>-<n>` counted per year of the document date in the agency time zone.
"""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select

from clients import rules
from clients.models import Client, Deal, Document, Payment

_env = Environment(loader=PackageLoader("clients", "templates"), autoescape=select_autoescape(["html"]))

SERVICE_NAMES = {"account_management": "Ведение аккаунта Instagram",
                 "complex_promotion": "Комплексное продвижение в Instagram"}


def document_kind(client: Client) -> str:
    """CL-12: an individual gets payment details, a legal entity an invoice."""
    return "invoice" if client.payer_type == "legal" else "payment_details"


async def render_document(ctx, deal: Deal, at: datetime) -> Document:
    from clients.services import rule_values

    session = ctx.session
    client = await session.get(Client, deal.client_id)
    payment = (await session.execute(select(Payment).where(Payment.deal_id == deal.id)
                                     .order_by(Payment.paid_at.desc()))).scalars().first()
    rv = await rule_values(session, at)
    kind = document_kind(client)
    local = ctx.cal.local(at)
    year_start = rules.local_midnight(ctx.cal, local.date().replace(month=1, day=1))
    count = (await session.execute(select(func.count()).select_from(Document).where(
        Document.created_at >= year_start))).scalar_one()
    number = f"{local.year}-{count + 1}"
    html = _env.get_template(f"{kind}.html").render(
        number=number, date=local.strftime("%d.%m.%Y"), client=client, deal=deal, payment=payment, agency=rv,
        service=SERVICE_NAMES[deal.service_kind],
        period_end=ctx.cal.local(deal.period_end).strftime("%d.%m.%Y") if deal.period_end else "")
    document = Document(deal_id=deal.id, kind=kind, number=number, html=html, created_at=at)
    session.add(document)
    await session.flush()
    return document
