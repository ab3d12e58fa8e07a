"""Agents' replies with files (issue 11, beyond text): a Telegram or VK reply carries photos and documents — sent
as the group SOP's pushes are, through the local stand-in Bot API / VK API on loopback that enforces the documented
limits and upload flows — and an e-mail answer carries them as MIME parts to a real SMTP server. Instagram and VK
wall comments take text only: said before anything is stored, like too many, too large or empty files."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator

import pytest
from engagement import pushing
from engagement.file_models import MessageFile
from engagement.models import Message
from engagement.rules import vk_random_id

from .botapi import TOKEN, VK_GROUP, VK_TOKEN, BotApi
from .conftest import _api
from .mailserver import mail
from .payloads import IG_CONFIG, TG_CONFIG, VK_CONFIG, ig_comment, meta_batch, tg_private, vk_message

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8
PDF = b"%PDF-1.4\n" + b"0" * 3000 + b"\n%%EOF"
TG = {**TG_CONFIG, "bot_token": TOKEN}
VK = {**VK_CONFIG, "access_token": VK_TOKEN, "group_id": VK_GROUP}
SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def upload(name: str, data: bytes, content_type: str = "") -> dict:
    return {"name": name, "content_type": content_type, "data": b64(data)}


@pytest.fixture
def bot_api() -> Iterator[BotApi]:
    api = BotApi(unit=0.001).start()
    yield api
    api.stop()


@pytest.fixture
async def api_bot(database_url, clock, stand_in, bot_api) -> AsyncIterator:
    """The service with Telegram and VK pointed at the limit-enforcing stand-in (Instagram at the simple one)."""
    async for a in _api(database_url, clock, stand_in.url, telegram_api_url=bot_api.url,
                        vk_api_url=f"{bot_api.url}/vk/method"):
        sender = a.runtime.state["sender"]
        sender.pacer = pushing.Pacer(pushing.PaceSettings(unit=0.001))
        yield a


async def conversation_of(api, kind: str, config: dict, body: dict, headers: dict | None = None) -> dict:
    channel = await api.channel(kind, config)
    await api.webhook(f"/webhooks/{kind}/{channel['id']}", body, headers)
    await api.process()
    [conversation] = await api.conversations()
    return conversation


async def reply(api, conversation_id: str, body: dict, status: int = 202) -> dict:
    return await api.ok("post", f"/conversations/{conversation_id}/replies", body, status=status)


async def test_a_telegram_reply_carries_a_photo_and_a_document_once(api_bot, bot_api) -> None:
    api = api_bot
    conversation = await conversation_of(api, "telegram", TG, tg_private(), SECRET)
    sent = await reply(api, conversation["id"], {"text": "Вот меню и прайс", "files": [
        upload("menu.jpg", JPEG, "image/jpeg"), upload("прайс.pdf", PDF)]})
    assert sent["delivery"] == "pending"
    assert [(a["name"], a["content_type"], a["size"], a["state"]) for a in sent["attachments"]] == [
        ("menu.jpg", "image/jpeg", len(JPEG), "stored"), ("прайс.pdf", "application/pdf", len(PDF), "stored")]
    assert await api.send() == 1
    assert await api.send() == 0
    photo, document = bot_api.in_chat(tg_private()["message"]["chat"]["id"])
    assert (photo.method, photo.caption, photo.files[0]["size"]) == ("sendPhoto", "Вот меню и прайс", len(JPEG))
    assert (document.method, document.files[0]["name"], document.files[0]["size"]) == (
        "sendDocument", "прайс.pdf", len(PDF))
    detail = await api.ok("get", f"/conversations/{conversation['id']}")
    out = next(m for m in detail["messages"] if m["id"] == sent["id"])
    assert out["delivery"] == "sent" and [a["name"] for a in out["attachments"]] == ["menu.jpg", "прайс.pdf"]
    file_url = f"/conversations/{conversation['id']}/files/{out['attachments'][1]['id']}"
    assert (await api.get(file_url)).content == PDF                  # the agent's file, as sent


async def test_a_vk_reply_uploads_its_file_and_sends_it_with_the_messages_own_random_id(api_bot, bot_api) -> None:
    api = api_bot
    conversation = await conversation_of(api, "vk", VK, vk_message(VK_CONFIG["secret"], group_id=VK_GROUP))
    only_file = await reply(api, conversation["id"], {"files": [upload("договор.pdf", PDF, "application/pdf")]})
    assert await api.send() == 1
    [message] = bot_api.vk_messages
    assert message["attachment"].startswith(f"doc-{VK_GROUP}_") and message["message"] == ""
    assert str(message["random_id"]) == str(vk_random_id(only_file["id"]))   # a retry is the same message
    assert [c["method"] for c in bot_api.vk_calls] == ["docs.getMessagesUploadServer", "upload.doc", "docs.save",
                                                      "messages.send"]
    [listed] = await api.conversations()
    assert listed["last_message"]["text"] == "📎 договор.pdf"          # a reply of files only: its names


async def test_an_email_answer_carries_the_files_as_attachments(api, mailserver) -> None:
    channel = await api.channel("email", mailserver.config(), name="Поддержка")
    mailserver.send(mail("Счёт", "Пришлите счёт, пожалуйста", message_id="<bill@example.com>"))
    api.in_app(api.runtime.state["mailbox"].poll_all)
    await api.process()
    [conversation] = await api.conversations()
    assert channel["id"] == conversation["channel_id"]
    await reply(api, conversation["id"], {"text": "Счёт во вложении.", "files": [upload("счёт.pdf", PDF)]})
    assert await api.send() == 1
    [received] = mailserver.inbox("ann@example.com")
    [part] = [p for p in received.walk() if p.get_filename()]
    assert (part.get_filename(), part.get_content_type(), part.get_payload(decode=True)) == (
        "счёт.pdf", "application/pdf", PDF)
    assert received.get_body(preferencelist=("plain",)).get_content().strip() == "Счёт во вложении."


async def test_files_where_the_channel_takes_text_only_or_too_many_large_or_empty_change_nothing(api_any) -> None:
    api = api_any
    channel = await api.channel("instagram", IG_CONFIG)
    assert (await api.instagram(meta_batch(changes=[ig_comment()]))).status_code == 200
    await api.process()
    [ig] = await api.conversations()
    assert ig["channel_id"] == channel["id"]
    refused = await api.post(f"/conversations/{ig['id']}/replies", {"text": "Фото", "files": [upload("a.jpg", JPEG)]})
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert (error["field"], error["code"]) == ("files", "inbox.reply_files_channel")

    tg = await api.channel("telegram", TG_CONFIG, deal_id="deal-2")
    await api.webhook(f"/webhooks/telegram/{tg['id']}", tg_private(), SECRET)
    await api.process()
    [conversation] = [c for c in await api.conversations() if c["channel_id"] == tg["id"]]
    url = f"/conversations/{conversation['id']}/replies"
    for files, code in (([upload(f"{n}.jpg", JPEG) for n in range(11)], "inbox.reply_files_too_many"),
                        ([upload("big.bin", b"0" * (20 * 1024 * 1024 + 1))], "inbox.reply_files_too_large"),
                        ([upload("empty.txt", b"")], "inbox.reply_file_empty")):
        answer = await api.post(url, {"text": "x", "files": files})
        assert answer.status_code == 422 and answer.json()["errors"][0]["code"] == code, answer.text
    bad = await api.post(url, {"text": "x", "files": [{"name": "a", "data": "not base64!"}]})
    assert bad.status_code == 422                                     # not base64: refused, never a 500
    assert await api.count(Message) == 2 and await api.count(MessageFile) == 0   # the two customers' messages
