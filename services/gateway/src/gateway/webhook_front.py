"""The channels' webhooks through the gateway, without the framework (issue 11: webhook ingest ≥ 2,000 req/s).

The gateway is the one public entry (DESIGN), so Meta, Telegram and VK post to it. Through the Litestar route
(proxy.py) a delivery paid for the session and CSRF middleware, the security headers, an OpenTelemetry span,
the metrics and a streamed answer: ~90 deliveries/s on 2 cores (`bench/engagement_ingest.py --gateway`,
2026-12-02). These requests carry no person — engagement authenticates them by the channel's signature or
secret — so `POST /webhooks/instagram`, `/webhooks/telegram/{id}` and `/webhooks/vk/{id}` are relayed here as
plain ASGI: the raw body and the channel's authentication headers to engagement over a pooled aiohttp client
of its own (httpx, instrumented for tracing, cost ~3× the CPU per request), its status, body and content type
back. Everything else (Meta's `GET` handshake, other services'
webhooks, pages, the API) goes to Litestar unchanged. Engagement unreachable → 503, so the channel retries.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from shared.asgi import BodyTooLarge, Disconnected, read_body, send_answer

from gateway.proxy import CHANNEL_WEBHOOKS, MAX_BODY
from gateway.service_client import service_url

log = logging.getLogger(__name__)

FORWARDED = (b"content-type", b"x-hub-signature-256", b"x-telegram-bot-api-secret-token", b"traceparent")
TIMEOUT = aiohttp.ClientTimeout(total=30, connect=3)   # the channels give up after 5–30 s anyway


def is_channel_webhook(path: str) -> bool:
    """`/webhooks/instagram`, `/webhooks/telegram/{id}`, `/webhooks/vk/{id}`."""
    parts = path.split("/")
    if len(parts) < 3 or parts[1] != "webhooks" or parts[2] not in CHANNEL_WEBHOOKS:
        return False
    return len(parts) == 3 if parts[2] == "instagram" else len(parts) == 4 and bool(parts[3])


class WebhookFront:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._session: aiohttp.ClientSession | None = None
        app.on_shutdown.append(self.close)

    async def close(self, *_: Any) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200, limit_per_host=200, keepalive_timeout=30),
                timeout=TIMEOUT, auto_decompress=False, skip_auto_headers=("User-Agent",))
        return self._session

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and is_channel_webhook(scope["path"]):
            await self._relay(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _relay(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body = await read_body(receive, MAX_BODY)
        except Disconnected:
            return
        except BodyTooLarge:
            await send_answer(send, 413, b"Request Entity Too Large")
            return
        runtime = self.app.state.runtime
        base = service_url(runtime.settings, "engagement")
        url = base + (scope.get("raw_path") or scope["path"].encode()).split(b"?", 1)[0].decode("ascii")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
                   if name.lower() in FORWARDED}
        try:
            async with self.session().post(url, data=body, headers=headers) as upstream:
                answer = await upstream.read()
                status, content_type = upstream.status, upstream.headers.get("content-type", "text/plain")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("webhook %s not relayed: %s", scope["path"], exc)
            await send_answer(send, 503, b"engagement service unavailable")
            return
        await send_answer(send, status, answer, content_type.encode("latin-1"))
