"""Retention (issue 7 §7): the infrastructure tables do not grow forever.

Every service runs this job (supervised, like its other loops): once an interval (default hourly) it
deletes, in small batches of its own short transactions,

- outbox rows sent more than `retention_days` ago,
- `processed_events` rows older than that (but the mark each consumer leaves when it subscribes, which
  tells a consumer whose durable was lost from a new one: shared.consumer),
- timers fired or cancelled more than that ago.

Dead letters are kept: operators decide about them. The period (`ZABOTA_RETENTION_DAYS`, default 14,
at least 1) must outlast any redelivery of a message (minutes: a held message is never redelivered;
a nak'ed one comes back within `ZABOTA_DEAD_LETTER_AFTER_SECONDS`) and JetStream's duplicate window
(10 minutes): a processed-event id is only forgotten long after its message can come back. A dead
letter older than the period is not replayed (ops.py says why): consumers that applied it then may
have forgotten its id. Time comes from the injectable clock.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select

from shared.clock import Clock, SystemClock
from shared.consumer import SUBSCRIBED_MARK
from shared.db import Database
from shared.infra import OutboxRow, ProcessedEvent, Timer
from shared.loop import LoopHealth, WakeableLoop

log = logging.getLogger(__name__)


class RetentionJob(WakeableLoop):
    def __init__(self, db: Database, *, days: int = 14, batch: int = 500, interval_seconds: float = 3600.0,
                 clock: Clock | None = None) -> None:
        super().__init__(interval_seconds)
        self.db = db
        self.days = days
        self.batch = batch
        self.clock = clock or SystemClock()
        self.health = LoopHealth("retention")

    def cutoff(self) -> datetime:
        return self.clock.now() - timedelta(days=self.days)

    async def prune(self) -> dict[str, int]:
        """Delete everything past retention, batch by batch; returns how many rows per table."""
        cutoff = self.cutoff()
        targets = {
            "outbox": (OutboxRow.__table__, OutboxRow.id,
                       (OutboxRow.published_at.is_not(None), OutboxRow.published_at < cutoff)),
            "processed_events": (ProcessedEvent.__table__, None,
                                 (ProcessedEvent.processed_at < cutoff, ProcessedEvent.event_id != SUBSCRIBED_MARK)),
            "timers": (Timer.__table__, Timer.id, (or_(Timer.fired_at < cutoff, Timer.cancelled_at < cutoff),)),
        }
        counts: dict[str, int] = {}
        for name, (table, key, where) in targets.items():
            total = 0
            while True:
                deleted = await self._delete_batch(table, key, where)
                total += deleted
                if deleted < self.batch:
                    break
                await asyncio.sleep(0)  # let the service's own work in between batches
            counts[name] = total
        if any(counts.values()):
            log.info("retention: pruned %s (older than %s)", counts, cutoff.isoformat())
        return counts

    async def _delete_batch(self, table, key, where) -> int:
        async with self.db.transaction() as session:
            if key is not None:
                ids = select(key).where(*where).limit(self.batch).scalar_subquery()
                result = await session.execute(delete(table).where(key.in_(ids)))
            else:  # processed_events: a composite key
                rows = (await session.execute(select(table.c.consumer, table.c.event_id).where(*where)
                                              .limit(self.batch))).all()
                if not rows:
                    return 0
                by_consumer: dict[str, list[str]] = {}
                for consumer, event_id in rows:
                    by_consumer.setdefault(consumer, []).append(event_id)
                deleted = 0
                for consumer, event_ids in by_consumer.items():
                    result = await session.execute(delete(table).where(table.c.consumer == consumer,
                                                                       table.c.event_id.in_(event_ids)))
                    deleted += result.rowcount or 0
                return deleted
            return result.rowcount or 0

    async def run(self) -> None:
        while not self._stopping:
            await self.prune()  # errors reach the supervisor: logged once, restarted with back-off
            self.health.running()
            await self.nap()
