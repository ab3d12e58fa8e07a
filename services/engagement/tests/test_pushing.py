"""Issue 13 (EN-11): bot auto-send of SOP pushes through the channel's real API — here the local stand-in Bot API
(tests/botapi.py), which enforces Telegram's documented limits on real time. Time is scaled (`unit`: seconds
per limit second) the same on both sides, so the limits are the documented ones and no test waits on a clock:
429s caused by arrival jitter are answered, waited out and the push still goes exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from engagement.channels import Permanent, Retry
from engagement.pushing import Migrated, Pacer, PaceSettings, PushContent, PushFile, deliver, telegram_calls
from engagement.rules import vk_random_id
from engagement.sender import SecretPathTransport

from .botapi import KICKED, TOKEN, UPGRADED, VK_GROUP, VK_TOKEN, BotApi

UNIT = 0.01   # 1 limit second = 10 ms: per chat 10 ms, per group 20 per 0.6 s, per bot 30 per 10 ms
BULK_UNIT = 0.1  # the 1,000 pushes: 300 a second, about what one process serves and sends on a shared machine
GROUP = "-1001234567890"
PNG = PushFile("image", "card.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 64)
JPG = PushFile("image", "poster.jpg", "image/jpeg", b"\xff\xd8\xff" + b"1" * 64)
MP4 = PushFile("video", "live.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + b"2" * 64)
PDF = PushFile("file", "price.pdf", "application/pdf", b"%PDF-1.7\n" + b"3" * 64)
XLSX = PushFile("file", "stock.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK" * 40)


@pytest.fixture
def bot() -> Iterator[BotApi]:
    server = BotApi(unit=UNIT).start()
    yield server
    server.stop()


@pytest.fixture
async def http() -> httpx.AsyncClient:
    urls: list[str] = []

    async def seen(request: httpx.Request) -> None:
        urls.append(str(request.url))

    async with httpx.AsyncClient(transport=SecretPathTransport(), timeout=15,
                                 event_hooks={"request": [seen]}) as client:
        client.seen_urls = urls   # what httpx logs and traces
        yield client


def pacer(**overrides) -> Pacer:
    return Pacer(PaceSettings(unit=UNIT, **overrides))


async def tg(http, pacer_, bot: BotApi, content: PushContent, chat: str = GROUP, key: str = "push-1",
             group: bool = True) -> str:
    return await deliver(http, pacer_, kind="telegram", base_url=bot.url, config={}, secrets={"bot_token": TOKEN},
                         chat_id=chat, is_group=group, content=content, dedupe_key=key)


async def vk(http, pacer_, bot: BotApi, content: PushContent, chat: str = "2000000007", key: str = "push-1") -> str:
    return await deliver(http, pacer_, kind="vk", base_url=f"{bot.url}/vk/method", config={"group_id": VK_GROUP},
                         secrets={"access_token": VK_TOKEN}, chat_id=chat, is_group=True, content=content,
                         dedupe_key=key)


# --- what goes out ----------------------------------------------------------------------------------------------

async def test_issue13_text_push_is_one_sendMessage_with_the_links_appended(bot, http) -> None:
    content = PushContent("知识卡片：今天的护肤小贴士", links=("https://shop.example.kz/sale",))
    ids = await tg(http, pacer(), bot, content)
    [sent] = bot.accepted
    assert sent.method == "sendMessage" and sent.chat_id == GROUP
    assert sent.text == "知识卡片：今天的护肤小贴士\n\nhttps://shop.example.kz/sale"
    assert ids == str(sent.message_ids[0])
    assert TOKEN not in " ".join(http.seen_urls) and "/bot__secret__/sendMessage" in http.seen_urls[0]


async def test_issue13_one_image_is_sendPhoto_with_the_text_as_caption_uploaded_as_a_file(bot, http) -> None:
    await tg(http, pacer(), bot, PushContent("Прямой эфир в 18:00", files=(PNG,)))
    [sent] = bot.accepted
    assert (sent.method, sent.caption) == ("sendPhoto", "Прямой эфир в 18:00")
    assert sent.files == [{"field": "photo", "name": "card.png", "content_type": "image/png", "size": len(PNG.data)}]


async def test_issue13_one_video_and_one_file_use_sendVideo_and_sendDocument(bot, http) -> None:
    await tg(http, pacer(), bot, PushContent("Эфир", files=(MP4,)), key="a")
    await tg(http, pacer(), bot, PushContent("Прайс", files=(PDF,)), chat="-1009", key="b")
    assert [(a.method, a.caption, a.files[0]["field"]) for a in bot.accepted] == [
        ("sendVideo", "Эфир", "video"), ("sendDocument", "Прайс", "document")]


async def test_issue13_images_and_a_video_go_as_one_media_group_caption_on_the_first(bot, http) -> None:
    ids = await tg(http, pacer(), bot, PushContent("Новинки недели", files=(PNG, JPG, MP4)))
    [album] = bot.accepted
    assert album.method == "sendMediaGroup" and album.messages == 3
    assert [(m["type"], m["media"], m.get("caption"), m.get("file")) for m in album.media] == [
        ("photo", "attach://file0", "Новинки недели", "card.png"),
        ("photo", "attach://file1", None, "poster.jpg"),
        ("video", "attach://file2", None, "live.mp4")]
    assert ids == ",".join(str(i) for i in album.message_ids) and len(ids.split(",")) == 3


async def test_issue13_a_mix_is_an_album_then_each_document_and_a_long_text_goes_first(bot, http) -> None:
    await tg(http, pacer(), bot, PushContent("Акция", files=(PNG, PDF, JPG, XLSX)))
    assert [(a.method, a.caption) for a in bot.accepted] == [
        ("sendMediaGroup", "Акция"), ("sendDocument", None), ("sendDocument", None)]
    assert [a.files[0]["name"] for a in bot.accepted[1:]] == ["price.pdf", "stock.xlsx"]
    long_text = "Подробно. " * 150
    calls = telegram_calls(GROUP, PushContent(long_text, files=(PNG,)))
    assert [(c.method, c.fields.get("caption")) for c in calls] == [("sendMessage", None), ("sendPhoto", None)]
    assert [c.method for c in telegram_calls(GROUP, PushContent("x" * 5000))] == ["sendMessage", "sendMessage"]
    assert [c.messages for c in telegram_calls(GROUP, PushContent("", files=(PNG,) * 11))] == [10, 1]


# --- limits and 429 ---------------------------------------------------------------------------------------------

async def test_issue13_a_429_retry_after_is_waited_out_on_that_chat_and_the_push_goes_once(bot, http) -> None:
    bot.throttle(GROUP, 3, 2)
    await tg(http, pacer(), bot, PushContent("Флеш-распродажа"))
    first, second = bot.rejected
    assert (first["retry_after"], second["retry_after"]) == (3, 2)
    [sent] = bot.accepted
    # causal, not timed: each repeat left only after the answer it waits on, so the server's own clock shows it
    assert second["at"] - first["at"] >= 3 * UNIT and sent.at - second["at"] >= 2 * UNIT
    assert bot.violations() == 0


async def test_issue13_429_beyond_the_bounded_wait_is_handed_back_as_retry_and_the_album_is_not_sent_again(
        bot, http) -> None:
    p = pacer(max_wait=10)
    bot.throttle(GROUP, 30, method="sendDocument")
    content = PushContent("Акция", files=(PNG, JPG, PDF))
    with pytest.raises(Retry) as raised:
        await tg(http, p, bot, content)
    assert raised.value.after == pytest.approx(30 * UNIT) and "retry after 30" in raised.value.reason
    ids = await tg(http, p, bot, content)        # the push loop's retry: resumes after the album
    assert [a.method for a in bot.accepted] == ["sendMediaGroup", "sendDocument"]
    assert len(ids.split(",")) == 3 and bot.violations() == 0


async def test_issue13_thousand_pushes_to_200_groups_are_each_delivered_once_none_in_violation(http) -> None:
    bot = BotApi(unit=BULK_UNIT).start()
    try:
        await _thousand_pushes(bot, http)
    finally:
        bot.stop()


async def _thousand_pushes(bot: BotApi, http: httpx.AsyncClient) -> None:
    p = Pacer(PaceSettings(unit=BULK_UNIT))
    chats = [f"-100{7000000 + g}" for g in range(200)]
    outcome: Counter[str] = Counter()

    async def push(n: int) -> None:
        chat = chats[n % 200]
        for _ in range(20):     # the push loop's retries (it would come back later)
            try:
                await tg(http, p, bot, PushContent(f"push {n}"), chat=chat, key=f"push-{n}")
                outcome["sent"] += 1
                return
            except Retry as exc:
                outcome["retry"] += 1
                await asyncio.sleep(exc.after or BULK_UNIT)
        outcome["lost"] += 1

    await asyncio.gather(*(push(n) for n in range(1000)))
    assert outcome["sent"] == 1000 and outcome["lost"] == 0
    texts = Counter(a.text for a in bot.accepted)
    assert len(bot.accepted) == 1000 and set(texts.values()) == {1}
    assert Counter(a.chat_id for a in bot.accepted) == {chat: 5 for chat in chats}
    assert bot.violations() == 0


async def test_issue13_one_group_gets_at_most_20_messages_a_minute_albums_counting_each_item(bot, http) -> None:
    p = pacer()
    contents = [PushContent(f"album {n}", files=(PNG, JPG, MP4)) if n % 3 == 0 else PushContent(f"text {n}")
                for n in range(24)]
    await asyncio.gather(*(tg(http, p, bot, c, key=f"k{n}") for n, c in enumerate(contents)))
    sent = sorted(bot.accepted, key=lambda a: a.at)
    assert sum(a.messages for a in sent) == 40 and bot.violations() == 0
    assert sent[-1].at - sent[0].at >= 60 * UNIT   # 40 messages in one group need a second minute


# --- the pacer on its own clock ---------------------------------------------------------------------------------

class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_issue13_pacer_spaces_a_chat_by_a_second_a_group_by_20_a_minute_a_bot_by_30_a_second() -> None:
    t = FakeTime()
    p = Pacer(PaceSettings(margin=0), monotonic=t.monotonic, sleep=t.sleep)
    at = []
    for _ in range(22):
        await p.acquire("bot", "-1", group=True)
        at.append(t.now)
    assert at[:3] == [0, 1, 2] and at[19] == 19 and at[20] == 60 and at[21] == 61
    t.now, at = 1000.0, []
    for n in range(31):
        await p.acquire("bot", str(n), group=False)
        at.append(t.now)
    assert at[1] == pytest.approx(1000 + 1 / 30) and at[29] == pytest.approx(1000 + 29 / 30)   # evenly
    assert at[30] == pytest.approx(1001.0)     # the 31st message waits for the next second
    t.now = 2000.0
    await p.acquire("bot", "-2", group=True, messages=10)
    assert p.wait_for("bot", "-2", group=True, messages=10) == 1.0
    assert p.wait_for("bot", "-5", group=True) == pytest.approx(10 / 30)   # an album takes 10 spaces
    await p.acquire("bot", "-2", group=True, messages=10)
    assert p.wait_for("bot", "-2", group=True) == pytest.approx(59.0)   # 20 album items in this minute
    t.now = 3000.0
    p.pause("bot", "-3", 5)
    assert p.wait_for("bot", "-3", group=True) == 5 and p.wait_for("bot", "-4", group=True) == 0
    p.pause("bot", None, 7)
    assert p.wait_for("bot", "-4", group=True) == 7 and p.wait_for("other-bot", "-4", group=True) == 0


# --- refusals ---------------------------------------------------------------------------------------------------

async def test_issue13_bot_kicked_is_permanent_with_telegrams_words(bot, http) -> None:
    bot.kick(GROUP)
    with pytest.raises(Permanent) as raised:
        await tg(http, pacer(), bot, PushContent("Эфир"))
    assert raised.value.reason == KICKED and raised.value.unreachable
    assert bot.accepted == []


async def test_issue13_group_upgraded_to_supergroup_raises_migrated_with_the_new_id_then_goes_once(bot, http) -> None:
    bot.migrate("-5020240850", "-1003569294766")
    p = pacer()
    with pytest.raises(Migrated) as raised:
        await tg(http, p, bot, PushContent("Эфир"), chat="-5020240850")
    assert raised.value.new_chat_id == "-1003569294766" and raised.value.reason == UPGRADED
    await tg(http, p, bot, PushContent("Эфир"), chat=raised.value.new_chat_id)
    assert [a.chat_id for a in bot.accepted] == ["-1003569294766"]


async def test_issue13_other_4xx_is_permanent_and_5xx_network_is_retry(bot, http) -> None:
    bot.refuse("-1009", 400, "Bad Request: not enough rights to send text messages to the chat")
    with pytest.raises(Permanent) as raised:
        await tg(http, pacer(), bot, PushContent("Эфир"), chat="-1009")
    assert raised.value.reason == "Bad Request: not enough rights to send text messages to the chat"
    assert not raised.value.unreachable
    with pytest.raises(Retry):
        await deliver(http, pacer(), kind="telegram", base_url="http://127.0.0.1:1", config={},
                      secrets={"bot_token": TOKEN}, chat_id=GROUP, is_group=True, content=PushContent("x"),
                      dedupe_key="down")
    with pytest.raises(Permanent, match="no token"):
        await deliver(http, pacer(), kind="telegram", base_url=bot.url, config={}, secrets={}, chat_id=GROUP,
                      is_group=True, content=PushContent("x"), dedupe_key="no-token")
    with pytest.raises(Permanent):
        await deliver(http, pacer(), kind="instagram", base_url=bot.url, config={}, secrets={}, chat_id="1",
                      is_group=False, content=PushContent("x"), dedupe_key="ig")


# --- VK ---------------------------------------------------------------------------------------------------------

async def test_issue13_vk_random_id_is_stable_across_a_retry_and_the_message_goes_once(bot, http) -> None:
    bot.vk_script("messages.send", (502, "deliver-then-fail"))    # VK took it, the answer was lost
    content = PushContent("Прямой эфир в 18:00", links=("https://vk.com/live",))
    with pytest.raises(Retry):
        await vk(http, pacer(), bot, content)
    ids = await vk(http, pacer(), bot, content)
    sends = [c for c in bot.vk_calls if c["method"] == "messages.send"]
    assert len(sends) == 2 and {c["body"]["random_id"] for c in sends} == {str(vk_random_id("push-1"))}
    [message] = bot.vk_messages
    assert message["peer_id"] == "2000000007" and message["message"] == "Прямой эфир в 18:00\n\nhttps://vk.com/live"
    assert ids == str(message["message_id"])


async def test_issue13_vk_uploads_images_and_files_and_attaches_them(bot, http) -> None:
    await vk(http, pacer(), bot, PushContent("Прайс и постер", files=(JPG, PDF)))
    methods = [c["method"] for c in bot.vk_calls]
    assert methods == ["photos.getMessagesUploadServer", "upload.photo", "photos.saveMessagesPhoto",
                       "docs.getMessagesUploadServer", "upload.doc", "docs.save", "messages.send"]
    [message] = bot.vk_messages
    photo, doc = message["attachment"].split(",")
    assert photo.startswith(f"photo-{VK_GROUP}_") and photo.endswith("_ak") and doc.startswith(f"doc-{VK_GROUP}_")


async def test_issue13_vk_flood_control_is_waited_out_and_no_access_is_permanent(bot, http) -> None:
    bot.vk_script("messages.send", (200, {"error": {"error_code": 9, "error_msg": "Flood control"}}),
                  (200, {"error": {"error_code": 6, "error_msg": "Too many requests per second"}}))
    await vk(http, pacer(), bot, PushContent("Эфир"))
    assert len(bot.vk_messages) == 1
    bot.vk_script("messages.send", (200, {"error": {"error_code": 917,
                                                    "error_msg": "You don't have access to this chat"}}))
    with pytest.raises(Permanent) as raised:
        await vk(http, pacer(), bot, PushContent("Эфир"), key="push-2")
    assert raised.value.reason == "(917) You don't have access to this chat" and raised.value.unreachable
