"""Benchmark: automatic publishing (issue 10) of N items scheduled for the same minute, N connected accounts.

    uv run python bench/content_publish.py --sqlite            # SQLite file
    uv run python bench/content_publish.py --items 300         # BENCH_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test

Method: a scratch database with the content migrations; N deals, each with an approved plan 1, a connected
Instagram account (token encrypted as the service stores it) and one feed item scheduled for 10:00 with
an image URL; the publishing timers scheduled as the API schedules them. A stand-in Graph server
(services/content/tests/graph_standin.py, uvicorn on loopback) answers the Content Publishing API.
At 10:00 the scheduler fires everything due (`Scheduler.run_due`, the service's own timer handlers):
container, status, quota, media_publish, permalink — 5 Graph calls and 2 timer runs per item.
Prints the wall time, items per second and the per-item mean; checks every item was posted exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services" / "content" / "tests"))

from shared.clock import FixedClock  # noqa: E402
from shared.db import Database  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.settings import normalize_database_url  # noqa: E402
from shared.testing import make_settings  # noqa: E402
from shared.timers import Scheduler  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

TZ = ZoneInfo("Asia/Almaty")
TOKEN = "IGAAT-bench-token"


def scratch_url(base: str, name: str) -> str:
    head, _, tail = base.rpartition("/")
    query = "?" + tail.split("?", 1)[1] if "?" in tail else ""
    return f"{head}/{name}{query}"


async def load(db: Database, settings, clock: FixedClock, n: int, standin) -> None:
    from content import publishing, services
    from content.crypto import encrypt_token
    from content.models import Account, InstagramAccount, Period, Plan, PlanItem

    now = clock.now()
    start = datetime(2026, 3, 1, tzinfo=TZ).astimezone(UTC)
    end = datetime(2026, 4, 1, tzinfo=TZ).astimezone(UTC)
    when = datetime(2026, 3, 3, 10, 0, tzinfo=TZ).astimezone(UTC)
    token_enc = encrypt_token(settings, TOKEN)
    accounts, periods, plans, items, conns = [], [], [], [], []
    for i in range(n):
        deal, period, plan = f"deal-{i:05d}", str(uuid.uuid4()), str(uuid.uuid4())
        ig = str(17_841_400_000_000_000 + i)
        standin.account(ig, TOKEN)
        accounts.append({"deal_id": deal, "client_id": f"client-{i}", "manager": f"m{i % 40}", "period_no": 1,
                         "stage": "project_launched", "updated_at": now})
        periods.append({"id": period, "deal_id": deal, "period_no": 1, "starts_at": start, "ends_at": end,
                        "first_day": date(2026, 3, 1), "last_day": date(2026, 3, 31), "provisional": False,
                        "created_at": now})
        plans.append({"id": plan, "deal_id": deal, "period_id": period, "period_no": 1, "number": 1,
                      "first_day": date(2026, 3, 1), "last_day": date(2026, 3, 9), "state": "approved", "round": 1,
                      "first_submitted_at": now, "first_approved_at": now, "created_at": now})
        items.append({"id": str(uuid.uuid4()), "plan_id": plan, "deal_id": deal, "date": date(2026, 3, 3),
                      "kind": "feed", "caption": f"post {i}", "media": [f"https://cdn.example.kz/{i}.jpg"],
                      "scheduled_at": when, "status": "scheduled", "created_at": now, "updated_at": now,
                      "publish_step": 0, "publish_polls": 0})
        conns.append({"deal_id": deal, "ig_user_id": ig, "username": f"c{i}", "token_enc": token_enc,
                      "connected_by": "bench", "connected_at": now})
    async with db.transaction() as session:
        for model, rows in ((Account, accounts), (Period, periods), (Plan, plans), (PlanItem, items),
                            (InstagramAccount, conns)):
            for k in range(0, len(rows), 500):
                await session.execute(insert(model), rows[k:k + 500])
    async with db.transaction() as session:
        ctx = services.Ctx(session, clock, settings, services.SYSTEM)
        for item in (await session.execute(select(PlanItem))).scalars():
            await publishing.schedule_item(ctx, item)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    from content import publishing, services
    from content.models import PlanItem
    from graph_standin import GraphStandIn

    standin = GraphStandIn().start()
    os.environ["INSTAGRAM_GRAPH_URL"] = standin.url
    tmp = tempfile.mkdtemp()
    if args.sqlite:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
    else:
        import asyncpg

        base = normalize_database_url(os.environ.get("BENCH_DATABASE_URL",
                                                     "postgresql://postgres@127.0.0.1:5432/test"))
        name = f"bench_publish_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = scratch_url(base, name)
    clock = FixedClock(datetime(2026, 3, 2, 12, 0, tzinfo=TZ).astimezone(UTC))
    settings = make_settings("content", database_url=url)
    db = Database(url)
    try:
        await upgrade(db, "content")
        await load(db, settings, clock, args.items, standin)

        def make_ctx(session):
            return services.Ctx(session, clock, settings, services.SYSTEM, {})

        scheduler = Scheduler(db, publishing.timer_handlers(make_ctx), clock=clock)
        clock.set(datetime(2026, 3, 3, 10, 0, tzinfo=TZ).astimezone(UTC))
        began = time.perf_counter()
        await scheduler.run_due()
        took = time.perf_counter() - began
        async with db.transaction() as session:
            statuses = [s for (s,) in await session.execute(select(PlanItem.status))]
        posted = len(standin.state.posts)
        assert statuses.count("published") == args.items == posted, (statuses.count("published"), posted)
        kind = "SQLite" if args.sqlite else "PostgreSQL"
        print(f"{kind}: {args.items} items published in {took:.2f} s "
              f"({args.items / took:.1f} items/s, {took / args.items * 1000:.1f} ms per item; "
              f"{len(standin.state.requests)} Graph calls; each posted once)")
    finally:
        await db.dispose()
        standin.stop()


if __name__ == "__main__":
    asyncio.run(main())
