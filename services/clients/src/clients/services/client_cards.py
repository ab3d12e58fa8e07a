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
from shared.clock import as_utc
from shared.db import UTCDateTime
from shared.errors import Forbidden, NotFound
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clients import access
from clients.models import Client, Deal
from clients.schemas import Page
from clients.services.lists import DealRow, ordered, text_contains
from shared import messages as M

CLIENT_SORTS = ("full_name", "deals", "paid", "last_activity")
CLIENT_DEFAULT_SORT = "full_name"
DEAL_FACTS = ("contacted_at", "questionnaire_received_at", "first_post_at", "launched_at", "period_start",
              "notification_sent_at", "lost_at", "last_paid_at")


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
    deals (count), paid (the deals' paid_total, all currencies together — an agency bills in one),
    last_activity (the latest payment or stage fact of the visible deals); ties by id. One aggregate
    over the visible deals' own columns (kept by refresh_money), never over every payment."""
    dialect = session.bind.dialect.name
    visible = [access.visible_deals(actor)]
    if q and q.strip():   # the matching clients first (one pass over their search text), then their deals
        visible.append(Deal.client_id.in_(select(Client.id).where(text_contains(Client.search_text, q))))

    def over_deals(query: Any) -> Any:
        return query.where(*visible)

    total = (await session.execute(over_deals(select(func.count(func.distinct(Deal.client_id))).select_from(Deal))
                                   )).scalar_one()
    activity = func.max(deal_activity(dialect))
    per_client = (over_deals(select(Deal.client_id.label("client_id"), func.count(Deal.id).label("deals"),
                                    func.sum(Deal.paid_total).label("paid"), activity.label("activity"))
                             .select_from(Deal)).group_by(Deal.client_id).subquery())
    columns = {"full_name": Client.full_name, "deals": per_client.c.deals, "paid": per_client.c.paid,
               "last_activity": per_client.c.activity}
    query = (select(Client, per_client.c.deals, per_client.c.activity)
             .join(per_client, per_client.c.client_id == Client.id)
             .order_by(*ordered(columns[page.sort], page.descending), Client.id)
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
    """Per client, per currency: the paid_total of the deals `actor` may see (one aggregate query)."""
    if not client_ids:
        return {}
    sums: dict[str, list[tuple[str, Decimal]]] = {}
    query = (select(Deal.client_id, Deal.currency, func.sum(Deal.paid_total))
             .where(access.visible_deals(actor), Deal.client_id.in_(client_ids), Deal.currency.is_not(None))
             .group_by(Deal.client_id, Deal.currency).order_by(Deal.client_id, Deal.currency))
    for client_id, currency, amount in await session.execute(query):
        sums.setdefault(client_id, []).append((currency, Decimal(amount or 0).quantize(Decimal("0.01"))))
    return sums


async def client_card(session: AsyncSession, actor: Actor, client_id: str) -> tuple[Client, list[DealRow]]:
    """The client and ALL the deals `actor` may see of it (newest first payment first); no visible
    deal → 404, as if the client did not exist."""
    client = await session.get(Client, client_id)
    rows = [] if client is None else (await session.execute(
        select(Deal).where(access.visible_deals(actor), Deal.client_id == client.id)
        .order_by(Deal.first_payment_at.desc(), Deal.id))).scalars().all()
    if client is None or not rows:
        raise M.refusal(NotFound, None, M.CLIENT_NOT_FOUND)
    return client, [DealRow(deal, client.full_name, deal.paid_total, deal.currency) for deal in rows]


def may_edit_card(actor: Actor, deals: list[Deal]) -> bool:
    """CL-1 through a deal: the actor may change one of the client's (visible) deals."""
    for deal in deals:
        try:
            access.require_deal_change(actor, deal)
        except Forbidden:
            continue
        return True
    return False
