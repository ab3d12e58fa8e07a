"""EN-4 check rounds (issue 12): twice a day, at 11:00 and 19:00 local (settings), the content manager of every
current client whose account is in "rounds" mode checks its comments and Direct — answers them or marks them
seen. Durable timers (DESIGN 5) make the rounds and judge them.

- `ROUND_TIMER` fires at each slot of each agency working day: it makes one `CheckRound` per current client in
  rounds mode (the manager from the clients events), then schedules the next slot.
- A round is **done** as soon as nothing of its account that was waiting at the round's time is left unanswered
  or unmarked (re-evaluated whenever a conversation of the account changes, and when the round is made: an
  account with nothing waiting is done at once); **missed** when still open at its due time — the round time
  plus `ENGAGEMENT_ROUND_GRACE_HOURS` working hours (default 1: "by the next working hour") — a stored deadline
  fact with `engagement.deadline.breached.v1` (rule EN-4) for payroll; done in time publishes `…met.v1`.

Choices where DOMAIN is silent: rounds run on the agency's working days (CAL-1) only; an account stops having
rounds the moment its deal is lost (an open round of it is waived, not missed); a manager changed mid-day owns
the rounds made after the change.
"""

from __future__ import annotations

import os
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from shared.calendar import BusinessCalendar
from shared.clock import Clock, as_utc
from shared.events.engagement import (
    EngagementDeadlineBreached,
    EngagementDeadlineMet,
    EngagementDeadlineWaived,
)
from shared.outbox import add_event
from shared.timers import schedule
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import rules
from engagement.models import Conversation
from engagement.quality_models import CareSettings, CheckRound, ClientAccount

ROUND_TIMER = "engagement.en4.round"
DUE_TIMER = "engagement.en4.due"
RULE = "EN-4"


def slots() -> list[time]:
    """`ENGAGEMENT_ROUND_TIMES` ("11:00,19:00" by default, seed 001)."""
    raw = os.environ.get("ENGAGEMENT_ROUND_TIMES", "11:00,19:00")
    return sorted(time.fromisoformat(part.strip()) for part in raw.split(",") if part.strip())


def grace_hours() -> float:
    return float(os.environ.get("ENGAGEMENT_ROUND_GRACE_HOURS", "1"))


def next_slot(calendar: BusinessCalendar, after: datetime) -> tuple[date, time, datetime]:
    """The first round slot strictly after `after` on an agency working day: (local day, slot, UTC instant)."""
    local = after.astimezone(calendar.tz)
    day = local.date()
    for _ in range(400):
        if calendar.is_working_day(day):
            for slot in slots():
                at = datetime.combine(day, slot, calendar.tz)
                if at > local:
                    return day, slot, as_utc(at)
        day += timedelta(days=1)
    raise ValueError("no working day within a year: check the agency calendar")


async def ensure_scheduled(session: AsyncSession, calendar: BusinessCalendar, clock: Clock) -> None:
    """Keep the next round's timer in place (called at start; the timer key makes it once per slot)."""
    day, slot, at = next_slot(calendar, clock.now() - timedelta(seconds=1))
    await schedule(session, kind=ROUND_TIMER, key=f"en4:round:{day.isoformat()}:{slot.strftime('%H:%M')}",
                   due_at=at, payload={"day": day.isoformat(), "slot": slot.strftime("%H:%M")}, clock=clock)


async def make_rounds(session: AsyncSession, calendar: BusinessCalendar, clock: Clock, day: date,
                      slot: str) -> int:
    """One round per current client account in rounds mode, then the next slot's timer."""
    round_at = as_utc(datetime.combine(day, time.fromisoformat(slot), calendar.tz))
    due_at = calendar.add_working_hours(round_at, grace_hours())
    rounds_mode = select(CareSettings.account).where(CareSettings.mode == "rounds")
    accounts = (await session.execute(select(ClientAccount).where(
        ClientAccount.current.is_(True), ClientAccount.deal_id.in_(rounds_mode)))).scalars().all()
    made = 0
    for account in accounts:
        exists = (await session.execute(select(CheckRound.id).where(
            CheckRound.deal_id == account.deal_id, CheckRound.day == day, CheckRound.slot == slot))).first()
        if exists:
            continue
        row = CheckRound(id=str(uuid.uuid4()), deal_id=account.deal_id, day=day, slot=slot, round_at=round_at,
                         due_at=due_at, manager=account.manager, state="open", left=0)
        session.add(row)
        await session.flush()
        await schedule(session, kind=DUE_TIMER, key=f"en4:due:{row.id}", due_at=due_at, payload={"round": row.id},
                       clock=clock)
        await _judge(session, row, clock.now(), clock)
        made += 1
    next_day, next_slot_time, at = next_slot(calendar, round_at)
    await schedule(session, kind=ROUND_TIMER, key=f"en4:round:{next_day.isoformat()}:{next_slot_time:%H:%M}",
                   due_at=at, payload={"day": next_day.isoformat(), "slot": f"{next_slot_time:%H:%M}"}, clock=clock)
    return made


async def waiting_count(session: AsyncSession, deal_id: str, round_at: datetime) -> int:
    """Conversations of the account with a customer waiting since before the round, neither answered nor seen."""
    return (await session.execute(select(func.count()).select_from(Conversation).where(
        Conversation.account == deal_id, Conversation.status != rules.RESOLVED,
        Conversation.clock_started_at.is_not(None), Conversation.clock_started_at <= round_at,
        or_(Conversation.seen_until.is_(None), Conversation.seen_until < Conversation.clock_started_at)))).scalar_one()


async def _judge(session: AsyncSession, row: CheckRound, now: datetime, clock: Clock) -> None:
    if row.state != "open":
        return
    row.left = await waiting_count(session, row.deal_id, as_utc(row.round_at))
    if row.left == 0:
        row.state, row.done_at = "done", now
        add_event(session, EngagementDeadlineMet(deadline_id=row.id, rule=RULE, owner=row.manager,
                                                 due_at=row.due_at, met_at=now, deal_id=row.deal_id), clock=clock)
    elif now >= as_utc(row.due_at):
        row.state = "missed"
        add_event(session, EngagementDeadlineBreached(deadline_id=row.id, rule=RULE, owner=row.manager,
                                                      due_at=row.due_at, deal_id=row.deal_id), clock=clock)


async def account_changed(session: AsyncSession, account: str, clock: Clock) -> None:
    """A conversation of `account` changed: its open rounds may be done now."""
    rows = (await session.execute(select(CheckRound).where(CheckRound.deal_id == account,
                                                           CheckRound.state == "open"))).scalars().all()
    for row in rows:
        await _judge(session, row, clock.now(), clock)


async def on_due(session: AsyncSession, round_id: str, clock: Clock) -> None:
    row = await session.get(CheckRound, round_id)
    if row is not None:
        await _judge(session, row, max(clock.now(), as_utc(row.due_at)), clock)


async def waive_open_rounds(session: AsyncSession, deal_id: str, reason: str, clock: Clock) -> None:
    for row in (await session.execute(select(CheckRound).where(CheckRound.deal_id == deal_id,
                                                               CheckRound.state == "open"))).scalars():
        row.state = "waived"
        add_event(session, EngagementDeadlineWaived(deadline_id=row.id, rule=RULE, owner=row.manager,
                                                    waived_by="system", reason=reason, due_at=row.due_at,
                                                    deal_id=deal_id), clock=clock)


def round_out(row: CheckRound, client_name: str = "") -> dict[str, Any]:
    return {"id": row.id, "deal_id": row.deal_id, "client_name": client_name, "manager": row.manager,
            "round": row.slot, "day": row.day.isoformat(), "round_at": row.round_at, "due_at": row.due_at,
            "state": row.state, "left": row.left, "done_at": row.done_at}


async def list_rounds(session: AsyncSession, day: date, manager: str | None) -> list[dict[str, Any]]:
    query = select(CheckRound, ClientAccount.client_name).join(
        ClientAccount, ClientAccount.deal_id == CheckRound.deal_id, isouter=True).where(CheckRound.day == day)
    if manager:
        query = query.where(CheckRound.manager == manager)
    rows = (await session.execute(query.order_by(CheckRound.slot, ClientAccount.client_name, CheckRound.deal_id)))
    return [round_out(r, name or "") for r, name in rows.all()]


async def mark_seen(session: AsyncSession, conversation: Conversation, clock: Clock) -> None:
    conversation.seen_until = clock.now()
    await session.flush()
    await account_changed(session, conversation.account, clock)
