"""Issue 11 in a real browser: agent1 has the inbox open; a Telegram message arrives through the gateway's
webhook address and appears in the open list without a reload; agent1 opens it, inserts a template (its
variables filled) and sends it; the stand-in Bot API on loopback receives the reply, and the page shows it sent.

Served live: the engagement service (SQLite, the test's nats-server, its inbound processor and sender running),
the gateway (demo team) and a stand-in of the Telegram Bot API speaking the documented JSON; the browser is
Debian's chromium. No Content-Security-Policy violation on the way (the inbox's script is a file of ours).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from engagement.app import create_app as create_engagement
from engagement.config import ChannelSettings
from gateway.app import create_app as create_gateway
from litestar import Litestar, Request, Response, post
from shared.testing import default_settings, eventually, free_port, make_settings, page_true, staff_headers

pytestmark = pytest.mark.browser

SECRET = "tg-e2e-secret-token"
BOT = "7000000042:AAH-e2e-inbox"
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " @ " + location.pathname);
});
"""


class BotApi:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.documents: list[dict[str, Any]] = []

    def app(self) -> Litestar:
        @post("/{path:path}", status_code=200)
        async def any_post(request: Request) -> Response:
            raw = await request.body()
            body = json.loads(raw) if raw.startswith(b"{") else dict(await request.form())
            if request.url.path.endswith("/sendMessage"):
                self.sent.append(body)
                return Response({"ok": True, "result": {"message_id": 4200 + len(self.sent),
                                                        "chat": {"id": body.get("chat_id")}, "date": 1764560000,
                                                        "text": body.get("text")}})
            if request.url.path.endswith("/sendDocument"):
                document = body["document"]
                self.documents.append({"caption": body.get("caption"), "name": document.filename,
                                       "data": await document.read()})
                return Response({"ok": True, "result": {"message_id": 4300 + len(self.documents),
                                                        "chat": {"id": body.get("chat_id")}, "date": 1764560000}})
            return Response({"ok": True, "result": True})

        return Litestar([any_post])


def update(update_id: int, text: str) -> dict[str, Any]:
    return {"update_id": update_id,
            "message": {"message_id": 77, "date": 1764560000,
                        "from": {"id": 5551234, "is_bot": False, "first_name": "Анна", "username": "anna_k"},
                        "chat": {"id": 5551234, "first_name": "Анна", "username": "anna_k", "type": "private"},
                        "text": text}}


async def test_issue11_a_telegram_message_appears_live_and_agent1_answers_with_a_template(
        browser_page, live_server, nats_server, tmp_path) -> None:
    stand = BotApi()
    stand_url = live_server(stand.app())
    engagement_url = live_server(create_engagement(
        make_settings("engagement", database_url=f"sqlite+aiosqlite:///{tmp_path / 'engagement.db'}",
                      nats_url=nats_server.url),
        channels=ChannelSettings(telegram_api_url=f"{stand_url}/tg", public_url="https://zabota.example")))
    others = {name: f"http://127.0.0.1:{free_port()}" for name in ("clients", "content", "payroll")}
    gateway_url = live_server(create_gateway(make_settings(
        "gateway", database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", nats_url=nats_server.url,
        demo=True, service_urls={**others, "engagement": engagement_url})))

    lead = staff_headers("lead", "lead", default_settings("engagement"))
    async with httpx.AsyncClient(base_url=engagement_url + "/api/engagement", headers=lead, timeout=30) as api:
        channel = await api.post("/channels", json={"kind": "telegram", "name": "Бот агентства",
                                                    "config": {"bot_token": BOT, "secret_token": SECRET}})
        assert channel.status_code == 201, channel.text
        channel_id = channel.json()["id"]
        served = await api.put("/staff/agent1/accounts", json={"accounts": ["agency"]})
        assert served.status_code == 200, served.text

    page = browser_page
    await page.add_init_script(LISTEN)
    await page.goto(gateway_url + "/inbox?scope=all&lang=ru")
    await page_true(page, "window.htmx !== undefined")
    await page.fill("input[name=login]", "agent1")
    await page.fill("input[name=password]", "demo")
    await page.click("button[type=submit]")
    await page.wait_for_url(gateway_url + "/inbox?scope=all&lang=ru")
    await page.locator("#inbox-empty").wait_for()
    await page.locator("body[data-inbox-live='1']").wait_for(state="attached")   # the event stream is open
    await page.evaluate("window.__notReloaded = true")

    # The customer writes to the bot: Telegram calls the gateway's webhook address.
    async with httpx.AsyncClient(timeout=30) as http:
        delivered = await http.post(f"{gateway_url}/webhooks/telegram/{channel_id}",
                                    json=update(880001, "Здравствуйте! Где мой заказ №15?"),
                                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert delivered.status_code == 200, delivered.text
    row = page.locator(".inbox-row", has_text="Где мой заказ №15?")
    await row.wait_for(timeout=10_000)
    assert await page.evaluate("window.__notReloaded === true")               # no reload: the same document
    assert "Анна" in await row.inner_text()

    # agent1 opens it (j moves to the row, Enter opens) and answers with the greeting template.
    await page.keyboard.press("j")
    await page.keyboard.press("Enter")
    await page.locator("#composer").wait_for()
    assert "Где мой заказ №15?" in await page.locator("#messages").inner_text()
    await page.keyboard.press("t")
    await page.select_option("#template-picker", "seed-template-greeting")
    text = await page.input_value("#reply-text")
    assert "Анна" in text and "{customer_name}" not in text and "{agent_name}" not in text
    await page.click("#send-reply")
    await page.locator("#conv-notice").wait_for()

    async def received() -> bool:
        return bool(stand.sent)
    await eventually(received, timeout=30, message="the Bot API received the reply")
    assert len(stand.sent) == 1 and stand.sent[0]["text"] == text.strip()
    assert str(stand.sent[0]["chat_id"]) == "5551234"
    # The delivery state changes on the open page by itself (the stream refreshes the thread).
    await page.locator(".message.outbound .delivery-sent").wait_for(timeout=15_000)
    # Then a file picked in the composer (htmx sends the form as multipart) reaches the customer as a document.
    await page.set_input_files("#reply-files", files=[{"name": "прайс.pdf", "mimeType": "application/pdf",
                                                       "buffer": b"%PDF-1.4 price list"}])
    await page.fill("#reply-text", "Прайс во вложении")
    await page.click("#send-reply")

    async def document() -> bool:
        return bool(stand.documents)
    await eventually(document, timeout=30, message="the Bot API received the document")
    assert stand.documents == [{"caption": "Прайс во вложении", "name": "прайс.pdf", "data": b"%PDF-1.4 price list"}]
    await page.locator(".message.outbound", has_text="прайс.pdf").wait_for(timeout=15_000)
    assert await page.evaluate("window.__csp") == []
