"""Issue 14 in the gateway: the deal card links to "this deal's trace" (`ZABOTA_TRACE_URL`), the System status
page lists the slowest deal journeys of the last hour from the services' own timing facts (real clients and
payroll processes, a real nats-server), and `/docs/events` renders the event catalogue with its schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from shared.settings import Settings
from shared.telemetry import JOURNEYS
from shared.testing import eventually

from .backends import Backend, payment, roster, serve_clients, serve_payroll
from .conftest import down_service_urls, gateway_settings, sign_in
from .test_clients_pages import text_of

ROOT = Path(__file__).resolve().parents[3]
TRACE_URL = 'http://jaeger:16686/search?service=zabota-clients&tags={"zabota.deal_id":"{deal_id}"}'


@pytest.fixture
def backends(service_process, nats_server) -> dict[str, str]:
    return {"clients": serve_clients(service_process, nats_server.url),
            "payroll": serve_payroll(service_process, nats_server.url)}


@pytest.fixture
def settings(tmp_path, request) -> Settings:
    urls = down_service_urls()
    if "backends" in request.fixturenames:
        urls |= request.getfixturevalue("backends")
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", service_urls=urls)


async def test_issue14_deal_card_trace_link_and_slowest_journeys_on_the_status_page(
        client: AsyncTestClient, backends: dict[str, str], monkeypatch) -> None:
    # Earlier tests in this process leave slower journeys in the gateway's own ring: start from none, so
    # the status page's top ten is about this payment.
    JOURNEYS.clear()
    clients = Backend(backends["clients"], "clients")
    roster(clients)
    deal = clients.call("POST", "/payments", payment("p-journey"))
    deal_id = deal["id"]
    await sign_in(client, "lead")

    card = await client.get(f"/deals/{deal_id}?lang=en")
    assert card.status_code == 200 and "This deal's trace" not in card.text   # ZABOTA_TRACE_URL unset: no link
    monkeypatch.setenv("ZABOTA_TRACE_URL", TRACE_URL)
    card = await client.get(f"/deals/{deal_id}?lang=en")
    link = TRACE_URL.replace("{deal_id}", deal_id).replace("&", "&amp;").replace('"', "&#34;")  # as HTML escapes it
    assert f'href="{link}"' in card.text and "This deal's trace" in card.text
    assert "Трассировка этой сделки" in (await client.get(f"/deals/{deal_id}?lang=ru")).text

    async def journey_listed() -> str | None:
        page = (await client.get("/status?lang=en")).text
        return page if "payroll: process clients.deal.paid.v1" in page else None

    page = await eventually(journey_listed, message="the payment's journey on the status page")
    assert "Slowest deal journeys of the last hour" in page
    assert f'href="/deals/{deal_id}"' in page and "clients: publish clients.deal.paid.v1" in page
    assert f'href="{link}"' in page and "Open the trace" in page
    assert "Самые медленные пути сделок за последний час" in (await client.get("/status?lang=ru")).text


async def test_issue14_status_page_without_journeys_says_so(client: AsyncTestClient) -> None:
    await sign_in(client, "lead")
    page = (await client.get("/status?lang=en")).text
    assert "Slowest deal journeys of the last hour" in page


async def test_issue14_event_catalogue_page_with_partner_subjects_fields_and_schemas(
        client: AsyncTestClient) -> None:
    page = await client.get("/docs/events?lang=en")           # open to partners: no sign-in
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert 'id="clients.deal.paid.v1"' in page.text and 'id="system.probe.recorded.v1"' in page.text
    assert "Partners: account PARTNERS, stream PUBLIC, subject clients.deal.paid.v1." in text
    assert "payment_id" in text and "Download the JSON Schema" in text
    internal = page.text.split('id="system.probe.recorded.v1"', 1)[1].split("</article>", 1)[0]
    assert "internal" in internal and "Not available to partners." in internal
    public = page.text.split('id="clients.deal.paid.v1"', 1)[1].split("</article>", 1)[0]
    assert ">public<" in public
    assert "<script>" not in page.text and "style=" not in page.text            # CSP: nothing inline

    schema = await client.get("/docs/events/schemas/clients.deal.paid.v1.json")
    assert schema.status_code == 200 and schema.headers["content-type"].startswith("application/schema+json")
    assert "attachment" in schema.headers["content-disposition"]
    assert schema.text == (ROOT / "docs/events/schemas/clients.deal.paid.v1.json").read_text("utf-8")
    assert (await client.get("/docs/events/schemas/nope.v1.json")).status_code == 404
    asyncapi = await client.get("/docs/events/asyncapi.json")
    assert asyncapi.status_code == 200 and "channels" in json.loads(asyncapi.text)
    assert "Каталог событий" in (await client.get("/docs/events?lang=ru")).text
    assert "事件目录" in (await client.get("/docs/events?lang=zh")).text
