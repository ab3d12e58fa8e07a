"""Transactional outbox (DESIGN 3): events are rows written with the change; a relay publishes them.

`add_event` is called inside the domain transaction. The relay claims unpublished rows (FOR UPDATE
SKIP LOCKED on PostgreSQL, so replicas can run side by side), publishes them with
`Nats-Msg-Id = event_id` — JetStream drops a re-sent id, so a crash between publish and marking the
rows sent cannot duplicate an event — and marks them sent in the same transaction, once every message
of the batch has its PubAck.

Keeping up under request load (issue 7 §5). The relay shares the service's event loop and database with
its API requests, so a round must neither wait in line behind them nor cost the loop much:
- the batch is written to NATS without a suspension per message and waits once for its PubAcks
  (`Bus.publish_many`), so the claim transaction lasts about one round trip to NATS (bounded by the
  publish timeout);
- on PostgreSQL the running relay has its own connection (a one-connection engine made by `run()` and
  closed when it ends): with 50 requests in flight the service's pool is all checked out, and a relay
  queuing for it waited seconds per round. `flush()` outside `run()` (shutdown, tests) uses the pool.
- a round takes what is pending up to `batch` rows: a small backlog is a small batch published at once
  (a commit wakes the relay), a large one is drained `batch` rows per round trip.
Why row locks and not a lease: nothing but another relay ever touches an unsent outbox row (writers only
insert new rows), so the locks block no request; the transaction lasts one publish round trip; and a
relay that dies (`kill -9`) releases them with its connection at once, where a lease column would hold
its rows back until the lease ran out (and every service database would need a migration).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from shared.bus import Bus, Outgoing
from shared.clock import Clock, SystemClock
from shared.db import Database, create_engine, skip_locked
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
                 clock: Clock | None = None, publish_timeout: float = 5.0) -> None:
        super().__init__(poll_seconds)
        self.db = db
        self.bus = bus
        self.batch = batch
        self.clock = clock or SystemClock()
        self.publish_timeout = publish_timeout
        self._own_sessions: async_sessionmaker[AsyncSession] | None = None  # PostgreSQL, while run() runs
        db.on_commit(OUTBOX_FLAG, self.wake)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        if self._own_sessions is None:
            async with self.db.transaction() as session:
                yield session
        else:
            async with self._own_sessions() as session, session.begin():
                yield session

    async def publish_batch(self) -> int:
        """Publish one batch of pending events; returns how many were published."""
        if not self.bus.is_connected:
            # Don't claim rows (on SQLite: take the write lock) while NATS is away.
            raise ConnectionError("NATS not connected")
        if self.db.dialect == "postgresql":
            # The claim (row locks, SKIP LOCKED) lasts through the publish: replicas never send the same rows.
            async with self._transaction() as session:
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
            ], timeout=self.publish_timeout)

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
        engine = None
        if self.db.dialect == "postgresql":
            engine = create_engine(self.db.url, pool_size=1, max_overflow=0)
            self._own_sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            await self._loop()
        finally:
            self._own_sessions = None
            if engine is not None:
                await engine.dispose()

    async def _loop(self) -> None:
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
