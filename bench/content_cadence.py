"""Benchmark: the CO-5 cadence board and the daily missed-cadence check for 2,000 current clients.

    uv run python bench/content_cadence.py                  # BENCH_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test
    uv run python bench/content_cadence.py --clients 2000 --runs 20 --sqlite

Method: creates a scratch database (PostgreSQL next to the one BENCH_DATABASE_URL names, or a SQLite file
with --sqlite), applies the content migrations, loads N current clients (accounts, profiles, a 31-day
period each, its three plans) and their items of the first 20 days of the period: a feed post a day and a
story every 3 days, published, except that every 7th client skips some days (so the board has misses).
Then times, on the 20th day after its 18:00 check time:
  1. the board — GET /api/content/cadence?date=… as the lead, through the real Litestar app in process
     (auth, JSON), --runs times after a warm-up: min, p50, p95;
  2. the daily check — `cadence.check_day` in one transaction (records each miss once, writes its events
     to the outbox), run on a fresh day each time: min and median.
Budgets (issue 10): board p95 ≤ 300 ms, daily check ≤ 5 s.
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
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.clock import FixedClock
from shared.db import Database
from shared.migrate import upgrade
from shared.settings import normalize_database_url
from shared.testing import default_settings, make_settings, staff_headers
from sqlalchemy import insert

TZ = ZoneInfo("Asia/Almaty")
FIRST_DAY = date(2026, 3, 1)


def scratch_url(base: str, name: str) -> str:
    head, _, tail = base.rpartition("/")
    query = "?" + tail.split("?", 1)[1] if "?" in tail else ""
    return f"{head}/{name}{query}"


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=TZ).astimezone(UTC)


async def load(db: Database, clients: int, days: int) -> int:
    from content.models import Account, ClientProfile, Period, Plan, PlanItem

    now = datetime(2026, 3, 1, tzinfo=UTC)
    accounts, profiles, periods, plans, items = [], [], [], [], []
    for n in range(clients):
        deal, client, period = f"deal-{n:05d}", f"client-{n:05d}", str(uuid.uuid4())
        accounts.append({"deal_id": deal, "client_id": client, "manager": f"manager{n % 40:02d}",
                         "service_kind": "account_management", "stage": "project_launched", "period_no": 1,
                         "materials_at": now, "updated_at": now})
        profiles.append({"client_id": client, "full_name": f"Client {n:05d}", "instagram": f"@c{n}",
                         "changed_at": now})
        periods.append({"id": period, "deal_id": deal, "period_no": 1, "starts_at": midnight(FIRST_DAY),
                        "ends_at": midnight(date(2026, 4, 1)), "first_day": FIRST_DAY, "last_day": date(2026, 3, 31),
                        "provisional": False, "created_at": now})
        plan_ids = [str(uuid.uuid4()) for _ in range(3)]
        for number, (pid, first, last) in enumerate(zip(plan_ids, (1, 10, 19), (9, 18, 31), strict=True), start=1):
            plans.append({"id": pid, "deal_id": deal, "period_id": period, "period_no": 1, "number": number,
                          "first_day": FIRST_DAY + timedelta(days=first - 1),
                          "last_day": FIRST_DAY + timedelta(days=last - 1), "state": "approved", "round": 1,
                          "created_at": now})
        for day_no in range(days):
            day = FIRST_DAY + timedelta(days=day_no)
            plan_id = plan_ids[0 if day_no < 9 else 1 if day_no < 18 else 2]
            skip = n % 7 == 0 and day_no % 5 == 4
            at = midnight(day) + timedelta(hours=12)
            kinds = ["feed"] + (["story"] if day_no % 3 == 0 else [])
            for kind in kinds:
                items.append({"id": str(uuid.uuid4()), "plan_id": plan_id, "deal_id": deal, "date": day, "kind": kind,
                              "caption": "", "media": [], "status": "planned" if skip else "published",
                              "published_at": None if skip else at, "created_at": now, "updated_at": now})
    async with db.transaction() as session:
        for model, rows in ((Account, accounts), (ClientProfile, profiles), (Period, periods), (Plan, plans),
                            (PlanItem, items)):
            for start in range(0, len(rows), 5000):
                await session.execute(insert(model.__table__), rows[start:start + 5000])
    return len(items)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()

    from content import cadence, services
    from content.app import create_app
    from litestar.testing import AsyncTestClient

    admin = None
    if args.sqlite:
        tmp = tempfile.mkdtemp()
        url = f"sqlite+aiosqlite:///{tmp}/content.db"
    else:
        import asyncpg

        base = normalize_database_url(os.environ.get("BENCH_DATABASE_URL",
                                                     "postgresql://postgres@127.0.0.1:5432/test"))
        name = f"bench_content_{uuid.uuid4().hex[:8]}"
        admin = base.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = scratch_url(base, name)
    try:
        db = Database(url)
        await upgrade(db, "content")
        started = time.perf_counter()
        n_items = await load(db, args.clients, args.days)
        print(f"loaded {args.clients} clients, {n_items} items in {time.perf_counter() - started:.1f} s "
              f"({'SQLite' if args.sqlite else 'PostgreSQL'})")
        if not args.sqlite:
            async with db.engine.begin() as conn:
                from sqlalchemy import text

                await conn.execute(text("ANALYZE"))
        day = FIRST_DAY + timedelta(days=args.days - 1)
        clock = FixedClock(datetime(day.year, day.month, day.day, 19, 0, tzinfo=TZ))
        app = create_app(settings=make_settings("content", database_url=url), clock=clock, background=False)
        headers = staff_headers("lead", "lead", default_settings("content"))
        timings = []
        async with AsyncTestClient(app) as client:
            for run in range(args.runs + 1):
                t = time.perf_counter()
                response = await client.get(f"/api/content/cadence?date={day.isoformat()}", headers=headers)
                elapsed = time.perf_counter() - t
                assert response.status_code == 200, response.text
                rows = response.json()
                if run:
                    timings.append(elapsed)
            missed = sum(1 for r in rows if r["missed"])
            timings.sort()
            p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
            print(f"board: {len(rows)} rows ({missed} with misses); min {timings[0] * 1000:.0f} ms, "
                  f"p50 {statistics.median(timings) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (budget p95 ≤ 300 ms)")

            async def check(d: date) -> tuple[float, int]:
                runtime = app.state.runtime
                t = time.perf_counter()
                async with runtime.db.transaction() as session:
                    ctx = services.Ctx(session, clock, runtime.settings, services.SYSTEM)
                    fresh = await cadence.check_day(ctx, d)
                return time.perf_counter() - t, fresh

            checks = []
            for back in range(min(5, args.days)):
                d = day - timedelta(days=back)
                checks.append(client.blocking_portal.call(check, d))  # on the app's loop (its pool)
            durations = sorted(c[0] for c in checks)
            print(f"daily check: {checks[0][1]} misses recorded on {day}; over {len(checks)} days min "
                  f"{durations[0]:.2f} s, median {statistics.median(durations):.2f} s (budget ≤ 5 s)")
        await db.dispose()
    finally:
        if admin is not None:
            import asyncpg

            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
