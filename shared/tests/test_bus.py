"""The backbone's guarantees (DESIGN 3, 4): outbox + relay + JetStream + idempotent consumers.

Every test runs on SQLite and on PostgreSQL, against a real nats-server started for the test.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

import pytest
from shared.bus import Bus, Outgoing
from shared.consumer import Consumer, Subscription
from shared.db import Database
from shared.events import encode
from shared.events.system import ProbeRecorded
from shared.infra import DeadLetter, OutboxRow
from shared.outbox import OutboxRelay, add_event
from shared.testing import eventually
from sqlalchemy import select

from .conftest import Effect, Probe, count_effects

SUBJECT = ProbeRecorded.subject


async def record_effect(event: ProbeRecorded, session) -> None:
    session.add(Effect(seq=event.seq, event_id=event.event_id))


def probe_subscription(handler=record_effect, name: str = "probe-effects") -> Subscription:
    return Subscription(name=name, handlers={SUBJECT: handler})


async def write_probes(db: Database, seqs: range | list[int]) -> None:
    """One domain transaction: the probe rows and their events, together."""
    async with db.transaction() as session:
        for seq in seqs:
            session.add(Probe(seq=seq))
            add_event(session, ProbeRecorded(seq=seq))


async def stream_count(bus: Bus) -> int:
    info = await bus.js.stream_info("SYSTEM")
    return info.state.messages


class Running:
    """Background loops of a test, cancelled at the end."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task] = []

    def start(self, coro) -> None:
        self.tasks.append(asyncio.create_task(coro))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task


@pytest.fixture
async def running():
    loops = Running()
    yield loops
    await loops.stop()


async def test_crash_between_commit_and_publish_loses_nothing_and_applies_once(db, bus, running):
    await write_probes(db, range(10))
    # The process "crashes" after the commit: nothing was published yet, the rows wait in the outbox.
    assert await stream_count(bus) == 0

    # A second crash: the relay published but died before marking the rows sent.
    async with db.transaction() as session:
        rows = (await session.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars().all()
    await bus.publish_many([Outgoing(r.subject, r.payload, {**r.headers, "Nats-Msg-Id": r.event_id}) for r in rows])

    # The relay restarts and publishes everything still pending; JetStream drops the re-sent ids.
    relay = OutboxRelay(db, bus)
    assert await relay.flush() == 10
    assert await stream_count(bus) == 10

    running.start(Consumer(db, bus, probe_subscription()).run())
    await eventually(lambda: _effects_are(db, 10), message="10 effects")
    await asyncio.sleep(0)  # give a (wrong) second application a chance to show
    assert await count_effects(db) == (10, 10)


async def _effects_are(db: Database, n: int) -> bool:
    rows, _ = await count_effects(db)
    assert rows <= n, f"{rows} effects for {n} events: applied twice"
    return rows == n


async def test_nats_restart_in_the_middle_of_1000_events_gives_1000_effects_once(db, nats_server, running):
    producer_bus = Bus(nats_server.url, "producer")
    consumer_bus = Bus(nats_server.url, "consumer")
    await producer_bus.connect(retry_forever=False)
    await consumer_bus.connect(retry_forever=False)
    relay = OutboxRelay(db, producer_bus, batch=50, poll_seconds=0.05)
    running.start(relay.run())
    running.start(Consumer(db, consumer_bus, probe_subscription(), batch=50).run())

    for start in range(0, 500, 10):
        await write_probes(db, range(start, start + 10))
    await eventually(lambda: _effects_at_least(db, 100), message="consumer under way")

    nats_server.stop()  # in the middle: some events published, some consumed, the rest pending
    for start in range(500, 1000, 10):
        await write_probes(db, range(start, start + 10))
    nats_server.start()

    await eventually(lambda: _effects_are(db, 1000), timeout=120, message="1000 effects after restart")
    assert await count_effects(db) == (1000, 1000)
    relay.stop()
    await producer_bus.drain()
    await consumer_bus.drain()


async def _effects_at_least(db: Database, n: int) -> bool:
    rows, _ = await count_effects(db)
    return rows >= n


async def test_same_event_delivered_twice_has_one_effect(db, bus, running):
    event = ProbeRecorded(seq=7)
    # Two deliveries of one event (a partner re-publishing, a replay): different message ids, same event_id.
    await bus.publish_many([Outgoing(SUBJECT, encode(event), {"Nats-Msg-Id": "first"})])
    await bus.publish_many([Outgoing(SUBJECT, encode(event), {"Nats-Msg-Id": "second"})])
    assert await stream_count(bus) == 2
    await write_probes(db, [8])  # a later, different event
    await OutboxRelay(db, bus).flush()

    running.start(Consumer(db, bus, probe_subscription()).run())
    await eventually(lambda: _effects_are(db, 2), message="effects of the two distinct events")
    async with db.transaction() as session:
        seqs = sorted((await session.execute(select(Effect.seq))).scalars())
    assert seqs == [7, 8]


async def test_poison_message_is_dead_lettered_after_n_deliveries_and_the_rest_go_on(db, bus, running):
    async def fail_on_three(event: ProbeRecorded, session) -> None:
        if event.seq == 3:
            raise ValueError("seq 3 cannot be applied")
        await record_effect(event, session)

    dead = await bus.nc.subscribe("deadletter.>")
    await write_probes(db, range(1, 6))
    await OutboxRelay(db, bus).flush()
    running.start(Consumer(db, bus, probe_subscription(fail_on_three, "poisoned"), max_deliver=3,
                           dead_letter_after=0.3).run())

    letter = await dead.next_msg(timeout=60)
    assert letter.subject == "deadletter.poisoned"
    assert letter.headers["Zabota-Original-Subject"] == SUBJECT
    assert "seq 3 cannot be applied" in letter.headers["Zabota-Failure-Reason"]
    assert letter.headers["Zabota-Deliveries"] == "3"

    await eventually(lambda: _effects_are(db, 4), message="the messages after the poison one")
    async with db.transaction() as session:
        seqs = sorted((await session.execute(select(Effect.seq))).scalars())
        letters = (await session.execute(select(DeadLetter))).scalars().all()
    assert seqs == [1, 2, 4, 5]
    assert [(d.consumer, d.deliveries) for d in letters] == [("poisoned", 3)]
    assert "seq 3 cannot be applied" in letters[0].reason


async def test_two_relays_side_by_side_publish_each_event_once(db, bus):
    """On PostgreSQL the relays claim rows with SKIP LOCKED; on SQLite one writer at a time."""
    await write_probes(db, range(200))
    relays = [OutboxRelay(db, bus, batch=20), OutboxRelay(db, bus, batch=20)]
    published = await asyncio.gather(*(relay.flush() for relay in relays))
    assert sum(published) == 200
    assert await stream_count(bus) == 200


async def test_a_release_that_handles_a_new_subject_updates_the_durable_consumer(db, bus, running):
    """Payroll learns a new event in a later release: its existing durable consumer must start getting it."""
    from datetime import UTC, datetime

    from shared.events.clients import DealManagerAssigned, DealStageChanged

    seen: list[str] = []

    async def record(event, session) -> None:
        seen.append(event.subject)

    old = Consumer(db, bus, Subscription("evolving", {DealManagerAssigned.subject: record}))
    await old._subscribe()
    await old.close()

    new = Consumer(db, bus, Subscription("evolving", {DealManagerAssigned.subject: record,
                                                      DealStageChanged.subject: record}))
    running.start(new.run())
    now = datetime.now(UTC)
    async with db.transaction() as session:
        add_event(session, DealManagerAssigned(manager="manager1", occurred_at=now))
        add_event(session, DealStageChanged(from_stage="new", to_stage="contacted", manager="manager1",
                                            occurred_at=now))
    await OutboxRelay(db, bus).flush()

    async def both() -> bool:
        return len(seen) == 2

    await eventually(both, message="both subjects consumed")
    assert sorted(seen) == [DealManagerAssigned.subject, DealStageChanged.subject]


async def test_an_event_added_in_a_rolled_back_savepoint_is_dropped_with_it(db):
    """A timer or consumer handler that fails inside its savepoint must not leave its events behind."""
    async with db.transaction() as session:
        add_event(session, ProbeRecorded(seq=1))
        try:
            async with session.begin_nested():
                add_event(session, ProbeRecorded(seq=2))
                async with session.begin_nested():
                    add_event(session, ProbeRecorded(seq=3))
                raise RuntimeError("handler failed")
        except RuntimeError:
            pass
        async with session.begin_nested():
            add_event(session, ProbeRecorded(seq=4))
    async with db.transaction() as session:
        payloads = (await session.execute(select(OutboxRow.payload).order_by(OutboxRow.id))).scalars().all()
    from shared.events import decode

    assert [decode(SUBJECT, p).seq for p in payloads] == [1, 4]

    async with db.transaction() as session:  # a whole transaction that rolls back writes nothing either
        add_event(session, ProbeRecorded(seq=5))
        await session.rollback()
    async with db.transaction() as session:
        assert len((await session.execute(select(OutboxRow.id))).all()) == 2
