"""Rule-set versions with the month they take effect from, the closed months, and the ledger lock.

A month's rules: a closed month keeps those it was closed with; an open month takes the newest version in
force. A new version from an open month re-prices that and later open months, never a closed one.
"""

from __future__ import annotations

import zlib
from typing import Any

from shared.clock import Clock
from shared.errors import Conflict
from sqlalchemy import and_, case, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from payroll.models import LedgerLine, MonthRun, RuleSet
from payroll.rules import (
    DEFAULT_AMOUNTS,
    DEFAULT_BEST_MANAGER_RULE,
    DEFAULT_DEADLINE_FINES,
    DEFAULT_EFFECTIVE_FROM,
    RuleBook,
    check_month,
    validate_rules,
)
from shared import messages as M


async def ensure_default_rules(session: AsyncSession, clock: Clock) -> None:
    if (await session.execute(select(RuleSet.id).limit(1))).first() is None:
        session.add(RuleSet(effective_from=DEFAULT_EFFECTIVE_FROM, currency="KZT", amounts=dict(DEFAULT_AMOUNTS),
                            deadline_fines=dict(DEFAULT_DEADLINE_FINES), default_fine="0",
                            best_manager_rule=list(DEFAULT_BEST_MANAGER_RULE), created_at=clock.now(),
                            created_by="defaults (DOMAIN.md)"))
        await session.flush()


async def closed_runs(session: AsyncSession) -> dict[str, MonthRun]:
    rows = (await session.execute(select(MonthRun))).scalars().all()
    return {r.month: r for r in rows}


async def is_closed(session: AsyncSession, month: str) -> bool:
    return (await session.get(MonthRun, month)) is not None


async def rule_book(session: AsyncSession, month: str) -> RuleBook:
    """The rules of a month: a closed month keeps those it was closed with; else the newest version in force."""
    run = await session.get(MonthRun, month)
    if run is not None:
        rs = await session.get(RuleSet, run.rule_set_id)
    else:
        rs = (await session.execute(
            select(RuleSet).where(RuleSet.effective_from <= month)
            .order_by(RuleSet.effective_from.desc(), RuleSet.id.desc()).limit(1))).scalar_one_or_none()
    if rs is None:
        raise M.error("month", M.RULES_NONE_IN_FORCE, month=month)
    return RuleBook.of(rs)


async def rules_history(session: AsyncSession) -> list[RuleSet]:
    return list((await session.execute(select(RuleSet).order_by(RuleSet.id))).scalars())


async def change_rules(session: AsyncSession, *, effective_from: str, changes: dict[str, Any], by: str,
                       clock: Clock) -> RuleBook:
    """A new rule-set version from an open month on; open months from then on are re-priced.

    Fields not given are taken from the version in force at `effective_from`. Closed months keep the
    version they were closed with; adjustment lines keep the prices of the month they adjust.
    """
    check_month(effective_from, "effective_from")
    await ledger_lock(session, exclusive=True)
    if await is_closed(session, effective_from):
        raise M.refusal(Conflict, "effective_from", M.RULES_MONTH_CLOSED, month=effective_from)
    base = await rule_book(session, effective_from)
    current = base.as_json()
    merged = validate_rules(
        changes.get("currency") or current["currency"],
        {**current["amounts"], **(changes.get("amounts") or {})},
        changes["deadline_fines"] if changes.get("deadline_fines") is not None else current["deadline_fines"],
        changes["default_fine"] if changes.get("default_fine") is not None else current["default_fine"],
        changes["best_manager_rule"] if changes.get("best_manager_rule") is not None else current["best_manager_rule"],
    )
    rs = RuleSet(effective_from=effective_from, created_at=clock.now(), created_by=by, **merged)
    session.add(rs)
    await session.flush()
    await reprice_open_months(session, since=effective_from)
    return RuleBook.of(rs)


async def reprice_open_months(session: AsyncSession, since: str) -> None:
    closed = set(await closed_runs(session))
    months = (await session.execute(
        select(LedgerLine.month).where(LedgerLine.month >= since).distinct())).scalars().all()
    for month in sorted(set(months) - closed):
        book = await rule_book(session, month)
        own = and_(LedgerLine.month == month, LedgerLine.adjusts_month.is_(None),
                   LedgerLine.corrects_line_id.is_(None))
        for rule in ("PAY-2", "PAY-3", "PAY-4", "PAY-5"):
            await session.execute(update(LedgerLine).where(own, LedgerLine.rule == rule)
                                  .values(amount_minor=book.amount(rule), currency=book.currency))
        fine = case(*((LedgerLine.deadline_rule == r, v) for r, v in book.deadline_fines.items()),
                    else_=book.default_fine) if book.deadline_fines else book.default_fine
        await session.execute(update(LedgerLine).where(own, LedgerLine.rule == "PAY-6")
                              .values(amount_minor=fine, currency=book.currency))


# ---------------------------------------------------------------- concurrency

LEDGER_LOCK = zlib.crc32(b"zabota-payroll-ledger")


async def ledger_lock(session: AsyncSession, exclusive: bool) -> None:
    """On PostgreSQL: facts take the ledger lock shared; closing, re-pricing and rebuilding take it exclusive,
    so no fact slips into a month while it is being closed. SQLite serialises writers already."""
    if session.bind.dialect.name == "postgresql":
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await session.execute(text(f"SELECT {fn}(:k)"), {"k": LEDGER_LOCK})
