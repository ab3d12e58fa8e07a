"""The Clients list and the client card read by its own id (issue 9 "Lists that scale").

The card has no rule of its own (access.py, issue 8 §4): a client exists for an actor only through the
deals the actor may see. So the list holds the clients with at least one visible deal, and its
figures (deals, total paid, last activity) count those deals only — a manager sees their part of a
shared client, never the other manager's; a card read or edited by id with no visible deal is a 404,
as if absent, and edited only by one who may change one of its deals (the lead, that deal's
responsible manager; the analyst reads only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.auth import Actor
from shared.errors import Forbidden, NotFound
from shared.clock import as_utc
from shared.db import UTCDateTime
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clients import access
from clients.models import Client, Deal, Payment, Refund
from clients.schemas import Page
from clients.services.lists import DealRow, money_of_deals, ordered

CLIENT_SORTS = ("full_name", "deals", "paid", "last_activity")
CLIENT_DEFAULT_SORT = "full_name"
DEAL_FACTS = ("contacted_at", "questionnaire_received_at", "first_post_at", "launched_at", "period_start",
              "notification_sent_at", "lost_at")


@dataclass
class ClientRow:
    client: Client
    deals: int
    paid: list[tuple[str, Decimal]]    # (currency, payments − refunds) over the visible deals
    last_activity: datetime | None


def latest(dialect: str, *terms: Any) -> Any:
    """The latest of non-null timestamps (GREATEST on PostgreSQL, multi-argument max() on SQLite)."""
    fn = func.greatest if dialect == "postgresql" else func.max
    return fn(*terms, type_=UTCDateTime)


def deal_activity(dialect: str) -> Any:
    """A deal's last recorded fact: its first payment or the latest stage fact (CL-4…CL-13)."""
    return latest(dialect, Deal.first_payment_at,
                  *(func.coalesce(getattr(Deal, name), Deal.first_payment_at) for name in DEAL_FACTS))


async def list_clients(session: AsyncSession, actor: Actor, page: Page, *, q: str | None = None
                       ) -> tuple[list[ClientRow], int]:
    """One page of the clients with a deal `actor` may see, and how many there are. Sorts: full_name,
    deals (count), paid (payments − refunds, all currencies together — an agency bills in one),
    last_activity (the latest payment or stage fact of the visible deals); ties by id."""
    dialect = session.bind.dialect.name
    visible = access.visible_deals(actor)
    per_client = (select(Deal.client_id.label("client_id"), func.count(Deal.id).label("deals"),
                         func.max(deal_activity(dialect)).label("activity"))
                  .where(visible).group_by(Deal.client_id).subquery())
    paid = (select(Deal.client_id.label("client_id"), func.sum(Payment.amount).label("amount"),
                   func.max(Payment.paid_at).label("last_paid"))
            .join(Deal, Deal.id == Payment.deal_id).where(visible).group_by(Deal.client_id).subquery())
    refunded = (select(Deal.client_id.label("client_id"), func.sum(Refund.amount).label("amount"))
                .join(Deal, Deal.id == Refund.deal_id).where(visible).group_by(Deal.client_id).subquery())
    where = []
    if q and q.strip():
        where.append(Client.search_text.contains(q.strip().lower(), autoescape=True))
    total = (await session.execute(select(func.count()).select_from(Client)
                                   .join(per_client, per_client.c.client_id == Client.id).where(*where))).scalar_one()
    net = func.coalesce(paid.c.amount, 0) - func.coalesce(refunded.c.amount, 0)
    activity = case((paid.c.last_paid > per_client.c.activity, paid.c.last_paid), else_=per_client.c.activity)
    columns = {"full_name": Client.full_name, "deals": per_client.c.deals, "paid": net, "last_activity": activity}
    query = (select(Client, per_client.c.deals, activity.label("activity"))
             .join(per_client, per_client.c.client_id == Client.id)
             .outerjoin(paid, paid.c.client_id == Client.id).outerjoin(refunded, refunded.c.client_id == Client.id)
             .where(*where).order_by(*ordered(columns[page.sort], page.descending), Client.id)
             .limit(page.limit).offset(page.offset))
    rows = (await session.execute(query)).all()
    money = await money_of_clients(session, actor, [client.id for client, *_rest in rows])
    return [ClientRow(client, deals, money.get(client.id, []), as_timestamp(at)) for client, deals, at in rows], total


def as_timestamp(value: Any) -> datetime | None:
    """An aggregate's timestamp as an aware UTC datetime (SQLite may hand back its stored text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return None if value is None else as_utc(value)


async def money_of_clients(session: AsyncSession, actor: Actor, client_ids: list[str]
                           ) -> dict[str, list[tuple[str, Decimal]]]:
    """Per client, per currency: payments − refunds of the deals `actor` may see (two aggregate queries)."""
    if not client_ids:
        return {}
    sums: dict[str, dict[str, Decimal]] = {}
    for model, sign in ((Payment, 1), (Refund, -1)):
        query = (select(Deal.client_id, model.currency, func.sum(model.amount)).join(Deal, Deal.id == model.deal_id)
                 .where(access.visible_deals(actor), Deal.client_id.in_(client_ids))
                 .group_by(Deal.client_id, model.currency))
        for client_id, currency, amount in await session.execute(query):
            per = sums.setdefault(client_id, {})
            per[currency] = per.get(currency, Decimal(0)) + sign * Decimal(amount)
    return {cid: sorted((c, a.quantize(Decimal("0.01"))) for c, a in per.items()) for cid, per in sums.items()}


async def client_card(session: AsyncSession, actor: Actor, client_id: str) -> tuple[Client, list[DealRow]]:
    """The client and ALL the deals `actor` may see of it (newest first payment first); no visible
    deal → 404, as if the client did not exist."""
    client = await session.get(Client, client_id)
    rows = [] if client is None else (await session.execute(
        select(Deal).where(access.visible_deals(actor), Deal.client_id == client.id)
        .order_by(Deal.first_payment_at.desc(), Deal.id))).scalars().all()
    if client is None or not rows:
        raise NotFound("client not found")
    money = await money_of_deals(session, [deal.id for deal in rows])
    return client, [DealRow(deal, client.full_name, *money[deal.id]) for deal in rows]


def may_edit_card(actor: Actor, deals: list[Deal]) -> bool:
    """CL-1 through a deal: the actor may change one of the client's (visible) deals."""
    for deal in deals:
        try:
            access.require_deal_change(actor, deal)
        except Forbidden:
            continue
        return True
    return False
