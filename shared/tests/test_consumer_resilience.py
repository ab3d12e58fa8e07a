"""Issue 7 §3: consumers that never die and never blame a message for an outage; history for new subjects.

Each test runs on SQLite and PostgreSQL against a real nats-server. A database "outage" is a real one:
the consumer's table renamed away (every statement on it fails), or on PostgreSQL its connections killed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from shared.bus import Bus, Outgoing
from shared.clock import FixedClock
from shared.consumer import SUBSCRIBED_MARK, Consumer, Subscription
from shared.db import Database
from shared.events import encode
from shared.events.clients import DealManagerAssigned, DealStageChanged
from shared.events.system import ProbeRecorded
from shared.infra import DeadLetter, ProcessedEvent
from shared.loop import Supervisor
from shared.outbox import OutboxRelay, add_event
from shared.retention import RetentionJob
from shared.testing import eventually
from sqlalchemy import delete, func, select, text

from .conftest import Effect
from .test_bus import SUBJECT, record_effect, write_probes


async def rename(db: Database, old: str, new: str) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def dead_letters(db: Database) -> list[DeadLetter]:
    async with db.transaction() as session:
        return list((await session.execute(select(DeadLetter).order_by(DeadLetter.id))).scalars())


async def effects_are(db: Database, n: int) -> bool:
    async with db.transaction() as session:  # one statement: both counts from the same snapshot
        rows, distinct = (await session.execute(select(func.count(Effect.id),
                                                       func.count(func.distinct(Effect.seq))))).one()
    assert rows <= n and rows == distinct, f"{rows} effects ({distinct} distinct) for {n} events"
    return rows == n


async def test_issue7_s3_a_table_renamed_for_a_while_dead_letters_nothing_and_every_event_applies_once(
        db, bus, caplog):
    supervisor = Supervisor()
    consumer = Consumer(db, bus, Subscription("outage", {SUBJECT: record_effect}), max_deliver=2,
                        dead_letter_after=0.1, batch=20)
    supervisor.start("consumer outage", consumer.run, health=consumer.health)
    relay = OutboxRelay(db, bus)
    try:
        await write_probes(db, range(20))
        await relay.flush()
        await eventually(lambda: effects_are(db, 20), message="the first 20 events")

        await rename(db, "effects", "effects_away")  # the database breaks under the running consumer
        await write_probes(db, range(20, 60))
        await relay.flush()

        async def held() -> bool:
            return consumer.health.state == "retrying"

        await eventually(held, message="the consumer holding its messages through the outage")
        assert supervisor.failing() == ["consumer outage"]
        await asyncio.sleep(0.5)  # a few retries (deliveries would have been spent here before the fix)
        await rename(db, "effects_away", "effects")

        await eventually(lambda: effects_are(db, 60), message="all 60 events after the outage")
        assert await dead_letters(db) == []
        assert consumer.health.state == "running" and supervisor.failing() == []
        outage_lines = [r for r in caplog.records if r.name == "shared.consumer" and r.levelno >= logging.WARNING]
        assert len(outage_lines) == 1 and "holding" in outage_lines[0].getMessage()  # once, not per retry
    finally:
        consumer.stop()
        await supervisor.stop()


@pytest.mark.postgres
async def test_issue7_s3_postgres_connections_killed_under_the_consumer_it_resumes_and_applies_once(
        postgres_url, nats_server):
    from .conftest import create_tables

    db = Database(postgres_url)
    await create_tables(db)
    bus = Bus(nats_server.url, "kill")
    await bus.connect(retry_forever=False)
    supervisor = Supervisor()
    consumer = Consumer(db, bus, Subscription("killed", {SUBJECT: record_effect}), max_deliver=2,
                        dead_letter_after=0.1, batch=10)
    supervisor.start("consumer killed", consumer.run, health=consumer.health)
    admin = Database(postgres_url)
    try:
        relay = OutboxRelay(db, bus)
        for start in range(0, 200, 10):
            await write_probes(db, range(start, start + 10))
            await relay.flush()
            if start % 40 == 0:  # kill every connection of the consumer's database, again and again
                async with admin.engine.connect() as conn:
                    await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        await eventually(lambda: effects_are(db, 200), timeout=60, message="200 effects")
        assert await dead_letters(db) == []
    finally:
        consumer.stop()
        await supervisor.stop()
        await admin.dispose()
        await bus.drain()
        await db.dispose()


async def test_issue7_s3_a_poison_message_is_dead_lettered_once_after_the_tries_spread_over_the_minimum(db, bus):
    calls: list[float] = []

    async def refuse_seven(event: ProbeRecorded, session) -> None:
        if event.seq == 7:
            calls.append(time.monotonic())
            raise ValueError("seq 7 is not a valid probe")
        await record_effect(event, session)

    supervisor = Supervisor()
    consumer = Consumer(db, bus, Subscription("poison", {SUBJECT: refuse_seven}), max_deliver=3,
                        dead_letter_after=1.0)
    supervisor.start("consumer poison", consumer.run, health=consumer.health)
    try:
        await write_probes(db, [6, 7, 8])
        await OutboxRelay(db, bus).flush()

        async def one_letter() -> list:
            return await dead_letters(db)

        [letter] = await eventually(one_letter, message="the dead letter")
        assert (letter.consumer, letter.deliveries, letter.subject) == ("poison", 3, SUBJECT)
        assert "seq 7 is not a valid probe" in letter.reason
        assert calls[-1] - calls[0] >= 1.0  # three deliveries, spread over the minimum
        before = len(calls)
        await eventually(lambda: effects_are(db, 2), message="the other events")
        # Replayed and failing again (the cause is not fixed): still one row for the message.
        await bus.publish_many([Outgoing(SUBJECT, letter.payload, {"Nats-Msg-Id": "replay-1"})])

        async def updated() -> bool:
            letters = await dead_letters(db)
            return len(letters) == 1 and letters[0].id == letter.id and len(calls) >= before + 3 and \
                letters[0].failed_at >= letter.failed_at
        await eventually(updated, message="the replay dead-lettered onto the same row")
        assert len(await dead_letters(db)) == 1
    finally:
        consumer.stop()
        await supervisor.stop()


async def test_issue7_s3_deliveries_alone_never_dead_letter_before_the_minimum_time_on_the_clock(db, bus):
    """However fast the redeliveries come, a message is dead-lettered only `dead_letter_after` after its first
    failure, measured on the consumer's clock (here a fixed clock, moved by hand)."""
    clock = FixedClock(datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    calls: list[int] = []

    async def always_refuse(event: ProbeRecorded, session) -> None:
        calls.append(event.seq)
        raise ValueError("never")

    supervisor = Supervisor()
    consumer = Consumer(db, bus, Subscription("patient", {SUBJECT: always_refuse}), max_deliver=2, clock=clock,
                        dead_letter_after=60.0, retry_delay=lambda deliveries: 0.05)
    supervisor.start("consumer patient", consumer.run, health=consumer.health)
    try:
        await write_probes(db, [1])
        await OutboxRelay(db, bus).flush()

        async def many() -> bool:
            return len(calls) >= 6

        await eventually(many, message="six deliveries")
        assert await dead_letters(db) == []  # 6 deliveries > max_deliver, but no time has passed
        clock.advance(timedelta(seconds=60))

        async def lettered() -> list:
            return await dead_letters(db)

        [letter] = await eventually(lettered, message="dead-lettered once a minute has passed")
        assert letter.deliveries >= 6
    finally:
        consumer.stop()
        await supervisor.stop()


async def test_issue7_s3_a_crashing_loop_is_restarted_with_backoff_logged_once_and_named_while_failing(caplog):
    runs: list[float] = []
    release = asyncio.Event()

    async def fragile() -> None:
        runs.append(time.monotonic())
        if len(runs) <= 3:
            raise RuntimeError("the disk is full")
        await release.wait()

    supervisor = Supervisor(initial_backoff=0.05, stable_seconds=0.2)
    health = supervisor.start("fragile", fragile)

    async def restarted() -> bool:
        return len(runs) == 4

    await eventually(restarted, message="three restarts")
    assert supervisor.failing() == ["fragile"] and health.state == "restarting" and health.restarts == 3
    assert runs[2] - runs[1] > runs[1] - runs[0] >= 0.05  # back-off grows

    async def stable() -> bool:
        return health.state == "running"

    await eventually(stable, message="running again after a while without a crash")
    assert supervisor.failing() == []
    crashes = [r for r in caplog.records if "crashed" in r.getMessage() and r.levelno >= logging.ERROR]
    assert len(crashes) == 1 and crashes[0].exc_info  # the same error three times: one line, one traceback
    release.set()
    await supervisor.stop()


async def test_issue7_s3_a_release_handling_a_new_subject_gets_its_history_and_not_the_old_subjects_again(db, bus):
    """The old release handled `manager_assigned`; the new one also handles `stage_changed`. The stage changes
    already on the stream are delivered; the manager assignments are not redelivered, even though retention
    pruned their processed-event ids."""
    now = datetime.now(UTC)
    seen: list[tuple[str, str]] = []

    async def record(event, session) -> None:
        seen.append((event.subject, event.event_id))

    assigned, staged = DealManagerAssigned.subject, DealStageChanged.subject
    old = Consumer(db, bus, Subscription("evolving", {assigned: record}))
    supervisor = Supervisor()
    supervisor.start("consumer old", old.run, health=old.health)
    relay = OutboxRelay(db, bus)
    async with db.transaction() as session:
        for i in range(3):
            add_event(session, DealManagerAssigned(manager=f"m{i}", occurred_at=now))
            add_event(session, DealStageChanged(from_stage="new", to_stage="contacted", manager=f"m{i}",
                                                occurred_at=now))
    await relay.flush()

    async def three() -> bool:
        return len(seen) == 3

    await eventually(three, message="the old release applied its three events")
    old.stop()
    await supervisor.stop()
    await old.close()
    async with db.transaction() as session:  # retention forgot the ids the old release processed
        await session.execute(delete(ProcessedEvent))

    new = Consumer(db, bus, Subscription("evolving", {assigned: record, staged: record}))
    supervisor = Supervisor()
    supervisor.start("consumer new", new.run, health=new.health)
    try:
        async with db.transaction() as session:
            add_event(session, DealManagerAssigned(manager="m9", occurred_at=now))
            add_event(session, DealStageChanged(from_stage="new", to_stage="contacted", manager="m9",
                                                occurred_at=now))
        await relay.flush()

        async def all_of_them() -> bool:
            return len(seen) >= 8

        await eventually(all_of_them, message="history of the new subject and the new events")
        await asyncio.sleep(0.3)  # room for a wrong redelivery of the old subject to show
        assert sorted(s for s, _ in seen).count(assigned) == 4  # 3 before + 1 new: none redelivered
        assert sorted(s for s, _ in seen).count(staged) == 4    # 3 from history + 1 new
        assert len({e for _, e in seen}) == 8

        async def history_gone() -> bool:
            names = [c.name for c in await bus.js.consumers_info("CLIENTS")]
            return names == ["evolving"]

        await eventually(history_gone, message="the history durable removed when done")
    finally:
        new.stop()
        await supervisor.stop()
        await new.close()


async def test_issue7_s3_readiness_shows_consumer_lag(tmp_path, nats_server):
    from litestar.testing import AsyncTestClient
    from shared.service import ServiceSpec, create_service_app
    from shared.testing import make_settings

    from .conftest import ProbeBase

    gate = asyncio.Event()

    async def slow(event: ProbeRecorded, session) -> None:
        await gate.wait()

    spec = ServiceSpec(name="lagging", metadata=ProbeBase.metadata, create_all=True,
                       subscriptions=lambda rt: [Subscription("lagging-probes", {SUBJECT: slow})])
    settings = make_settings("lagging", database_url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
                             nats_url=nats_server.url)
    async with AsyncTestClient(create_service_app(spec, settings=settings)) as client:
        bus = Bus(nats_server.url, "partner")
        await bus.connect(retry_forever=False)
        await bus.publish_many([Outgoing(SUBJECT, encode(ProbeRecorded(seq=i)), {"Nats-Msg-Id": f"p{i}"})
                                for i in range(5)])

        async def lagging() -> dict:
            body = (await client.get("/health/ready")).json()
            lag = body["consumers"].get("lagging-probes", {})
            return body if lag.get("pending", 0) + lag.get("ack_pending", 0) == 5 else None

        # (The handler holds SQLite's one write transaction meanwhile, so the database check may say no.)
        await eventually(lagging, message="the lag in readiness")
        gate.set()

        async def caught_up() -> dict | None:
            body = (await client.get("/health/ready")).json()
            lag = body["consumers"]["lagging-probes"]
            return body if lag["pending"] + lag["ack_pending"] == 0 and body["status"] == "ready" else None

        body = await eventually(caught_up, message="no lag once the handler goes on")
        assert body["checks"] == {"database": True, "nats": True} and body["failing"] == []
        assert set(body["loops"]) >= {"consumer lagging-probes", "relay", "scheduler", "retention", "nats"}
        assert body["outbox"] == {"unsent": 0, "oldest_unsent_age_seconds": 0.0}
        await bus.drain()
    async with Database(settings.database_url).transaction() as session:
        applied = select(func.count()).select_from(ProcessedEvent).where(ProcessedEvent.event_id != SUBSCRIBED_MARK)
        assert (await session.execute(applied)).scalar_one() == 5


async def test_issue7_s3_readiness_is_503_naming_a_consumer_that_cannot_reach_its_database(tmp_path, nats_server):
    from litestar.testing import AsyncTestClient
    from shared.service import ServiceSpec, create_service_app
    from shared.testing import make_settings

    from .conftest import ProbeBase

    async def write(event: ProbeRecorded, session) -> None:
        session.add(Effect(seq=event.seq, event_id=event.event_id))

    spec = ServiceSpec(name="broken", metadata=ProbeBase.metadata, create_all=True,
                       subscriptions=lambda rt: [Subscription("broken-probes", {SUBJECT: write})])
    settings = make_settings("broken", database_url=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
                             nats_url=nats_server.url)
    app = create_service_app(spec, settings=settings)
    async with AsyncTestClient(app) as client:
        db = app.state.runtime.db

        async def ready() -> bool:
            return (await client.get("/health/ready")).status_code == 200

        await eventually(ready, message="ready")
        await rename(db, "effects", "effects_away")
        bus = Bus(nats_server.url, "partner")
        await bus.connect(retry_forever=False)
        await bus.publish_many([Outgoing(SUBJECT, encode(ProbeRecorded(seq=1)), {"Nats-Msg-Id": "x1"})])

        async def unready() -> dict | None:
            response = await client.get("/health/ready")
            return response.json() if response.status_code == 503 else None

        body = await eventually(unready, message="503 naming the consumer")
        assert body["failing"] == ["consumer broken-probes"]
        assert body["loops"]["consumer broken-probes"]["state"] == "retrying"
        assert "effects" in body["loops"]["consumer broken-probes"]["error"]
        await rename(db, "effects_away", "effects")
        await eventually(ready, message="ready again")
        await bus.drain()


async def test_issue7_s3_a_lost_durable_is_recreated_without_reapplying_events_whose_ids_were_pruned(db, bus):
    """The durable is deleted under a running consumer (an operator, a NATS store lost). The supervisor restarts
    the consumer, which creates it again — not from the start of the stream, whose old events' ids retention
    may have pruned, but from the retention cutoff (here 0 days, so: from now)."""
    supervisor = Supervisor(initial_backoff=0.05)
    consumer = Consumer(db, bus, Subscription("lost", {SUBJECT: record_effect}), retention_days=0)
    supervisor.start("consumer lost", consumer.run, health=consumer.health)
    relay = OutboxRelay(db, bus)
    try:
        await write_probes(db, range(5))
        await relay.flush()
        await eventually(lambda: effects_are(db, 5), message="the first five")
        later = FixedClock(datetime.now(UTC) + timedelta(days=30))
        pruned = await RetentionJob(db, days=14, clock=later).prune()  # the ids are forgotten
        assert pruned["processed_events"] == 5
        await bus.js.delete_consumer("SYSTEM", "lost")

        async def recreated() -> bool:
            return consumer.health.restarts >= 1 and "lost" in [c.name for c in await bus.js.consumers_info("SYSTEM")]

        await eventually(recreated, message="the durable subscribed again")
        await write_probes(db, range(5, 8))
        await relay.flush()
        await eventually(lambda: effects_are(db, 8), message="the new events, the old ones not again")
        await asyncio.sleep(0.3)
        assert await effects_are(db, 8)
    finally:
        consumer.stop()
        await supervisor.stop()


async def test_issue7_s3_messages_held_through_an_outage_longer_than_ack_wait_are_not_redelivered(db, bus):
    """The held messages are kept "in progress" (+WPI) on JetStream, so an outage longer than the ack wait does
    not hand them to another replica of the consumer: their delivery count stays at one."""
    from nats.errors import TimeoutError as NatsTimeoutError

    await write_probes(db, range(5))
    await OutboxRelay(db, bus).flush()
    await rename(db, "effects", "effects_away")  # the database is broken before the consumer starts
    supervisor = Supervisor()
    consumer = Consumer(db, bus, Subscription("held", {SUBJECT: record_effect}), ack_wait=1.5,
                        dead_letter_after=0.1, max_deliver=2)
    supervisor.start("consumer held", consumer.run, health=consumer.health)
    try:
        async def held() -> bool:
            return consumer.health.state == "retrying"

        await eventually(held, message="holding")
        await asyncio.sleep(4.5)  # three ack waits
        replica = await bus.js.pull_subscribe_bind(durable="held", stream="SYSTEM")
        with pytest.raises(NatsTimeoutError):  # nothing for another replica: the five are still in hand
            await replica.fetch(10, timeout=1.0)
        await replica.unsubscribe()
        await rename(db, "effects_away", "effects")
        await eventually(lambda: effects_are(db, 5), message="all five")
        info = await bus.js.consumer_info("SYSTEM", "held")
        assert info.num_redelivered == 0
        assert await dead_letters(db) == []
    finally:
        consumer.stop()
        await supervisor.stop()
