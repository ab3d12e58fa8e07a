"""Benchmark: the care inbox's list and conversation API at scale (issue 11: p95 ≤ 150 ms with 100,000
conversations and 1,000,000 messages on PostgreSQL).

    uv run python bench/inbox_scale.py                                   # scratch database: migrate, seed, measure, drop
    uv run python bench/inbox_scale.py --keep                            # … and keep it (its URL is printed)
    uv run python bench/inbox_scale.py --database-url postgresql://postgres@127.0.0.1:5432/bench_inbox --no-seed
    uv run python bench/inbox_scale.py --gateway-url http://127.0.0.1:8000 --cookie 'zabota_session=…' \\
        --page '/inbox?status=open' --page '/inbox?q=возврат'            # time the gateway's pages too (hook)
Options: --conversations (100000), --messages (1000000), --rounds, --concurrency, --workers.
PostgreSQL: BENCH_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test for the scratch database.

Method:
  seed    — the service (`python -m engagement`, production entry point) migrates a scratch database; the seeder
            then COPYs (asyncpg `copy_records_to_table`) 40 channel accounts of 20 client accounts, the
            conversations (statuses open 30 % / waiting for the client 10 % / resolved 60 %, 20 % unassigned, the
            rest over 20 agents, activity spread over a year, 30 % with a tag), their messages (1 to 19 each,
            10 on average, in and out) and care agent `agent1` serving 2 accounts; then VACUUM ANALYZE.
  measure — `--concurrency` clients (httpx, keep-alive) each run `--rounds` rounds of the inbox's requests: the
            list as the lead (all, each status, unassigned, an agent's, a channel kind, one channel, a tag, a
            search for a word, for a rare handle, combined filters, page 20) and as care agent agent1
            (the accounts they serve; mine), and a conversation with its messages; p50/p95/max per request
            and over all; every answer must be 200 and every list's X-Total-Count must be present.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from shared.settings import normalize_database_url
from shared.testing import default_settings, free_port, staff_headers

KINDS = [("telegram", "tg_chat"), ("vk", "vk_dialog"), ("instagram", "ig_direct"), ("instagram", "ig_comments")]
STATUSES = ["open"] * 3 + ["waiting_client"] + ["resolved"] * 6
NAMES = ["Анна", "Иван", "Айгерим", "Ержан", "Мария", "Дмитрий", "Ольга", "Асель", "Сергей", "Динара", "Li Wei",
         "Tom", "Nurlan", "Екатерина", "Алексей"]
WORDS = ["заказ", "доставка", "возврат", "скидка", "акция", "размер", "оплата", "курьер", "подарок", "коллекция",
         "магазин", "сертификат", "бонус", "карта", "отзыв", "цена", "наличие", "примерка", "обмен", "гарантия"]
TAGS = ["vip", "delivery", "refund", "complaint", "promo", "wholesale", "press", "repeat", "lead", "urgent"]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def pg_base() -> str:
    return normalize_database_url(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))


def plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_service(database_url: str, var: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env.update({"ENGAGEMENT_DATABASE_URL": database_url, "ENGAGEMENT_PORT": str(port), "ZABOTA_VAR_DIR": str(var),
                "ZABOTA_DEMO": "1", "NATS_URL": f"nats://127.0.0.1:{free_port()}"})
    if workers:
        env["ENGAGEMENT_WORKERS"] = str(workers)
    log = var / "engagement.log"
    proc = subprocess.Popen([sys.executable, "-m", "engagement"], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("engagement did not start")


async def seed(dsn: str, conversations: int, messages: int) -> dict[str, object]:
    """COPY the inbox in; returns what the measurement needs (ids, a channel, a rare handle)."""
    rnd = random.Random(11)
    conn = await asyncpg.connect(dsn)
    t0 = time.perf_counter()
    accounts = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(20)]
    channels = []
    for i in range(40):
        kind, thread_kind = KINDS[i % len(KINDS)]
        channels.append((str(uuid.UUID(int=rnd.getrandbits(128))), kind, thread_kind, accounts[i % 20]))
    await conn.copy_records_to_table("channels", columns=[
        "id", "kind", "name", "deal_id", "account", "external_id", "config", "secrets", "webhook_secret_digest",
        "active", "created_at", "created_by"], records=[
        (cid, kind, f"{kind} {n}", account, account, str(n), "{}", b"-", None, True, NOW, "bench")
        for n, (cid, kind, _, account) in enumerate(channels)])
    await conn.copy_records_to_table("staff_accounts", columns=["login", "account", "created_at", "created_by"],
                                     records=[("agent1", accounts[0], NOW, "bench"), ("agent1", accounts[1], NOW,
                                                                                       "bench")])
    per = [1 + (i * 7919) % 19 for i in range(conversations)]       # 1..19 messages, 10 on average
    scale = messages / max(1, sum(per))
    conv_ids: list[str] = []
    conv_rows, tag_rows = [], []
    message_rows: list[tuple] = []
    made_messages = 0
    columns_m = ["id", "conversation_id", "channel_id", "direction", "seq", "text", "at", "author", "external_id",
                 "raw", "delivery", "error", "attempts", "next_attempt_at", "target", "sent_at", "created_at"]

    async def flush_messages() -> None:
        nonlocal message_rows
        if message_rows:
            await conn.copy_records_to_table("messages", columns=columns_m, records=message_rows)
            message_rows = []

    for i in range(conversations):
        cid, kind, thread_kind, account = channels[i % len(channels)]
        conv = str(uuid.UUID(int=rnd.getrandbits(128)))
        conv_ids.append(conv)
        name = f"{rnd.choice(NAMES)} {i}"
        handle = f"@user{i}"
        n = max(1, round(per[i] * scale))
        last = NOW - timedelta(seconds=rnd.randrange(365 * 86400))
        first = last - timedelta(minutes=30 * n)
        status = rnd.choice(STATUSES)
        assignee = None if rnd.random() < 0.2 else f"agent{rnd.randrange(1, 21)}"
        texts = [f"{rnd.choice(WORDS)} {rnd.choice(WORDS)} {rnd.choice(WORDS)} №{rnd.randrange(100000)}"
                 for _ in range(n)]
        last_dir = "out" if status == "resolved" else "in"
        for s in range(n):
            direction = last_dir if s == n - 1 else ("in" if s % 2 == 0 else "out")
            at = first + timedelta(minutes=30 * (s + 1))
            message_rows.append((
                str(uuid.UUID(int=rnd.getrandbits(128))), conv, cid, direction, s + 1, texts[s], at,
                name if direction == "in" else assignee or "agent1", f"{i}:{s}" if direction == "in" else None,
                "{}", None if direction == "in" else "sent", None, 0, None, "{}",
                at if direction == "out" else None, at))
        made_messages += n
        conv_rows.append((conv, cid, kind, thread_kind, f"t:{i}", account, account, status, assignee, name, handle,
                          "{}", None, texts[-1], last_dir, last, first, first, first + timedelta(minutes=30), 0,
                          f"{name} {handle} {texts[-1]}".lower(), first))
        if rnd.random() < 0.3:
            tag_rows.append((conv, rnd.choice(TAGS)))
        if len(conv_rows) >= 20_000:
            await conn.copy_records_to_table("conversations", columns=CONV_COLUMNS, records=conv_rows)
            conv_rows = []
            await flush_messages()
            print(f"  seeded {i + 1} conversations, {made_messages} messages ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
    if conv_rows:
        await conn.copy_records_to_table("conversations", columns=CONV_COLUMNS, records=conv_rows)
    await flush_messages()
    await conn.copy_records_to_table("conversation_tags", columns=["conversation_id", "tag"], records=tag_rows)
    await conn.execute("VACUUM ANALYZE")   # the steady state autovacuum keeps (visibility map, statistics)
    await conn.close()
    print(f"seeded {conversations} conversations, {made_messages} messages, {len(tag_rows)} tags "
          f"in {time.perf_counter() - t0:.0f} s (COPY)")
    return {"ids": conv_ids, "channel": channels[0][0], "rare": f"@user{conversations // 2}"}


CONV_COLUMNS = ["id", "channel_id", "kind", "thread_kind", "thread_key", "account", "deal_id", "status", "assignee",
                "customer_name", "customer_handle", "reply_target", "unreachable", "last_text", "last_direction",
                "last_activity_at", "last_inbound_at", "waiting_since", "first_answered_at", "paused_seconds",
                "search_text", "created_at"]


async def existing(dsn: str) -> dict[str, object]:
    conn = await asyncpg.connect(dsn)
    ids = [r[0] for r in await conn.fetch("SELECT id FROM conversations ORDER BY random() LIMIT 5000")]
    channel = await conn.fetchval("SELECT id FROM channels ORDER BY id LIMIT 1")
    n = await conn.fetchval("SELECT count(*) FROM conversations")
    await conn.close()
    return {"ids": ids, "channel": channel, "rare": f"@user{n // 2}"}


def requests_(data: dict[str, object]) -> list[tuple[str, str, dict[str, object], str]]:
    """(name, path, params, who) — who: lead | agent."""
    lst = "/api/engagement/conversations"
    return [
        ("list all", lst, {}, "lead"),
        ("list open", lst, {"status": "open"}, "lead"),
        ("list waiting_client", lst, {"status": "waiting_client"}, "lead"),
        ("list resolved", lst, {"status": "resolved"}, "lead"),
        ("list unassigned", lst, {"assignee": "none"}, "lead"),
        ("list of agent7", lst, {"assignee": "agent7"}, "lead"),
        ("list kind vk", lst, {"channel": "vk"}, "lead"),
        ("list one channel", lst, {"channel": data["channel"]}, "lead"),
        ("list tag vip", lst, {"tag": "vip"}, "lead"),
        ("search word", lst, {"q": "возврат"}, "lead"),
        ("search rare handle", lst, {"q": data["rare"]}, "lead"),
        ("open+vk+unassigned", lst, {"status": "open", "channel": "vk", "assignee": "none"}, "lead"),
        ("open+tag+search", lst, {"status": "open", "tag": "refund", "q": "доставка"}, "lead"),
        ("list page 20", lst, {"offset": 950, "limit": 50}, "lead"),
        ("agent1 all", lst, {}, "agent"),
        ("agent1 mine", lst, {"assignee": "me"}, "agent"),
        ("agent1 open", lst, {"status": "open"}, "agent"),
        ("conversation", "/api/engagement/conversations/{id}", {}, "lead"),
    ]


async def measure(url: str, data: dict[str, object], rounds: int, concurrency: int) -> dict[str, list[float]]:
    secret = default_settings("engagement").gateway_secret
    who = {"lead": staff_headers("aliya", "lead", secret, service="engagement"),
           "agent": staff_headers("agent1", "care_agent", secret, service="engagement")}
    ids = list(data["ids"])    # type: ignore[arg-type]
    out: dict[str, list[float]] = {}
    rnd = random.Random(5)

    async def client(k: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            for r in range(rounds):
                reqs = requests_(data)
                rnd.shuffle(reqs)
                for name, path, params, actor in reqs:
                    if "{id}" in path:
                        path = path.replace("{id}", rnd.choice(ids))
                    t0 = time.perf_counter()
                    response = await http.get(path, params=params, headers=who[actor])
                    elapsed = time.perf_counter() - t0
                    assert response.status_code == 200, (name, response.status_code, response.text[:300])
                    if name != "conversation":
                        assert "x-total-count" in response.headers
                    if r > 0 or rounds == 1:      # the first round warms caches and prepared statements
                        out.setdefault(name, []).append(elapsed)

    await asyncio.gather(*(client(k) for k in range(concurrency)))
    return out


async def pages(gateway: str, cookie: str, paths: list[str], rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=gateway, timeout=60, headers={"Cookie": cookie}) as http:
        for _ in range(rounds):
            for path in paths:
                t0 = time.perf_counter()
                response = await http.get(path)
                assert response.status_code == 200, (path, response.status_code)
                out.setdefault(path, []).append(time.perf_counter() - t0)
    return out


async def gateway_pages(engagement_url: str, data: dict[str, object], rounds: int,
                        var: Path) -> dict[str, list[float]]:
    """The inbox pages themselves: the gateway (in this process, as `bench/board.py` runs it) in front of the
    engagement service, signed in as the demo lead and as agent1; HTML rendered, every answer 200."""
    import re

    from gateway.app import create_app
    from litestar.testing import AsyncTestClient
    from shared.testing import make_settings

    settings = make_settings("gateway", database_url=f"sqlite+aiosqlite:///{var / 'gateway.db'}", demo=True,
                             service_urls={"engagement": engagement_url, "clients": "http://127.0.0.1:9",
                                           "content": "http://127.0.0.1:9", "payroll": "http://127.0.0.1:9"})
    rnd = random.Random(7)
    ids = list(data["ids"])    # type: ignore[arg-type]
    out: dict[str, list[float]] = {}
    paths = {"lead": [("page /inbox", "/inbox?view=all"), ("page /inbox open", "/inbox?view=all&status=open"),
                      ("page /inbox search", "/inbox?view=all&q=%D0%B2%D0%BE%D0%B7%D0%B2%D1%80%D0%B0%D1%82"),
                      ("page /inbox/{id}", "/inbox/{id}")],
             "agent1": [("page /inbox (agent1)", "/inbox"), ("page /inbox/{id} (agent1)", "")]}
    async with AsyncTestClient(create_app(settings, background=False), base_url="http://127.0.0.1") as client:
        for login, wanted in paths.items():
            client.cookies.clear()
            form = await client.get("/login")
            csrf = re.search(r'name="_csrf" value="([^"]+)"', form.text).group(1)
            signed = await client.post("/login", data={"login": login, "password": "demo", "_csrf": csrf,
                                                       "next": "/"}, follow_redirects=False)
            assert signed.status_code == 303, signed.text[:300]
            mine = ids
            for r in range(rounds):
                for name, path in wanted:
                    if not path:   # a conversation agent1 may open: one from their own list
                        listed = re.findall(r'href="/inbox/([0-9a-f-]{8,})"', (await client.get("/inbox")).text)
                        mine = listed or mine
                        path = "/inbox/{id}"
                    url = path.replace("{id}", rnd.choice(mine if login == "agent1" else ids))
                    t0 = time.perf_counter()
                    response = await client.get(url)
                    elapsed = time.perf_counter() - t0
                    assert response.status_code == 200, (name, url, response.status_code, response.text[:300])
                    assert "{id}" in path or 'href="/inbox/' in response.text, (name, "an empty list")
                    if r > 0:
                        out.setdefault(name, []).append(elapsed)
    return out


def report(title: str, samples: dict[str, list[float]]) -> None:
    print(title)
    every: list[float] = []
    for name, values in samples.items():
        every += values
        print(f"  {name:22s} n={len(values):4d}  p50 {pct(values, .5) * 1000:6.1f} ms  "
              f"p95 {pct(values, .95) * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms")
    print(f"  {'ALL':22s} n={len(every):4d}  p50 {pct(every, .5) * 1000:6.1f} ms  p95 {pct(every, .95) * 1000:6.1f} ms"
          f"  max {max(every) * 1000:6.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="", help="an existing database (seeded unless --no-seed)")
    parser.add_argument("--no-seed", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0, help="ENGAGEMENT_WORKERS (0: the service's default)")
    parser.add_argument("--no-pages", action="store_true", help="skip the gateway's inbox pages")
    parser.add_argument("--gateway-url", default="", help="also time gateway pages (with --cookie, --page)")
    parser.add_argument("--cookie", default="", help="the gateway session cookie, e.g. 'zabota_session=…'")
    parser.add_argument("--page", action="append", default=[], help="a gateway page path to time (repeatable)")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    drop = None
    if args.database_url:
        database_url = normalize_database_url(args.database_url)
    else:
        drop = f"bench_inbox_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(plain(pg_base()))
        await conn.execute(f'CREATE DATABASE "{drop}"')
        await conn.close()
        database_url = pg_base().rsplit("/", 1)[0] + "/" + drop
    print(f"database {database_url}; logs in {var}; load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    proc, url = start_service(database_url, var, args.workers)      # migrates the database
    try:
        if args.no_seed:
            data = await existing(plain(database_url))
        else:
            data = await seed(plain(database_url), args.conversations, args.messages)
        t0 = time.perf_counter()
        samples = await measure(url, data, args.rounds, args.concurrency)
        report(f"inbox API (PostgreSQL, {args.conversations} conversations / {args.messages} messages, "
               f"{args.concurrency} concurrent clients, {args.rounds} rounds in {time.perf_counter() - t0:.0f} s, "
               f"load average {os.getloadavg()[0]:.2f}):", samples)
        if not args.no_pages:
            report(f"gateway pages (HTML, one client, load average {os.getloadavg()[0]:.2f}):",
                   await gateway_pages(url, data, args.rounds, var))
        if args.gateway_url and args.page:
            report(f"gateway pages ({args.gateway_url}):", await pages(args.gateway_url, args.cookie, args.page,
                                                                       args.rounds))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if drop and not args.keep:
            conn = await asyncpg.connect(plain(pg_base()))
            await conn.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')
            await conn.close()
        elif drop:
            print(f"kept: --database-url {database_url} --no-seed")


if __name__ == "__main__":
    asyncio.run(main())
