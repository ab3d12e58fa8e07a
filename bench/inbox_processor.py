"""Benchmark: the care inbox's delivery processor alone (issue 11, webhook → visible) — messages/s.

    uv run python bench/inbox_processor.py [--messages 2000] [--threads 4] [--repeat 3]

Method: a scratch PostgreSQL database (BENCH_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test), the
engagement app in process (`create_app`, no background loops, no NATS: the outbox keeps the events), a
Telegram, a VK and an Instagram channel made through the API, and one care agent on shift serving the account
(so auto-assignment runs). N deliveries are stored through the webhook path's own group-commit writer
(`inbound.store_delivery`): 80 % Telegram private messages, 10 % VK messages, 10 % Instagram Direct, spread
over N/--per-thread threads (so most deliveries add to an existing conversation; the first of each thread makes
it) and 2 % redelivered with another update id / event id (a duplicate message: stored once). Then
`DeliveryProcessor.run_due()` is timed until nothing is due: messages/s = stored messages / seconds. --repeat
runs another round of N new deliveries on the same database (conversations now exist). Prints the load average
and how many runs of a batch went one by one (the set-based path failed). --lanes N sets the processor's lanes;
--profile prints cProfile's top calls of the processor's thread (BENCH_SORT=tottime for CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from shared.settings import normalize_database_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

TG_SECRET = "bench-secret-token"
VK_SECRET = "vk-bench-secret"
IG_USER = "17841474524784050"
APP_SECRET = "meta-app-secret"


def pg_base() -> str:
    return normalize_database_url(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))


def plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def tg(update_id: int, chat: int, message_id: int, at: int) -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": message_id, "date": at, "text": f"Здравствуйте, заказ {update_id} не пришёл",
        "from": {"id": chat, "is_bot": False, "first_name": "Anna", "username": f"user{chat}"},
        "chat": {"id": chat, "first_name": "Anna", "username": f"user{chat}", "type": "private"}}}).encode()


def vk(event_id: str, peer: int, cmid: int, at: int) -> bytes:
    return json.dumps({"type": "message_new", "object": {"message": {
        "date": at, "from_id": peer, "id": cmid, "out": 0, "attachments": [], "conversation_message_id": cmid,
        "peer_id": peer, "random_id": 0, "text": f"вопрос {cmid}"}}, "group_id": 171104414,
        "event_id": event_id, "v": "5.199", "secret": VK_SECRET}).encode()


def ig(mid: str, sender: int, at: int) -> bytes:
    return json.dumps({"object": "instagram", "entry": [{"id": IG_USER, "time": at * 1000, "messaging": [{
        "sender": {"id": str(sender)}, "recipient": {"id": IG_USER}, "timestamp": at * 1000,
        "message": {"mid": mid, "text": f"сообщение {mid}"}}]}]}).encode()


def deliveries(round_: int, n: int, per_thread: int, channels: dict[str, str]) -> list[dict]:
    out = []
    threads = max(1, n // per_thread)
    at = int(time.time()) - 60
    for i in range(n):
        key = round_ * 10_000_000 + i
        thread = 1000 + i % threads
        kind = "telegram" if i % 10 < 8 else ("vk" if i % 10 == 8 else "instagram")
        if kind == "telegram":
            body = tg(key, thread, key, at)
            out.append(dict(kind="telegram", channel_id=channels["telegram"],
                            dedupe_key=f"telegram:{channels['telegram']}:{key}", body=body))
        elif kind == "vk":
            body = vk(f"e{key}", thread, key, at)
            out.append(dict(kind="vk", channel_id=channels["vk"], dedupe_key=f"vk:{channels['vk']}:e{key}",
                            body=body))
        else:
            body = ig(f"m{key}", thread, at)
            out.append(dict(kind="instagram", channel_id=None,
                            dedupe_key="instagram:" + hashlib.sha256(body).hexdigest(), body=body))
        if i % 50 == 7 and kind == "telegram":   # a redelivery under another update id: the same message
            dup = json.loads(body)
            dup["update_id"] = key + 5_000_000
            out.append(dict(kind="telegram", channel_id=channels["telegram"],
                            dedupe_key=f"telegram:{channels['telegram']}:{key + 5_000_000}",
                            body=json.dumps(dup).encode()))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--per-thread", type=int, default=4, help="messages per conversation (on average)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds on the same database")
    parser.add_argument("--profile", action="store_true", help="print the processor's top cumulative calls")
    parser.add_argument("--lanes", type=int, default=0, help="the processor's lanes (0: its default, 4)")
    args = parser.parse_args()

    from engagement.app import create_app
    from engagement.config import ChannelSettings
    from engagement.inbound import store_delivery
    from litestar.testing import AsyncTestClient
    from shared.clock import SystemClock
    from shared.testing import make_settings, staff_headers

    name = f"bench_proc_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(plain(pg_base()))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = pg_base().rsplit("/", 1)[0] + "/" + name
    os.environ.setdefault("ZABOTA_VAR_DIR", f"/tmp/{name}")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) before, {os.cpu_count()} cores; database {name}")
    try:
        settings = make_settings("engagement", database_url=url)
        channels_settings = ChannelSettings(meta_app_secret=APP_SECRET, meta_verify_token="x",
                                            instagram_graph_url="http://127.0.0.1:1/graph",
                                            telegram_api_url="http://127.0.0.1:1/tg",
                                            vk_api_url="http://127.0.0.1:1/vk/method",
                                            public_url="https://zabota.example", http_timeout_seconds=5.0)
        app = create_app(settings=settings, clock=SystemClock(), background=False, channels=channels_settings)
        lead = staff_headers("aliya", "lead", settings)
        async with AsyncTestClient(app) as client:
            made = {}
            for kind, config in (("telegram", {"bot_token": "1:x", "secret_token": TG_SECRET}),
                                 ("vk", {"group_id": 171104414, "access_token": "vk1.a.x", "secret": VK_SECRET,
                                         "confirmation": "abc"}),
                                 ("instagram", {"ig_user_id": IG_USER, "access_token": "IGx"})):
                r = await client.post("/api/engagement/channels", headers=lead, json={
                    "kind": kind, "name": kind, "deal_id": "deal-1", "config": config})
                assert r.status_code == 201, r.text
                made[kind] = r.json()["id"]
            r = await client.put("/api/engagement/staff/anna/accounts", headers=lead,
                                 json={"accounts": ["deal-1"]})
            assert r.status_code in (200, 201), r.text
            r = await client.put("/api/engagement/agents/anna", headers=lead, json={"on_shift": True})
            assert r.status_code in (200, 201), r.text
            portal = client.blocking_portal
            processor = app.state.runtime.state["processor"]
            if args.lanes:
                processor.lanes = args.lanes
            for round_ in range(args.repeat):
                batch = deliveries(round_, args.messages, args.per_thread, made)

                async def store(batch=batch) -> None:
                    await asyncio.gather(*(store_delivery(app.state, **d) for d in batch))

                portal.call(store)
                profiler = None
                if args.profile:
                    import cProfile
                    profiler = cProfile.Profile()

                async def run_due(profiler: Any = profiler) -> int:
                    # the app's event loop runs in the portal's thread: profile there
                    if profiler is not None:
                        profiler.enable()
                    try:
                        return await processor.run_due()
                    finally:
                        if profiler is not None:
                            profiler.disable()

                t0 = time.perf_counter()
                done = portal.call(run_due)
                seconds = time.perf_counter() - t0
                if profiler is not None:
                    import pstats
                    pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(45)
                db = await asyncpg.connect(plain(url))
                messages = await db.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'")
                failed = await db.fetchval("SELECT count(*) FROM deliveries WHERE processed_at IS NULL")
                convs = await db.fetchval("SELECT count(*) FROM conversations")
                await db.close()
                print(f"round {round_ + 1}: {len(batch)} deliveries ({args.messages} messages) processed "
                      f"({done} claimed) in {seconds:.2f} s = {args.messages / seconds:.0f} messages/s; "
                      f"messages now {messages}, conversations {convs}, unprocessed {failed}; "
                      f"runs that went one by one {getattr(processor, 'fallbacks', '-')}; load average {os.getloadavg()[0]:.2f}")
    finally:
        conn = await asyncpg.connect(plain(pg_base()))
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
