"""Durable timers (DESIGN 5): a timer already due fires at once; pending timers survive a restart."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from shared.clock import FixedClock, SystemClock
from shared.db import Database
from shared.infra import Timer
from shared.testing import eventually
from shared.timers import Scheduler, cancel, schedule
from sqlalchemy import select

from .conftest import Effect, count_effects

T0 = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)


async def effect_handler(session, timer: Timer) -> None:
    session.add(Effect(seq=timer.payload["seq"], event_id=timer.key))


async def test_timer_due_in_the_past_fires_at_once(db: Database) -> None:
    scheduler = Scheduler(db, {"probe": effect_handler}, clock=SystemClock(), poll_seconds=3600)
    loop = asyncio.create_task(scheduler.run())
    try:
        async with db.transaction() as session:
            # A backdated fact: its deadline passed before we even heard of it.
            await schedule(session, kind="probe", key="late", due_at=SystemClock().now() - timedelta(days=45),
                           payload={"seq": 1})
        # The poll interval is an hour: only the commit's wake-up can fire it.
        await eventually(lambda: _effects(db, 1), message="the past-due timer fired")
    finally:
        scheduler.stop()
        loop.cancel()
        with suppress(asyncio.CancelledError):
            await loop


async def _effects(db: Database, n: int) -> bool:
    return (await count_effects(db))[0] == n


async def test_pending_timers_survive_a_restart(database_url: str) -> None:
    from .conftest import create_tables

    clock = FixedClock(T0)
    first = Database(database_url)
    await create_tables(first)
    async with first.transaction() as session:
        await schedule(session, kind="probe", key="tomorrow", due_at=T0 + timedelta(days=1), payload={"seq": 2},
                       clock=clock)
    assert await Scheduler(first, {"probe": effect_handler}, clock=clock).run_due() == 0
    await first.dispose()  # the service stops

    second = Database(database_url)  # a new process, the same database
    clock.advance(timedelta(days=1, seconds=1))
    assert await Scheduler(second, {"probe": effect_handler}, clock=clock).run_due() == 1
    assert await count_effects(second) == (1, 1)
    async with second.transaction() as session:
        timer = (await session.execute(select(Timer))).scalar_one()
        assert timer.fired_at == clock.now()
    await second.dispose()


async def test_scheduling_the_same_key_twice_schedules_once_and_cancel_stops_it(db: Database) -> None:
    clock = FixedClock(T0)
    async with db.transaction() as session:
        first = await schedule(session, kind="probe", key="k", due_at=T0, payload={"seq": 1}, clock=clock)
        again = await schedule(session, kind="probe", key="k", due_at=T0 + timedelta(hours=1), clock=clock)
        assert again.id == first.id
        await schedule(session, kind="probe", key="cancelled", due_at=T0, payload={"seq": 9}, clock=clock)
        assert await cancel(session, "cancelled", clock=clock)
    assert await Scheduler(db, {"probe": effect_handler}, clock=clock).run_due() == 1
    assert await count_effects(db) == (1, 1)


async def test_failing_timer_is_retried_later_and_keeps_its_error(db: Database) -> None:
    clock = FixedClock(T0)
    calls = []

    async def flaky(session, timer: Timer) -> None:
        calls.append(timer.key)
        session.add(Effect(seq=len(calls), event_id=timer.key))
        if len(calls) == 1:
            raise RuntimeError("remote down")

    async with db.transaction() as session:
        await schedule(session, kind="flaky", key="f", due_at=T0, clock=clock)
    scheduler = Scheduler(db, {"flaky": flaky}, clock=clock)
    assert await scheduler.run_due() == 1
    assert await count_effects(db) == (0, 0)  # the failed attempt's effects were rolled back
    async with db.transaction() as session:
        timer = (await session.execute(select(Timer))).scalar_one()
        assert timer.fired_at is None and timer.attempts == 1 and "remote down" in timer.last_error
    clock.advance(timedelta(minutes=5))
    assert await scheduler.run_due() == 1
    assert await count_effects(db) == (1, 1)


async def test_a_wake_up_that_arrives_during_a_round_is_not_lost() -> None:
    """A commit that wakes the scheduler (or relay) while it is busy must cut its next sleep short."""
    from shared.loop import WakeableLoop

    loop = WakeableLoop(poll_seconds=3600)
    loop.wake()  # arrives while a round of work runs
    await asyncio.wait_for(loop.nap(), 5)  # so the nap after that round returns at once
    assert not loop._wake.is_set()
