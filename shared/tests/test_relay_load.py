"""The relay keeps up under request load (issue 7 §5).

Under 50 concurrent API requests events reached payroll 17–25 s late: `publish_async(wait_stall=…)` wrapped
every message in `asyncio.wait_for` (on Python 3.11 a task and a suspension per message, each waiting for a
turn of a loop crowded with requests), and on PostgreSQL the relay queued for a pooled connection behind
the requests. These tests pin the mechanisms of the fix against a real nats-server and real databases;
the figures are in bench/relay_under_load.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import suppress

import pytest
from shared.bus import Bus, Outgoing
from shared.db import Database
from shared.events import encode
from shared.events.system import ProbeRecorded
from shared.infra import OutboxRow
from shared.outbox import OutboxRelay
from shared.testing import eventually
from sqlalchemy import select, text

from .conftest import create_tables
from .test_bus import Running, stream_count, write_probes

SUBJECT = ProbeRecorded.subject


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    loops = Running()
    yield loops
    await loops.stop()


@pytest.fixture
async def pg_db(postgres_url: str) -> AsyncIterator[Database]:
    """A PostgreSQL service database with a small pool (two connections), so a test can take all of it."""
    database = Database(postgres_url, pool_size=2, max_overflow=0)
    await create_tables(database)
    yield database
    await database.dispose()


def probes(first: int, n: int) -> list[Outgoing]:
    return [Outgoing(SUBJECT, encode(ProbeRecorded(seq=i)), {"Nats-Msg-Id": f"probe-{i}"})
            for i in range(first, first + n)]


def stream_has(bus: Bus, n: int):
    async def check() -> bool:
        return await stream_count(bus) == n
    return check


async def test_issue7_5_a_batch_is_written_to_nats_before_the_publisher_gives_up_the_loop(bus):
    """Other work on the loop (a request's next step) runs only once the whole batch is in NATS's write
    buffer: the batch does not wait one loop turn per message."""
    await bus.publish_many(probes(0, 1))  # the first publish sets up the reply subscription
    before = bus.nc.stats["out_msgs"]
    written_when_other_work_ran: list[int] = []

    async def other_work() -> None:
        written_when_other_work_ran.append(bus.nc.stats["out_msgs"] - before)

    other = asyncio.create_task(other_work())
    await bus.publish_many(probes(1, 500))
    await other
    assert written_when_other_work_ran == [500]
    assert await stream_count(bus) == 501


async def test_issue7_5_publishing_a_batch_starts_no_task_per_message(bus):
    await bus.publish_many(probes(0, 1))
    loop = asyncio.get_running_loop()
    created: list[str] = []
    previous = loop.get_task_factory()

    def counting_factory(loop: asyncio.AbstractEventLoop, coro, **kwargs) -> asyncio.Task:
        created.append(getattr(coro, "__qualname__", repr(coro)))
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting_factory)
    try:
        await bus.publish_many(probes(1, 500))
    finally:
        loop.set_task_factory(previous)
    assert len(created) < 5, created[:10]  # was one per message (asyncio.wait_for)


async def test_issue7_5_a_commit_wakes_the_running_relay_without_waiting_for_a_poll(db, bus, running):
    relay = OutboxRelay(db, bus, poll_seconds=3600)  # it would sleep an hour if nobody woke it
    running.start(relay.run())
    await write_probes(db, range(10))
    await eventually(stream_has(bus, 10), message="first 10 events published")
    await write_probes(db, range(10, 20))  # the relay naps now: only the commit's wake-up can bring it back
    await eventually(stream_has(bus, 20), message="the next 10 published on the commit's wake-up")


async def test_issue7_5_two_running_relays_publish_each_row_exactly_once(db, bus, running):
    """Replicas share the work; JetStream's de-duplication would hide a row sent twice, so count the
    PubAck'd publishes of each relay instead of the stream."""
    relays = [OutboxRelay(db, bus, batch=20, poll_seconds=0.05) for _ in range(2)]
    for relay in relays:
        running.start(relay.run())
    for start in range(0, 400, 20):
        await write_probes(db, range(start, start + 20))
    await eventually(stream_has(bus, 400), message="400 events on the stream")

    async def all_marked() -> bool:
        async with db.transaction() as session:
            return not (await session.execute(select(OutboxRow.id).where(OutboxRow.published_at.is_(None)))).first()

    await eventually(all_marked, message="every row marked sent")
    assert sum(relay.published_total for relay in relays) == 400


def _write_and_watch(db_url: str, nats_url: str, seqs: range, expect: int) -> int:
    """In a thread of its own: write probes through a separate Database, then wait (bounded) until the stream
    holds `expect` messages; returns what it holds."""

    async def main() -> int:
        writer = Database(db_url)
        watcher = Bus(nats_url, "watcher")
        try:
            await write_probes(writer, seqs)
            await watcher.connect(retry_forever=False)
            with suppress(AssertionError):
                await eventually(stream_has(watcher, expect), message=f"{expect} events")
            return await stream_count(watcher)
        finally:
            await watcher.drain()
            await writer.dispose()

    return asyncio.run(main())


@pytest.mark.postgres
async def test_issue7_5_relay_publishes_while_the_service_loop_is_blocked_and_its_pool_taken(
        pg_db, bus, nats_server, running):
    """The extreme of a service busy with requests: every pooled connection is checked out and the event
    loop does not come back for the whole check. Events committed meanwhile are still published."""
    relay = OutboxRelay(pg_db, bus, poll_seconds=0.05)
    running.start(relay.run())
    await write_probes(pg_db, [0])
    await eventually(stream_has(bus, 1), message="the relay is running")

    held = [await pg_db.engine.connect() for _ in range(2)]  # the service's whole pool, in open transactions
    for connection in held:
        await connection.begin()
        await connection.execute(text("SELECT 1"))
    try:
        published: list[int] = []
        # Blocks this loop (no await) until the writer thread has seen its events on the stream, or gave up.
        worker = threading.Thread(target=lambda: published.append(
            _write_and_watch(pg_db.url, nats_server.url, range(1, 101), expect=101)))
        worker.start()
        worker.join()
    finally:
        for connection in held:
            await connection.close()
    assert published == [101]


@pytest.mark.postgres
async def test_issue7_5_rows_claimed_by_a_relay_that_dies_are_sent_by_another_at_once(pg_db, bus, running):
    """Why the claim is a row lock and not a lease: rows another relay is publishing are skipped, and when
    that relay dies (kill -9 drops its connection) they are free at once, not when a lease runs out."""
    await write_probes(pg_db, range(10))
    dying = Database(pg_db.url, pool_size=1, max_overflow=0)
    connection = await dying.engine.connect()
    try:
        await connection.begin()
        claimed = (await connection.execute(text(
            "SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED"))).scalars().all()
        assert len(claimed) == 10
        pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()

        relay = OutboxRelay(pg_db, bus, poll_seconds=0.05)
        running.start(relay.run())
        await write_probes(pg_db, range(10, 20))
        await eventually(stream_has(bus, 10), message="the unclaimed rows published")
        async with pg_db.transaction() as session:
            unsent = (await session.execute(select(OutboxRow.id).where(OutboxRow.published_at.is_(None)))
                      ).scalars().all()
        assert sorted(unsent) == sorted(claimed)  # the other relay's rows were skipped, not sent twice

        async with pg_db.transaction() as session:  # the claiming relay is killed: its connection goes
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await eventually(stream_has(bus, 20), message="the dead relay's rows published by the other")
    finally:
        with suppress(Exception):
            await connection.close()
        await dying.dispose()
