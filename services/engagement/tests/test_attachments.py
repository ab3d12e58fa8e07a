"""Issue 11, care inbox attachments: the files inbound messages carry (Telegram, VK, Instagram Direct, e-mail) are
noted with the message, fetched by the file fetcher outside the webhook path from the stand-in platforms on
loopback (Telegram `getFile` + `/file/bot<token>/<path>`, the CDN URLs VK and Instagram give), kept in the
database (at most 20 MB) and served to whoever may read the conversation — `inline` for raster images only,
everything else `attachment`, always `nosniff`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from engagement import files
from engagement.channels import instagram, telegram, vk
from engagement.file_models import MessageFile
from engagement.models import Message
from sqlalchemy import select
from sqlalchemy.orm import undefer

from .mailserver import mail
from .payloads import (
    IG_CONFIG,
    LEAD,
    T0_S,
    TG_CONFIG,
    VK_CONFIG,
    ig_direct,
    meta_batch,
    tg_private,
    vk_message,
)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8
HTML = b"<html><body><script>alert(document.cookie)</script>invoice</body></html>"
SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
AGENT = ("agent7", "care_agent")
T0_FROM_S = datetime.fromtimestamp(T0_S, UTC)


def tg_photo(update_id: int = 734512101, message_id: int = 61, caption: str | None = "Вот так пришло") -> dict:
    update = tg_private(update_id=update_id, message_id=message_id)
    message = update["message"]
    del message["text"]
    message["photo"] = [
        {"file_id": "AgAD-small", "file_unique_id": "s1", "file_size": 1200, "width": 90, "height": 67},
        {"file_id": "AgAD-large", "file_unique_id": "l1", "file_size": len(JPEG), "width": 1280, "height": 960},
        {"file_id": "AgAD-medium", "file_unique_id": "m1", "file_size": 9000, "width": 320, "height": 240}]
    if caption is not None:
        message["caption"] = caption
    return update


def tg_document(update_id: int = 734512102, message_id: int = 62, file_id: str = "BQAD-invoice",
                name: str = "invoice.html", mime: str = "text/html", size: int = len(HTML)) -> dict:
    update = tg_private(update_id=update_id, message_id=message_id)
    message = update["message"]
    del message["text"]
    message["document"] = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_name": name,
                           "mime_type": mime, "file_size": size}
    return update


def vk_with(secret: str, attachments: list[dict[str, Any]], event_id: str, cmid: int, text: str = "") -> dict:
    body = vk_message(secret, event_id=event_id, cmid=cmid, text=text)
    body["object"]["message"]["attachments"] = attachments
    return body


def vk_photo(url_small: str, url_large: str) -> dict[str, Any]:
    return {"type": "photo", "photo": {"id": 457239017, "owner_id": 51422811, "date": T0_S, "sizes": [
        {"type": "s", "url": url_small, "width": 75, "height": 56},
        {"type": "z", "url": url_large, "width": 1080, "height": 810},
        {"type": "m", "url": url_small, "width": 130, "height": 97}]}}


def vk_doc(url: str, title: str = "прайс", ext: str = "pdf", size: int | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": 6001, "owner_id": 51422811, "title": title, "ext": ext, "url": url, "type": 1}
    if size is not None:
        doc["size"] = size
    return {"type": "doc", "doc": doc}


async def telegram_channel(api) -> str:
    return f"/webhooks/telegram/{(await api.channel('telegram', TG_CONFIG))['id']}"


async def vk_channel(api) -> str:
    return f"/webhooks/vk/{(await api.channel('vk', VK_CONFIG))['id']}"


async def only_conversation(api) -> dict:
    [conversation] = await api.conversations()
    return await api.ok("get", f"/conversations/{conversation['id']}")


async def file_rows(api) -> list[MessageFile]:
    """Every file row (its bytes loaded), in the order of the messages and within each message."""
    async def read() -> list[MessageFile]:
        async with api.runtime.db.transaction() as session:
            return list((await session.execute(select(MessageFile).options(undefer(MessageFile.data)))).scalars())

    order = {m.id: (m.seq, m.channel_id) for m in await api.rows(Message)}
    return sorted(api.in_app(read), key=lambda r: (order[r.message_id], r.position))


def getfile_calls(stand_in) -> list[str]:
    return [c["body"]["file_id"] for c in stand_in.calls if c["path"].endswith("/getFile")]


# ---------------------------------------------------------------- the adapters (pure)


def test_issue11_telegram_notes_the_largest_photo_and_each_media_once() -> None:
    [item] = telegram.parse_update(tg_photo(), T0_FROM_S)
    assert item.text == "Вот так пришло"
    assert [(f.kind, f.name, f.content_type, f.file_id) for f in item.attachments] == [
        ("photo", "photo_61.jpg", "image/jpeg", "AgAD-large")]
    update = tg_private(message_id=70)
    message = update["message"]
    del message["text"]
    message["animation"] = {"file_id": "CgAD-anim", "file_name": "dance.mp4", "mime_type": "video/mp4"}
    message["document"] = {"file_id": "CgAD-anim", "file_name": "dance.mp4", "mime_type": "video/mp4"}
    message["sticker"] = {"file_id": "CAAD-st", "is_animated": False, "is_video": False}
    message["voice"] = {"file_id": "AwAD-v", "duration": 3}
    [item] = telegram.parse_update(update, T0_FROM_S)
    assert item.text == ""   # media without a caption: stored now, with its files beside the empty text
    assert [(f.kind, f.name, f.content_type) for f in item.attachments] == [
        ("animation", "dance.mp4", "video/mp4"), ("voice", "voice_70.ogg", "audio/ogg"),
        ("sticker", "sticker_70.webp", "image/webp")]
    service = {"update_id": 1, "message": {"message_id": 1, "date": T0_S, "chat": {"id": 5, "type": "private"},
                                           "from": {"id": 5, "is_bot": False, "first_name": "A"},
                                           "new_chat_title": "x"}}
    assert telegram.parse_update(service, T0_FROM_S) == []


def test_issue11_vk_and_instagram_note_their_file_urls() -> None:
    body = vk_with("s", [vk_photo("https://sun9-1.userapi.com/s.jpg", "https://sun9-1.userapi.com/z.jpg"),
                         vk_doc("https://vk.com/doc51422811_6001?hash=a"),
                         {"type": "audio_message", "audio_message": {"id": 7, "owner_id": 5,
                                                                      "link_ogg": "https://psv4.vkuseraudio.net/a.ogg"}},
                         {"type": "video", "video": {"id": 1, "owner_id": 2}},
                         {"type": "wall", "wall": {"id": 3}}], "e1", 1, text="смотрите")
    [item] = vk.parse_event(body, T0_FROM_S)
    assert item.text == "смотрите"
    assert [(f.kind, f.name, f.url) for f in item.attachments] == [
        ("photo", "photo_51422811_457239017.jpg", "https://sun9-1.userapi.com/z.jpg"),
        ("document", "прайс.pdf", "https://vk.com/doc51422811_6001?hash=a"),
        ("voice", "voice_5_7.ogg", "https://psv4.vkuseraudio.net/a.ogg")]
    wall = {"type": "wall_reply_new", "group_id": 171104414, "object": {
        "id": 9, "from_id": 457838735, "date": T0_S, "text": "", "post_owner_id": -171104414, "post_id": 1,
        "attachments": [vk_photo("https://x.example/s.jpg", "https://x.example/big.jpg")]}}
    [comment] = vk.parse_event(wall, T0_FROM_S)
    assert [f.url for f in comment.attachments] == ["https://x.example/big.jpg"]
    event = ig_direct(text="")
    event["message"] = {"mid": "m1", "attachments": [
        {"type": "image", "payload": {"url": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1"}},
        {"type": "share", "payload": {"url": "https://www.instagram.com/p/xyz"}},
        {"type": "file", "payload": {"url": "https://cdn.example/docs/act.pdf"}}]}
    [dm] = instagram.parse_entry({"id": "1", "time": T0_S, "messaging": [event]}, T0_FROM_S)
    assert dm.text == "[image] [share] [file]"   # the text as it has always been
    assert [(f.kind, f.name) for f in dm.attachments] == [("image", "image_1.jpg"), ("file", "act.pdf")]


def test_issue11_content_disposition_is_inline_for_raster_images_only() -> None:
    assert files.disposition("image/png", "a.png").startswith("inline;")
    for kind in ("image/svg+xml", "text/html", "application/pdf", "application/octet-stream"):
        assert files.disposition(kind, "x").startswith("attachment;")
    assert files.disposition("application/pdf", "счёт №1.pdf") == (
        "attachment; filename=\"No1.pdf\"; filename*=UTF-8''%D1%81%D1%87%D1%91%D1%82%20%E2%84%961.pdf")
    hostile = files.disposition("text/plain", 'a"; filename=x.html\r\nSet-Cookie: y.txt')
    assert "\r" not in hostile and "\n" not in hostile and hostile.count('"') == 2
    assert files.clean_type("Text/HTML; charset=utf-8") == "text/html" and files.clean_type("<script>") == ""
    assert files.clean_name("../../etc/passwd\x00") == "passwd" and files.clean_name("") == "file"


# ---------------------------------------------------------------- fetched once, served


async def test_issue11_telegram_photo_and_document_are_fetched_once_and_served(api_any, stand_in) -> None:
    api = api_any
    path = await telegram_channel(api)
    stand_in.tg_file("AgAD-large", JPEG, path="photos/file_7.jpg")
    stand_in.tg_file("BQAD-invoice", HTML, path="documents/invoice.html", content_type="text/html")
    for update in (tg_photo(), tg_photo(), tg_document()):   # the photo's update redelivered
        assert (await api.webhook(path, update, SECRET)).status_code == 200
    assert getfile_calls(stand_in) == [] and stand_in.downloads == []   # the webhooks only stored deliveries
    await api.process()
    again = tg_photo(update_id=734512999)   # the same message under another update id: still one message
    assert (await api.webhook(path, again, SECRET)).status_code == 200
    await api.process()
    assert [(r.name, r.state) for r in await file_rows(api)] == [("photo_61.jpg", "pending"),
                                                                   ("invoice.html", "pending")]
    assert await api.fetch() == 2
    assert await api.fetch() == 0
    assert sorted(getfile_calls(stand_in)) == ["AgAD-large", "BQAD-invoice"]   # once each; never a smaller size
    assert sorted(stand_in.downloads) == [f"/tg/file/bot{TG_CONFIG['bot_token']}/documents/invoice.html",
                                          f"/tg/file/bot{TG_CONFIG['bot_token']}/photos/file_7.jpg"]
    detail = await only_conversation(api)
    assert [m["text"] for m in detail["messages"]] == ["Вот так пришло", ""]
    [listed] = (await api.get("/conversations")).json()   # a message of files only: the list previews its names
    assert listed["last_message"]["text"] == "📎 invoice.html"
    [photo], [document] = (m["attachments"] for m in detail["messages"])
    assert {k: photo[k] for k in ("name", "content_type", "size", "state")} == {
        "name": "photo_61.jpg", "content_type": "image/jpeg", "size": len(JPEG), "state": "stored"}
    assert (document["name"], document["content_type"], document["state"]) == ("invoice.html", "text/html", "stored")
    image = await api.get(f"/conversations/{detail['id']}/files/{photo['id']}")
    assert image.status_code == 200 and image.content == JPEG
    assert image.headers["content-type"] == "image/jpeg"
    assert image.headers["content-disposition"].startswith("inline;")
    assert image.headers["x-content-type-options"] == "nosniff"
    page = await api.get(f"/conversations/{detail['id']}/files/{document['id']}")
    assert page.status_code == 200 and page.content == HTML
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-disposition"] == \
        "attachment; filename=\"invoice.html\"; filename*=UTF-8''invoice.html"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in page.headers["content-security-policy"]
    assert await api.count(MessageFile) == 2 and await api.count(Message) == 2
    assert api.runtime.state["processor"].fallbacks == 0   # the set-based batch wrote them, not the fallback


async def test_issue11_one_by_one_processing_notes_the_same_files(api, stand_in) -> None:
    """The processor's reference path (one delivery at a time) keeps files as the set-based batch does."""
    api.runtime.state["processor"].set_based = False
    path = await telegram_channel(api)
    stand_in.tg_file("AgAD-large", JPEG)
    assert (await api.webhook(path, tg_photo(caption=None), SECRET)).status_code == 200
    await api.process()
    assert await api.fetch() == 1
    [row] = await file_rows(api)
    assert (row.state, row.size, row.content_type) == ("stored", len(JPEG), "image/jpeg")


async def test_issue11_the_supervised_files_loop_fetches_after_the_processors_commit(api, stand_in) -> None:
    from engagement.app import SUPERVISED, spec
    from engagement.config import ChannelSettings

    if SUPERVISED:
        assert "engagement files" in spec(ChannelSettings()).loops(api.runtime)
    fetcher = api.runtime.state["fetcher"]
    fetcher.poll_seconds = 60.0   # only the commit's wake-up can make it fetch within the test
    running = api.client.blocking_portal.start_task_soon(fetcher.run)
    try:
        path = await telegram_channel(api)
        stand_in.tg_file("AgAD-large", JPEG)
        assert (await api.webhook(path, tg_photo(), SECRET)).status_code == 200
        await api.process()
        deadline = time.monotonic() + 20
        while [r.state for r in await file_rows(api)] != ["stored"]:
            assert time.monotonic() < deadline, "the file was not fetched"
            time.sleep(0.05)
    finally:
        async def stop() -> None:
            fetcher.stop()

        api.in_app(stop)
        running.result(timeout=15)


# ---------------------------------------------------------------- limits, retries, failures


async def test_issue11_a_too_large_file_fails_permanently_with_the_reason(api_any, stand_in) -> None:
    api = api_any
    tg = await telegram_channel(api)
    big = tg_document(file_id="BQAD-big", name="video.mov", mime="video/quicktime", size=25 * 1024 * 1024)
    assert (await api.webhook(tg, big, SECRET)).status_code == 200
    vk_path = await vk_channel(api)
    fetcher = api.runtime.state["fetcher"]
    fetcher.max_bytes = 2048
    sized = stand_in.web_file("/vk-cdn/sized.pdf", b"%PDF" + b"0" * 3000, "application/pdf")
    chunked = stand_in.web_file("/vk-cdn/chunked.pdf", b"%PDF" + b"1" * 9000, "application/pdf", chunked=True)
    small = stand_in.web_file("/vk-cdn/small.pdf", b"%PDF-small", "application/pdf")
    body = vk_with(VK_CONFIG["secret"], [vk_doc(sized, "sized"), vk_doc(chunked, "chunked"), vk_doc(small, "small")],
                   "big-files", 3001, text="документы")
    assert (await api.webhook(vk_path, body)).text == "ok"
    await api.process()
    assert await api.fetch() == 3
    rows = {r.name: r for r in await file_rows(api)}
    assert (rows["video.mov"].state, rows["video.mov"].reason_code) == ("failed", "too_large")
    assert rows["video.mov"].reason.startswith("larger than 20 MB")
    assert "BQAD-big" not in getfile_calls(stand_in)   # Telegram said its size: not even asked for
    for name in ("sized.pdf", "chunked.pdf"):
        assert (rows[name].state, rows[name].reason_code, rows[name].data) == ("failed", "too_large", None)
        assert rows[name].reason.startswith("larger than 2048 bytes")
    assert (rows["small.pdf"].state, rows["small.pdf"].data) == ("stored", b"%PDF-small")
    conversations = {c["kind"]: c for c in await api.conversations()}
    detail = await api.ok("get", f"/conversations/{conversations['telegram']['id']}")
    [failed] = detail["messages"][0]["attachments"]
    assert (failed["state"], failed["reason_code"]) == ("failed", "too_large")
    refused = await api.get(f"/conversations/{detail['id']}/files/{failed['id']}")
    assert refused.status_code == 404
    assert await api.fetch() == 0   # nothing left to try


async def test_issue11_a_5xx_then_success_is_retried_and_a_4xx_is_permanent(api_any, stand_in, clock) -> None:
    api = api_any
    vk_path = await vk_channel(api)
    large = stand_in.web_file("/sun9/large.jpg", JPEG, "image/jpeg")
    gone = stand_in.web_file("/sun9/gone.pdf", b"", "application/pdf")
    del stand_in.web["/sun9/gone.pdf"]   # the CDN answers 404: the link has expired
    stand_in.script("/sun9/large.jpg", (502, {"error": "bad gateway"}))
    body = vk_with(VK_CONFIG["secret"], [vk_photo(large.replace("large", "small"), large), vk_doc(gone, "gone")],
                   "retry-files", 3002)
    assert (await api.webhook(vk_path, body)).text == "ok"
    await api.process()
    assert await api.fetch() == 2
    rows = {r.name: r for r in await file_rows(api)}
    photo = rows["photo_51422811_457239017.jpg"]
    assert (photo.state, photo.tries, photo.reason) == ("pending", 1, "HTTP 502")
    assert photo.next_try_at == clock.now() + timedelta(seconds=2)   # backoff: 2 s after the first try
    assert (rows["gone.pdf"].state, rows["gone.pdf"].reason_code, rows["gone.pdf"].reason) == (
        "failed", "refused", "HTTP 404")
    assert await api.fetch() == 0   # not due yet
    clock.advance(timedelta(seconds=3))
    assert await api.fetch() == 1
    [photo] = [r for r in await file_rows(api) if r.name == photo.name]
    assert (photo.state, photo.tries, photo.data, photo.content_type) == ("stored", 2, JPEG, "image/jpeg")
    assert stand_in.downloads.count("/sun9/large.jpg") == 2


async def test_issue11_telegram_429_waits_retry_after_and_repeated_failures_give_up(api, stand_in, clock) -> None:
    path = await telegram_channel(api)
    stand_in.tg_file("AgAD-large", JPEG)
    stand_in.script("/getFile", (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
                                       "parameters": {"retry_after": 7}}))
    assert (await api.webhook(path, tg_photo(), SECRET)).status_code == 200
    await api.process()
    await api.fetch()
    [row] = await file_rows(api)
    assert row.state == "pending" and row.next_try_at == clock.now() + timedelta(seconds=7)
    fetcher = api.runtime.state["fetcher"]
    fetcher.max_tries = 3
    stand_in.script("/photos/file_0.bin", (503, {"ok": False}), (503, {"ok": False}))
    stand_in.tg_files["AgAD-large"] = ("photos/file_0.bin", JPEG, "")
    stand_in.web[f"/tg/file/bot{TG_CONFIG['bot_token']}/photos/file_0.bin"] = (JPEG, "image/jpeg", False)
    for _ in range(2):
        clock.advance(timedelta(minutes=10))
        assert await api.fetch() == 1
    [row] = await file_rows(api)
    assert (row.state, row.reason_code, row.tries) == ("failed", "gave_up", 3)
    assert row.reason == "gave up after 3 tries: HTTP 503"


async def test_issue11_a_url_that_is_not_http_is_never_fetched(api, stand_in) -> None:
    vk_path = await vk_channel(api)
    body = vk_with(VK_CONFIG["secret"], [vk_doc("file:///etc/passwd", "passwd", "txt")], "bad-url", 3003)
    assert (await api.webhook(vk_path, body)).text == "ok"
    await api.process()
    await api.fetch()
    [row] = await file_rows(api)
    assert (row.state, row.reason_code) == ("failed", "bad_url") and stand_in.downloads == []


async def test_issue11_an_attachment_url_off_the_platforms_file_hosts_is_never_fetched(api, stand_in) -> None:
    """A signed webhook proves its sender, not its URLs: only the platforms' CDNs, and a redirect is checked
    the same way (a redirect to our own network is refused before it is followed)."""
    from engagement.file_fetcher import file_host_allowed

    assert file_host_allowed("sun9-12.userapi.com", ("userapi.com",))
    assert file_host_allowed("SCONTENT.CDNINSTAGRAM.COM.", ("cdninstagram.com",))
    assert not file_host_allowed("userapi.com.evil.example", ("userapi.com",))
    assert not file_host_allowed("evil-userapi.com", ("userapi.com",))
    vk_path = await vk_channel(api)
    inside = stand_in.web_file("/internal/secret.pdf", b"%PDF secret", "application/pdf")
    hop = stand_in.redirect("/cdn/hop.pdf", inside.replace("127.0.0.1", "10.1.2.3"))
    docs = [vk_doc("http://169.254.169.254/latest/meta-data", "meta", "txt"), vk_doc(hop, "hop", "pdf")]
    body = vk_with(VK_CONFIG["secret"], docs, "off-hosts", 3004)
    assert (await api.webhook(vk_path, body)).text == "ok"
    await api.process()
    await api.fetch()
    rows = sorted(await file_rows(api), key=lambda r: r.name)
    assert [(r.name, r.state, r.reason_code) for r in rows] == [("hop.pdf", "failed", "bad_url"),
                                                                 ("meta.txt", "failed", "bad_url")]
    assert "10.1.2.3 is not one of the platforms' file hosts" in rows[0].reason
    assert stand_in.downloads == ["/cdn/hop.pdf"]   # the redirect was read, its target never fetched


async def test_issue11_a_redirect_within_the_file_hosts_is_followed(api, stand_in) -> None:
    vk_path = await vk_channel(api)
    target = stand_in.web_file("/cdn/real.pdf", b"%PDF real", "application/pdf")
    hop = stand_in.redirect("/cdn/short.pdf", target)
    assert (await api.webhook(vk_path, vk_with(VK_CONFIG["secret"], [vk_doc(hop, "real", "pdf")], "hop", 3005))).text \
        == "ok"
    await api.process()
    await api.fetch()
    [row] = await file_rows(api)
    assert (row.state, row.size) == ("stored", len(b"%PDF real"))
    assert stand_in.downloads == ["/cdn/short.pdf", "/cdn/real.pdf"]


async def test_issue11_an_instagram_direct_image_is_fetched_from_its_url(api_any, stand_in) -> None:
    api = api_any
    await api.channel("instagram", IG_CONFIG)
    url = stand_in.web_file("/ig_messaging_cdn/asset", JPEG, "image/jpeg")
    event = ig_direct(mid="aWdfZAG1-image", text="")
    event["message"] = {"mid": "aWdfZAG1-image", "attachments": [{"type": "image", "payload": {"url": url}}]}
    assert (await api.instagram(meta_batch(messaging=[event]))).status_code == 200
    await api.process()
    await api.fetch()
    detail = await only_conversation(api)
    [message] = detail["messages"]
    assert message["text"] == "[image]"
    [image] = message["attachments"]
    assert (image["name"], image["content_type"], image["state"]) == ("image_1.jpg", "image/jpeg", "stored")


# ---------------------------------------------------------------- e-mail and access


async def test_issue11_an_email_attachment_is_stored_with_the_message(api_any, mailserver) -> None:
    api = api_any
    await api.channel("email", mailserver.config(), name="Поддержка")
    message = mail("Счёт", "Счёт во вложении.", message_id="<with-file@example.com>")
    message.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="счёт №1.pdf")
    message.add_attachment(b"<svg onload=alert(1)/>", maintype="image", subtype="svg+xml", filename="logo.svg")
    mailserver.send(message)
    api.in_app(api.runtime.state["mailbox"].poll_all)
    await api.process()
    assert await api.fetch() == 0   # the bytes came with the mail: nothing to fetch
    detail = await only_conversation(api)
    [m] = detail["messages"]
    assert m["text"] == "Счёт во вложении."
    assert [(a["name"], a["content_type"], a["size"], a["state"]) for a in m["attachments"]] == [
        ("счёт №1.pdf", "application/pdf", 16, "stored"), ("logo.svg", "image/svg+xml", 22, "stored")]
    pdf = await api.get(f"/conversations/{detail['id']}/files/{m['attachments'][0]['id']}")
    assert pdf.content == b"%PDF-1.4 invoice"
    assert pdf.headers["content-disposition"].endswith("filename*=UTF-8''%D1%81%D1%87%D1%91%D1%82%20%E2%84%961.pdf")
    svg = await api.get(f"/conversations/{detail['id']}/files/{m['attachments'][1]['id']}")
    assert svg.headers["content-disposition"].startswith("attachment;")   # SVG can carry script: never inline
    assert svg.headers["x-content-type-options"] == "nosniff"


async def test_issue11_a_file_is_served_only_to_those_who_may_read_the_conversation(api_any, stand_in) -> None:
    api = api_any
    path = await telegram_channel(api)
    stand_in.tg_file("AgAD-large", JPEG)
    assert (await api.webhook(path, tg_photo(), SECRET)).status_code == 200
    await api.process()
    await api.fetch()
    detail = await only_conversation(api)
    [photo] = detail["messages"][0]["attachments"]
    url = f"/conversations/{detail['id']}/files/{photo['id']}"
    for who in (AGENT, ("analyst1", "analyst"), ("manager2", "content_manager")):
        answer = await api.get(url, who)
        assert answer.status_code == 404 and answer.content != JPEG, who
    await api.ok("put", f"/staff/{AGENT[0]}/accounts", {"accounts": [detail["account"]]})
    assert (await api.get(url, AGENT)).content == JPEG
    assert (await api.get(url, ("mon1", "monitoring"))).status_code == 200
    # a file is reached only through its own conversation
    other = await api.channel("telegram", {**TG_CONFIG, "secret_token": "another-bot"}, deal_id="deal-2")
    assert (await api.webhook(f"/webhooks/telegram/{other['id']}", tg_private(update_id=5, message_id=5),
                              {"X-Telegram-Bot-Api-Secret-Token": "another-bot"})).status_code == 200
    await api.process()
    second = next(c for c in await api.conversations() if c["id"] != detail["id"])
    assert (await api.get(f"/conversations/{second['id']}/files/{photo['id']}", LEAD)).status_code == 404
    assert (await api.get(f"/conversations/{detail['id']}/files/no-such-file", LEAD)).status_code == 404



async def test_issue11_a_customers_file_is_removed_after_the_days_it_is_kept(api_any, stand_in, clock) -> None:
    """ENGAGEMENT_FILE_KEEP_DAYS (365 by default; 0 keeps them for ever): then the bytes go, the file stays listed."""
    from engagement.config import ChannelSettings

    assert ChannelSettings.from_env({}).file_keep_days == 365
    assert ChannelSettings.from_env({"ENGAGEMENT_FILE_KEEP_DAYS": "0"}).file_keep_days == 0
    with pytest.raises(ValueError, match="ENGAGEMENT_FILE_KEEP_DAYS"):
        ChannelSettings.from_env({"ENGAGEMENT_FILE_KEEP_DAYS": "-1"})

    api = api_any
    path = await telegram_channel(api)
    stand_in.tg_file("AgAD-large", JPEG)
    assert (await api.webhook(path, tg_photo(), SECRET)).status_code == 200
    await api.process()
    await api.fetch()
    fetcher = api.runtime.state["fetcher"]
    fetcher.keep_days = 30
    clock.advance(timedelta(days=29))
    assert api.in_app(fetcher.remove_old) == 0                        # not yet
    detail = await only_conversation(api)
    [photo] = detail["messages"][0]["attachments"]
    url = f"/conversations/{detail['id']}/files/{photo['id']}"
    assert (await api.get(url)).content == JPEG
    clock.advance(timedelta(days=2))
    assert api.in_app(fetcher.remove_old) == 1
    assert api.in_app(fetcher.remove_old) == 0                        # once
    [row] = await file_rows(api)
    assert (row.state, row.data, row.name, row.size) == ("removed", None, "photo_61.jpg", len(JPEG))
    [listed] = (await only_conversation(api))["messages"][0]["attachments"]
    assert (listed["state"], listed["name"]) == ("removed", "photo_61.jpg")
    assert (await api.get(url)).status_code == 404
    fetcher.keep_days = 0                                              # kept for ever: nothing is looked for
    assert api.in_app(fetcher.remove_old) == 0
