"""Durable timers (DESIGN 5): every deadline, reminder and scheduled push is a row with a due time.

`schedule` writes a timer inside the domain transaction (with the trace context of that moment, so
the timer's work continues the client's trace). The `Scheduler` fires due rows — claimed with
FOR UPDATE SKIP LOCKED on PostgreSQL — each in a savepoint with its handler's effects, and survives
restarts because the rows are the state. A timer due already when it is written fires at once: the
commit wakes the scheduler. A failing handler is retried with back-off; its error is kept on the row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import Clock, SystemClock
from shared.db import Database, skip_locked
from shared.infra import Timer
from shared.loop import WakeableLoop
from shared.telemetry import continue_trace, inject_headers

log = logging.getLogger(__name__)
TIMER_FLAG = "zabota.timers"
TimerHandler = Callable[[AsyncSession, Timer], Awaitable[None]]


class Busy(Exception):  # noqa: N818 - a state, not an error
    """Raised by a handler whose aggregate another transaction holds (it locks it NOWAIT / SKIP LOCKED,
    never waiting: the scheduler holds timer rows, and a request holding the aggregate waits for them).
    The scheduler leaves the timer as it was — no attempt counted, no error kept — for that writer,
    which fires the aggregate's due timers itself, or for a later round."""


async def schedule(session: AsyncSession, *, kind: str, key: str, due_at: datetime,
                   payload: dict[str, Any] | None = None, clock: Clock | None = None) -> Timer:
    """Schedule once per `key`: scheduling the same key again returns the existing timer."""
    existing = (await session.execute(select(Timer).where(Timer.key == key))).scalar_one_or_none()
    if existing is not None:
        return existing
    timer = Timer(kind=kind, key=key, due_at=due_at, payload=payload or {}, headers=inject_headers(),
                  created_at=(clock or SystemClock()).now(), attempts=0)
    try:
        async with session.begin_nested():
            session.add(timer)
    except IntegrityError:  # a concurrent transaction scheduled the same key first
        return (await session.execute(select(Timer).where(Timer.key == key))).scalar_one()
    session.info[TIMER_FLAG] = True
    return timer


async def schedule_many(session: AsyncSession, timers: list[tuple[str, str, datetime, dict[str, Any]]],
                        clock: Clock | None = None) -> None:
    """`schedule` for many (kind, key, due_at, payload) at once: one read of the keys that exist, one
    multi-row INSERT … ON CONFLICT (key) DO NOTHING of the others (a key a concurrent transaction wrote
    meanwhile is kept as it is, as `schedule` keeps it)."""
    wanted: dict[str, tuple[str, str, datetime, dict[str, Any]]] = {}
    for timer in timers:
        wanted.setdefault(timer[1], timer)
    if not wanted:
        return
    have = set((await session.execute(select(Timer.key).where(Timer.key.in_(list(wanted))))).scalars())
    rows = [{"kind": kind, "key": key, "due_at": due_at, "payload": payload or {}, "headers": inject_headers(),
             "created_at": (clock or SystemClock()).now(), "attempts": 0}
            for key, (kind, _, due_at, payload) in wanted.items() if key not in have]
    if not rows:
        return
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    await session.execute(insert(Timer).values(rows).on_conflict_do_nothing(index_elements=["key"]))
    session.info[TIMER_FLAG] = True


async def cancel(session: AsyncSession, key: str, clock: Clock | None = None) -> bool:
    """Cancel a pending timer; returns whether one was pending."""
    result = await session.execute(
        update(Timer).where(Timer.key == key, Timer.fired_at.is_(None), Timer.cancelled_at.is_(None))
        .values(cancelled_at=(clock or SystemClock()).now())
    )
    return result.rowcount > 0


class Scheduler(WakeableLoop):
    def __init__(self, db: Database, handlers: Mapping[str, TimerHandler], *, clock: Clock | None = None,
                 batch: int = 100, poll_seconds: float = 1.0) -> None:
        super().__init__(poll_seconds)
        self.db = db
        self.handlers = dict(handlers)
        self.clock = clock or SystemClock()
        self.batch = batch
        db.on_commit(TIMER_FLAG, self.wake)

    async def fire_batch(self) -> int:
        """Fire up to `batch` due timers; returns how many were attempted (a timer left because its
        aggregate is busy — `Busy` — is not counted, so `run_due` does not spin on it)."""
        now = self.clock.now()
        attempted = 0
        async with self.db.transaction() as session:
            query = (select(Timer)
                     .where(Timer.fired_at.is_(None), Timer.cancelled_at.is_(None), Timer.due_at <= now)
                     .order_by(Timer.due_at, Timer.id).limit(self.batch))
            timers = (await session.execute(skip_locked(query, self.db))).scalars().all()
            for timer in timers:
                attempted += await self._fire(session, timer, now)
        return attempted

    async def run_due(self) -> int:
        """Fire everything due now (timers that a handler schedules as already due included)."""
        total = 0
        while (n := await self.fire_batch()) > 0:
            total += n
        return total

    async def _fire(self, session: AsyncSession, timer: Timer, now: datetime) -> bool:
        handler = self.handlers.get(timer.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for timer kind {timer.kind}")
            with continue_trace(timer.headers, f"timer {timer.kind}", attributes={"zabota.timer": timer.key}):
                async with session.begin_nested():
                    await handler(session, timer)
            timer.fired_at = now
        except Busy as exc:
            log.debug("timer %s (%s) left for later: %s", timer.key, timer.kind, exc)
            return False
        except Exception as exc:
            # The savepoint undid the handler's effects; keep the timer and try again later.
            timer.attempts += 1
            timer.last_error = f"{type(exc).__name__}: {exc}"[:4000]
            timer.due_at = now + timedelta(seconds=min(2 ** timer.attempts, 3600))
            log.warning("timer %s (%s) failed, attempt %d: %s", timer.key, timer.kind, timer.attempts, exc)
        return True

    async def run(self) -> None:
        """Fire due timers until stopped. A round that fails as a whole (the database away) is logged once
        when the failures start, not every round, and retried with back-off (issue 7 §3); the service's
        supervisor reports the loop's state and restarts it should it ever end."""
        failing = False
        backoff = self.poll_seconds
        while not self._stopping:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    log.warning("scheduler: %s: %s; retrying until it passes", type(exc).__name__, exc)
                failing = True
                await asyncio.sleep(min(backoff, 10.0))
                backoff *= 2
                continue
            failing = False
            backoff = self.poll_seconds
            await self.nap()
