"""Issue 7 §2: a timer handler whose aggregate another transaction holds raises `timers.Busy`; the
scheduler leaves the timer as it was (no attempt counted, no error kept, its effects undone) and
does not spin on it; a later round fires it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.clock import FixedClock
from shared.db import Database
from shared.infra import Timer
from shared.timers import Busy, Scheduler, schedule
from sqlalchemy import select

from .conftest import Effect, count_effects

T0 = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)


async def test_busy_timer_is_left_for_a_later_round_without_counting_a_failure(db: Database) -> None:
    clock = FixedClock(T0)
    busy = {"now": True}

    async def handler(session, timer: Timer) -> None:
        session.add(Effect(seq=timer.payload["seq"], event_id=timer.key))
        if busy["now"]:
            raise Busy("the deal is held by a request")

    async with db.transaction() as session:
        await schedule(session, kind="probe", key="held", due_at=T0 - timedelta(minutes=1), payload={"seq": 1},
                       clock=clock)
        await schedule(session, kind="ok", key="free", due_at=T0 - timedelta(minutes=1), payload={"seq": 2},
                       clock=clock)

    async def ok(session, timer: Timer) -> None:
        session.add(Effect(seq=timer.payload["seq"], event_id=timer.key))

    scheduler = Scheduler(db, {"probe": handler, "ok": ok}, clock=clock)
    assert await scheduler.run_due() == 1  # the free one fired; the busy one does not make it spin
    async with db.transaction() as session:
        held = (await session.execute(select(Timer).where(Timer.key == "held"))).scalar_one()
        assert held.fired_at is None and held.attempts == 0 and held.last_error is None
        assert held.due_at == T0 - timedelta(minutes=1)
    assert (await count_effects(db))[0] == 1  # the busy handler's effect was undone
    busy["now"] = False
    assert await scheduler.run_due() == 1
    assert (await count_effects(db))[0] == 2
