"""Transactional outbox (DESIGN 3): events are rows written with the change; a relay publishes them.

`add_event` is called inside the domain transaction. The relay claims unpublished rows (FOR UPDATE
SKIP LOCKED on PostgreSQL, so replicas can run side by side), publishes them with
`Nats-Msg-Id = event_id` — JetStream drops a re-sent id, so a crash between publish and marking the
rows sent cannot duplicate an event — and marks them sent in the same transaction, once every message
of the batch has its PubAck.

Keeping up under request load (issue 7 §5). The relay lives in the same process as the service's API
requests, so a round must neither wait in line behind them nor cost them much:
- the batch is written to NATS without a suspension per message and waits once for its PubAcks
  (`Bus.publish_many`): the claim transaction lasts about one round trip to NATS (bounded by the
  publish timeout);
- on PostgreSQL `run()` relays from a thread of its own, with its own event loop, its own database
  connection and its own NATS connection. With 50 requests in flight the service's pool was all checked
  out (a relay queuing for it waited seconds per round), and each of a round's half-dozen awaits waited
  for a full turn of a loop crowded with request callbacks; in its thread a round waits only for its
  own I/O (and the GIL's switch interval). A commit that wrote events wakes it across threads.
  `flush()` (shutdown, tests) and SQLite's relay (one writer per file, an asyncio lock) run on the
  caller's loop, bus and pool;
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
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar

from sqlalchemy import BigInteger, any_, bindparam, event, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
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
        # A rollback undoes everything up to its boundary: the nearest savepoint around it, or the transaction.
        # (A flush that fails rolls back its own subtransaction — and with it the savepoint it ran in, whose
        # events must go too; the event is not raised again for that savepoint.)
        boundary = rolled_back
        while not boundary.nested and boundary.parent is not None:
            boundary = boundary.parent
        session.info[PENDING] = [(t, row) for t, row in pending if not _inside(t, boundary)]


class OutboxRelay(WakeableLoop):
    def __init__(self, db: Database, bus: Bus, *, batch: int = 500, poll_seconds: float = 0.5,
                 clock: Clock | None = None, publish_timeout: float = 5.0) -> None:
        super().__init__(poll_seconds)
        self.db = db
        self.bus = bus
        self.batch = batch
        self.clock = clock or SystemClock()
        self.publish_timeout = publish_timeout
        self.published_total = 0  # rows this relay published (each PubAck'd), for tests and metrics
        # The bus and sessions of the relay's own thread, seen only by the code running in that thread.
        self._own: ContextVar[tuple[Bus, async_sessionmaker[AsyncSession]] | None] = ContextVar(
            f"outbox-relay-{id(self)}", default=None)
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread_wake: asyncio.Event | None = None
        self._thread_task: asyncio.Task | None = None
        db.on_commit(OUTBOX_FLAG, self.wake)

    def wake(self) -> None:
        """Called after a commit that wrote events (from the service's loop): wake the relay's thread too."""
        super().wake()
        loop, wake = self._thread_loop, self._thread_wake
        if loop is not None and wake is not None:
            with suppress(RuntimeError):  # the thread's loop has just closed
                loop.call_soon_threadsafe(wake.set)

    def stop(self) -> None:
        super().stop()
        self.wake()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        own = self._own.get()
        if own is None:
            async with self.db.transaction() as session:
                yield session
        else:
            async with own[1]() as session, session.begin():
                yield session

    async def publish_batch(self) -> int:
        """Publish one batch of pending events; returns how many were published."""
        own = self._own.get()
        bus = own[0] if own is not None else self.bus
        if not bus.is_connected:
            # Don't claim rows (on SQLite: take the write lock) while NATS is away.
            raise ConnectionError("NATS not connected")
        if self.db.dialect == "postgresql":
            # The claim (row locks, SKIP LOCKED) lasts through the publish: replicas never send the same rows.
            async with self._transaction() as session:
                rows = await self._pending(session)
                await self._publish(bus, rows)
                await self._mark_published(session, rows)
            self.published_total += len(rows)
            return len(rows)
        # SQLite has one writer for the whole file: holding it across network I/O would stall every other
        # transaction of the service. Read, publish, then mark, with relays of this process taking turns
        # (an SQLite database belongs to one process).
        async with self.db.relay_lock:
            async with self.db.transaction() as session:
                rows = await self._pending(session)
            await self._publish(bus, rows)
            async with self.db.transaction() as session:
                await self._mark_published(session, rows)
        self.published_total += len(rows)
        return len(rows)

    async def _pending(self, session: AsyncSession) -> list:
        # Plain rows, not ORM objects: the relay is a hot path and never changes them in Python.
        query = (select(OutboxRow.id, OutboxRow.event_id, OutboxRow.subject, OutboxRow.payload, OutboxRow.headers)
                 .where(OutboxRow.published_at.is_(None)).order_by(OutboxRow.id).limit(self.batch))
        return list((await session.execute(skip_locked(query, self.db))).all())

    async def _publish(self, bus: Bus, rows: list) -> None:
        if rows:
            await bus.publish_many([
                Outgoing(row.subject, row.payload, {**(row.headers or {}), "Nats-Msg-Id": row.event_id})
                for row in rows
            ], timeout=self.publish_timeout)

    async def _mark_published(self, session: AsyncSession, rows: list) -> None:
        if rows:
            ids = [row.id for row in rows]
            if self.db.dialect == "postgresql":
                # One statement text whatever the batch size (`IN` renders one parameter per row, and each new
                # size is a new statement for asyncpg to prepare).
                where = OutboxRow.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger())))
            else:
                where = OutboxRow.id.in_(ids)
            await session.execute(update(OutboxRow).where(where).values(published_at=self.clock.now()))

    async def flush(self) -> int:
        """Publish everything pending (used at shutdown and in tests), on the caller's loop, bus and pool."""
        total = 0
        while (n := await self.publish_batch()) > 0:
            total += n
        return total

    async def run(self) -> None:
        """Relay until stopped. On PostgreSQL in a thread of its own (see the module's docstring)."""
        if self.db.dialect != "postgresql":
            await self._loop()
            return
        main = asyncio.get_running_loop()
        done: asyncio.Future[None] = main.create_future()
        thread = threading.Thread(target=self._thread_main, args=(main, done), name="outbox-relay", daemon=True)
        thread.start()
        try:
            await asyncio.shield(done)
        finally:
            if not done.done():  # cancelled: end the thread's work, and wait for it to let go of its connections
                loop, task = self._thread_loop, self._thread_task
                if loop is not None and task is not None:
                    with suppress(RuntimeError):
                        loop.call_soon_threadsafe(task.cancel)
                with suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(done), 10)

    def _thread_main(self, main: asyncio.AbstractEventLoop, done: asyncio.Future[None]) -> None:
        error: BaseException | None = None
        try:
            asyncio.run(self._thread_run())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # handed to run(), which raises it in the service's loop
            error = exc

        def finish() -> None:
            if not done.done():
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

        with suppress(RuntimeError):  # the service's loop is gone: nobody waits for the answer
            main.call_soon_threadsafe(finish)

    async def _thread_run(self) -> None:
        self._thread_task = asyncio.current_task()
        self._thread_wake = asyncio.Event()
        self._thread_loop = asyncio.get_running_loop()
        # One connection, kept: no pre-ping round trip per round (a broken one fails a round, is invalidated
        # by the pool, and the next round reconnects).
        engine = create_engine(self.db.url, pool_size=1, max_overflow=0, pool_pre_ping=False)
        bus = Bus(self.bus.url, f"{self.bus.name}-relay", self.bus.replicas)
        try:
            await bus.connect()
            self._own.set((bus, async_sessionmaker(engine, expire_on_commit=False)))
            await self._loop(self._thread_wake)
        finally:
            self._thread_loop = self._thread_wake = self._thread_task = None
            with suppress(Exception):
                await bus.drain()
            await engine.dispose()

    async def _loop(self, wake: asyncio.Event | None = None) -> None:
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
                await (self.nap() if wake is None else self._nap_in_thread(wake))

    async def _nap_in_thread(self, wake: asyncio.Event) -> None:
        """`nap()` on the thread's own event (cleared after waking, so no commit's wake-up is lost)."""
        try:
            await asyncio.wait_for(wake.wait(), self.poll_seconds)
        except TimeoutError:
            pass
        wake.clear()
