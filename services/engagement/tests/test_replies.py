"""Issue 11 §replies: a reply is accepted as `pending` and delivered by the background sender through the
channel's real API (here a stand-in on loopback speaking the documented JSON and errors): retried on rate
limits and flood control, delivered once, or `failed` with the channel's reason."""

from __future__ import annotations

from datetime import timedelta

from engagement.models import Message
from engagement.rules import vk_random_id

from .payloads import (
    IG_CONFIG,
    IG_USER,
    TG_CONFIG,
    VK_CONFIG,
    ig_comment,
    ig_direct,
    meta_batch,
    tg_group,
    tg_private,
    vk_message,
    vk_wall_reply,
)

TG_SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}


async def _telegram_conversation(api, update=None) -> tuple[dict, dict]:
    channel = await api.channel("telegram", TG_CONFIG)
    await api.webhook(f"/webhooks/telegram/{channel['id']}", update or tg_private(), TG_SECRET)
    await api.process()
    [conversation] = await api.conversations()
    return channel, conversation


async def _reply(api, conversation_id: str, text: str = "Здравствуйте! Проверим заказ.") -> dict:
    return await api.ok("post", f"/conversations/{conversation_id}/replies", {"text": text}, status=202)


async def _message(api, conversation_id: str, message_id: str) -> dict:
    detail = await api.ok("get", f"/conversations/{conversation_id}")
    return next(m for m in detail["messages"] if m["id"] == message_id)


async def test_issue11_telegram_429_retry_after_is_honoured_and_the_reply_delivered_once(api_any, stand_in) -> None:
    api = api_any
    _, conversation = await _telegram_conversation(api)
    stand_in.script("/sendMessage", (429, {"ok": False, "error_code": 429,
                                           "description": "Too Many Requests: retry after 5",
                                           "parameters": {"retry_after": 5}}))
    reply = await _reply(api, conversation["id"])
    assert reply["delivery"] == "pending" and reply["direction"] == "out"
    assert await api.send() == 1
    assert len(stand_in.calls) == 1 and stand_in.delivered == []
    message = await _message(api, conversation["id"], reply["id"])
    assert message["delivery"] == "pending"
    api.clock.advance(timedelta(seconds=4))
    assert await api.send() == 0                     # Telegram said 5 seconds: not before
    api.clock.advance(timedelta(seconds=1))
    assert await api.send() == 1
    [delivered] = stand_in.delivered
    assert delivered["path"] == f"/tg/bot{TG_CONFIG['bot_token']}/sendMessage"
    assert delivered["body"] == {"chat_id": 1111111, "text": "Здравствуйте! Проверим заказ."}
    message = await _message(api, conversation["id"], reply["id"])
    assert message["delivery"] == "sent" and "error" not in message
    assert message["external_id"] == "1111111:9001"
    assert await api.send() == 0 and len(stand_in.calls) == 2


async def test_issue11_telegram_group_reply_quotes_the_customers_message(api, stand_in) -> None:
    _, conversation = await _telegram_conversation(api, tg_group())
    await _reply(api, conversation["id"], "До конца месяца!")
    await api.send()
    [delivered] = stand_in.delivered
    assert delivered["body"]["chat_id"] == -1001234567890
    assert delivered["body"]["reply_parameters"]["message_id"] == 9031


async def test_issue11_telegram_bot_blocked_fails_with_the_channels_words_and_marks_the_chat(api, stand_in) -> None:
    _, conversation = await _telegram_conversation(api)
    stand_in.script("/sendMessage", (403, {"ok": False, "error_code": 403,
                                           "description": "Forbidden: bot was blocked by the user"}))
    reply = await _reply(api, conversation["id"])
    await api.send()
    message = await _message(api, conversation["id"], reply["id"])
    assert message["delivery"] == "failed" and message["error"] == "Forbidden: bot was blocked by the user"
    [listed] = await api.conversations()
    assert listed["unreachable"] == "Forbidden: bot was blocked by the user"
    again = await api.post(f"/conversations/{conversation['id']}/replies", {"text": "Ещё раз"})
    assert again.status_code == 409 and "blocked" in again.json()["detail"]


async def test_issue11_vk_flood_control_error_9_in_a_200_is_retried_and_delivered_once(api_any, stand_in) -> None:
    api = api_any
    channel = await api.channel("vk", VK_CONFIG)
    await api.webhook(f"/webhooks/vk/{channel['id']}", vk_message(VK_CONFIG["secret"]))
    await api.process()
    [conversation] = await api.conversations()
    stand_in.script("/messages.send",
                    (200, {"error": {"error_code": 9, "error_msg": "Flood control",
                                     "request_params": [{"key": "method", "value": "messages.send"}]}}),
                    (502, "deliver-then-fail"))        # VK took it, but the answer was lost
    reply = await _reply(api, conversation["id"])
    await api.send()
    message = await _message(api, conversation["id"], reply["id"])
    assert message["delivery"] == "pending" and message["error"] == "(9) Flood control"
    api.clock.advance(timedelta(seconds=2))
    await api.send()
    assert len(stand_in.delivered) == 1             # delivered, the answer lost: retried later
    api.clock.advance(timedelta(seconds=4))
    await api.send()
    assert len(stand_in.calls) == 3 and len(stand_in.delivered) == 1    # the repeat was recognised by random_id
    assert {c["body"]["random_id"] for c in stand_in.calls} == {str(vk_random_id(reply["id"]))}
    assert stand_in.calls[0]["body"]["peer_id"] == "51422811"
    assert stand_in.calls[0]["authorization"] == f"Bearer {VK_CONFIG['access_token']}"
    message = await _message(api, conversation["id"], reply["id"])
    assert message["delivery"] == "sent"


async def test_issue11_vk_901_is_permanent_with_vks_reason(api, stand_in) -> None:
    channel = await api.channel("vk", VK_CONFIG)
    await api.webhook(f"/webhooks/vk/{channel['id']}", vk_message(VK_CONFIG["secret"]))
    await api.process()
    [conversation] = await api.conversations()
    stand_in.script("/messages.send", (200, {"error": {
        "error_code": 901, "error_msg": "Can't send messages for users without permission"}}))
    reply = await _reply(api, conversation["id"])
    await api.send()
    api.clock.advance(timedelta(hours=1))
    await api.send()
    assert len(stand_in.calls) == 1
    message = await _message(api, conversation["id"], reply["id"])
    assert message["delivery"] == "failed"
    assert message["error"] == "(901) Can't send messages for users without permission"


async def test_issue11_vk_wall_comment_reply_goes_to_the_comment(api, stand_in) -> None:
    channel = await api.channel("vk", VK_CONFIG)
    await api.webhook(f"/webhooks/vk/{channel['id']}", vk_wall_reply(VK_CONFIG["secret"], comment_id=77))
    await api.process()
    [conversation] = await api.conversations()
    reply = await _reply(api, conversation["id"], "Уже в эту пятницу!")
    await api.send()
    [call] = stand_in.delivered
    assert call["path"] == "/vk/method/wall.createComment"
    assert call["body"]["owner_id"] == "-171104414" and call["body"]["post_id"] == "1"
    assert call["body"]["reply_to_comment"] == "77" and call["body"]["guid"] == reply["id"]
    assert (await _message(api, conversation["id"], reply["id"]))["delivery"] == "sent"


async def test_issue11_instagram_graph_code_4_is_retried_and_the_comment_reply_delivered_once(api_any,
                                                                                               stand_in) -> None:
    api = api_any
    await api.channel("instagram", IG_CONFIG)
    await api.instagram(meta_batch(changes=[ig_comment("17870913679156914")]))
    await api.process()
    [conversation] = await api.conversations()
    stand_in.script("/replies", (403, {"error": {
        "message": "(#4) Application request limit reached", "type": "OAuthException", "code": 4,
        "fbtrace_id": "EJplcsCHuLu"}}))
    reply = await _reply(api, conversation["id"], "Доставка бесплатная от 10 000 ₸")
    await api.send()
    assert (await _message(api, conversation["id"], reply["id"]))["delivery"] == "pending"
    api.clock.advance(timedelta(seconds=2))
    await api.send()
    [delivered] = stand_in.delivered
    assert delivered["path"] == "/graph/17870913679156914/replies"
    assert delivered["body"] == {"message": "Доставка бесплатная от 10 000 ₸"}
    assert delivered["authorization"] == f"Bearer {IG_CONFIG['access_token']}"
    message = await _message(api, conversation["id"], reply["id"])
    assert message["delivery"] == "sent" and message["external_id"].startswith("1800602296782")


async def test_issue11_instagram_direct_reply_inside_the_24_hour_window(api, stand_in) -> None:
    await api.channel("instagram", IG_CONFIG)
    await api.instagram(meta_batch(messaging=[ig_direct()]))
    await api.process()
    [conversation] = await api.conversations()
    api.clock.advance(timedelta(hours=23))
    await _reply(api, conversation["id"], "Отправили повторно")
    await api.send()
    [delivered] = stand_in.delivered
    assert delivered["path"] == f"/graph/{IG_USER}/messages"
    assert delivered["body"] == {"recipient": {"id": "1234567890123456"}, "message": {"text": "Отправили повторно"}}


async def test_issue11_instagram_direct_outside_the_24_hour_window_is_refused_before_sending(api, stand_in) -> None:
    await api.channel("instagram", IG_CONFIG)
    await api.instagram(meta_batch(messaging=[ig_direct()]))
    await api.process()
    [conversation] = await api.conversations()
    api.clock.advance(timedelta(hours=24, seconds=1))
    refused = await api.post(f"/conversations/{conversation['id']}/replies", {"text": "Поздно"})
    assert refused.status_code == 409 and "24-hour" in refused.json()["detail"]
    await api.send()
    assert stand_in.calls == [] and await api.count(Message) == 1


async def test_issue11_a_reply_that_keeps_failing_ends_failed_after_the_attempt_cap(api, stand_in) -> None:
    _, conversation = await _telegram_conversation(api)
    stand_in.script("/sendMessage", *[(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})]
                    * 8)
    reply = await _reply(api, conversation["id"])
    for _ in range(8):
        await api.send()
        api.clock.advance(timedelta(minutes=5))
    message = await _message(api, conversation["id"], reply["id"])
    assert message["delivery"] == "failed" and message["error"].startswith("gave up after 8 attempts")
    assert len(stand_in.calls) == 8 and stand_in.delivered == []


async def test_issue11_en3_first_answer_publishes_the_response_time_once(api_any, stand_in) -> None:
    api = api_any
    _, conversation = await _telegram_conversation(api)
    api.clock.advance(timedelta(minutes=6, seconds=30))
    first = await _reply(api, conversation["id"], "Первый ответ")
    api.clock.advance(timedelta(minutes=1))
    await _reply(api, conversation["id"], "Второй ответ")
    [answered] = await api.events("engagement.conversation.answered.v1")
    assert answered.response_seconds == 390 and answered.agent == "aliya"
    assert answered.message_id == first["id"] and answered.conversation_id == conversation["id"]
    assert answered.deal_id == "deal-1"
    await api.send()
    api.clock.advance(timedelta(seconds=1))   # Telegram: one message a second in a chat
    await api.send()
    assert [c["body"]["text"] for c in stand_in.delivered] == ["Первый ответ", "Второй ответ"]


async def test_issue11_reply_text_is_required_and_bounded(api) -> None:
    _, conversation = await _telegram_conversation(api)
    empty = await api.post(f"/conversations/{conversation['id']}/replies", {"text": "  "})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "text"
    long = await api.post(f"/conversations/{conversation['id']}/replies", {"text": "я" * 4097})
    assert long.status_code == 422
    missing = await api.post(f"/conversations/{conversation['id']}/replies", {})
    assert missing.status_code == 422
    assert await api.count(Message) == 1


async def test_issue11_telegram_per_chat_and_group_limits_pace_the_sender(api, stand_in) -> None:
    channel, conversation = await _telegram_conversation(api)
    first = await _reply(api, conversation["id"], "Раз")
    second = await _reply(api, conversation["id"], "Два")
    await api.send()
    assert [c["body"]["text"] for c in stand_in.delivered] == ["Раз"]      # one message per second in a chat
    assert (await _message(api, conversation["id"], second["id"]))["delivery"] == "pending"
    api.clock.advance(timedelta(seconds=1))
    await api.send()
    assert [c["body"]["text"] for c in stand_in.delivered] == ["Раз", "Два"]
    assert (await _message(api, conversation["id"], first["id"]))["delivery"] == "sent"

    await api.webhook(f"/webhooks/telegram/{channel['id']}", tg_group(), TG_SECRET)
    await api.process()
    group = next(c for c in await api.conversations() if c["customer"]["name"] == "Brand Club")
    for n in range(21):
        await _reply(api, group["id"], f"Сообщение {n}")
        await api.send()
        api.clock.advance(timedelta(seconds=1))
    in_group = [c for c in stand_in.delivered if c["body"]["chat_id"] == -1001234567890]
    assert len(in_group) == 20                                            # 20 a minute in a group
    api.clock.advance(timedelta(seconds=40))
    await api.send()
    assert len([c for c in stand_in.delivered if c["body"]["chat_id"] == -1001234567890]) == 21


async def test_issue11_lead_registers_the_telegram_webhook_with_its_secret(api, stand_in) -> None:
    channel = await api.channel("telegram", TG_CONFIG)
    path = f"/channels/{channel['id']}/register-webhook"
    assert (await api.post(path, as_=("senior", "senior_agent"))).status_code == 403
    answer = await api.ok("post", path)
    assert answer == {"id": channel["id"], "webhook_url": channel["webhook_url"], "registered": True}
    [call] = stand_in.delivered
    assert call["path"] == f"/tg/bot{TG_CONFIG['bot_token']}/setWebhook"
    assert call["body"]["url"] == channel["webhook_url"]
    assert call["body"]["secret_token"] == TG_CONFIG["secret_token"]
    stand_in.script("/setWebhook", (400, {"ok": False, "error_code": 400,
                                          "description": "Bad Request: bad webhook: HTTPS url must be provided"}))
    refused = await api.post(path)
    assert refused.status_code == 502 and "HTTPS url must be provided" in refused.json()["detail"]
    assert TG_CONFIG["bot_token"] not in refused.text


async def test_issue11_telegram_group_upgraded_to_a_supergroup_is_retargeted_and_delivered(api, stand_in) -> None:
    update = tg_group()
    update["message"]["chat"] = {"id": -5020240850, "title": "Мой чат", "type": "group"}
    _, conversation = await _telegram_conversation(api, update)
    stand_in.script("/sendMessage", (400, {"ok": False, "error_code": 400,
                                           "description": "Bad Request: group chat was upgraded to a supergroup chat",
                                           "parameters": {"migrate_to_chat_id": -1003569294766}}))
    reply = await _reply(api, conversation["id"], "Ответ")
    await api.send()
    [delivered] = stand_in.delivered
    assert delivered["body"]["chat_id"] == -1003569294766
    assert (await _message(api, conversation["id"], reply["id"]))["delivery"] == "sent"
    await _reply(api, conversation["id"], "Следующий")
    api.clock.advance(timedelta(seconds=1))
    await api.send()
    assert stand_in.delivered[-1]["body"]["chat_id"] == -1003569294766
