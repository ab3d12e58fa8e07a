"""Transactional outbox (DESIGN 3): events are rows written with the change; a relay publishes them.

`add_event` is called inside the domain transaction. The relay claims unpublished rows (FOR UPDATE
SKIP LOCKED on PostgreSQL, so replicas can run side by side), publishes them with
`Nats-Msg-Id = event_id` — JetStream drops a re-sent id, so a crash between publish and marking the
rows sent cannot duplicate an event — and marks them sent in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from shared.bus import Bus, Outgoing
from shared.clock import Clock, SystemClock
from shared.db import Database, skip_locked
from shared.events import Event, encode
from shared.infra import OutboxRow
from shared.loop import WakeableLoop
from shared.telemetry import inject_headers

log = logging.getLogger(__name__)
OUTBOX_FLAG = "zabota.outbox"


PENDING = "zabota.outbox.pending"


def add_event(session: AsyncSession, evt: Event, clock: Clock | None = None,
              headers: dict[str, str] | None = None) -> None:
    """Write `evt` to the outbox of the current transaction, with the current trace context.

    The row is inserted when the transaction commits, together with the other events of that
    transaction, in one multi-row INSERT (ORM objects with server-generated keys would be inserted
    one statement at a time on SQLite). An event added inside a savepoint that rolls back is dropped
    with the savepoint, as a row would have been.
    """
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    transaction = sync.get_nested_transaction() or sync.get_transaction()
    session.info.setdefault(PENDING, []).append((transaction, {
        "event_id": evt.event_id,
        "subject": evt.subject,
        "payload": encode(evt),
        "headers": {**inject_headers(), **(headers or {})},
        "created_at": (clock or SystemClock()).now(),
    }))
    session.info[OUTBOX_FLAG] = True


def _inside(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "before_commit")
def _write_pending_events(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's commit: its events wait for the real commit (the savepoint may yet roll back)
    pending = session.info.pop(PENDING, None)
    if pending:
        session.execute(insert(OutboxRow.__table__), [row for _, row in pending])


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back_events(session: Session, rolled_back: SessionTransaction) -> None:
    pending = session.info.get(PENDING)
    if pending:
        session.info[PENDING] = [(t, row) for t, row in pending if not _inside(t, rolled_back)]


class OutboxRelay(WakeableLoop):
    def __init__(self, db: Database, bus: Bus, *, batch: int = 500, poll_seconds: float = 0.5,
                 clock: Clock | None = None) -> None:
        super().__init__(poll_seconds)
        self.db = db
        self.bus = bus
        self.batch = batch
        self.clock = clock or SystemClock()
        db.on_commit(OUTBOX_FLAG, self.wake)

    async def publish_batch(self) -> int:
        """Publish one batch of pending events; returns how many were published."""
        if not self.bus.is_connected:
            # Don't claim rows (on SQLite: take the write lock) while NATS is away.
            raise ConnectionError("NATS not connected")
        if self.db.dialect == "postgresql":
            # The claim (row locks, SKIP LOCKED) lasts through the publish: replicas never send the same rows.
            async with self.db.transaction() as session:
                rows = await self._pending(session)
                await self._publish(rows)
                await self._mark_published(session, rows)
            return len(rows)
        # SQLite has one writer for the whole file: holding it across network I/O would stall every other
        # transaction of the service. Read, publish, then mark, with relays of this process taking turns
        # (an SQLite database belongs to one process).
        async with self.db.relay_lock:
            async with self.db.transaction() as session:
                rows = await self._pending(session)
            await self._publish(rows)
            async with self.db.transaction() as session:
                await self._mark_published(session, rows)
        return len(rows)

    async def _pending(self, session: AsyncSession) -> list:
        # Plain rows, not ORM objects: the relay is a hot path and never changes them in Python.
        query = (select(OutboxRow.id, OutboxRow.event_id, OutboxRow.subject, OutboxRow.payload, OutboxRow.headers)
                 .where(OutboxRow.published_at.is_(None)).order_by(OutboxRow.id).limit(self.batch))
        return list((await session.execute(skip_locked(query, self.db))).all())

    async def _publish(self, rows: list) -> None:
        if rows:
            await self.bus.publish_many([
                Outgoing(row.subject, row.payload, {**(row.headers or {}), "Nats-Msg-Id": row.event_id})
                for row in rows
            ])

    async def _mark_published(self, session: AsyncSession, rows: list) -> None:
        if rows:
            await session.execute(update(OutboxRow).where(OutboxRow.id.in_([row.id for row in rows]))
                                  .values(published_at=self.clock.now()))

    async def flush(self) -> int:
        """Publish everything pending (used at shutdown and in tests)."""
        total = 0
        while (n := await self.publish_batch()) > 0:
            total += n
        return total

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                published = await self.publish_batch()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS down or DB busy: rows stay pending, try again
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self.batch:
                await self.nap()
