"""Issue 11 benchmark mechanisms (engagement.ingest): the group commit of delivery rows and the plain-ASGI
webhook front. Concurrent deliveries are all stored, each answered only once ITS row is committed; a batch that
cannot be committed answers 503 for exactly its own deliveries; the front answers as the Litestar routes do."""

from __future__ import annotations

import asyncio
import json

import httpx
from engagement.inbound import delivery_writer
from engagement.ingest import StoreFailed, WebhookFront
from engagement.models import Delivery, Message
from sqlalchemy import select, text

from .payloads import IG_CONFIG, TG_CONFIG, VK_CONFIG, meta_batch, meta_signature, tg_private, vk_message


async def _keys(db) -> set[str]:
    async with db.sessionmaker() as session:
        return set((await session.execute(select(Delivery.dedupe_key))).scalars())


async def test_issue11_concurrent_deliveries_are_committed_in_batches_each_answered_after_its_row(api_any) -> None:
    api = api_any
    channel = await api.channel("telegram", TG_CONFIG)

    async def burst() -> tuple[list[bool], list[bool], int]:
        state = api.app.state
        writer = delivery_writer(state)
        db = state.runtime.db
        batches_before = writer.batches
        seen_after_answer: list[bool] = []

        async def one(n: int) -> bool:
            key = f"telegram:{channel['id']}:{n}"
            new = await writer.store(kind="telegram", channel_id=channel["id"], dedupe_key=key,
                                     body=json.dumps(tg_private(update_id=n, user_id=1000 + n)).encode())
            seen_after_answer.append(key in await _keys(db))   # durable (visible to another session) when answered
            return new

        # 60 deliveries at once, update 7 three times (a redelivery racing the first one)
        results = await asyncio.gather(*(one(n) for n in [*range(1, 61), 7, 7]))
        return results, seen_after_answer, writer.batches - batches_before

    results, seen, batches = api.in_app(burst)
    assert all(seen) and len(seen) == 62
    assert sum(results) == 60 and results[:60] == [True] * 60 and results[60:] == [False, False]
    assert batches < 60 / 2, "deliveries arriving together are committed together"
    assert await api.count(Delivery) == 60
    await api.process()
    assert await api.count(Message) == 60


async def test_issue11_a_batch_that_cannot_be_committed_answers_503_for_exactly_its_deliveries(api_any) -> None:
    api = api_any
    channel = await api.channel("telegram", TG_CONFIG)
    path = f"/webhooks/telegram/{channel['id']}"
    secret = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
    db = api.runtime.db

    async def rename(a: str, b: str) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {a} RENAME TO {b}"))

    assert (await api.webhook(path, tg_private(update_id=1), secret)).status_code == 200
    api.in_app(rename, "deliveries", "deliveries_away")   # a real failure of the database statement

    async def failing() -> list[object]:
        writer = delivery_writer(api.app.state)
        return await asyncio.gather(*(writer.store(kind="telegram", channel_id=channel["id"],
                                                   dedupe_key=f"telegram:{channel['id']}:{n}", body=b"{}")
                                      for n in range(10, 20)), return_exceptions=True)

    outcomes = api.in_app(failing)
    assert all(isinstance(o, StoreFailed) for o in outcomes)
    refused = await api.webhook(path, tg_private(update_id=2), secret)
    assert refused.status_code == 503 and "not stored" in refused.text
    api.in_app(rename, "deliveries_away", "deliveries")
    # the next batch stores again, and the refused delivery, sent again by the channel, is new
    assert (await api.webhook(path, tg_private(update_id=2), secret)).status_code == 200
    assert (await api.webhook(path, tg_private(update_id=3), secret)).status_code == 200
    keys = api.in_app(_keys, db)
    assert keys == {f"telegram:{channel['id']}:{n}" for n in (1, 2, 3)}


async def test_issue11_the_webhook_front_answers_as_the_routes_do(api_any) -> None:
    api = api_any
    tg = await api.channel("telegram", TG_CONFIG)
    vk = await api.channel("vk", VK_CONFIG, deal_id="deal-2")
    await api.channel("instagram", IG_CONFIG, deal_id="deal-3")
    front = WebhookFront(api.app)
    tg_path = f"/webhooks/telegram/{tg['id']}"
    secret = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"], "Content-Type": "application/json"}
    body = json.dumps(tg_private()).encode()
    ig_body = json.dumps(meta_batch(messaging=[])).encode()

    async def calls() -> list[tuple[int, str]]:
        out = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=front), base_url="http://front") as http:
            for method, path, content, headers in [
                ("POST", tg_path, body, secret),                                          # 200 ok
                ("POST", tg_path, body, secret),                                          # redelivery: 200 ok
                ("POST", tg_path, body, {}),                                              # 401
                ("POST", tg_path, body, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}),   # 403
                ("POST", "/webhooks/telegram/nope", body, secret),                        # 404
                ("POST", tg_path, b"not json", secret),                                   # 400
                ("POST", tg_path, b"x" * (front.max_body + 1), secret),                   # 413
                ("POST", f"/webhooks/vk/{vk['id']}", json.dumps(vk_message(VK_CONFIG["secret"])).encode(), {}),
                ("POST", f"/webhooks/vk/{vk['id']}", json.dumps({"type": "confirmation", "group_id": 171104414,
                                                                   "secret": VK_CONFIG["secret"]}).encode(), {}),
                ("POST", "/webhooks/instagram", ig_body, {"X-Hub-Signature-256": meta_signature(ig_body)}),
                ("POST", "/webhooks/instagram", ig_body, {"X-Hub-Signature-256": "sha256=00"}),
                ("GET", "/health/live", b"", {}),                                         # not a webhook: Litestar
            ]:
                r = await http.request(method, path, content=content, headers=headers)
                assert r.status_code >= 400 or r.headers["content-type"].startswith(("text/plain", "application/json"))
                out.append((r.status_code, r.text))
        return out

    got = api.in_app(calls)
    assert [s for s, _ in got] == [200, 200, 401, 403, 404, 400, 413, 200, 200, 200, 403, 200]
    assert got[0][1] == "ok" and got[7][1] == "ok" and got[8][1] == VK_CONFIG["confirmation"]
    assert got[9][1] == "EVENT_RECEIVED"
    assert await api.count(Delivery) == 3   # telegram once, vk, instagram
    await api.process()
    assert await api.count(Message) == 2


async def test_issue11_the_list_total_is_counted_up_to_the_cap(api_any, monkeypatch) -> None:
    """X-Total-Count never counts past services.COUNT_CAP (1,000; 3 here): above it, the cap and
    X-Total-Count-Capped; on a last page the total is known without counting; paging goes on past the cap."""
    from engagement import services

    api = api_any
    monkeypatch.setattr(services, "COUNT_CAP", 3)
    channel = await api.channel("telegram", TG_CONFIG)
    secret = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
    for n in range(1, 6):
        assert (await api.webhook(f"/webhooks/telegram/{channel['id']}", tg_private(update_id=n, user_id=100 + n),
                                  secret)).status_code == 200
    await api.process()
    first = await api.get("/conversations", limit=2)
    assert first.headers["x-total-count"] == "3" and first.headers["x-total-count-capped"] == "true"
    last = await api.get("/conversations", limit=2, offset=4)
    assert len(last.json()) == 1 and last.headers["x-total-count"] == "5" and "x-total-count-capped" not in last.headers
    exact = await api.get("/conversations", limit=2, q="нет такого")
    assert exact.json() == [] and exact.headers["x-total-count"] == "0"
    beyond = await api.get("/conversations", limit=2, offset=10)
    assert beyond.json() == [] and beyond.headers["x-total-count"] == "3" and "x-total-count-capped" in beyond.headers
