"""Benchmark: the payroll month overview (live preview) with 200 managers and 1,000,000 ledger lines.

    uv run python bench/payroll_preview.py                 # BENCH_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test
    uv run python bench/payroll_preview.py --lines 200000 --runs 5 --keep

Method: creates a scratch PostgreSQL database next to the one BENCH_DATABASE_URL names, applies the payroll
migrations, enrols 200 content managers, bulk-loads the ledger lines of one month with COPY (asyncpg;
rules PAY-2…PAY-6 mixed, 2% voided, 1% adjustments) plus 20,000 deadline outcomes, ANALYZEs, then times:
  1. baseline  — the bare GROUP BY (manager, rule) in asyncpg, what any overview must at least cost;
  2. service   — `payroll.services.month_view(...).as_json()` (aggregation + PAY-1 base + PAY-7 ranking);
  3. API       — GET /api/payroll/months/YYYY-MM through the real Litestar app (auth, JSON), in process;
  4. one manager's statement page (GET /api/payroll/statements/<login>?page=1, 200 lines).
Each is run --runs times after one warm-up; min and median are printed. Goal: overview ≤ 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
from shared.clock import FixedClock
from shared.db import Database
from shared.migrate import upgrade
from shared.settings import normalize_database_url
from shared.testing import make_settings

MONTH = "2026-04"
RULES = [("PAY-2", 1_000_000, 40), ("PAY-3", -500_000, 15), ("PAY-4", -400_000, 10), ("PAY-5", 200_000, 25),
         ("PAY-6", -500_000, 10)]


def scratch_url(base: str, name: str) -> str:
    head, _, tail = base.rpartition("/")
    query = "?" + tail.split("?", 1)[1] if "?" in tail else ""
    return f"{head}/{name}{query}"


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def load(url: str, managers: list[str], lines: int) -> float:
    conn = await asyncpg.connect(dsn(url))
    started = time.perf_counter()
    rnd = random.Random(42)
    weights = [w for _, _, w in RULES]
    now = datetime(2026, 5, 1, tzinfo=UTC)
    month_start = datetime(2026, 3, 31, 19, 0, tzinfo=UTC)
    columns = ["manager", "month", "rule", "amount_minor", "currency", "source_event_id", "deal_id", "deadline_id",
               "deadline_rule", "occurred_at", "trace_id", "note", "adjusts_month", "corrects_line_id",
               "voided_by_event_id", "created_at"]
    chunk = 100_000
    for offset in range(0, lines, chunk):
        records = []
        for i in range(offset, min(lines, offset + chunk)):
            rule, amount, _ = rnd.choices(RULES, weights)[0]
            manager = managers[i % len(managers)]
            deadline = f"dl-{i}" if rule == "PAY-6" else None
            records.append((
                manager, MONTH, rule, amount, "KZT", str(uuid.UUID(int=rnd.getrandbits(128))), f"deal-{i // 3}",
                deadline, "CL-9" if deadline else None, month_start + timedelta(seconds=rnd.randrange(30 * 86400)),
                uuid.UUID(int=rnd.getrandbits(128)).hex, f"{rule} fact {i}",
                "2026-03" if rnd.random() < 0.01 else None, None,
                f"void-{i}" if rnd.random() < 0.02 else None, now))
        await conn.copy_records_to_table("ledger_lines", records=records, columns=columns)
    outcomes = [(f"dlo-{i}", managers[i % len(managers)], "CL-3", MONTH,
                 "breached" if rnd.random() < 0.1 else "met", f"evt-{i}") for i in range(20_000)]
    await conn.copy_records_to_table("deadline_outcomes", records=outcomes,
                                     columns=["deadline_id", "owner", "rule", "month", "outcome", "event_id"])
    await conn.executemany(
        "INSERT INTO employees (login, role, employed_from, employed_to, auto_enrolled, updated_at) "
        "VALUES ($1, 'content_manager', $2, NULL, false, $3)",
        [(m, date(2025, 1, 1), now) for m in managers])
    await conn.execute("ANALYZE")
    await conn.close()
    return time.perf_counter() - started


async def timed(label: str, runs: int, fn) -> tuple[float, float]:
    await fn()  # warm-up
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t)
    lo, med = min(samples), statistics.median(samples)
    print(f"  {label:<58} min {lo * 1000:8.1f} ms   median {med * 1000:8.1f} ms")
    return lo, med


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--managers", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    base = normalize_database_url(os.environ.get("BENCH_DATABASE_URL",
                                                 "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    name = f"payroll_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn(base))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = scratch_url(base, name)
    try:
        db = Database(url)
        await upgrade(db, "payroll")
        await db.dispose()
        managers = [f"manager{i:03d}" for i in range(args.managers)]
        print(f"payroll preview benchmark — PostgreSQL scratch database {name}")
        load_s = await load(url, managers, args.lines)
        print(f"  loaded {args.lines:,} ledger lines for {args.managers} managers in {MONTH} with COPY "
              f"in {load_s:.1f} s (+20,000 deadline outcomes, ANALYZE)")

        conn = await asyncpg.connect(dsn(url))

        async def baseline() -> None:
            await conn.fetch("SELECT manager, rule, sum(amount_minor), count(*) FROM ledger_lines "
                             "WHERE month = $1 AND voided_by_event_id IS NULL GROUP BY manager, rule", MONTH)

        from litestar.testing import AsyncTestClient
        from payroll import services
        from payroll.app import create_app

        settings = make_settings("payroll", database_url=url, nats_url="nats://127.0.0.1:9")
        app = create_app(settings=settings, clock=FixedClock(datetime(2026, 5, 2, tzinfo=UTC)),
                         background=False)
        async with AsyncTestClient(app) as client:
            from shared.auth import staff_assertion_headers

            headers = staff_assertion_headers("bench", "lead", audience="payroll", secret=settings.gateway_secret,
                                              ttl=3600)

            async def api() -> None:
                response = await client.get(f"/api/payroll/months/{MONTH}", headers=headers)
                assert response.status_code == 200, response.text
                body = response.json()
                assert len(body["managers"]) == args.managers and body["best_manager"]

            async def page() -> None:
                response = await client.get(f"/api/payroll/statements/{managers[7]}", headers=headers,
                                            params={"month": MONTH, "page": 1, "page_size": 200})
                assert response.status_code == 200 and len(response.json()["lines"]) == 200

            sdb = Database(url)

            async def service() -> None:
                async with sdb.transaction() as session:
                    view = await services.month_view(session, MONTH, settings.calendar.tz)
                    view.as_json()

            print(f"  method: {args.runs} timed runs after one warm-up each")
            await timed("baseline: bare GROUP BY (manager, rule) in asyncpg", args.runs, baseline)
            await timed("service: month_view() + as_json()", args.runs, service)
            _, api_median = await timed(f"API: GET /api/payroll/months/{MONTH} (overview, in process)", args.runs, api)
            await timed("API: GET /api/payroll/statements/<login>?page=1 (200 lines)", args.runs, page)
            await sdb.dispose()
        await conn.close()
        verdict = "meets" if api_median <= 2.0 else "MISSES"
        print(f"  overview median {api_median * 1000:.0f} ms {verdict} the goal of ≤ 2 s "
              f"({args.lines:,} lines, {args.managers} managers)")
    finally:
        if not args.keep:
            admin = await asyncpg.connect(dsn(base))
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
