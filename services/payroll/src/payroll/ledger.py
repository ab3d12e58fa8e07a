"""Facts → ledger lines (PAY-2…PAY-6) and their retractions (PAY-8), as the NATS handlers apply them.

- `record_fact` prices a fact with its own month's rules and writes its line once: the event's
  (source, rule, manager) is unique, and so is the fact's `key` (PAY-4 once per deal however many refunds,
  PAY-5 once per deal, PAY-2 once per deal and period, PAY-3 once per deal and period).
- `void_fact` retracts a line: a loss undone (PAY-3), a deadline waived or met after all (PAY-6), a client
  refunded inside the window after it ended (PAY-5). In an open month the line leaves the statement; in a
  closed month a reversing adjustment goes to the next open month, once per line.
- `record_deadline_outcome` keeps the outcome for PAY-7's compliance: waived > met > breached, whatever
  the order the events arrive in (a met recorded late is authoritative over the timer's breach).
- `track_deal` / `deal_lost` / `deal_reopened` / `record_period`: which manager has which deal (PAY-7
  candidates) and the deal's renewal periods (PAY-3's key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from shared.clock import Clock, as_utc
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from payroll.models import DeadlineOutcome, DealManager, DealPeriod, LedgerLine, Void
from payroll.rule_sets import closed_runs, ledger_lock, rule_book
from payroll.rules import month_of, next_month


async def placement(session: AsyncSession, month: str) -> tuple[str, str | None]:
    """(month the line goes to, month it adjusts): a fact of a closed month goes to the next open month."""
    closed = set(await closed_runs(session))
    if month not in closed:
        return month, None
    target = next_month(month)
    while target in closed:
        target = next_month(target)
    return target, month


@dataclass
class Fact:
    manager: str
    rule: str
    occurred_at: datetime
    event_id: str
    deal_id: str | None = None
    trace_id: str | None = None
    note: str = ""
    deadline_id: str | None = None
    deadline_rule: str | None = None
    key: str | None = None  # what the line counts once ("PAY-4:<deal>"); None = once per event


async def record_fact(session: AsyncSession, fact: Fact, tz: ZoneInfo, clock: Clock) -> LedgerLine | None:
    """Turn one fact into its ledger line, once per event and once per `fact.key`."""
    await ledger_lock(session, exclusive=False)
    same = (LedgerLine.source_event_id == fact.event_id) & (LedgerLine.rule == fact.rule) & \
        (LedgerLine.manager == fact.manager)
    if fact.key is not None:
        same = or_(same, LedgerLine.fact_key == fact.key)
    if (await session.execute(select(LedgerLine.id).where(same).limit(1))).first() is not None:
        return None
    if await _voided(session, fact):
        return None  # undone before it arrived (a late loss after its undo; a waived deadline; a refund)
    fact_month = month_of(fact.occurred_at, tz)
    book = await rule_book(session, fact_month)  # a fact is priced by its own month's rules
    month, adjusts = await placement(session, fact_month)
    note = fact.note if adjusts is None else f"adjustment for {adjusts} (closed): {fact.note}"
    line = LedgerLine(manager=fact.manager, month=month, rule=fact.rule,
                      amount_minor=book.amount(fact.rule, fact.deadline_rule), currency=book.currency,
                      source_event_id=fact.event_id, deal_id=fact.deal_id, deadline_id=fact.deadline_id,
                      deadline_rule=fact.deadline_rule, occurred_at=fact.occurred_at, trace_id=fact.trace_id,
                      note=note, adjusts_month=adjusts, fact_key=fact.key, created_at=clock.now())
    session.add(line)
    await session.flush()
    return line


def void_targets(fact: Fact) -> list[str]:
    targets = [f"event:{fact.event_id}"]
    if fact.deadline_id:
        targets.append(f"deadline:{fact.deadline_id}")
    if fact.rule == "PAY-5" and fact.deal_id:
        targets.append(f"PAY-5:{fact.deal_id}")
    return targets


async def _voided(session: AsyncSession, fact: Fact) -> bool:
    return (await session.execute(select(Void.target).where(Void.target.in_(void_targets(fact))))).first() is not None


async def void_fact(session: AsyncSession, *, target: str, rule: str, void_event_id: str, occurred_at: datetime,
                    trace_id: str | None, note: str, clock: Clock, remember: bool = True) -> int:
    """Retract the line(s) of a fact; returns how many lines were retracted now.

    `target`: "event:<id>" (that event's line), "deadline:<id>" (the deadline's fine), "PAY-5:<deal>" (the
    deal's not-refunded bonus). In an open month the line leaves the statement (kept with
    `voided_by_event_id`, its key given back); in a closed month it stays and one reversing adjustment goes
    to the next open month, pointing at it (PAY-8) — never two, whichever retraction comes first.
    `remember` keeps the retraction so that the fact, arriving later, never makes a line.
    """
    await ledger_lock(session, exclusive=False)
    if remember and await session.get(Void, target) is None:
        session.add(Void(target=target, void_event_id=void_event_id, occurred_at=occurred_at))
    kind, _, key = target.partition(":")
    match = {"event": LedgerLine.source_event_id == key, "deadline": LedgerLine.deadline_id == key,
             "PAY-5": LedgerLine.deal_id == key}[kind]
    lines = (await session.execute(select(LedgerLine).where(
        match, LedgerLine.rule == rule, LedgerLine.corrects_line_id.is_(None),
        LedgerLine.voided_by_event_id.is_(None)).order_by(LedgerLine.id))).scalars().all()
    closed = set(await closed_runs(session))
    done = 0
    for line in lines:
        if line.month not in closed:
            line.voided_by_event_id, line.fact_key = void_event_id, None
            done += 1
            continue
        reversed_already = (await session.execute(select(LedgerLine.id).where(
            LedgerLine.corrects_line_id == line.id).limit(1))).first()
        if reversed_already is not None:
            continue
        month, _ = await placement(session, line.month)
        session.add(LedgerLine(
            manager=line.manager, month=month, rule=rule, amount_minor=-line.amount_minor, currency=line.currency,
            source_event_id=void_event_id, deal_id=line.deal_id, deadline_id=line.deadline_id,
            deadline_rule=line.deadline_rule, occurred_at=occurred_at, trace_id=trace_id,
            note=f"adjustment for {line.month} (closed): reverses line {line.id} — {note}",
            adjusts_month=line.month, corrects_line_id=line.id, created_at=clock.now()))
        done += 1
    await session.flush()
    return done


# waived > met > breached: a waiver ends every question; a met deadline (even recorded after the timer's
# breach) is met; a breach never overrides either.
OUTCOME_RANK = {"breached": 0, "met": 1, "waived": 2}


async def record_deadline_outcome(session: AsyncSession, *, deadline_id: str, owner: str, rule: str,
                                  due_at: datetime, outcome: str, event_id: str, tz: ZoneInfo) -> str:
    """A deadline's outcome for PAY-7 (month of its due time); returns the outcome that stands."""
    row = await session.get(DeadlineOutcome, deadline_id)
    month = month_of(due_at, tz)
    if row is None:
        session.add(DeadlineOutcome(deadline_id=deadline_id, owner=owner, rule=rule, month=month,
                                    outcome=outcome, event_id=event_id))
        await session.flush()
        return outcome
    if OUTCOME_RANK[outcome] > OUTCOME_RANK[row.outcome]:
        row.outcome, row.event_id = outcome, event_id
    return row.outcome


# ---------------------------------------------------------------- deals: manager, loss, periods


async def track_deal(session: AsyncSession, deal_id: str | None, manager: str, at: datetime) -> DealManager | None:
    """The deal's responsible manager: the one named by the latest fact (by the fact's own time)."""
    if not deal_id or not manager:
        return None
    row = await session.get(DealManager, deal_id)
    if row is None:
        row = DealManager(deal_id=deal_id, manager=manager, since=at, manager_at=at, lost_at=None)
        session.add(row)
        await session.flush()
        return row
    if at < as_utc(row.since):
        row.since = at
    if at >= as_utc(row.manager_at):
        row.manager, row.manager_at = manager, at
    return row


async def deal_lost(session: AsyncSession, deal_id: str | None, manager: str, at: datetime) -> None:
    row = await track_deal(session, deal_id, manager, at)
    if row is not None:
        row.lost_at = at


async def deal_reopened(session: AsyncSession, deal_id: str | None) -> None:
    """A loss undone, or a renewal after a loss: the deal is the manager's again."""
    row = await session.get(DealManager, deal_id) if deal_id else None
    if row is not None:
        row.lost_at = None


async def record_period(session: AsyncSession, deal_id: str | None, period_start: datetime, event_id: str) -> None:
    if not deal_id:
        return
    if await session.get(DealPeriod, (deal_id, period_start)) is None:
        session.add(DealPeriod(deal_id=deal_id, period_start=period_start, event_id=event_id))
        await session.flush()


async def period_key(session: AsyncSession, deal_id: str, at: datetime) -> str:
    """The deal's service period at `at`: the start of its latest renewal period by then, or "first"."""
    start = (await session.execute(select(DealPeriod.period_start).where(
        DealPeriod.deal_id == deal_id, DealPeriod.period_start <= at)
        .order_by(DealPeriod.period_start.desc()).limit(1))).scalar_one_or_none()
    return "first" if start is None else as_utc(start).isoformat()


async def has_lines(session: AsyncSession, *, deadline_id: str, rule: str) -> bool:
    return (await session.execute(select(LedgerLine.id).where(
        LedgerLine.deadline_id == deadline_id, LedgerLine.rule == rule).limit(1))).first() is not None
