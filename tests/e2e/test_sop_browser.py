"""Issue 13 in a real browser on a phone-sized page (390 px): a group owner sees the pending push the group
calendar made at its minute, copies the prepared text with one click (the clipboard holds it, the button says
"Copied"), marks it sent, and it moves to Sent; the lead's task page then counts one group sent.

Served live: the engagement service (SQLite, the test's nats-server, a fixed clock the test moves past the due
minute), the gateway (demo team); the browser is Debian's chromium. No timing is waited for: the push is made
when the clock passes its minute, and every wait is on a page condition.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from engagement.app import create_app as create_engagement
from gateway.app import create_app as create_gateway
from shared.clock import FixedClock
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

TEXT = "Сегодня в 20:00 прямой эфир! Ссылка в закрепе."


async def sign_in(page, base: str, login: str) -> None:
    await sign_in_page(page, base, login)


async def test_issue13_an_owner_copies_a_push_on_a_phone_marks_it_sent_and_the_lead_counts_it(
        browser_page, live_server, nats_server, tmp_path) -> None:
    clock = FixedClock(datetime.now(UTC).replace(second=0, microsecond=0))
    engagement_url = live_server(create_engagement(
        make_settings("engagement", database_url=f"sqlite+aiosqlite:///{tmp_path / 'engagement.db'}",
                      nats_url=nats_server.url), clock=clock))
    others = {name: f"http://127.0.0.1:{free_port()}" for name in ("clients", "content", "payroll")}
    gateway_url = live_server(create_gateway(make_settings(
        "gateway", database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", nats_url=nats_server.url,
        demo=True, service_urls={**others, "engagement": engagement_url})))

    lead = staff_headers("lead", "lead", default_settings("engagement"))
    async with httpx.AsyncClient(base_url=engagement_url + "/api/engagement", headers=lead, timeout=30) as api:
        group = (await api.post("/groups", json={"channel_id": None, "external_id": "@vip_club", "title": "VIP-клуб",
                                                 "owner": "agent1", "category": "A", "tags": ["vip"]})).json()
        entry = await api.post("/calendar", json={
            "at": (clock.now() + timedelta(minutes=2)).isoformat(), "title": "Прямой эфир",
            "target": {"group_ids": [group["id"]]}, "content": {"text": TEXT, "attachments": [
                {"kind": "link", "url": "https://example.kz/live"}]}, "mode": "manual"})
        assert entry.status_code == 201, entry.text
        clock.advance(timedelta(minutes=3))

        async def made() -> bool:
            return (await api.get("/pushes/count", params={"owner": "agent1"})).json()["pending"] == 1

        await eventually(made, timeout=30, message="the push is made at its minute")

    page = browser_page
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway_url)
    await sign_in(page, gateway_url, "agent1")
    # The menu's counter of pushes to send.
    counter = page.locator("#nav-push-counts .nav-count")
    await counter.wait_for()
    assert (await counter.inner_text()).strip() == "1"

    await page.goto(gateway_url + "/my-pushes?lang=ru")
    card = page.locator(".push", has_text="VIP-клуб")
    await card.wait_for()
    assert await card.locator("textarea.push-text").input_value() == TEXT
    # Nothing wider than the phone's screen.
    await page_true(page, "document.documentElement.scrollWidth <= 390")
    copy = card.locator("button.copy-push")
    await copy.wait_for(state="visible")
    await copy.click()
    await page_true(page, "document.querySelector('button.copy-push').classList.contains('copied')")
    assert (await copy.inner_text()).strip() == "Скопировано"
    assert await page.evaluate("navigator.clipboard.readText()") == TEXT

    await card.locator("button.mark-sent").click()
    await page.locator("#pushes-notice").wait_for()
    assert "Сейчас отправлять нечего." in await page.locator("#pushes").inner_text()
    await page.click("#tab-sent")
    sent = page.locator(".push", has_text="VIP-клуб")
    await sent.wait_for()
    assert "Отправлено" in await sent.inner_text()

    await sign_in(page, gateway_url, "lead")
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.goto(gateway_url + "/sop/tasks?lang=ru")
    await page.locator("#tasks-table a", has_text="Прямой эфир").click()
    metric = page.locator('[data-metric="groups_sent"] dd')
    await metric.wait_for()
    assert (await metric.inner_text()).strip() == "1"
    assert "Асель Жумабаева" in await page.locator("#task-owners").inner_text()
