"""Issue 11 §channels: each channel's documented payloads are verified, stored durably, answered at once and
processed after; bad signatures and secrets store nothing; redeliveries have one effect."""

from __future__ import annotations

import json

from engagement.models import Conversation, Delivery, Message

from .payloads import (
    IG_CONFIG,
    IG_USER,
    TG_CONFIG,
    VERIFY_TOKEN,
    VK_CONFIG,
    ig_comment,
    ig_direct,
    meta_batch,
    meta_signature,
    tg_group,
    tg_private,
    vk_message,
    vk_wall_reply,
)

# ---------------------------------------------------------------- Instagram (Meta webhooks)


async def test_issue11_meta_handshake_echoes_the_challenge_only_with_the_verify_token(api) -> None:
    ok = await api.client.get("/webhooks/instagram", params={"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                                             "hub.verify_token": VERIFY_TOKEN})
    assert ok.status_code == 200 and ok.text == "1158201444"
    bad = await api.client.get("/webhooks/instagram", params={"hub.mode": "subscribe", "hub.challenge": "1",
                                                              "hub.verify_token": "guess"})
    assert bad.status_code == 403 and "1" != bad.text


async def test_issue11_meta_batched_delivery_with_a_comment_and_a_direct_message(api_any) -> None:
    api = api_any
    await api.channel("instagram", IG_CONFIG)
    response = await api.instagram(meta_batch(changes=[ig_comment()], messaging=[ig_direct()]))
    assert response.status_code == 200
    assert await api.count(Message) == 0          # answered before processing: only the raw delivery is kept
    assert await api.count(Delivery) == 1
    assert await api.process() == 1
    items = await api.conversations()
    kinds = {c["customer"]["handle"]: c for c in items}
    assert set(kinds) == {"@aigerim.cakes", "1234567890123456"}
    comment = kinds["@aigerim.cakes"]
    assert comment["kind"] == "instagram" and comment["status"] == "open"
    assert comment["last_message"]["text"] == "Сколько стоит доставка?" and comment["last_message"]["direction"] == "in"
    detail = await api.ok("get", f"/conversations/{kinds['1234567890123456']['id']}")
    [message] = detail["messages"]
    assert message["text"] == "Здравствуйте, заказ не пришёл" and message["delivery"] is None
    assert message["external_id"] == "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx"
    events = await api.events("engagement.message.received.v1")
    assert sorted(e.thread_kind for e in events) == ["ig_comments", "ig_direct"]
    assert all(e.deal_id == "deal-1" and e.channel_kind == "instagram" for e in events)


async def test_issue11_meta_bad_or_missing_signature_stores_nothing(api_any) -> None:
    api = api_any
    await api.channel("instagram", IG_CONFIG)
    body = json.dumps(meta_batch(changes=[ig_comment()])).encode()
    assert (await api.instagram(body, signature=None)).status_code == 401
    assert (await api.instagram(body, signature=meta_signature(body, "not-the-app-secret"))).status_code == 403
    assert (await api.instagram(body, signature="sha256=" + "0" * 64)).status_code == 403
    # The signature covers the raw bytes: the same JSON re-serialised is not the signed body.
    resent = json.dumps(json.loads(body), indent=1).encode()
    assert (await api.instagram(resent, signature=meta_signature(body))).status_code == 403
    await api.process()
    assert await api.count(Delivery) == 0 and await api.count(Message) == 0


async def test_issue11_meta_three_redeliveries_are_one_message(api) -> None:
    await api.channel("instagram", IG_CONFIG)
    body = meta_batch(changes=[ig_comment()], messaging=[ig_direct()])
    for _ in range(3):
        assert (await api.instagram(body)).status_code == 200
    # Meta may also re-batch the same update with another one: still one message per update.
    again = meta_batch(changes=[ig_comment(), ig_comment("17894227972186121", "И ещё вопрос")])
    assert (await api.instagram(again)).status_code == 200
    await api.process()
    assert await api.count(Delivery) == 2
    assert await api.count(Message) == 3
    assert len(await api.events("engagement.message.received.v1")) == 3


async def test_issue11_meta_own_comment_and_echo_are_not_customer_messages(api) -> None:
    await api.channel("instagram", IG_CONFIG)
    own = ig_comment("17890000000000001", "Спасибо!", user_id=IG_USER, username="brand")
    echo = ig_direct("echo-mid", "Ответ агента", sender=IG_USER)
    echo["message"]["is_echo"] = True
    await api.instagram(meta_batch(changes=[own], messaging=[echo]))
    await api.process()
    assert await api.count(Message) == 0


async def test_issue11_meta_entry_of_an_unknown_account_is_kept_and_marked(api) -> None:
    await api.instagram(meta_batch(changes=[ig_comment()], entry_id="999"))
    await api.process()
    [delivery] = await api.rows(Delivery)
    assert delivery.processed_at is not None and "no channel for entry 999" in delivery.outcome
    assert json.loads(delivery.body)["entry"][0]["id"] == "999"   # the raw payload is kept


async def test_issue11_comments_on_one_media_are_one_conversation_replying_to_the_top_level_comment(api) -> None:
    await api.channel("instagram", IG_CONFIG)
    await api.instagram(meta_batch(changes=[ig_comment("c1", "Первый")]))
    await api.instagram(meta_batch(changes=[ig_comment("c2", "Ответ в ветке", parent_id="c1")]))
    await api.process()
    [conversation] = await api.rows(Conversation)
    assert conversation.thread_key == "media:18012345678901234"
    assert conversation.reply_target["comment_id"] == "c1"


# ---------------------------------------------------------------- Telegram


async def test_issue11_telegram_private_and_group_messages(api_any) -> None:
    api = api_any
    channel = await api.channel("telegram", TG_CONFIG)
    assert channel["webhook_url"] == f"https://zabota.example/webhooks/telegram/{channel['id']}"
    path = f"/webhooks/telegram/{channel['id']}"
    secret = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
    assert (await api.webhook(path, tg_private(), secret)).status_code == 200
    assert (await api.webhook(path, tg_group(), secret)).status_code == 200
    await api.process()
    by_handle = {c["customer"]["handle"]: c for c in await api.conversations(channel="telegram")}
    assert by_handle["@anna_k"]["customer"]["name"] == "Anna"
    group = by_handle["-1001234567890"]
    assert group["customer"]["name"] == "Brand Club"
    detail = await api.ok("get", f"/conversations/{group['id']}")
    assert [(m["author"], m["text"]) for m in detail["messages"]] == [("Ivan", "А до какого числа акция?")]


async def test_issue11_telegram_bad_or_missing_secret_token_stores_nothing(api_any) -> None:
    api = api_any
    channel = await api.channel("telegram", TG_CONFIG)
    path = f"/webhooks/telegram/{channel['id']}"
    assert (await api.webhook(path, tg_private())).status_code == 401
    assert (await api.webhook(path, tg_private(), {"X-Telegram-Bot-Api-Secret-Token": "wrong"})).status_code == 403
    other = await api.channel("telegram", {**TG_CONFIG, "secret_token": "another-bot"}, deal_id="deal-2")
    # The secret of another channel does not open this one.
    assert (await api.webhook(path, tg_private(), {"X-Telegram-Bot-Api-Secret-Token": "another-bot"})
            ).status_code == 403
    assert (await api.webhook("/webhooks/telegram/nope", tg_private(),
                              {"X-Telegram-Bot-Api-Secret-Token": "x"})).status_code == 404
    assert other["id"] != channel["id"]
    await api.process()
    assert await api.count(Delivery) == 0 and await api.count(Message) == 0


async def test_issue11_telegram_three_redeliveries_of_an_update_are_one_message(api) -> None:
    channel = await api.channel("telegram", TG_CONFIG)
    path = f"/webhooks/telegram/{channel['id']}"
    secret = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
    for _ in range(3):
        assert (await api.webhook(path, tg_private(), secret)).status_code == 200
    await api.process()
    assert await api.count(Delivery) == 1 and await api.count(Message) == 1


async def test_issue11_telegram_bot_kicked_marks_the_chat_unreachable(api) -> None:
    channel = await api.channel("telegram", TG_CONFIG)
    path = f"/webhooks/telegram/{channel['id']}"
    secret = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
    await api.webhook(path, tg_group(), secret)
    kicked = {"update_id": 734512003, "my_chat_member": {
        "chat": {"id": -1001234567890, "title": "Brand Club", "type": "supergroup"},
        "from": {"id": 3333333, "is_bot": False, "first_name": "Admin"}, "date": 1760000200,
        "old_chat_member": {"user": {"id": 7000000001, "is_bot": True, "first_name": "Zabota"}, "status": "member"},
        "new_chat_member": {"user": {"id": 7000000001, "is_bot": True, "first_name": "Zabota"}, "status": "kicked",
                            "until_date": 0}}}
    await api.webhook(path, kicked, secret)
    await api.process()
    [conversation] = await api.conversations()
    assert "kicked" in conversation["unreachable"]
    refused = await api.post(f"/conversations/{conversation['id']}/replies", {"text": "Здравствуйте"})
    assert refused.status_code == 409


# ---------------------------------------------------------------- VK


async def test_issue11_vk_confirmation_is_answered_with_the_accounts_string(api_any) -> None:
    api = api_any
    channel = await api.channel("vk", VK_CONFIG)
    path = f"/webhooks/vk/{channel['id']}"
    response = await api.webhook(path, {"type": "confirmation", "group_id": 171104414,
                                        "secret": VK_CONFIG["secret"]})
    assert response.status_code == 200 and response.text == "693d0ba9"
    wrong_group = await api.webhook(path, {"type": "confirmation", "group_id": 1, "secret": VK_CONFIG["secret"]})
    assert wrong_group.status_code == 403
    assert await api.count(Delivery) == 0


async def test_issue11_vk_message_new_and_wall_reply_new_answered_ok(api_any) -> None:
    api = api_any
    channel = await api.channel("vk", VK_CONFIG)
    path = f"/webhooks/vk/{channel['id']}"
    for body in (vk_message(VK_CONFIG["secret"]), vk_wall_reply(VK_CONFIG["secret"])):
        response = await api.webhook(path, body)
        assert response.status_code == 200 and response.text == "ok"
    await api.process()
    items = {c["thread_kind"]: c for c in await api.conversations(channel="vk")}
    assert items["vk_dialog"]["customer"]["handle"] == "id51422811"
    assert items["vk_dialog"]["last_message"]["text"] == "1231"
    assert items["vk_wall"]["last_message"]["text"] == "Когда новая коллекция?"


async def test_issue11_vk_bad_secret_stores_nothing(api_any) -> None:
    api = api_any
    channel = await api.channel("vk", VK_CONFIG)
    path = f"/webhooks/vk/{channel['id']}"
    assert (await api.webhook(path, vk_message("wrong"))).status_code == 403
    body = vk_message(VK_CONFIG["secret"])
    del body["secret"]
    assert (await api.webhook(path, body)).status_code == 403
    confirmation = await api.webhook(path, {"type": "confirmation", "group_id": 171104414, "secret": "wrong"})
    assert confirmation.status_code == 403 and "693d0ba9" not in confirmation.text
    await api.process()
    assert await api.count(Delivery) == 0 and await api.count(Message) == 0


async def test_issue11_vk_three_redeliveries_of_an_event_are_one_message(api) -> None:
    channel = await api.channel("vk", VK_CONFIG)
    path = f"/webhooks/vk/{channel['id']}"
    for _ in range(3):
        assert (await api.webhook(path, vk_message(VK_CONFIG["secret"]))).text == "ok"
    await api.process()
    assert await api.count(Delivery) == 1 and await api.count(Message) == 1


async def test_issue11_a_delivery_that_fails_to_process_is_kept_and_retried(api) -> None:
    """The delivery row is the state: a broken processing round changes nothing and is tried again."""
    from datetime import timedelta

    channel = await api.channel("vk", VK_CONFIG)
    body = vk_message(VK_CONFIG["secret"])
    body["object"]["message"]["peer_id"] = "not-a-number"   # our processing will choke on a chat-range check
    body["object"]["message"]["from_id"] = 1
    await api.webhook(f"/webhooks/vk/{channel['id']}", body)
    await api.process()
    [delivery] = await api.rows(Delivery)
    assert delivery.processed_at is None and delivery.attempts == 1 and delivery.outcome
    assert await api.count(Message) == 0
    api.clock.advance(timedelta(seconds=5))
    await api.process()
    [delivery] = await api.rows(Delivery)
    assert delivery.attempts == 2


async def test_issue11_malformed_bodies_are_a_4xx_or_a_harmless_delivery_never_a_500(api) -> None:
    tg = await api.channel("telegram", TG_CONFIG)
    vk_channel = await api.channel("vk", VK_CONFIG)
    await api.channel("instagram", IG_CONFIG)
    secret = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
    assert (await api.webhook(f"/webhooks/telegram/{tg['id']}", b"not json", secret)).status_code == 400
    assert (await api.webhook(f"/webhooks/telegram/{tg['id']}", {"no": "update_id"}, secret)).status_code == 400
    assert (await api.webhook(f"/webhooks/vk/{vk_channel['id']}", b"[1, 2]")).status_code == 400
    # Signed by Meta but not what we expect: kept raw, processed to nothing.
    assert (await api.instagram(b"\xff\xfe not json")).status_code == 200
    assert (await api.instagram({"object": "instagram", "entry": [{"id": IG_USER, "changes": [
        {"field": "comments", "value": {}}], "messaging": [{"sender": {}}]}]})).status_code == 200
    await api.process()
    assert await api.count(Message) == 0
    assert all(d.processed_at is not None for d in await api.rows(Delivery))
