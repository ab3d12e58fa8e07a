"""Issue 11, the files customers send, on the conversation page: a raster image as a small thumbnail served from
our own origin, any other file as a download link with its name and size, a file not fetched (yet) said in words
in ru/kk/en/zh (template level); and against a REAL engagement service whose file fetcher downloads from a
stand-in Bot API on loopback: the page shows them, `/inbox/{id}/files/{file_id}` streams them as the signed-in
staff member — an image inline, a customer's HTML as a download with nosniff — and someone who may not read the
conversation gets 404."""

from __future__ import annotations

import re
from types import SimpleNamespace as NS
from typing import Any

import httpx
import pytest
from gateway import i18n
from gateway.pages.inbox import ilabel
from gateway.pages.inbox_files import decorate
from gateway.rendering import create_template_engine
from litestar.testing import AsyncTestClient
from shared.testing import eventually, make_settings

from .backends import Backend
from .conftest import sign_in
from .test_inbox_pages import (  # noqa: F401 - the module's engagement process and its Bot API stand-in
    LEAD,
    SECRET,
    bot_api,
    engagement,
    engagement_url,
    inbound,
    inbox_stack,
    settings,
    telegram_channel,
    telegram_update,
    text_of,
)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
HTML = b"<html><script>alert(document.cookie)</script></html>"
CONVERSATION = {"id": "c1", "customer": {"name": "Anna", "handle": "@anna_k"}, "notes": [], "client_questions": [],
                "messages": [{"id": "m1", "direction": "in", "delivery": None, "text": "Вот фото", "author": "Anna",
                              "at": "2026-11-19T06:00:00+00:00", "attachments": [
    {"id": "f1", "name": "photo_61.jpg", "content_type": "image/jpeg", "size": 2048, "state": "stored"},
    {"id": "f2", "name": "счёт.pdf", "content_type": "application/pdf", "size": 3 * 1024 * 1024, "state": "stored"},
    {"id": "f3", "name": "logo.svg", "content_type": "image/svg+xml", "size": 300, "state": "stored"},
    {"id": "f4", "name": "voice_62.ogg", "content_type": "audio/ogg", "size": None, "state": "pending"},
    {"id": "f5", "name": "video.mov", "content_type": "video/quicktime", "size": 26214400, "state": "failed",
     "reason_code": "too_large", "reason": "larger than 20 MB"},
    {"id": "f6", "name": "old.pdf", "content_type": "application/pdf", "size": 1000, "state": "removed"}]}]}
WORDS = {"ru": ("ещё не загружен", "не удалось загрузить", "больше 20 МБ", "3.0 МБ", "удалён"),
         "kk": ("әлі жүктелмеді", "жүктеу мүмкін болмады", "20 МБ-тан үлкен", "3.0 МБ", "жойылды"),
         "en": ("not downloaded yet", "could not be downloaded", "larger than 20 MB", "3.0 MB", "removed"),
         "zh": ("尚未下载", "无法下载", "大于 20 MB", "3.0 MB", "已删除")}


@pytest.fixture(scope="module")
def env():
    i18n.load_all()
    return create_template_engine(make_settings("gateway", database_url="sqlite+aiosqlite:///:memory:").calendar).engine


@pytest.mark.parametrize("language", sorted(i18n.LANGUAGES))
def test_issue11_attachments_render_as_thumbnail_link_and_state_in_each_language(env, language: str) -> None:
    token = i18n.activate(language)
    try:
        c = decorate({**CONVERSATION, "messages": [{**CONVERSATION["messages"][0], "attachments": [
            dict(a) for a in CONVERSATION["messages"][0]["attachments"]]}]})
        template = env.get_template("pages/inbox_conversation.html")
        context = template.new_context({"web": NS(language=language, csrf_token="x", staff=None), "nav": [],
                                        "request": None, "c": c, "ilabel": ilabel})
        html = "".join(template.blocks["thread"](context))
    finally:
        i18n.deactivate(token)
    text = text_of(html)
    assert '<img class="thumb" src="/inbox/c1/files/f1" alt="photo_61.jpg"' in html   # our own origin
    assert re.search(r'<a href="/inbox/c1/files/f2" download="счёт.pdf">📎 счёт.pdf</a>', html)
    assert 'src="/inbox/c1/files/f3"' not in html and 'href="/inbox/c1/files/f3"' in html   # SVG: a link
    assert 'href="/inbox/c1/files/f4"' not in html and 'href="/inbox/c1/files/f5"' not in html
    assert 'href="/inbox/c1/files/f6"' not in html                      # removed after the days files are kept
    pending, failed, too_large, size, removed = WORDS[language]
    assert pending in text and f"{failed}: {too_large}" in text and size in text and removed in text
    if language != "en":
        assert "not downloaded yet" not in text and "could not be downloaded" not in text


# ---------------------------------------------------------------- against the real engagement service


def photo_and_document(update_id: int) -> list[dict[str, Any]]:
    photo = telegram_update(update_id, "")
    del photo["message"]["text"]
    photo["message"]["caption"] = "Вот что пришло"
    photo["message"]["photo"] = [{"file_id": "AgAD-thumb", "file_unique_id": "t", "width": 90, "height": 90},
                                 {"file_id": "AgAD-photo", "file_unique_id": "p", "width": 800, "height": 600}]
    document = telegram_update(update_id + 1, "")
    del document["message"]["text"]
    document["message"]["document"] = {"file_id": "BQAD-page", "file_unique_id": "d", "file_name": "счёт.html",
                                       "mime_type": "text/html", "file_size": len(HTML)}
    return [photo, document]


async def test_issue11_the_page_shows_the_files_and_streams_them_as_the_signed_in_person(
        client: AsyncTestClient, engagement: Backend, bot_api) -> None:  # noqa: F811 - fixtures
    stand, _url = bot_api
    stand.files.update({"AgAD-photo": ("photos/file_1.jpg", JPEG), "BQAD-page": ("documents/file_2.html", HTML)})
    channel = telegram_channel(engagement)
    async with httpx.AsyncClient(timeout=30) as http:
        for update in photo_and_document(7101):
            answer = await http.post(f"{engagement.base_url}/webhooks/telegram/{channel['id']}", json=update,
                                     headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
            assert answer.status_code == 200, answer.text

    async def fetched():   # the service's own loops: the processor, then the file fetcher
        rows = engagement.call("GET", "/conversations", as_=LEAD)
        mine = [r for r in rows if r["channel_id"] == channel["id"]]
        if not mine:
            return None
        detail = engagement.call("GET", f"/conversations/{mine[0]['id']}", as_=LEAD)
        files = [a for m in detail["messages"] for a in m.get("attachments", [])]
        return detail if len(files) == 2 and all(a["state"] == "stored" for a in files) else None
    detail = await eventually(fetched, timeout=30, message="both files fetched by the engagement service")
    cid = detail["id"]
    [photo], [document] = (m["attachments"] for m in detail["messages"])

    csrf = await sign_in(client, "agent1")   # agent1 serves the agency's accounts
    page = await client.get(f"/inbox/{cid}?lang=ru")
    assert page.status_code == 200
    assert f'<img class="thumb" src="/inbox/{cid}/files/{photo["id"]}"' in page.text
    assert f'href="/inbox/{cid}/files/{document["id"]}" download="счёт.html">📎 счёт.html</a>' in page.text
    assert "Вот что пришло" in page.text and f"{len(HTML)} Б" in text_of(page.text)
    thread = await client.get(f"/inbox/{cid}/thread")
    assert f'src="/inbox/{cid}/files/{photo["id"]}"' in thread.text   # the live refresh shows them too

    image = await client.get(f"/inbox/{cid}/files/{photo['id']}")
    assert image.status_code == 200 and image.content == JPEG
    assert image.headers["content-type"] == "image/jpeg"
    assert image.headers["content-disposition"].startswith("inline;")
    assert image.headers["x-content-type-options"] == "nosniff"
    html = await client.get(f"/inbox/{cid}/files/{document['id']}")
    assert html.status_code == 200 and html.content == HTML
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["content-disposition"] == \
        "attachment; filename=\"file.html\"; filename*=UTF-8''%D1%81%D1%87%D1%91%D1%82.html"
    assert html.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in html.headers["content-security-policy"]

    await client.post("/logout", data={"_csrf": csrf})
    await sign_in(client, "manager1")   # a content manager: not one of their clients
    refused = await client.get(f"/inbox/{cid}/files/{photo['id']}")
    assert refused.status_code == 404 and refused.content != JPEG


def test_issue11_the_composer_offers_files_where_the_channel_takes_them() -> None:
    from gateway.pages.reply_files import can_attach

    assert [can_attach({"kind": k, "thread_kind": t}) for k, t in (
        ("telegram", "tg_chat"), ("vk", "vk_dialog"), ("email", "email"), ("webform", "webform"),
        ("vk", "vk_wall"), ("instagram", "ig_direct"), ("instagram", "ig_comment"), ("monitoring", "mention"))] == [
        True, True, True, True, False, False, False, False]


async def test_issue11_an_agent_answers_with_a_file_from_the_composer(
        client: AsyncTestClient, engagement: Backend, bot_api) -> None:  # noqa: F811 - fixtures
    stand, _url = bot_api
    channel = telegram_channel(engagement)
    conversation = await inbound(engagement, channel, telegram_update(7201, "Пришлите прайс, пожалуйста"))
    cid = conversation["id"]
    csrf = await sign_in(client, "agent1")
    page = await client.get(f"/inbox/{cid}?lang=ru")
    assert 'hx-encoding="multipart/form-data"' in page.text and 'id="reply-files"' in page.text
    empty = await client.post(f"/inbox/{cid}/reply", data={"text": " ", "_csrf": csrf}, headers={"HX-Request": "true"},
                              files={"files": ("", b"", "application/octet-stream")})   # nothing chosen
    assert empty.status_code == 422 and "Напишите ответ или выберите файл." in empty.text
    pdf = b"%PDF-1.4\n" + b"1" * 2000
    sent = await client.post(f"/inbox/{cid}/reply", data={"text": "Прайс во вложении", "_csrf": csrf},
                             headers={"HX-Request": "true"}, files={"files": ("прайс.pdf", pdf, "application/pdf")})
    assert sent.status_code == 200, sent.text
    assert "📎 прайс.pdf" in sent.text

    async def documents():
        return [c for c in stand.calls if c["path"].endswith("/sendDocument")]
    [call] = await eventually(documents, timeout=30, message="the Bot API got the document")
    assert (call["body"]["caption"], str(call["body"]["chat_id"])) == ("Прайс во вложении", "1111111")

    async def delivered():
        return "delivery-sent" in (await client.get(f"/inbox/{cid}/thread")).text
    await eventually(delivered, timeout=30, message="the reply shown as sent")
    many = await client.post(f"/inbox/{cid}/reply", data={"text": "x", "_csrf": csrf}, headers={"HX-Request": "true"},
                             files=[("files", (f"{n}.txt", b"x", "text/plain")) for n in range(11)])
    assert many.status_code == 422 and "Не больше 10 файлов в одном ответе." in many.text
