"""Issue 11, the care inbox pages, against a REAL engagement service (its own process, SQLite, the test's
nats-server) whose Telegram replies go to a stand-in Bot API on loopback: the list with its filters, the
conversation with the composer (a template with its variables filled), notes with @mentions in the nav counts,
status / category / priority / tags / assignment, ask-the-client with the client's answer page, the channel
accounts page (secrets never shown back, webhook registration), the templates page, the care dashboard, and the
live updates stream."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response, get, post
from litestar.testing import AsyncTestClient
from shared.settings import Settings
from shared.testing import NatsServer, ServiceProcesses, eventually

from .backends import Backend
from .conftest import csrf_of, down_service_urls, gateway_settings, sign_in

HX = {"HX-Request": "true"}
LEAD = ("lead", "lead")
SECRET = "tg-secret-token-123"
BOT = "7000000001:AAH-inbox-pages"


class BotApi:
    """The Telegram Bot API as CHANNELS.md documents it: `sendMessage` and `setWebhook` answer ok; `getFile` gives
    the path of a file put in `files` (file_id -> (path, bytes)), downloaded from `/tg/file/bot<token>/<path>`."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.files: dict[str, tuple[str, bytes]] = {}

    def app(self) -> Litestar:
        @get("/{path:path}")
        async def download(path: str) -> Response:
            found = [data for name, data in self.files.values() if path == f"/tg/file/bot{BOT}/{name}"]
            return Response(found[0], media_type="application/octet-stream") if found else \
                Response({"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404)

        @post("/{path:path}", status_code=200)
        async def any_post(request: Request) -> Response:
            raw = await request.body()
            body = json.loads(raw) if raw.startswith(b"{") else dict(await request.form())
            self.calls.append({"path": request.url.path, "body": body})
            if request.url.path.endswith("/getFile"):
                name, data = self.files[body["file_id"]]
                return Response({"ok": True, "result": {"file_id": body["file_id"], "file_unique_id": "u",
                                                        "file_size": len(data), "file_path": name}})
            if request.url.path.endswith(("/sendMessage", "/sendPhoto", "/sendDocument")):
                return Response({"ok": True, "result": {"message_id": 900 + len(self.calls),
                                                        "chat": {"id": body.get("chat_id")}, "date": 1760000000,
                                                        "text": body.get("text")}})
            return Response({"ok": True, "result": True, "description": "Webhook was set"})

        return Litestar([any_post, download])

    def sent(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["path"].endswith("/sendMessage")]


@pytest.fixture(scope="module")
def inbox_stack(tmp_path_factory) -> Iterator[tuple[BotApi, str]]:
    """One engagement process (and its nats-server and Bot API stand-in) for the module: starting one takes
    seconds, and each test works on conversations of its own."""
    from .conftest import _e2e  # the e2e conftest's uvicorn-in-a-thread servers

    root = tmp_path_factory.mktemp("inbox")
    nats = NatsServer(root / "jetstream")
    nats.start()
    processes = ServiceProcesses(root / "services")
    servers = _e2e.LiveServers()
    try:
        stand = BotApi()
        stand_url = servers(stand.app())
        url = processes.start("engagement", nats_url=nats.url, env={
            "TELEGRAM_API_URL": f"{stand_url}/tg", "ZABOTA_PUBLIC_URL": "https://zabota.example"})
        yield stand, url
    finally:
        processes.stop_all()
        servers.stop_all()
        nats.stop()


@pytest.fixture
def bot_api(inbox_stack) -> tuple[BotApi, str]:
    return inbox_stack[0], ""


@pytest.fixture
def engagement_url(inbox_stack) -> str:
    return inbox_stack[1]


@pytest.fixture
def engagement(engagement_url: str) -> Backend:
    return Backend(engagement_url, "engagement")


@pytest.fixture
def settings(tmp_path, engagement_url: str) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "engagement": engagement_url})


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def telegram_update(update_id: int, text: str, *, user_id: int = 1111111, name: str = "Anna") -> dict[str, Any]:
    return {"update_id": update_id,
            "message": {"message_id": update_id % 100000, "date": 1764560000,
                        "from": {"id": user_id, "is_bot": False, "first_name": name, "username": "anna_k"},
                        "chat": {"id": user_id, "first_name": name, "username": "anna_k", "type": "private"},
                        "text": text}}


def telegram_channel(engagement: Backend, agents: tuple[str, ...] = ("agent1",)) -> dict[str, Any]:
    channel = engagement.call("POST", "/channels", {"kind": "telegram", "name": "Бот агентства",
                                                    "config": {"bot_token": BOT, "secret_token": SECRET}}, as_=LEAD)
    for login in agents:
        engagement.call("PUT", f"/staff/{login}/accounts", {"accounts": ["agency"]}, as_=LEAD)
    return channel


async def inbound(engagement: Backend, channel: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The customer writes; the webhook is stored and answered, then processed in the background."""
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{engagement.base_url}/webhooks/telegram/{channel['id']}", json=update,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert answer.status_code == 200, answer.text

    async def stored():
        rows = engagement.call("GET", "/conversations", as_=LEAD)
        return next((r for r in rows if r["last_message"]["text"] == update["message"]["text"]), None)
    return await eventually(stored, timeout=30, message="the inbound message stored")


async def test_issue11_inbox_list_filters_and_escapes_customer_text(client: AsyncTestClient,
                                                                    engagement: Backend) -> None:
    channel = telegram_channel(engagement)
    hostile = '<script>alert("x")</script> смотрите http://evil.example/x'
    conversation = await inbound(engagement, channel, telegram_update(5001, hostile))
    await sign_in(client, "agent1")
    page = await client.get("/inbox?scope=all&lang=ru")
    assert page.status_code == 200
    assert "Anna" in page.text and "&lt;script&gt;" in page.text and "<script>alert" not in page.text
    assert 'href="http://evil.example' not in page.text                 # links are shown, never followed
    assert f'data-id="{conversation["id"]}"' in page.text
    mine = await client.get("/inbox?scope=mine", headers=HX)               # it is not assigned to agent1
    assert f'data-id="{conversation["id"]}"' not in mine.text
    unassigned = await client.get("/inbox?scope=unassigned&channel=telegram", headers=HX)
    assert f'data-id="{conversation["id"]}"' in unassigned.text and "<html" not in unassigned.text
    assert f'data-id="{conversation["id"]}"' not in (await client.get("/inbox?scope=all&channel=vk", headers=HX)).text
    found = await client.get("/inbox?scope=all&q=evil.example", headers=HX)
    assert f'data-id="{conversation["id"]}"' in found.text
    assert f'data-id="{conversation["id"]}"' not in (await client.get("/inbox?scope=all&q=nothing-like", headers=HX)).text
    resolved = await client.get("/inbox?scope=all&status=resolved", headers=HX)
    assert f'data-id="{conversation["id"]}"' not in resolved.text
    for language, word in (("en", "Inbox"), ("kk", "Кіріс"), ("zh", "收件箱")):
        assert word in (await client.get(f"/inbox?lang={language}")).text


async def test_issue11_conversation_reply_with_a_template_notes_and_settings(client: AsyncTestClient,
                                                                             engagement: Backend,
                                                                             bot_api) -> None:
    stand, _url = bot_api
    channel = telegram_channel(engagement)
    conversation = await inbound(engagement, channel, telegram_update(5002, "Здравствуйте, заказ не пришёл"))
    cid = conversation["id"]
    csrf = await sign_in(client, "agent1")
    page = await client.get(f"/inbox/{cid}?lang=ru")
    assert page.status_code == 200
    assert "Здравствуйте, заказ не пришёл" in page.text and 'id="composer"' in page.text
    greeting = re.search(r'<option value="seed-template-greeting" data-text="([^"]*)"', page.text)
    assert greeting, "the seeded greeting template is offered"
    filled = greeting.group(1)
    assert "Anna" in filled and "{customer_name}" not in filled and "{agent_name}" not in filled
    # agent1 answers with the template (the page filled its variables; the composer sends the text).
    text = filled.replace("&#39;", "'").replace("&amp;", "&")
    sent = await client.post(f"/inbox/{cid}/reply", data={"text": text, "template_id": "seed-template-greeting",
                                                          "_csrf": csrf}, headers=HX)
    assert sent.status_code == 200, sent.text
    assert "отправляется" in sent.text or "sending" in sent.text
    await eventually(lambda: _async(bool(stand.sent())), timeout=30, message="the Bot API got the reply")
    assert stand.sent()[0]["body"]["text"] == text and str(stand.sent()[0]["body"]["chat_id"]) == "1111111"

    async def delivered():
        return "delivery-sent" in (await client.get(f"/inbox/{cid}/thread")).text
    await eventually(delivered, timeout=30, message="the reply shown as sent")
    # The author is shown by full name; the conversation is now agent1's.
    thread = (await client.get(f"/inbox/{cid}")).text
    assert "agent1</span>" not in thread
    empty = await client.post(f"/inbox/{cid}/reply", data={"text": "  ", "_csrf": csrf}, headers=HX)
    assert empty.status_code == 422 and "field-error" in empty.text
    # A private note mentioning the senior agent reaches their nav counts until they open the conversation.
    noted = await client.post(f"/inbox/{cid}/note", data={"note": "@senior1 клиент спрашивает про скидку",
                                                          "_csrf": csrf}, headers=HX)
    assert noted.status_code == 200 and "клиент спрашивает про скидку" in noted.text
    for path, data, expect in ((f"/inbox/{cid}/category", {"category": "Delivery"}, "delivery"),
                               (f"/inbox/{cid}/priority", {"priority": "urgent"}, "Срочный"),
                               (f"/inbox/{cid}/tags", {"add": "vip, доставка"}, "доставка")):
        answer = await client.post(path + "?lang=ru", data={**data, "_csrf": csrf}, headers=HX)
        assert answer.status_code == 200 and expect in answer.text, (path, answer.text[:500])
    bad = await client.post(f"/inbox/{cid}/priority", data={"priority": "asap", "_csrf": csrf}, headers=HX)
    assert bad.status_code == 422
    listed = await client.get("/inbox?scope=all&priority=urgent&category=delivery&tag=vip", headers=HX)
    assert f'data-id="{cid}"' in listed.text
    # A care agent may not reassign: no agent picker for them (senior agents and the lead reassign).
    assert 'name="agent"' not in (await client.get(f"/inbox/{cid}")).text
    resolved = await client.post(f"/inbox/{cid}/status", data={"status": "resolved", "_csrf": csrf}, headers=HX)
    assert resolved.status_code == 200 and 'status-resolved' in resolved.text

    await client.post("/logout", data={"_csrf": csrf})
    await sign_in(client, "senior1")
    counts = await client.get("/nav/counts?for=inbox", headers=HX)
    assert "@1" in counts.text
    senior_page = await client.get(f"/inbox/{cid}")
    assert 'name="agent"' in senior_page.text                            # the senior agent reassigns
    assert "@1" not in (await client.get("/nav/counts?for=inbox", headers=HX)).text


async def _async(value: Any) -> Any:
    return value


async def test_issue11_ask_the_client_and_the_clients_answer_page(client: AsyncTestClient,
                                                                  engagement: Backend) -> None:
    channel = telegram_channel(engagement)
    conversation = await inbound(engagement, channel, telegram_update(5003, "Есть ли доставка в Шымкент?"))
    cid = conversation["id"]
    csrf = await sign_in(client, "agent1")
    asked = await client.post(f"/inbox/{cid}/ask?lang=ru", data={"question": "Возите ли вы в Шымкент?",
                                                                 "_csrf": csrf}, headers=HX)
    assert asked.status_code == 200, asked.text
    link = re.search(r'id="asked-link">[^<]*<code>([^<]+)</code>', asked.text).group(1)
    token = link.rsplit("/answer/", 1)[1]
    assert "Ждём клиента" in text_of(asked.text) or "status-waiting_client" in asked.text
    staff_cookies = dict(client.cookies)
    client.cookies.clear()                                     # the client's contact person: no session
    visitor = client
    question = await visitor.get(f"/answer/{token}?lang=ru")
    assert question.status_code == 200 and "Возите ли вы в Шымкент?" in question.text
    assert 'class="mainnav"' not in question.text
    empty = await visitor.post(f"/answer/{token}", data={"answer": " ", "_csrf": csrf_of(question.text)})
    assert empty.status_code == 422
    answered = await visitor.post(f"/answer/{token}", data={"answer": "Да, за 2 дня",
                                                            "_csrf": csrf_of(question.text)})
    assert answered.status_code == 200 and 'id="answer-notice"' in answered.text
    assert (await visitor.get(f"/answer/{token}x")).status_code == 404
    client.cookies.clear()
    client.cookies.update(staff_cookies)
    page = await client.get(f"/inbox/{cid}")
    assert "Да, за 2 дня" in page.text and "status-open" in page.text


async def test_issue11_channel_accounts_page_never_shows_secrets_and_registers_the_webhook(
        client: AsyncTestClient, engagement: Backend, bot_api) -> None:
    stand, _url = bot_api
    csrf = await sign_in(client, "lead")
    page = await client.get("/inbox/channels?lang=ru")
    assert page.status_code == 200
    missing = await client.post("/inbox/channels", data={"kind": "telegram", "name": "Бот", "telegram_bot_token": BOT,
                                                         "_csrf": csrf}, headers=HX)
    assert missing.status_code == 422 and "field-error" in missing.text and BOT not in missing.text
    created = await client.post("/inbox/channels", data={"kind": "telegram", "name": "Бот кондитерской",
                                                         "telegram_bot_token": BOT, "telegram_secret_token": SECRET,
                                                         "_csrf": csrf}, headers=HX)
    assert created.status_code == 200, created.text
    assert "Бот кондитерской" in created.text and BOT not in created.text and SECRET not in created.text
    assert "https://zabota.example/webhooks/telegram/" in created.text
    channel_id = re.search(r'/inbox/channels/([0-9a-f-]+)/register-webhook', created.text).group(1)
    registered = await client.post(f"/inbox/channels/{channel_id}/register-webhook", data={"_csrf": csrf}, headers=HX)
    assert registered.status_code == 200 and 'id="channels-notice"' in registered.text
    [call] = [c for c in stand.calls if c["path"].endswith("/setWebhook")]
    assert call["body"]["secret_token"] == SECRET
    await client.post("/logout", data={"_csrf": csrf})
    await sign_in(client, "senior1")
    assert (await client.get("/inbox/channels")).status_code == 403


async def test_issue11_an_email_account_with_implicit_tls_on_its_own_port_from_the_page(
        client: AsyncTestClient, engagement: Backend) -> None:
    csrf = await sign_in(client, "lead")
    page = await client.get("/inbox/channels?lang=ru")
    assert "TLS с самого начала (SSL)" in page.text and "Подключение IMAP" in page.text
    form = {"kind": "email", "name": "Почта", "email_address": "care@shop.kz", "email_imap_host": "imap.shop.kz",
            "email_imap_port": "10993", "email_smtp_host": "smtp.shop.kz", "email_smtp_port": "2525",
            "email_username": "care@shop.kz", "email_password": "mail-pass", "email_tls": "on",
            "email_imap_security": "ssl", "email_smtp_security": "starttls", "_csrf": csrf}
    created = await client.post("/inbox/channels", data=form, headers=HX)
    assert created.status_code == 200, created.text
    assert "mail-pass" not in created.text
    bad = await client.post("/inbox/channels", data={**form, "name": "Почта 2", "email_imap_security": "tls13"},
                            headers=HX)
    assert bad.status_code == 422 and "field-error" in bad.text
    names = [c["name"] for c in engagement.call("GET", "/channels", as_=LEAD)]
    assert names.count("Почта") == 1 and "Почта 2" not in names


async def test_issue11_templates_page_for_the_senior_agent(client: AsyncTestClient, engagement: Backend) -> None:
    csrf = await sign_in(client, "senior1")
    page = await client.get("/inbox/templates?lang=ru")
    assert page.status_code == 200 and "Скрипт №3" in page.text and "Скрипт №4" in page.text
    bad = await client.post("/inbox/templates", data={"title": "", "body": "", "_csrf": csrf}, headers=HX)
    assert bad.status_code == 422
    made = await client.post("/inbox/templates", data={"title": "Доставка", "body": "{customer_name}, заказ в пути",
                                                       "category": "delivery", "kind": "template", "_csrf": csrf},
                             headers=HX)
    assert made.status_code == 200 and "Доставка" in made.text
    template_id = next(t["id"] for t in engagement.call("GET", "/templates", as_=LEAD) if t["title"] == "Доставка")
    edited = await client.post(f"/inbox/templates/{template_id}", data={
        "title": "Доставка", "body": "новый текст", "category": "delivery", "kind": "script", "_csrf": csrf},
        headers=HX)
    assert edited.status_code == 200 and "новый текст" in edited.text
    deleted = await client.post(f"/inbox/templates/{template_id}/delete", data={"_csrf": csrf}, headers=HX)
    assert deleted.status_code == 200 and "новый текст" not in deleted.text
    await client.post("/logout", data={"_csrf": csrf})
    await sign_in(client, "agent1")
    assert (await client.get("/inbox/templates")).status_code == 403


async def test_issue11_care_dashboard_and_nav_counts(client: AsyncTestClient, engagement: Backend) -> None:
    channel = telegram_channel(engagement)
    conversation = await inbound(engagement, channel, telegram_update(5004, "Где мой заказ?"))
    engagement.call("POST", f"/conversations/{conversation['id']}/assign", {"agent": "agent1"}, as_=LEAD)
    await sign_in(client, "agent1")
    page = await client.get("/?lang=ru")
    assert page.status_code == 200 and 'id="dash-care"' in page.text and 'id="dash-coming"' not in page.text
    assert f'href="/inbox/{conversation["id"]}"' in page.text and "Anna" in page.text
    counts = await client.get("/nav/counts?for=inbox", headers=HX)
    assert re.search(r">[1-9]", counts.text), counts.text
    assert 'href="/inbox"' in page.text                                   # the menu has the inbox


async def test_issue11_live_stream_tells_the_open_page_about_a_new_message(live_server, settings: Settings,
                                                                           engagement: Backend) -> None:
    """The SSE endpoint, through a real server: a webhook arrives after the stream opened; the stream names
    the conversation within the long poll."""
    from gateway.app import create_app

    from .conftest import add_role_accounts

    gateway = create_app(settings)
    url = live_server(gateway)
    from shared.db import Database

    database = Database(settings.database_url)
    try:
        await add_role_accounts(database)
    finally:
        await database.dispose()
    channel = telegram_channel(engagement)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        login = await http.get("/login")
        signed = await http.post("/login", data={"login": "agent1", "password": "demo", "_csrf": csrf_of(login.text),
                                                 "next": "/"})
        assert signed.status_code in (200, 303), signed.text
        async with http.stream("GET", "/inbox/stream") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            while (await anext(lines)) != "event: ready":
                pass
            update = telegram_update(5005, "Живое сообщение")
            await inbound(engagement, channel, update)

            async def changed() -> list[str]:
                while True:
                    line = await anext(lines)
                    if line.startswith("event: changed"):
                        return json.loads((await anext(lines)).removeprefix("data: "))["ids"]
            ids = await asyncio.wait_for(changed(), timeout=25)
    conversation = next(r for r in engagement.call("GET", "/conversations", as_=LEAD)
                        if r["last_message"]["text"] == "Живое сообщение")
    assert conversation["id"] in ids
