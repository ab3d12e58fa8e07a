"""Issue 3 in a real browser: a payment arrives, the manager sees the first-call task, marks the client
contacted, and the deal moves to the Contacted column of the board.

Served live: the clients service (SQLite, the test's nats-server) and the gateway (demo team), the
browser is Debian's chromium. Everything is asserted on what the user sees, in the default language.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from clients.app import create_app as create_clients
from gateway.app import create_app as create_gateway
from shared.testing import free_port, make_settings, page_true

pytestmark = pytest.mark.browser

API = {"Authorization": "Bearer dev-token"}


async def test_cl3_cl4_payment_first_call_task_contacted_on_the_board(browser_page, live_server, nats_server,
                                                                      tmp_path) -> None:
    clients_url = live_server(create_clients(make_settings(
        "clients", database_url=f"sqlite+aiosqlite:///{tmp_path / 'clients.db'}", nats_url=nats_server.url)))
    others = {name: f"http://127.0.0.1:{free_port()}" for name in ("content", "engagement", "payroll")}
    gateway_url = live_server(create_gateway(make_settings(
        "gateway", database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", demo=True,
        service_urls={**others, "clients": clients_url})))

    # An integration (the payment provider's bridge) talks to the clients API through the gateway.
    async with httpx.AsyncClient(base_url=gateway_url, headers=API, timeout=30) as api:
        roster = await api.put("/api/clients/staff/manager1", json={"role": "content_manager",
                                                                   "full_name": "Дана Ахметова"})
        assert roster.status_code == 200, roster.text
        paid_at = datetime.now(UTC) - timedelta(minutes=2)
        payment = await api.post("/api/clients/payments", json={
            "external_id": "kaspi-e2e-1", "paid_at": paid_at.isoformat(), "amount": "60000.00", "currency": "KZT",
            "service_kind": "account_management", "responsible_manager": "manager1",
            "client": {"full_name": "Айгерим Сапарова", "phone": "+7 701 555 0101",
                       "instagram": "https://instagram.com/aigerim.cakes", "payer_type": "individual"}})
        assert payment.status_code == 201, payment.text
        deal_id = payment.json()["id"]

    page = browser_page
    await page.goto(gateway_url + "/tasks")
    assert page.url.startswith(gateway_url + "/login")
    await page_true(page, "window.htmx !== undefined")
    await page.fill("input[name=login]", "manager1")
    await page.fill("input[name=password]", "demo")
    await page.click("button[type=submit]")
    await page.wait_for_url(gateway_url + "/tasks")

    # My tasks: the first call of the new payment, with a live countdown to its due time.
    row = page.locator("table.tasks tbody tr").filter(has_text="Айгерим Сапарова")
    await row.wait_for()
    assert "Первый звонок (скрипт №3)" in await row.inner_text()
    countdown = row.locator("time[data-countdown]")
    await page_true(page, "document.querySelector('time[data-countdown]').textContent.includes('осталось')")
    assert "мин" in await countdown.inner_text()

    # The deal card, one click: contacted (CL-4).
    await row.get_by_role("link", name="Айгерим Сапарова").click()
    await page.wait_for_url(gateway_url + f"/deals/{deal_id}")
    assert await page.locator("#deal-stage").inner_text() == "Новая (оплачено)"
    await page.click("#mark-contacted")
    await page.locator("#deal-stage", has_text="Связались с клиентом").wait_for()
    assert "Этап изменён." in await page.locator("#deal .alert.success").inner_text()

    # The board: the deal is in the Contacted column, and the New column is empty.
    await page.click(".mainnav >> text=Воронка сделок")
    await page.wait_for_url(gateway_url + "/deals")
    contacted = page.locator('.column[data-stage="contacted"]')
    assert "Айгерим Сапарова" in await contacted.inner_text()
    assert (await contacted.locator(".count").inner_text()).strip() == "1"
    new = page.locator('.column[data-stage="new"]')
    assert "Айгерим Сапарова" not in await new.inner_text()
    assert (await new.locator(".count").inner_text()).strip() == "0"
    assert "60 000 KZT" in (await contacted.locator(".sum").inner_text()).replace("\u202f", " ")

    # The first-call task was the call itself: it is done, My tasks is empty now.
    await page.click(".mainnav >> text=Мои задачи")
    await page.locator(".empty-state", has_text="Открытых задач нет.").wait_for()
