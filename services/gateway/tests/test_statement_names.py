"""Issue 9: a payroll statement names each line's deal by its client (one read of the clients service for
the page's deals), with real payroll and clients services; lines in date order, staff by full name."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from shared.bus import Bus, Outgoing
from shared.events import encode
from shared.events.clients import DealRenewed
from shared.settings import Settings
from shared.testing import eventually

from .backends import Backend, payment, roster, serve_clients, serve_payroll
from .conftest import down_service_urls, gateway_settings, sign_in
from .test_payroll_pages import previous_month


@pytest.fixture
def urls(service_process, nats_server) -> dict[str, str]:
    return {"clients": serve_clients(service_process, nats_server.url),
            "payroll": serve_payroll(service_process, nats_server.url)}


@pytest.fixture
def settings(tmp_path, urls: dict[str, str]) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", service_urls={**down_service_urls(), **urls})


async def test_statement_lines_name_the_client_of_each_deal(client: AsyncTestClient, urls: dict[str, str],
                                                           nats_server) -> None:
    clients, payroll = Backend(urls["clients"], "clients"), Backend(urls["payroll"], "payroll")
    roster(clients)
    month = previous_month()
    payroll.call("PUT", "/employees/manager1", {"employed_from": f"{month}-01"})
    deal = clients.call("POST", "/payments", payment("p-1", name="Айгерим Сапарова"))
    when = datetime.fromisoformat(f"{month}-10T09:00:00+05:00")
    bus = Bus(nats_server.url, "gateway-test-statement")
    await bus.connect(retry_forever=False)
    try:
        evt = DealRenewed(manager="manager1", payment_id="p1", period_start=when, period_end=when + timedelta(30),
                          occurred_at=when, deal_id=deal["id"])
        await bus.publish_many([Outgoing(evt.subject, encode(evt), {"Nats-Msg-Id": evt.event_id})])
    finally:
        await bus.drain()

    async def booked() -> bool:
        st = await asyncio.to_thread(payroll.call, "GET", f"/statements/manager1?month={month}")
        return any(ln["deal_id"] == deal["id"] for ln in st["lines"])

    await eventually(booked, message="payroll booked the renewal")
    await sign_in(client, "lead")
    page = await client.get(f"/payroll/statements/{month}/manager1?lang=en")
    assert page.status_code == 200, page.text
    assert f'<a href="/deals/{deal["id"]}">Айгерим Сапарова</a>' in page.text
    assert deal["id"][:8] + "<" not in page.text                                   # no hex id shown
    assert "Дана Ахметова" in page.text                                            # the manager by full name
    rules = re.findall(r"<td>(PAY-\d)<br>", page.text)
    assert rules[0] == "PAY-1" and rules.index("PAY-2") > 0                        # base salary first (date order)
