"""Issue 13 (EN-8): Telegram groups appear when the bot is added (`my_chat_member`), go inactive when it is
removed (the inbox's "unreachable" still set), and keep their row when upgraded to a supergroup
(`migrate_to_chat_id`). Deliveries go through the real webhook path and processor."""

from __future__ import annotations

from .payloads import T0_S, TG_CONFIG

TG_SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
CHAT = {"id": -4012345678, "title": "Клуб покупателей A", "type": "group"}


def member_update(update_id: int, status: str, old: str = "left", chat: dict | None = None) -> dict:
    bot = {"id": 7000000001, "is_bot": True, "first_name": "Zabota", "username": "zabota_bot"}
    return {"update_id": update_id,
            "my_chat_member": {"chat": chat or CHAT, "from": {"id": 2222222, "is_bot": False, "first_name": "Ivan"},
                               "date": T0_S, "old_chat_member": {"user": bot, "status": old},
                               "new_chat_member": {"user": bot, "status": status}}}


def migration(update_id: int, new_id: int) -> dict:
    return {"update_id": update_id,
            "message": {"message_id": 77, "date": T0_S, "from": {"id": 2222222, "is_bot": False, "first_name": "I"},
                        "chat": CHAT, "migrate_to_chat_id": new_id}}


async def deliver(api, channel: dict, body: dict) -> None:
    response = await api.webhook(f"/webhooks/telegram/{channel['id']}", body, TG_SECRET)
    assert response.status_code == 200, response.text
    await api.process()


async def test_bot_added_makes_a_group_removed_makes_it_inactive_and_migration_keeps_it(api_any) -> None:
    api = api_any
    channel = await api.channel("telegram", TG_CONFIG)
    await api.ok("put", "/push-settings", {"default_owner": "ann"})
    await deliver(api, channel, member_update(1, "administrator"))
    [group] = (await api.ok("get", "/groups"))["items"]
    assert (group["channel_id"], group["channel_kind"], group["external_id"], group["title"], group["source"],
            group["owner"], group["active"]) == (channel["id"], "telegram", "-4012345678", "Клуб покупателей A", "bot",
                                                 "ann", True)
    await deliver(api, channel, member_update(2, "member", old="administrator"))  # a demotion: nothing new
    assert (await api.ok("get", "/groups"))["total"] == 1

    await deliver(api, channel, migration(3, -1009876543210))
    [moved] = (await api.ok("get", "/groups"))["items"]
    assert (moved["id"], moved["external_id"]) == (group["id"], "-1009876543210")

    supergroup = {**CHAT, "id": -1009876543210, "type": "supergroup"}
    await deliver(api, channel, member_update(4, "kicked", old="administrator", chat=supergroup))
    [gone] = (await api.ok("get", "/groups"))["items"]
    assert (gone["id"], gone["active"]) == (group["id"], False)
    await deliver(api, channel, member_update(5, "member", chat=supergroup))
    assert (await api.ok("get", f"/groups/{group['id']}"))["active"] is True


async def test_private_chats_never_become_groups_and_the_inbox_still_marks_unreachable(api) -> None:
    channel = await api.channel("telegram", TG_CONFIG)
    private = {"id": 1111111, "first_name": "Anna", "type": "private"}
    await deliver(api, channel, member_update(1, "member", chat=private))
    await deliver(api, channel, {"update_id": 2, "message": {
        "message_id": 5, "date": T0_S, "from": {"id": 1111111, "is_bot": False, "first_name": "Anna"},
        "chat": private, "text": "Здравствуйте"}})
    await deliver(api, channel, member_update(3, "kicked", old="member", chat=private))
    assert (await api.ok("get", "/groups"))["total"] == 0
    [conversation] = await api.conversations()
    assert conversation["unreachable"] == "bot status in the chat: kicked"


async def test_a_supergroup_seen_before_the_migration_gives_way_to_the_old_group(api) -> None:
    channel = await api.channel("telegram", TG_CONFIG)
    await deliver(api, channel, member_update(1, "member"))
    [old] = (await api.ok("get", "/groups"))["items"]
    await deliver(api, channel, member_update(2, "member", chat={**CHAT, "id": -1009876543210, "type": "supergroup"}))
    assert (await api.ok("get", "/groups"))["total"] == 2
    await deliver(api, channel, migration(3, -1009876543210))
    [kept] = (await api.ok("get", "/groups"))["items"]
    assert (kept["id"], kept["external_id"]) == (old["id"], "-1009876543210")
