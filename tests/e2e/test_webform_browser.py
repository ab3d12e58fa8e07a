"""Issue 11 §website form in a real browser, end to end: a client's site (another origin) embeds the form with the
snippet's `<iframe>`; a visitor fills it in inside the frame (where the gateway's SameSite cookies are not sent —
the form's own signed token carries it); the thank-you page shows in the frame; the message becomes a conversation
in the real engagement service; the lead answers and the answer arrives by e-mail in the visitor's mailbox on a
real SMTP/IMAP server on loopback (mail-devel), with threading headers.

Served live: engagement (SQLite, the test's nats-server, its inbound processor, sender and mailbox loops running)
and the gateway; the browser is Debian's chromium.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import httpx
import pytest
from engagement.app import create_app as create_engagement
from engagement.config import ChannelSettings
from gateway.app import create_app as create_gateway
from litestar import Litestar, MediaType, get
from shared.testing import eventually, free_port, make_settings, staff_headers

pytestmark = pytest.mark.browser
API = {"Authorization": "Bearer dev-token"}
_spec = importlib.util.spec_from_file_location(
    "engagement_mailserver", Path(__file__).resolve().parents[2] / "services/engagement/tests/mailserver.py")
mailserver = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mailserver)


def client_site(form_url: str, snippet: str) -> Litestar:
    @get("/", media_type=MediaType.HTML)
    async def home() -> str:
        return f"<!doctype html><html><body><h1>Kaspi Cakes</h1>{snippet}</body></html>"

    return Litestar([home])


async def test_issue11_a_visitor_writes_in_the_embedded_form_and_gets_the_answer_by_email(
        browser_page, live_server, nats_server, tmp_path) -> None:
    mail = mailserver.MailServer()
    mail.start()
    try:
        def settings(service: str, **extra):
            return make_settings(service, database_url=f"sqlite+aiosqlite:///{tmp_path / (service + '.db')}",
                                 nats_url=nats_server.url, **extra)

        gateway_port = free_port()
        gateway_public = f"http://127.0.0.1:{gateway_port}"
        engagement_url = live_server(create_engagement(
            settings("engagement"), channels=ChannelSettings(public_url=gateway_public, imap_poll_seconds=1.0)))
        others = {name: f"http://127.0.0.1:{free_port()}" for name in ("clients", "content", "payroll")}
        live_server(create_gateway(settings("gateway", demo=True,
                                            service_urls={**others, "engagement": engagement_url})),
                    port=gateway_port)
        lead = staff_headers("lead", "lead", settings("engagement"))
        async with httpx.AsyncClient(base_url=engagement_url + "/api/engagement", timeout=30) as api:
            mailer = await api.post("/channels", headers=lead, json={
                "kind": "email", "name": "Поддержка", "config": mail.config()})
            assert mailer.status_code == 201, mailer.text
            form = await api.post("/channels", headers=lead, json={
                "kind": "webform", "name": "Kaspi Cakes",
                "config": {"email_channel_id": mailer.json()["id"], "slug": "kaspi-cakes"}})
            assert form.status_code == 201, form.text
            snippet = form.json()["embed_html"]
            assert form.json()["form_url"] == f"{gateway_public}/f/kaspi-cakes"

            # the client's site is another site: localhost, not 127.0.0.1
            site = live_server(client_site(form.json()["form_url"], snippet)).replace("127.0.0.1", "localhost")
            page = browser_page
            await page.goto(site)
            frame = page.frame_locator("iframe")
            await frame.locator("#wf-name").fill("Дана")
            await frame.locator("#wf-contact").fill("dana@example.com")
            await frame.locator("#wf-message").fill("Хочу торт на субботу")
            await frame.locator("button[type=submit]").click()
            await frame.get_by_text("We have received your message and will answer you by e-mail soon.").wait_for()

            async def conversation():
                found = (await api.get("/conversations", headers=API)).json()
                return found[0] if found else None

            item = await eventually(conversation, timeout=30, message="the form's message to become a conversation")
            assert item["kind"] == "webform" and item["customer"] == {"name": "Дана", "handle": "dana@example.com"}
            assert item["last_message"]["text"] == "Хочу торт на субботу"
            reply = await api.post(f"/conversations/{item['id']}/replies", headers=lead,
                                   json={"text": "Примем заказ! Какой вес торта?"})
            assert reply.status_code == 202, reply.text

        async def answered():
            return await asyncio.to_thread(mail.inbox, "dana@example.com") or None

        [received] = await eventually(answered, timeout=30, interval=0.5,
                                      message="the answer to reach the visitor's mailbox")
        assert "Kaspi Cakes" in str(received["From"]) and mailserver.SUPPORT in str(received["From"])
        assert received["Reply-To"].startswith("support+")
        assert received.get_body(preferencelist=("plain",)).get_content().strip() == "Примем заказ! Какой вес торта?"
    finally:
        mail.stop()
