"""Issue 13 (EN-8): Telegram groups appear when the bot is added (`my_chat_member`), go inactive when it is
removed (the inbox's "unreachable" still set), and keep their row when upgraded to a supergroup
(`migrate_to_chat_id`); VK chats the same way when the community is added (a chat's `chat_invite_user` /
`chat_kick_user` service message about it). Deliveries go through the real webhook path and processor."""

from __future__ import annotations

from .payloads import T0_S, TG_CONFIG, VK_CONFIG, vk_message

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


# ---------------------------------------------------------------- VK chats (the same discovery)

def vk_chat_action(event_id: str, action: str, member_id: int, chat: int = 4, cmid: int = 16) -> dict:
    """A chat's service message as VK's Callback API sends it when someone (here the community) joins or leaves."""
    body = vk_message(VK_CONFIG["secret"], event_id=event_id, text="", from_id=242175861, cmid=cmid,
                      group_id=VK_CONFIG["group_id"])
    body["object"]["message"].update(peer_id=2_000_000_000 + chat, action={"type": action, "member_id": member_id})
    return body


async def test_vk_community_added_to_a_chat_makes_a_group_and_removed_makes_it_inactive(api_any) -> None:
    api = api_any
    channel = await api.channel("vk", VK_CONFIG)
    path = f"/webhooks/vk/{channel['id']}"
    await api.ok("put", "/push-settings", {"default_owner": "ann"})
    community = -VK_CONFIG["group_id"]
    for body in (vk_chat_action("e-1", "chat_invite_user", community),
                 vk_chat_action("e-1", "chat_invite_user", community),          # redelivered: one group
                 vk_chat_action("e-2", "chat_invite_user", 51422811, cmid=17),   # a person joined: nothing
                 vk_chat_action("e-3", "chat_invite_user", community, chat=5, cmid=1)):
        assert (await api.webhook(path, body)).text == "ok"
    await api.process()
    groups = {g["external_id"]: g for g in (await api.ok("get", "/groups"))["items"]}
    assert sorted(groups) == ["2000000004", "2000000005"]
    group = groups["2000000004"]
    assert (group["channel_id"], group["channel_kind"], group["title"], group["source"], group["owner"],
            group["active"]) == (channel["id"], "vk", "VK chat 4", "bot", "ann", True)
    assert await api.conversations() == []          # service messages are nobody's words: no conversation

    await api.ok("patch", f"/groups/{group['id']}", {"title": "Покупатели VK"})   # the lead names it
    assert (await api.webhook(path, vk_chat_action("e-4", "chat_kick_user", community, cmid=18))).text == "ok"
    await api.process()
    assert (await api.ok("get", f"/groups/{group['id']}"))["active"] is False
    assert (await api.webhook(path, vk_chat_action("e-5", "chat_invite_user_by_link", community, cmid=19))).text == "ok"
    await api.process()
    back = await api.ok("get", f"/groups/{group['id']}")
    assert (back["active"], back["title"]) == (True, "Покупатели VK")          # the lead's name is kept
