"""Lists: deals and tasks with what list pages show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.auth import Actor
from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clients import access, rules
from clients.models import (
    Client,
    Deadline,
    Deal,
    Payment,
    Refund,
    Task,
)
from clients.schemas import (
    Page,
)

# ============================================================================ lists: deals and tasks with what list pages show

DEAL_SORTS = ("first_payment_at", "created_at", "stage", "client_name", "responsible_manager", "service_kind",
              "period_end", "lost_at")
DEAL_DEFAULT_SORT = "-first_payment_at"


@dataclass
class DealRow:
    """A deal with what a list shows next to it: the client's name and the money (rules.net_paid)."""

    deal: Deal
    client_name: str
    paid_total: Decimal
    currency: str | None


def ordered(column: Any, descending: bool, *, nullable: bool = False) -> list[Any]:
    """ORDER BY terms for one column; empty values last in both directions (portable NULLS LAST)."""
    terms = [case((column.is_(None), 1), else_=0)] if nullable else []
    return [*terms, column.desc() if descending else column.asc()]


def stage_order(column: Any, stages: tuple[str, ...]) -> Any:
    """Stages sort in pipeline order, not alphabetically."""
    return case({stage: i for i, stage in enumerate(stages)}, value=column, else_=len(stages))


async def money_of_deals(session: AsyncSession, deal_ids: list[str]) -> dict[str, tuple[Decimal, str | None]]:
    """paid_total and currency of many deals in two aggregate queries (not one per deal)."""
    if not deal_ids:
        return {}
    payments: dict[str, list[tuple[str, Decimal, datetime]]] = {}
    for deal_id, currency, amount, first_at in await session.execute(
            select(Payment.deal_id, Payment.currency, func.sum(Payment.amount), func.min(Payment.paid_at))
            .where(Payment.deal_id.in_(deal_ids)).group_by(Payment.deal_id, Payment.currency)):
        payments.setdefault(deal_id, []).append((currency, Decimal(amount), first_at))
    refunds: dict[str, list[tuple[str, Decimal]]] = {}
    for deal_id, currency, amount in await session.execute(
            select(Refund.deal_id, Refund.currency, func.sum(Refund.amount))
            .where(Refund.deal_id.in_(deal_ids)).group_by(Refund.deal_id, Refund.currency)):
        refunds.setdefault(deal_id, []).append((currency, Decimal(amount)))
    return {deal_id: rules.net_paid(payments.get(deal_id, []), refunds.get(deal_id, [])) for deal_id in deal_ids}


async def list_deals(session: AsyncSession, actor: Actor, page: Page, *, stage: str | None = None,
                     manager: str | None = None, service_kind: str | None = None) -> tuple[list[DealRow], int]:
    """The deals `actor` may see (filtered, counted and paged in the database), one page of them with
    their client's name and money, and how many there are in all. Ties are broken by id, so pages
    do not overlap."""
    where = [access.visible_deals(actor)]
    for column, value in ((Deal.stage, stage), (Deal.responsible_manager, manager),
                          (Deal.service_kind, service_kind)):
        if value:
            where.append(column == value)
    total = (await session.execute(select(func.count()).select_from(Deal).where(*where))).scalar_one()
    columns = {"first_payment_at": Deal.first_payment_at, "created_at": Deal.created_at,
               "stage": stage_order(Deal.stage, rules.STAGES), "client_name": Client.full_name,
               "responsible_manager": Deal.responsible_manager, "service_kind": Deal.service_kind,
               "period_end": Deal.period_end, "lost_at": Deal.lost_at}
    nullable = page.sort in ("responsible_manager", "period_end", "lost_at")
    query = (select(Deal, Client.full_name).join(Client, Client.id == Deal.client_id).where(*where)
             .order_by(*ordered(columns[page.sort], page.descending, nullable=nullable), Deal.id)
             .limit(page.limit).offset(page.offset))
    rows = (await session.execute(query)).all()
    money = await money_of_deals(session, [deal.id for deal, _name in rows])
    return [DealRow(deal, name, *money[deal.id]) for deal, name in rows], total


TASK_SORTS = DEADLINE_SORTS = ("due_at",)


async def list_tasks(session: AsyncSession, actor: Actor, page: Page, *, assignee: str | None,
                     status: str | None) -> tuple[list[tuple[Task, Deal, str]], int]:
    """Tasks of the deals `actor` may see, plus their own tasks, each with its deal and client name
    (one query), by due time (none last); one page of them and how many there are in all (issue 7 §7)."""
    where = [or_(access.visible_deals(actor), Task.assignee == actor.login)]
    if assignee:
        where.append(Task.assignee == assignee)
    if status:
        where.append(Task.status == status)
    total = (await session.execute(select(func.count()).select_from(Task).join(Deal, Deal.id == Task.deal_id)
                                   .where(*where))).scalar_one()
    query = (select(Task, Deal, Client.full_name).join(Deal, Deal.id == Task.deal_id)
             .join(Client, Client.id == Deal.client_id).where(*where)
             .order_by(*ordered(Task.due_at, page.descending, nullable=True), Task.created_at, Task.id)
             .limit(page.limit).offset(page.offset))
    return [(task, deal, name) for task, deal, name in (await session.execute(query)).all()], total


async def list_deadlines(session: AsyncSession, actor: Actor, page: Page, *, owner: str | None, rule: str | None,
                         state: str | None) -> tuple[list[Deadline], int]:
    """Deadlines of the deals `actor` may see (filtered in the database), by due time; one page of
    them and how many there are in all (issue 7 §7)."""
    where = [access.visible_deals(actor)]
    for column, value in ((Deadline.state, state), (Deadline.owner, owner), (Deadline.rule, rule)):
        if value:
            where.append(column == value)
    base = select(Deadline).join(Deal, Deal.id == Deadline.deal_id).where(*where)
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    query = (base.order_by(Deadline.due_at.desc() if page.descending else Deadline.due_at, Deadline.id)
             .limit(page.limit).offset(page.offset))
    return list((await session.execute(query)).scalars()), total
