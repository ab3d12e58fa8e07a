"""Issue 8 item 1 at the gateway: the pages' calls carry a 60-second assertion signed with the gateway secret
for the one service called; the public API routing never passes an identity or assertion through."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from gateway.app import create_app
from gateway.service_client import ServiceClient
from gateway.sessions import SignedIn
from litestar.testing import AsyncTestClient
from shared.auth import Actor, make_assertion, read_assertion
from shared.signing import BadToken, expires_at_of

from .conftest import down_service_urls, gateway_settings
from .upstream import create_upstream


@pytest.fixture
async def proxy(live_server, tmp_path) -> AsyncIterator[AsyncTestClient]:
    urls = {**down_service_urls(), "clients": live_server(create_upstream())}
    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", service_urls=urls, demo=False)
    async with AsyncTestClient(create_app(settings, background=False), base_url="http://127.0.0.1") as client:
        yield client


async def test_issue8_1_gateway_calls_carry_a_short_lived_assertion_for_the_called_service(live_server) -> None:
    settings = gateway_settings("sqlite+aiosqlite://", service_urls={"clients": live_server(create_upstream())})
    async with httpx.AsyncClient() as http:
        services = ServiceClient(http, settings, SignedIn(1, "lead", "Алия", "lead"))
        seen = await services.get("clients", "/echo/x")
    assertion = seen["headers"]["x-zabota-assertion"]
    assert read_assertion(assertion, audience="clients", secret=settings.gateway_secret) == Actor("lead", "lead")
    assert 0 < expires_at_of(assertion).timestamp() - time.time() <= 61
    with pytest.raises(BadToken):
        read_assertion(assertion, audience="payroll", secret=settings.gateway_secret)
    with pytest.raises(BadToken):   # replayed after a minute
        read_assertion(assertion, audience="clients", secret=settings.gateway_secret, now=time.time() + 61)


async def test_issue8_1_public_api_routing_passes_no_assertion_or_identity_through(proxy) -> None:
    forged = make_assertion("lead", "lead", audience="clients", secret="x" * 40)
    response = await proxy.get("/api/clients/echo/x", headers={
        "Authorization": "Bearer partner-token", "X-Zabota-Assertion": forged, "X-Zabota-Role": "lead"})
    headers = response.json()["headers"]
    assert headers["authorization"] == "Bearer partner-token"
    assert "x-zabota-assertion" not in headers and "x-zabota-role" not in headers
