"""Benchmark: the agents' care report over a month of 1,000,000 messages on PostgreSQL (issue 12, EN-3/EN-6).

    uv run python bench/care_report.py                       # 1,000,000 messages, 60 agents, 30 days
    uv run python bench/care_report.py --messages 200000     # a smaller month

Method: starts the engagement service as its own process (`python -m engagement`, the production entry point) on
a scratch PostgreSQL database (BENCH_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test), then bulk-loads
(COPY) one month as the service itself would have stored it: conversations, their messages (3–4 per
conversation, in and out), one response fact per first and next answer and per resolution, the per-agent-per-day
rows summed from those facts, and a few quality marks. Then times `GET /api/engagement/reports/agents` for the
whole month (all agents), for one client account, and for one agent's own line, 20 times each: p50 / p95 / max.
Goal (issue 12): ≤ 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from engagement_ingest import pct, pg_scratch, start  # noqa: E402

TOKEN = {"Authorization": "Bearer dev-token"}  # the integration token: it reads every agent's line

MONTH = date(2026, 11, 1)


def rows(n_messages: int, agents: int, accounts: int, seed: int = 7):
    rnd = random.Random(seed)
    conversations, messages, facts = [], [], []
    agent_days: dict[tuple, list[int]] = defaultdict(lambda: [0] * 7)
    made = 0
    while made < n_messages:
        cid = str(uuid.uuid4())
        account = f"deal-{rnd.randrange(accounts)}"
        kind = rnd.choice(("instagram", "telegram", "vk"))
        agent = f"agent{rnd.randrange(agents):02d}"
        opened = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=rnd.randrange(30 * 86400 - 7200))
        first = rnd.randint(20, 900)
        nxt = rnd.randint(20, 600)
        times = [opened, opened + timedelta(seconds=first), opened + timedelta(seconds=first + 300),
                 opened + timedelta(seconds=first + 300 + nxt)]
        n = rnd.choice((3, 4))
        for i in range(n):
            direction = "in" if i % 2 == 0 else "out"
            messages.append((str(uuid.uuid4()), cid, "bench-channel", direction, i + 1, "текст сообщения", times[i],
                             agent if direction == "out" else "Анна", "{}", 0, "{}", times[i]))
        made += n
        conversations.append((cid, "bench-channel", kind, "tg_chat", cid, account, "resolved", "Анна", "@anna", "{}",
                              "последнее", "out", times[n - 1], 0, "анна", opened))
        day = (opened + timedelta(hours=5)).date()
        facts.append((cid, "first", opened, times[1], day, agent, account, kind, first, first, first <= 420))
        bucket = agent_days[(agent, day, account, kind)]
        bucket[0] += 1                 # answered
        bucket[2] += (n // 2)          # messages sent
        bucket[3] += 1
        bucket[4] += first
        bucket[5] += first
        bucket[6] += first <= 420
        if n == 4:
            facts.append((cid, "next", times[2], times[3], day, agent, account, kind, nxt, nxt, nxt <= 420))
        facts.append((cid, "resolution", opened, times[n - 1], day, agent, account, kind,
                      int((times[n - 1] - opened).total_seconds()), int((times[n - 1] - opened).total_seconds()), True))
        bucket[1] += 1                 # resolved
    days = [(a, d, acc, k, *v) for (a, d, acc, k), v in agent_days.items()]
    return conversations, messages, facts, days


async def load(dsn: str, n_messages: int, agents: int, accounts: int) -> dict[str, int]:
    conversations, messages, facts, days = rows(n_messages, agents, accounts)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("""INSERT INTO channels (id, kind, name, account, external_id, config, secrets, active,
                              created_at, created_by) VALUES ('bench-channel', 'telegram', 'bench', 'deal-0', '',
                              '{}', '\\x00', true, now(), 'bench')""")
        await conn.copy_records_to_table("conversations", records=conversations, columns=[
            "id", "channel_id", "kind", "thread_kind", "thread_key", "account", "status", "customer_name",
            "customer_handle", "reply_target", "last_text", "last_direction", "last_activity_at", "paused_seconds",
            "search_text", "created_at"])
        await conn.copy_records_to_table("messages", records=messages, columns=[
            "id", "conversation_id", "channel_id", "direction", "seq", "text", "at", "author", "raw", "attempts",
            "target", "created_at"])
        await conn.copy_records_to_table("response_facts", records=facts, columns=[
            "conversation_id", "kind", "started_at", "ended_at", "day", "agent", "account", "channel_kind", "wall_s",
            "business_s", "within_target"])
        await conn.copy_records_to_table("agent_days", records=days, columns=[
            "agent", "day", "account", "channel_kind", "answered", "resolved", "messages_sent", "first_count",
            "first_wall_sum", "first_business_sum", "within_target"])
        marks = [(c[0], "senior1", f"agent{i % agents:02d}", MONTH + timedelta(days=i % 30), 1 + i % 5, "",
                  datetime.now(UTC)) for i, c in enumerate(conversations[:2000])]
        await conn.copy_records_to_table("quality_marks", records=marks, columns=[
            "conversation_id", "marked_by", "agent", "day", "score", "note", "marked_at"])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return {"conversations": len(conversations), "messages": len(messages), "facts": len(facts),
            "agent_days": len(days)}


async def time_report(url: str, params: dict[str, str], runs: int = 20) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for _ in range(runs):
            t0 = time.perf_counter()
            response = await http.get("/api/engagement/reports/agents", params=params, headers=TOKEN)
            out.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.text
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=60)
    parser.add_argument("--accounts", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-care-report-"))
    database_url, name = await pg_scratch()
    proc, url = start("engagement", {"DATABASE_URL": database_url, "ENGAGEMENT_WORKERS": "1"}, tmp)
    try:
        t0 = time.perf_counter()
        counts = await load(database_url.replace("postgresql+asyncpg://", "postgresql://"), args.messages,
                            args.agents, args.accounts)
        print(f"loaded {counts} in {time.perf_counter() - t0:.0f} s")
        month = {"from": "2026-11-01", "to": "2026-11-30"}
        for label, params in (("all agents, month", month), ("one account, month", {**month, "account": "deal-3"})):
            lat = await time_report(url, params)
            print(f"report ({label}): p50 {pct(lat, .5) * 1000:.0f} ms, p95 {pct(lat, .95) * 1000:.0f} ms, "
                  f"max {max(lat) * 1000:.0f} ms")
    finally:
        proc.terminate()
        proc.wait(10)
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
