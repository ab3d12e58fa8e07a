"""Benchmark: care-inbox webhook ingest (issue 11) — verify → durable → 200, and webhook → visible in the inbox.

    uv run python bench/engagement_ingest.py --db postgres                  # ingest, engagement direct
    uv run python bench/engagement_ingest.py --db postgres --gateway        # ingest through the gateway's proxy
    uv run python bench/engagement_ingest.py --db postgres --phase inbox    # webhook → visible at 200 msg/s
    uv run python bench/engagement_ingest.py --db sqlite                    # the same on SQLite
Options: --workers N (ENGAGEMENT_WORKERS), --seconds, --connections, --threads (wrk), --rate (inbox phase).
PostgreSQL: BENCH_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test (a scratch database is made
and dropped).

Method: the engagement service runs as its own process(es) — `python -m engagement`, the production entry
point (uvicorn, the plain-ASGI webhook front, group commit, ENGAGEMENT_WORKERS) — on a scratch database with
no NATS (the outbox keeps the events); with --gateway also `python -m gateway` in front (ENGAGEMENT_URL), and
the load goes to the gateway's `/webhooks/telegram/{id}`. A Telegram channel is created through the API.
  ingest — the load generator is `wrk` (C, its own process, Debian `apt-get install wrk`) with a Lua script
           that makes every request a distinct documented Telegram update (unique update_id → a new delivery
           row each; X-Telegram-Bot-Api-Secret-Token checked constant-time): req/s and wrk's p50/p99 latency of
           the answer, which comes only after the delivery's row is committed. Non-2xx answers are counted and
           must be 0; the row count is checked against wrk's request count afterwards.
  inbox  — webhooks paced at --rate by a Python client (32 asyncio senders, keep-alive); a watcher reads the messages
           table every 20 ms (what the conversation list reads) and takes, for each webhook, the time from the
           client's scheduled send to the watcher first seeing its message committed: p50/p99 ("visible in the inbox";
           the live page adds the gateway's SSE push on top).
Goals (issue 11): ingest ≥ 2,000 req/s with p99 ≤ 50 ms; webhook → inbox p99 ≤ 1 s at 200 messages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import msgspec
from shared.settings import normalize_database_url
from shared.testing import default_settings, free_port, staff_headers

SECRET = "bench-secret-token"
LUA = r"""
local counter = 0
local base = tonumber(os.getenv("BENCH_BASE") or "1")
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  tid = tonumber(wrk.thread:get("tid") or 0)
end
request = function()
  counter = counter + 1
  local n = base + tid * 10000000 + counter
  local body = string.format('{"update_id":%d,"message":{"message_id":1,"date":1764600000,"text":"Здравствуйте, заказ %d не пришёл","from":{"id":%d,"is_bot":false,"first_name":"Anna","username":"user%d"},"chat":{"id":%d,"first_name":"Anna","username":"user%d","type":"private"}}}', n, n, n, n, n, n)
  return wrk.format("POST", nil, nil, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def update(n: int) -> bytes:
    chat = n
    return msgspec.json.encode({"update_id": n, "message": {
        "message_id": 1, "date": int(time.time()), "text": f"Здравствуйте, заказ {n} не пришёл",
        "from": {"id": chat, "is_bot": False, "first_name": "Anna", "username": f"user{n}"},
        "chat": {"id": chat, "first_name": "Anna", "username": f"user{n}", "type": "private"}}})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pg_base() -> str:
    return normalize_database_url(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))


def plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def pg_scratch() -> tuple[str, str]:
    name = f"bench_eng_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(plain(pg_base()))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return pg_base().rsplit("/", 1)[0] + "/" + name, name


def wait_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{url} did not start")


def start(module: str, env_extra: dict[str, str], var: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env.update({f"{module.upper()}_PORT": str(port), "ZABOTA_VAR_DIR": str(var), "ZABOTA_DEMO": "1",
                "NATS_URL": f"nats://127.0.0.1:{free_port()}", **env_extra})
    log = var / f"{module}.log"
    proc = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_up(url, proc, log)
    return proc, url


def wrk(url: str, seconds: int, threads: int, connections: int, base: int, var: Path) -> dict[str, int]:
    script = var / "telegram.lua"
    script.write_text(LUA)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                          "-s", str(script), "-H", f"X-Telegram-Bot-Api-Secret-Token: {SECRET}",
                          "-H", "Content-Type: application/json", url],
                         env={**os.environ, "BENCH_BASE": str(base)}, capture_output=True, text=True, check=True)
    match = re.search(r"RESULT (.*)", out.stdout)
    if not match:
        raise RuntimeError(out.stdout + out.stderr)
    return {k: int(v) for k, v in (kv.split("=") for kv in match.group(1).split())}


async def count_rows(database_url: str, table: str) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        n = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    await engine.dispose()
    return n


async def paced(url: str, path: str, rate: int, seconds: int, start: int, sent: dict[int, float],
                senders: int = 32) -> None:
    """Webhooks on a fixed schedule (rate per second) from `senders` tasks, each with one keep-alive
    connection; a webhook's time is its SCHEDULED send time, so a slow answer delays the clock, not the figure
    (no coordinated omission)."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    total = rate * seconds
    t0 = time.time() + 0.5
    schedule = iter(range(total))

    async def sender() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1)) as http:
            for i in schedule:
                at = t0 + i / rate
                if (delay := at - time.time()) > 0:
                    await asyncio.sleep(delay)
                sent[start + i] = at
                response = await http.post(path, content=update(start + i), headers=headers)
                assert response.status_code == 200, response.text

    await asyncio.gather(*(sender() for _ in range(senders)))


async def watch(database_url: str, seen: dict[int, float], expected: int, stop: asyncio.Event,
                first: int = 1) -> None:
    """Read the messages table every 20 ms; note when each message is first visible (committed)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    since = "1970-01-01T00:00:00+00:00"
    from datetime import datetime, timedelta
    since_dt = datetime.fromisoformat(since)
    try:
        async with engine.connect() as conn:
            while not stop.is_set() and len(seen) < expected:
                rows = (await conn.execute(text(
                    "SELECT external_id, created_at FROM messages WHERE created_at >= :since"),
                    {"since": since_dt})).all()
                await conn.commit()
                now = time.time()
                newest = since_dt
                for external_id, created in rows:
                    n = int(external_id.split(":", 1)[0])
                    if first <= n < first + expected:   # this phase's webhooks only
                        seen.setdefault(n, now)
                    created = created if isinstance(created, datetime) else datetime.fromisoformat(created)
                    newest = max(newest, created.replace(tzinfo=since_dt.tzinfo) if created.tzinfo is None
                                 else created)
                since_dt = max(since_dt, newest - timedelta(seconds=5))
                await asyncio.sleep(0.02)
    finally:
        await engine.dispose()


async def watch_live(url: str, database_url: str, seen: dict[int, float], expected: int, stop: asyncio.Event,
                     first: int = 1) -> None:
    """What an open inbox follows: the change feed's long poll (`GET /api/engagement/changes?since=&wait=`, which
    the gateway's /inbox/stream relays as server-sent events), as the lead. A conversation is visible when it
    first comes back; each webhook here is a conversation of its own (@user<n>), matched afterwards."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    lead = staff_headers("aliya", "lead", default_settings("engagement").gateway_secret, service="engagement")
    first_seen: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=lead) as http:
        cursor = (await http.get("/api/engagement/changes")).json()["cursor"]
        # until told to stop: other conversations may change meanwhile, so a count cannot end it
        while not stop.is_set():
            answer = (await http.get("/api/engagement/changes", params={"since": cursor, "wait": 1})).json()
            now = time.time()
            cursor = answer["cursor"]
            for conversation_id in answer["conversations"]:
                first_seen.setdefault(conversation_id, now)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, customer_handle FROM conversations"))).all()
    finally:
        await engine.dispose()
    for conversation_id, handle in rows:
        n = int(handle.removeprefix("@user")) if handle.startswith("@user") else -1
        if first <= n < first + expected and conversation_id in first_seen:
            seen[n] = first_seen[conversation_id]


async def until_all_processed(database_url: str, conversations: int, deadline: float) -> None:
    """Until the inbox holds `conversations` (each webhook its own; the live watcher then gets a last poll)."""
    while time.monotonic() < deadline:
        if await count_rows(database_url, "conversations") >= conversations:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--phase", choices=["ingest", "inbox"], default="ingest")
    parser.add_argument("--gateway", action="store_true", help="send through the gateway's /webhooks proxy")
    parser.add_argument("--workers", type=int, default=0, help="ENGAGEMENT_WORKERS (0: the service's default)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--watch", choices=["table", "live"], default="table",
                        help="inbox phase: visible = committed in the messages table, or = returned by the "
                             "change feed's long poll (what an open inbox follows)")
    parser.add_argument("--warmup", type=int, default=3, help="inbox phase: seconds at --rate first, not counted")
    args = parser.parse_args()
    if args.phase == "ingest" and not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    var = Path(tempfile.mkdtemp(prefix="bench-engagement-"))
    print(f"scratch directory (logs): {var}; load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    drop = None
    if args.db == "postgres":
        database_url, drop = await pg_scratch()
    else:
        database_url = f"sqlite+aiosqlite:///{var / 'engagement.db'}"
    procs: list[subprocess.Popen] = []
    try:
        extra = {"ENGAGEMENT_DATABASE_URL": database_url}
        if args.workers:
            extra["ENGAGEMENT_WORKERS"] = str(args.workers)
        proc, url = start("engagement", extra, var)
        procs.append(proc)
        target = url
        if args.gateway:
            gproc, target = start("gateway", {"GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{var / 'gateway.db'}",
                                              "ENGAGEMENT_URL": url}, var)
            procs.append(gproc)
        lead = staff_headers("aliya", "lead", default_settings("engagement").gateway_secret, service="engagement")
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            created = await http.post("/api/engagement/channels", headers=lead, json={
                "kind": "telegram", "name": "bench", "config": {"bot_token": "1:x", "secret_token": SECRET}})
            assert created.status_code == 201, created.text
        path = f"/webhooks/telegram/{created.json()['id']}"
        via = "through the gateway" if args.gateway else "engagement direct"
        workers = args.workers or "default"
        if args.phase == "ingest":
            wrk(target + path, 2, 1, 8, 900_000_000, var)                 # warm-up (connections, caches, JIT-less)
            before = await count_rows(database_url, "deliveries")
            r = wrk(target + path, args.seconds, args.threads, args.connections, 1, var)
            stored = await count_rows(database_url, "deliveries") - before
            rps = r["requests"] / (r["duration_us"] / 1e6)
            print(f"ingest ({args.db}, {via}, workers {workers}): {r['requests']} webhooks in "
                  f"{r['duration_us'] / 1e6:.1f} s = {rps:.0f} req/s; p50 {r['p50_us'] / 1000:.1f} ms, "
                  f"p90 {r['p90_us'] / 1000:.1f} ms, p99 {r['p99_us'] / 1000:.1f} ms, max {r['max_us'] / 1000:.0f} ms; "
                  f"non-2xx {r['non2xx']}, socket errors {r['errors']}; rows stored {stored} "
                  f"(client: wrk -t{args.threads} -c{args.connections}, same machine); "
                  f"load average after {os.getloadavg()[0]:.2f}")
        else:
            if args.warmup:   # a service that has been running: statements compiled, pools and caches warm
                warm_sent: dict[int, float] = {}
                warm_seen: dict[int, float] = {}
                warm_stop = asyncio.Event()
                warm = asyncio.create_task(watch(database_url, warm_seen, args.rate * args.warmup, warm_stop,
                                           800_000_000))
                await paced(target, path, args.rate, args.warmup, 800_000_000, warm_sent)
                await asyncio.wait_for(warm, 120)
            sent: dict[int, float] = {}
            seen: dict[int, float] = {}
            stop = asyncio.Event()
            expected = args.rate * args.seconds
            watcher = asyncio.create_task(watch_live(url, database_url, seen, expected, stop) if args.watch == "live"
                                          else watch(database_url, seen, expected, stop))
            await paced(target, path, args.rate, args.seconds, 1, sent)
            deadline = time.monotonic() + 120
            if args.watch == "live":   # the feed matches conversations to webhooks at the end: wait until
                await until_all_processed(database_url, expected + args.rate * args.warmup, deadline)
            while len(seen) < expected and not watcher.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            stop.set()
            await watcher
            lat = [seen[n] - sent[n] for n in sent if n in seen]
            print(f"inbox ({args.db}, {via}, workers {workers}, watching {args.watch}): {len(lat)}/{expected} webhooks at {args.rate}/s "
                  f"for {args.seconds} s: webhook sent → message visible p50 {pct(lat, .5) * 1000:.0f} ms, "
                  f"p99 {pct(lat, .99) * 1000:.0f} ms, max {max(lat or [0]) * 1000:.0f} ms; "
                  f"load average {os.getloadavg()[0]:.2f}")
            t0 = min(sent.values())
            for second in range(args.seconds):   # does the backlog grow (throughput) or spike (a pause)?
                part = [seen[n] - sent[n] for n in sent if n in seen and int(sent[n] - t0) == second]
                print(f"  second {second}: p50 {pct(part, .5) * 1000:.0f} ms, p99 {pct(part, .99) * 1000:.0f} ms")
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if drop:
            conn = await asyncpg.connect(plain(pg_base()))
            await conn.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
