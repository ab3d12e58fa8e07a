"""Issue 11: the channels' webhook addresses on the gateway reach the engagement service unchanged — raw body,
query string, and the channels' own authentication headers (`X-Hub-Signature-256`,
`X-Telegram-Bot-Api-Secret-Token`). Each test runs on the Litestar app and on what `python -m gateway` serves:
the app behind the plain-ASGI webhook relay (gateway.webhook_front)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gateway.app import create_app
from gateway.webhook_front import WebhookFront
from litestar.testing import AsyncTestClient

from .conftest import down_service_urls, gateway_settings
from .upstream import create_upstream


@pytest.fixture(params=["litestar", "front"])
async def proxy(request, live_server, tmp_path) -> AsyncIterator[AsyncTestClient]:
    upstream = live_server(create_upstream())
    urls = {**down_service_urls(), "engagement": upstream}
    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", service_urls=urls, demo=False)
    app = create_app(settings, background=False)
    async with AsyncTestClient(WebhookFront(app) if request.param == "front" else app,
                               base_url="http://127.0.0.1") as client:
        yield client


async def test_issue11_meta_handshake_and_delivery_reach_engagement_unchanged(proxy: AsyncTestClient) -> None:
    handshake = await proxy.get("/webhooks/instagram?hub.mode=subscribe&hub.challenge=1158201444"
                                "&hub.verify_token=meatyhamhock")
    assert handshake.status_code == 200
    seen = handshake.json()
    assert seen["method"] == "GET" and seen["raw_path"] == "/webhooks/instagram"
    assert seen["query"] == "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock"
    raw = b'{"object": "instagram",  "entry": [{"id": "1", "text": "\\u0430"}]}'
    delivery = await proxy.post("/webhooks/instagram", content=raw,
                                headers={"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=ab12"})
    seen = delivery.json()
    assert seen["raw_path"] == "/webhooks/instagram" and seen["body_text"] == raw.decode()
    assert seen["headers"]["x-hub-signature-256"] == "sha256=ab12"


async def test_issue11_telegram_and_vk_webhooks_reach_engagement_with_their_secret(proxy: AsyncTestClient) -> None:
    telegram = await proxy.post("/webhooks/telegram/ch-1", content=b'{"update_id": 1}',
                                headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret"})
    seen = telegram.json()
    assert seen["raw_path"] == "/webhooks/telegram/ch-1"
    assert seen["headers"]["x-telegram-bot-api-secret-token"] == "tg-secret"
    vk = await proxy.post("/webhooks/vk/ch-2", content=b'{"type": "confirmation"}')
    assert vk.json()["raw_path"] == "/webhooks/vk/ch-2"
    assert (await proxy.post("/webhooks/myspace", content=b"{}")).status_code == 404


def test_only_the_channels_webhook_posts_take_the_relay() -> None:
    from gateway.webhook_front import is_channel_webhook

    assert is_channel_webhook("/webhooks/instagram") and is_channel_webhook("/webhooks/telegram/ch-1")
    assert is_channel_webhook("/webhooks/vk/ch-2")
    for other in ("/webhooks/instagram/x", "/webhooks/telegram", "/webhooks/telegram/", "/webhooks/vk/a/b",
                  "/webhooks/clients/payments", "/webhooks/myspace", "/inbox", "/api/engagement/channels"):
        assert not is_channel_webhook(other), other


async def test_the_relay_answers_503_when_engagement_is_away_so_the_channel_retries(tmp_path) -> None:
    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", service_urls=down_service_urls(),
                                demo=False)
    async with AsyncTestClient(WebhookFront(create_app(settings, background=False)),
                               base_url="http://127.0.0.1") as client:
        answer = await client.post("/webhooks/telegram/ch-1", content=b'{"update_id": 1}')
        assert answer.status_code == 503 and answer.headers["x-content-type-options"] == "nosniff"
