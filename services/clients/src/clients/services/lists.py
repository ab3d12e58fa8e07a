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


def deal_filters(actor: Actor, *, stage: str | None = None, manager: str | None = None,
                 service_kind: str | None = None, q: str | None = None) -> list[Any]:
    """WHERE terms of a deal list: what `actor` may see, the filters given, and `q` — a part of the
    client's name, phone, Instagram or e-mail in any case (Client.search_text; a query naming a
    client joins `clients`)."""
    where = [access.visible_deals(actor)]
    for column, value in ((Deal.stage, stage), (Deal.responsible_manager, manager),
                          (Deal.service_kind, service_kind)):
        if value:
            where.append(column == value)
    if q and q.strip():
        where.append(Client.search_text.contains(q.strip().lower(), autoescape=True))
    return where


async def list_deals(session: AsyncSession, actor: Actor, page: Page, *, stage: str | None = None,
                     manager: str | None = None, service_kind: str | None = None,
                     q: str | None = None) -> tuple[list[DealRow], int]:
    """The deals `actor` may see (filtered, counted and paged in the database), one page of them with
    their client's name and money, and how many there are in all. Ties are broken by id, so pages
    do not overlap."""
    where = deal_filters(actor, stage=stage, manager=manager, service_kind=service_kind, q=q)
    total = (await session.execute(select(func.count()).select_from(Deal).join(Client, Client.id == Deal.client_id)
                                   .where(*where))).scalar_one()
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


# ============================================================================ the pipeline board (issue 9)

BOARD_SORT = {"lost": "-lost_at"}   # a column's order: the newest first payment; Lost: the most recently lost


@dataclass
class BoardColumn:
    stage: str
    count: int
    sums: list[tuple[str, Decimal]]   # (currency, payments − refunds) of every deal in the column
    rows: list[DealRow]


async def board(session: AsyncSession, actor: Actor, *, limit: int, manager: str | None = None,
                service_kind: str | None = None, q: str | None = None) -> tuple[list[BoardColumn], list[str]]:
    """Every stage's column of the deals `actor` may see (filtered): its count and money sums computed
    by aggregate queries over the whole column (never by loading its deals), and its first `limit`
    deals in the column's order (the rest are read with GET /deals?stage=…&offset=…). Also the
    responsible managers of the visible deals, for the board's filter.

    A column's sum is per currency: the payments minus the refunds of its deals, each in its own
    currency. (rules.net_paid counts a deal in the currency of its first payment and leaves out a
    payment in another; an agency bills a client in one currency, so the two agree.)"""
    where = deal_filters(actor, manager=manager, service_kind=service_kind, q=q)
    needs_client = bool(q and q.strip())

    def scoped(query: Any) -> Any:
        query = query.join(Client, Client.id == Deal.client_id) if needs_client else query
        return query.where(*where)

    counts = dict((await session.execute(scoped(select(Deal.stage, func.count()).select_from(Deal))
                                         .group_by(Deal.stage))).all())
    sums: dict[str, dict[str, Decimal]] = {}
    for model in (Payment, Refund):
        sign = 1 if model is Payment else -1
        query = scoped(select(Deal.stage, model.currency, func.sum(model.amount)).select_from(model)
                       .join(Deal, Deal.id == model.deal_id)).group_by(Deal.stage, model.currency)
        for stage, currency, amount in await session.execute(query):
            column = sums.setdefault(stage, {})
            column[currency] = column.get(currency, Decimal(0)) + sign * Decimal(amount)
    columns = []
    for stage in rules.STAGES:
        rows: list[DealRow] = []
        if counts.get(stage):
            sort = BOARD_SORT.get(stage, DEAL_DEFAULT_SORT)
            page = Page(limit=limit, offset=0, sort=sort.removeprefix("-"), descending=sort.startswith("-"))
            rows, _total = await list_deals(session, actor, page, stage=stage, manager=manager,
                                            service_kind=service_kind, q=q)
        columns.append(BoardColumn(stage, counts.get(stage, 0),
                                   sorted((c, a.quantize(Decimal("0.01"))) for c, a in sums.get(stage, {}).items()),
                                   rows))
    managers = [m for (m,) in await session.execute(
        select(Deal.responsible_manager).where(access.visible_deals(actor), Deal.responsible_manager.is_not(None))
        .distinct().order_by(Deal.responsible_manager))]
    return columns, managers
