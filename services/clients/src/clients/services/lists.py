"""Lists: deals and tasks with what list pages show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.auth import Actor
from sqlalchemy import Boolean, Text, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

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
    client's name, phone, Instagram or e-mail in any case (Client.search_text)."""
    where = [access.visible_deals(actor)]
    for column, value in ((Deal.stage, stage), (Deal.responsible_manager, manager),
                          (Deal.service_kind, service_kind)):
        if value:
            where.append(column == value)
    if q and q.strip():   # the matching clients first (one pass over their search text), then their deals
        where.append(Deal.client_id.in_(select(Client.id).where(text_contains(Client.search_text, q))))
    return where


async def refresh_money(session: AsyncSession, deal: Deal) -> None:
    """Keep the deal's own money columns (paid_total, currency, last_paid_at) equal to what its payments
    and refunds say (rules.net_paid): called after every payment and refund is written, so lists and
    the board sum and sort by them without reading payments (issue 9)."""
    await session.flush()
    deal.paid_total, deal.currency = (await money_of_deals(session, [deal.id]))[deal.id]
    deal.last_paid_at = (await session.execute(select(func.max(Payment.paid_at))
                                               .where(Payment.deal_id == deal.id))).scalar_one()


class text_contains(FunctionElement):  # noqa: N801 (an SQL construct, named as one)
    """`text_contains(column, q)`: `q` is a part of `column` (both lower-cased by the application, as search
    texts are): `instr(column, q) > 0` on SQLite, `strpos(column, q) > 0` on PostgreSQL — a plain substring
    test, no LIKE pattern to escape (SQLite's LIKE … ESCAPE is slow on long Unicode text)."""

    type = Boolean()
    name = "text_contains"
    inherit_cache = True

    def __init__(self, column: Any, q: str) -> None:
        super().__init__(column, literal(q.strip().lower(), Text()))


@compiles(text_contains)
def _text_contains(element: text_contains, compiler: Any, **kw: Any) -> str:
    column, needle = list(element.clauses)
    return f"strpos({compiler.process(column, **kw)}, {compiler.process(needle, **kw)}) > 0"


@compiles(text_contains, "sqlite")
def _text_contains_sqlite(element: text_contains, compiler: Any, **kw: Any) -> str:
    column, needle = list(element.clauses)
    return f"instr({compiler.process(column, **kw)}, {compiler.process(needle, **kw)}) > 0"


async def list_deals(session: AsyncSession, actor: Actor, page: Page, *, stage: str | None = None,
                     manager: str | None = None, service_kind: str | None = None,
                     q: str | None = None, ids: list[str] | None = None) -> tuple[list[DealRow], int]:
    """The deals `actor` may see (filtered, counted and paged in the database), one page of them with
    their client's name and money, and how many there are in all. Ties are broken by id, so pages
    do not overlap."""
    where = deal_filters(actor, stage=stage, manager=manager, service_kind=service_kind, q=q)
    if ids:
        where.append(Deal.id.in_(ids))
    total = (await session.execute(select(func.count()).select_from(Deal).where(*where))).scalar_one()
    # One stage by its board order ("show 50 more" under a column): the same order as GET /board's first page.
    board = bool(stage) and page.sort in ("first_payment_at", "lost_at") and page.descending
    return await deal_page(session, where, page, board=board), total


async def deal_page(session: AsyncSession, where: list[Any], page: Page, *, board: bool = False) -> list[DealRow]:
    """One page of deals under `where`, each with its client's name and its own money columns (kept by
    refresh_money). Ties are broken by id, so pages do not overlap. `board`: a column of one stage, whose
    sort field is never empty there, ordered (field, id) in one direction — an index walk on
    deals(stage, first_payment_at, id) / deals(stage, lost_at, id), not a sort of the whole column."""
    columns = {"first_payment_at": Deal.first_payment_at, "created_at": Deal.created_at,
               "stage": stage_order(Deal.stage, rules.STAGES), "client_name": Client.full_name,
               "responsible_manager": Deal.responsible_manager, "service_kind": Deal.service_kind,
               "period_end": Deal.period_end, "lost_at": Deal.lost_at}
    nullable = page.sort in ("responsible_manager", "period_end", "lost_at") and not board
    tie = Deal.id.desc() if board and page.descending else Deal.id
    query = (select(Deal, Client.full_name).join(Client, Client.id == Deal.client_id).where(*where)
             .order_by(*ordered(columns[page.sort], page.descending, nullable=nullable), tie)
             .limit(page.limit).offset(page.offset))
    return [DealRow(deal, name, deal.paid_total, deal.currency) for deal, name in (await session.execute(query)).all()]


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


async def searched_firsts(session: AsyncSession, where: list[Any], limit: int) -> dict[str, list[DealRow]]:
    """A searched board's first `limit` deals of every column in one query (ROW_NUMBER per stage over the
    few matching deals): walking each column's index for rare matches would read the whole column."""
    key = case((Deal.stage == "lost", Deal.lost_at), else_=Deal.first_payment_at)
    numbered = (select(Deal.id.label("id"), func.row_number().over(partition_by=Deal.stage,
                                                                    order_by=(key.desc(), Deal.id.desc())).label("n"))
                .where(*where).subquery())
    query = (select(Deal, Client.full_name).join(numbered, numbered.c.id == Deal.id)
             .join(Client, Client.id == Deal.client_id).where(numbered.c.n <= limit)
             .order_by(Deal.stage, numbered.c.n))
    firsts: dict[str, list[DealRow]] = {}
    for deal, name in (await session.execute(query)).all():
        firsts.setdefault(deal.stage, []).append(DealRow(deal, name, deal.paid_total, deal.currency))
    return firsts


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

    A column's sum is per currency: the deals' own paid_total (rules.net_paid: payments minus refunds in
    the currency of the first payment, kept by refresh_money) summed by that currency."""
    where = deal_filters(actor, manager=manager, service_kind=service_kind, q=q)
    figures = select(Deal.stage, Deal.currency, func.count(), func.sum(Deal.paid_total)).select_from(Deal)
    counts: dict[str, int] = {}
    sums: dict[str, list[tuple[str, Decimal]]] = {}
    # One aggregate over the filtered deals: count and money per (stage, currency).
    for stage, currency, n, amount in await session.execute(figures.where(*where).group_by(Deal.stage, Deal.currency)):
        counts[stage] = counts.get(stage, 0) + n
        if currency:
            sums.setdefault(stage, []).append((currency, Decimal(amount or 0).quantize(Decimal("0.01"))))
    firsts = await searched_firsts(session, where, limit) if q and q.strip() else None
    columns = []
    for stage in rules.STAGES:
        rows: list[DealRow] = []
        if firsts is not None:
            rows = firsts.get(stage, [])
        elif counts.get(stage):
            sort = BOARD_SORT.get(stage, DEAL_DEFAULT_SORT)
            page = Page(limit=limit, offset=0, sort=sort.removeprefix("-"), descending=sort.startswith("-"))
            rows = await deal_page(session, [*where, Deal.stage == stage], page, board=True)
        columns.append(BoardColumn(stage, counts.get(stage, 0), sorted(sums.get(stage, [])), rows))
    managers = [m for (m,) in await session.execute(
        select(Deal.responsible_manager).where(access.visible_deals(actor), Deal.responsible_manager.is_not(None))
        .distinct().order_by(Deal.responsible_manager))]
    return columns, managers
