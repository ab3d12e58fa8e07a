"""Benchmark: 10,000 group SOP pushes materialised at the due minute on PostgreSQL, owners' counters answering
(issue 13, EN-11).

    uv run python bench/sop_materialise.py                          # 10,000 groups × 1 rule, 50 owners
    uv run python bench/sop_materialise.py --groups 2000 --rules 5  # 2,000 groups × 5 rules

Method: starts the engagement service as its own process (`python -m engagement`, the production entry point,
real clock) on a scratch PostgreSQL database (BENCH_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test),
bulk-loads (COPY) the groups spread over the owners and categories, then creates the rules through the API
(`POST /api/engagement/sop-rules`) for the next local minute at least 20 s away. From the due minute it polls every
owner's counter (`GET /api/engagement/pushes/count?owner=<login>`, the gateway's nav counter) until their sum is
every push: the figure is the time from the due minute to that moment. Goal (issue 13): ≤ 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from engagement_ingest import pg_scratch, plain, start  # noqa: E402

TOKEN = {"Authorization": "Bearer dev-token"}  # the integration token: it reads every owner's counter
TZ = ZoneInfo("Asia/Almaty")


async def load_groups(dsn: str, groups: int, owners: int, rules: int) -> None:
    now = datetime.now(UTC)
    rows = [(str(uuid.uuid4()), None, "manual", f"bench-{i}", f"Группа {i}", f"owner{i % owners:02d}",
             f"C{i % rules}", "[]", None, True, "hand", now, now) for i in range(groups * rules)]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table("sop_groups", records=rows, columns=[
            "id", "channel_id", "channel_kind", "external_id", "title", "owner", "category", "tags", "deal_id",
            "active", "source", "created_at", "updated_at"])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def due_minute() -> datetime:
    """The next local minute at least 20 s away (time to create the rules before it)."""
    at = (datetime.now(UTC) + timedelta(seconds=20)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return at


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=10_000, help="groups per rule")
    parser.add_argument("--rules", type=int, default=1)
    parser.add_argument("--owners", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sop-"))
    database_url, name = await pg_scratch()
    proc, url = start("engagement", {"DATABASE_URL": database_url, "ENGAGEMENT_WORKERS": "1"}, tmp)
    try:
        await load_groups(plain(database_url), args.groups, args.owners, args.rules)
        due = due_minute()
        local = due.astimezone(TZ)
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=TOKEN) as http:
            for r in range(args.rules):
                response = await http.post("/api/engagement/sop-rules", json={
                    "name": f"bench {r}", "target": {"category": f"C{r}"}, "time": local.strftime("%H:%M"),
                    "weekdays": [local.isoweekday()], "timezone": TZ.key, "mode": "manual",
                    "content": {"text": "Карточка знаний", "attachments": [
                        {"kind": "link", "url": "https://example.kz/card"}]}})
                assert response.status_code == 201, response.text
                assert response.json()["next_due_at"].startswith(due.strftime("%Y-%m-%dT%H:%M")), response.text
            total = args.groups * args.rules
            owners = [f"owner{i:02d}" for i in range(args.owners)]
            print(f"{args.groups * args.rules} groups, {args.rules} rule(s), {args.owners} owners; due at "
                  f"{due.isoformat()} ({local:%H:%M} {TZ.key})")
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            db = await asyncpg.connect(plain(database_url))
            committed = None
            while True:
                # one owner's counter, lightly (a storm of polls would starve the service it measures) …
                first = (await http.get("/api/engagement/pushes/count", params={"owner": owners[-1]})).json()
                if committed is None and await db.fetchval("SELECT count(*) FROM push_tasks"):
                    committed = (datetime.now(UTC) - due).total_seconds()
                    started = await db.fetchval("SELECT min(created_at) FROM push_tasks")
                    print(f"task committed {committed:.2f} s after the due minute (made from "
                          f"{(started - due).total_seconds():.2f} s)")
                if first["pending"]:
                    # … then every owner's counter at once
                    counts = await asyncio.gather(*(http.get("/api/engagement/pushes/count",
                                                             params={"owner": o}) for o in owners))
                    pending = sum(c.json()["pending"] for c in counts)
                    elapsed = (datetime.now(UTC) - due).total_seconds()
                    if pending >= total:
                        break
                if (datetime.now(UTC) - due).total_seconds() > 120:
                    raise RuntimeError("not every push after 120 s")
                await asyncio.sleep(0.2)
            await db.close()
        print(f"{pending} pushes materialised and every owner's counter answering {elapsed:.2f} s after the due "
              f"minute (goal ≤ 5 s)")
    finally:
        proc.terminate()
        proc.wait(10)
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
