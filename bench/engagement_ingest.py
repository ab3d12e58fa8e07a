"""Benchmark: care-inbox webhook ingest (issue 11) — verify → durable → 200, and webhook → in the inbox.

    uv run python bench/engagement_ingest.py                      # SQLite, 5000 webhooks, 64 in flight
    uv run python bench/engagement_ingest.py --db postgres        # BENCH_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test
    uv run python bench/engagement_ingest.py --rate 200 --seconds 10   # paced: latency to the inbox at 200 msg/s

Method: starts the engagement service as its own process (`python -m engagement`, uvicorn, the production entry
point) on a free port with a scratch database (no NATS: the outbox keeps the events), creates a Telegram channel,
then POSTs documented Telegram updates (distinct chats, X-Telegram-Bot-Api-Secret-Token checked constant-time)
from one asyncio client with keep-alive connections.
  1. ingest  — N webhooks as fast as `--concurrency` allows: req/s and p50/p99 of the answer (stored before 200);
  2. inbox   — with `--rate`, webhooks paced at that rate; for each, the time from its delivery row
     (`received_at`) to its message row (`created_at`), i.e. until the conversation list shows it (both stamped
     by the service's clock), p50/p99.
Goals (issue 11): ingest ≥ 2,000 req/s with p99 ≤ 50 ms; webhook → inbox p99 ≤ 1 s at 200 messages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from shared.settings import normalize_database_url
from shared.testing import free_port

TOKEN = {"Authorization": "Bearer dev-token", "X-Zabota-Actor": "aliya", "X-Zabota-Role": "lead"}
SECRET = "bench-secret-token"


def update(n: int) -> bytes:
    chat = 10_000_000 + n
    return json.dumps({"update_id": n, "message": {
        "message_id": 1, "date": int(time.time()), "text": f"Здравствуйте, заказ {n} не пришёл",
        "from": {"id": chat, "is_bot": False, "first_name": "Anna", "username": f"user{n}"},
        "chat": {"id": chat, "first_name": "Anna", "username": f"user{n}", "type": "private"}}}).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def pg_scratch() -> tuple[str, str]:
    base = normalize_database_url(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    name = f"bench_eng_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return base.rsplit("/", 1)[0] + "/" + name, name


def start_service(database_url: str, var: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env.update({"DATABASE_URL": database_url, "ENGAGEMENT_PORT": str(port), "ZABOTA_VAR_DIR": str(var), "ZABOTA_DEMO": "1",
                "NATS_URL": f"nats://127.0.0.1:{free_port()}"})
    log = (var / "service.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "engagement"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("engagement did not start")


async def ingest(url: str, path: str, count: int, concurrency: int, start: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = iter(range(start, start + count))
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        async def worker() -> None:
            for n in queue:
                body = update(n)
                t0 = time.perf_counter()
                for attempt in range(3):   # a keep-alive connection closed under us: re-sent, as a channel would
                    try:
                        response = await http.post(path, content=body, headers=headers)
                        break
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                latencies.append(time.perf_counter() - t0)
                assert response.status_code == 200, response.text
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies


async def paced(url: str, path: str, rate: int, seconds: int, start: int) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(60, pool=None),
                                 limits=httpx.Limits(max_connections=256)) as http:
        tasks = []
        t0 = time.perf_counter()
        for i in range(rate * seconds):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(http.post(path, content=update(start + i), headers=headers)))
        for response in await asyncio.gather(*tasks):
            assert response.status_code == 200


async def inbox_latencies(database_url: str, first: int) -> list[float]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        deliveries = (await conn.execute(text("SELECT dedupe_key, received_at FROM deliveries"))).all()
        messages = dict((await conn.execute(text("SELECT external_id, created_at FROM messages"))).all())
    await engine.dispose()

    def ts(v):
        from datetime import UTC, datetime
        v = v if isinstance(v, datetime) else datetime.fromisoformat(v)
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v

    out = []
    for key, received in deliveries:
        n = int(key.rsplit(":", 1)[1])
        created = messages.get(f"{10_000_000 + n}:1")
        if n > first and created is not None:
            out.append((ts(created) - ts(received)).total_seconds())
    return out


async def wait_drained(database_url: str) -> float:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    t0 = time.perf_counter()
    try:
        while True:
            async with engine.connect() as conn:
                left = (await conn.execute(text("SELECT count(*) FROM deliveries WHERE processed_at IS NULL"))
                        ).scalar_one()
            if left == 0:
                return time.perf_counter() - t0
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-engagement-"))
    print(f"scratch directory (service.log): {tmp}")
    drop = None
    if args.db == "postgres":
        database_url, drop = await pg_scratch()
    else:
        database_url = f"sqlite+aiosqlite:///{tmp / 'engagement.db'}"
    proc, url = start_service(database_url, tmp)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            created = await http.post("/api/engagement/channels", headers=TOKEN, json={
                "kind": "telegram", "name": "bench", "config": {"bot_token": "1:x", "secret_token": SECRET}})
            assert created.status_code == 201, created.text
        path = f"/webhooks/telegram/{created.json()['id']}"
        await ingest(url, path, 200, 8, 1)                    # warm-up: ids 1..200
        elapsed, latencies = await ingest(url, path, args.count, args.concurrency, 201)
        print(f"ingest ({args.db}): {args.count} webhooks in {elapsed:.2f} s = {args.count / elapsed:.0f} req/s; "
              f"p50 {pct(latencies, .5) * 1000:.1f} ms, p99 {pct(latencies, .99) * 1000:.1f} ms "
              f"(concurrency {args.concurrency})")
        drained = await wait_drained(database_url)            # the processor works off the burst first
        print(f"processing: the burst was in the inbox {drained:.1f} s after the last answer")
        first = 200 + args.count
        await paced(url, path, args.rate, args.seconds, first + 1)
        lat: list[float] = []
        for _ in range(240):                                  # until every paced webhook is in the inbox
            lat = await inbox_latencies(database_url, first)
            if len(lat) >= args.rate * args.seconds:
                break
            await asyncio.sleep(0.5)
        print(f"inbox ({args.db}): {len(lat)} webhooks at {args.rate}/s: webhook → message in the inbox "
              f"p50 {pct(lat, .5) * 1000:.0f} ms, p99 {pct(lat, .99) * 1000:.0f} ms")
    finally:
        proc.terminate()
        proc.wait(20)
        if drop:
            base = normalize_database_url(os.environ.get("BENCH_DATABASE_URL",
                                                         "postgresql://postgres@127.0.0.1:5432/test"))
            conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
            await conn.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
