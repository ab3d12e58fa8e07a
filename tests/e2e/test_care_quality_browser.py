"""Issue 12 in a real browser: agent1's inbox shows each waiting conversation's first-response clock — amber
from 80 % of the target, red past it — and, once agent1 has answered, the lead's care report names agent1 with
the figures and a chart.

Served live: the engagement service (SQLite, the test's nats-server), the gateway (demo team); the browser is
Debian's chromium. The customers' messages carry their own times (the Telegram `date`): one written 6 minutes
ago (a 7-minute target: 86 % used — amber), one 10 minutes ago (past the target when it is processed — red).
No timing is waited for: the clock's state follows from the messages' own times.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from engagement.app import create_app as create_engagement
from engagement.config import ChannelSettings
from gateway.app import create_app as create_gateway
from shared.testing import (
    default_settings,
    eventually,
    free_port,
    make_settings,
    page_true,
    sign_in_page,
    staff_headers,
)

pytestmark = pytest.mark.browser

SECRET = "tg-e2e-quality-secret"
BOT = "7000000043:AAH-e2e-quality"


def update(update_id: int, minutes_ago: int, text: str) -> dict[str, Any]:
    chat = 6000000 + update_id
    return {"update_id": update_id,
            "message": {"message_id": update_id, "date": int(time.time()) - minutes_ago * 60, "text": text,
                        "from": {"id": chat, "is_bot": False, "first_name": "Анна"},
                        "chat": {"id": chat, "first_name": "Анна", "type": "private"}}}


async def test_issue12_the_live_clock_turns_amber_and_red_and_the_lead_reads_the_report(
        browser_page, live_server, nats_server, tmp_path) -> None:
    engagement_url = live_server(create_engagement(
        make_settings("engagement", database_url=f"sqlite+aiosqlite:///{tmp_path / 'engagement.db'}",
                      nats_url=nats_server.url),
        channels=ChannelSettings(telegram_api_url=f"http://127.0.0.1:{free_port()}", public_url="https://z.example")))
    others = {name: f"http://127.0.0.1:{free_port()}" for name in ("clients", "content", "payroll")}
    gateway_url = live_server(create_gateway(make_settings(
        "gateway", database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", nats_url=nats_server.url,
        demo=True, service_urls={**others, "engagement": engagement_url})))

    lead = staff_headers("lead", "lead", default_settings("engagement"))
    async with httpx.AsyncClient(base_url=engagement_url + "/api/engagement", headers=lead, timeout=30) as api:
        channel = (await api.post("/channels", json={"kind": "telegram", "name": "Бот бренда",
                                                     "config": {"bot_token": BOT, "secret_token": SECRET}})).json()
        assert (await api.put("/staff/agent1/accounts", json={"accounts": ["agency"]})).status_code == 200
    async with httpx.AsyncClient(timeout=30) as http:
        for update_id, minutes_ago, text in ((1, 6, "Где мой заказ?"), (2, 10, "Ответьте, пожалуйста")):
            delivered = await http.post(f"{gateway_url}/webhooks/telegram/{channel['id']}",
                                        json=update(update_id, minutes_ago, text),
                                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
            assert delivered.status_code == 200

    async def processed() -> bool:
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.get(f"{engagement_url}/api/engagement/conversations", headers=lead)
            return len(answer.json()) == 2

    await eventually(processed, timeout=30, message="both messages are in the inbox")

    page = browser_page
    await sign_in_page(page, gateway_url, "agent1")
    await page.goto(gateway_url + "/inbox?scope=all&lang=ru")
    amber = page.locator(".inbox-row", has_text="Где мой заказ?").locator("time.sla-clock")
    await amber.wait_for()
    await page_true(page, "document.querySelector('time.sla-clock').classList.contains('sla-amber')")
    assert "осталось" in await amber.inner_text()
    red = page.locator(".inbox-row", has_text="Ответьте, пожалуйста").locator(".sla-red")
    assert (await red.inner_text()).strip() == "норма нарушена"

    # agent1 answers the first one; the lead's report names agent1 with a chart.
    await page.locator(".inbox-row", has_text="Где мой заказ?").locator("a.inbox-open").click()
    await page.locator("#composer").wait_for()
    await page.fill("#reply-text", "Здравствуйте! Проверяю ваш заказ.")
    await page.click("#send-reply")
    await page.locator("#conv-notice").wait_for()

    await sign_in_page(page, gateway_url, "lead")
    await page.goto(gateway_url + "/care/reports?lang=ru")
    report = page.locator("#report")
    await report.locator("svg.chart").wait_for()
    text = await report.inner_text()
    assert "Асель Жумабаева" in text and "agent1" not in text
