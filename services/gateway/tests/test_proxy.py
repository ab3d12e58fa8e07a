"""The public API routing `/api/<service>/…` and `/webhooks/<service>/…`, against a real second app."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import pytest
from gateway.app import create_app
from litestar.testing import AsyncTestClient

from .conftest import down_service_urls, gateway_settings
from .upstream import create_upstream


@pytest.fixture
async def proxy(live_server, tmp_path) -> AsyncIterator[AsyncTestClient]:
    upstream = live_server(create_upstream())
    urls = {**down_service_urls(), "clients": upstream}
    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", service_urls=urls, demo=False)
    async with AsyncTestClient(create_app(settings, background=False), base_url="http://127.0.0.1") as client:
        yield client


async def test_api_request_is_forwarded_unchanged(proxy: AsyncTestClient) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = await proxy.post(
        "/api/clients/echo/deals/42%2Fx?b=2&a=1&a=%D0%B0", content=b'{"x": 1}',
        headers={"Authorization": "Bearer partner-token", "Content-Type": "application/json",
                 "Accept": "application/json", "Idempotency-Key": "pay-77", "traceparent": traceparent,
                 "X-Zabota-Signature": "sha256=abc", "X-Zabota-Actor": "spoofed", "Cookie": "zabota_session=x"})
    assert response.status_code == 200
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["raw_path"] == "/api/clients/echo/deals/42%2Fx"
    assert seen["query"] == "b=2&a=1&a=%D0%B0"
    assert seen["body_text"] == '{"x": 1}'
    headers = seen["headers"]
    assert headers["authorization"] == "Bearer partner-token"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["idempotency-key"] == "pay-77"
    assert headers["x-zabota-signature"] == "sha256=abc"
    # The trace continues (same trace id) through the gateway's span.
    assert headers["traceparent"].split("-")[1] == traceparent.split("-")[1]
    # Only the listed headers pass: no staff identity or cookies can be smuggled through the gateway.
    assert "x-zabota-actor" not in headers and "cookie" not in headers


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_every_method_is_forwarded(proxy: AsyncTestClient, method: str) -> None:
    response = await proxy.request(method, "/api/clients/echo/x")
    assert response.status_code == 200 and response.json()["method"] == method


async def test_status_body_and_content_type_come_back_as_they_are(proxy: AsyncTestClient) -> None:
    response = await proxy.get("/api/clients/teapot")
    assert response.status_code == 418
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == b"short and stout"
    invalid = await proxy.post("/api/clients/invalid", json={})
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "client.phone"
    assert (await proxy.get("/api/clients/empty")).status_code == 204
    assert (await proxy.get("/api/clients/boom")).status_code == 500


async def test_large_download_is_streamed_through(proxy: AsyncTestClient) -> None:
    response = await proxy.get("/api/clients/download")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="export.bin"'
    expected = b"".join(bytes([i % 256]) * 65536 for i in range(64))
    assert response.content == expected


async def test_upload_up_to_50_mb_is_forwarded(proxy: AsyncTestClient) -> None:
    body = os.urandom(1024 * 1024) * 40   # 40 MiB
    response = await proxy.post("/api/clients/echo/attachments", content=body,
                                headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200
    assert response.json()["body_size"] == len(body)
    assert response.json()["body_sha256"] == hashlib.sha256(body).hexdigest()


async def test_webhook_goes_to_the_service_webhooks_path(proxy: AsyncTestClient) -> None:
    response = await proxy.post("/webhooks/clients/payments/kaspi?id=9", content=b'{"paid": true}',
                                headers={"X-Zabota-Signature": "sha256=feed", "Content-Type": "application/json"})
    assert response.status_code == 200
    seen = response.json()
    assert seen["raw_path"] == "/webhooks/payments/kaspi" and seen["query"] == "id=9"
    assert seen["headers"]["x-zabota-signature"] == "sha256=feed"


async def test_unknown_service_is_404_json(proxy: AsyncTestClient) -> None:
    for path in ("/api/billing/x", "/webhooks/gateway/x", "/api/gateway/x"):
        response = await proxy.get(path)
        assert response.status_code == 404, path
        assert "unknown service" in response.json()["detail"]


async def test_service_down_is_503_json(proxy: AsyncTestClient) -> None:
    response = await proxy.get("/api/content/plans")
    assert response.status_code == 503
    assert response.json() == {"detail": "content service unavailable"}
    webhook = await proxy.post("/webhooks/payroll/x", content=b"{}")
    assert webhook.status_code == 503 and webhook.json() == {"detail": "payroll service unavailable"}


async def test_api_routing_needs_no_session_or_csrf(proxy: AsyncTestClient) -> None:
    # Integrations authenticate to the service (bearer / signature), not to the gateway.
    response = await proxy.delete("/api/clients/echo/x", headers={"Authorization": "Bearer t"})
    assert response.status_code == 200


async def test_upload_over_50_mb_is_refused_before_it_reaches_the_service(proxy: AsyncTestClient) -> None:
    response = await proxy.post("/api/clients/echo/attachments", content=b"\0" * (50 * 1024 * 1024 + 1),
                                headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 413


async def test_a_paged_lists_total_reaches_api_callers_through_the_gateway(proxy: AsyncTestClient) -> None:
    response = await proxy.get("/api/clients/paged?limit=2", headers={"Authorization": "Bearer partner-token"})
    assert response.status_code == 200 and response.json() == [1, 2]
    assert response.headers["x-total-count"] == "7"
