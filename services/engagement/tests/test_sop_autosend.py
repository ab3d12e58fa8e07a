"""Issue 13 (EN-11, EN-12): bot auto-send of SOP pushes through the local stand-in Bot API — sent (event through
the outbox), bot kicked (403 → channel_error with Telegram's words), a group upgraded to a supergroup (400 with
`migrate_to_chat_id` → the group takes the new id and the push goes once, there) — and the owners' Telegram
reminders. The push sender is driven deterministically (`run_due`), its pacer scaled down to milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

from engagement import pushing
from engagement.sop_models import PushReminder

from .payloads import TG_CONFIG

KICKED = {"ok": False, "error_code": 403, "description": "Forbidden: bot was kicked from the supergroup chat"}
MIGRATED = {"ok": False, "error_code": 400, "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": -1004003}}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fire_and_send(api, at: datetime) -> None:
    api.clock.set(at)
    api.in_app(api.runtime.scheduler.run_due)
    sender = api.runtime.state["push_sender"]
    sender.pacer = pushing.Pacer(pushing.PaceSettings(unit=0.001))
    api.in_app(sender.run_due)


async def setup(api, category: str, chat: str, time: str, mode: str = "auto", owner: str = "ann") -> dict:
    channel = (await api.ok("get", "/channels"))
    channel = channel[0] if channel else await api.channel("telegram", TG_CONFIG)
    group = await api.ok("post", "/groups", {"channel_id": channel["id"], "external_id": chat, "title": f"G{chat}",
                                             "owner": owner, "category": category, "tags": []}, status=201)
    await api.ok("post", "/sop-rules", {"name": f"{category} push", "target": {"category": category}, "time": time,
                                        "weekdays": [1, 2, 3, 4, 5, 6, 7], "mode": mode,
                                        "content": {"text": f"Акция {category}", "attachments": [
                                            {"kind": "link", "url": "https://example.kz/sale"}]}}, status=201)
    return group


async def pushes_of(api, group_id: str) -> list[dict]:
    items = (await api.get("/pushes", ("ann", "care_agent"), owner="me")).json()["items"]
    return [p for p in items if p["group_id"] == group_id]


async def test_auto_send_sent_kicked_and_migrated(api_any, stand_in) -> None:
    api = api_any
    api.clock.set(utc(2026, 3, 3))
    ok = await setup(api, "A", "-4001", "10:00")
    kicked = await setup(api, "K", "-4002", "11:00")
    moved = await setup(api, "M", "-4003", "12:00")

    fire_and_send(api, utc(2026, 3, 3, 5))                          # 10:00 Almaty
    [push] = await pushes_of(api, ok["id"])
    assert (push["status"], push["mode"], push["sent_at"]) == ("sent", "auto", "2026-03-03T05:00:00Z")
    [call] = [c for c in stand_in.delivered if c["path"].endswith("/sendMessage")]
    assert (call["body"]["chat_id"], call["body"]["text"]) == (-4001, "Акция A\n\nhttps://example.kz/sale")
    [sent] = await api.events("engagement.push.sent.v1")
    assert (sent.push_id, sent.channel_kind, sent.mode, sent.owner) == (push["id"], "telegram", "auto", "ann")

    stand_in.script("/sendMessage", (403, KICKED))
    fire_and_send(api, utc(2026, 3, 3, 6))                          # 11:00
    [push] = await pushes_of(api, kicked["id"])
    assert (push["status"], push["reason"], push["detail"]) == ("failed", "channel_error", KICKED["description"])
    [failed] = await api.events("engagement.push.failed.v1")
    assert (failed.push_id, failed.reason, failed.detail) == (push["id"], "channel_error", KICKED["description"])

    stand_in.script("/sendMessage", (400, MIGRATED))
    fire_and_send(api, utc(2026, 3, 3, 7))                          # 12:00
    [push] = await pushes_of(api, moved["id"])
    assert push["status"] == "sent"
    assert (await api.ok("get", f"/groups/{moved['id']}"))["external_id"] == "-1004003"
    to_chats = [c["body"]["chat_id"] for c in stand_in.delivered if c["path"].endswith("/sendMessage")]
    assert to_chats.count(-1004003) == 1 and -4003 not in to_chats
    fire_and_send(api, utc(2026, 3, 3, 7, 1))                       # nothing more goes
    assert len([c for c in stand_in.delivered if c["path"].endswith("/sendMessage")]) == 2


async def test_owners_with_a_linked_chat_get_one_reminder_per_task(api_any, stand_in) -> None:
    api = api_any
    channel = await api.channel("telegram", TG_CONFIG)
    await api.ok("put", "/push-settings", {"reminder_channel_id": channel["id"]})
    await api.ok("put", "/staff/ann/owner", {"active": True, "telegram_chat_id": "555001", "language": "kk"})
    refused = await api.put("/staff/ann/owner", {"active": True, "language": "de"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "language"
    await setup(api, "R", "-5001", "09:30", mode="manual")
    await setup(api, "R", "-5002", "09:30", mode="manual")          # a second group of ann's, a second rule
    fire_and_send(api, utc(2026, 3, 3, 4, 30))
    reminders = [c for c in stand_in.delivered if c["path"].endswith("/sendMessage")]
    assert [c["body"]["chat_id"] for c in reminders] == [555001, 555001]   # one per task (two rules)
    assert all("R push" in c["body"]["text"] for c in reminders)
    # in ann's language (the gateway says it), the due time in the agency's zone
    assert all("жіберілетін пуштар — 2, 03.03.2026 сағат 09:30" in c["body"]["text"] for c in reminders)
    rows = await api.rows(PushReminder)
    assert sorted((r.owner, r.pushes, r.status) for r in rows) == [("ann", 2, "sent"), ("ann", 2, "sent")]


async def test_an_auto_push_retried_past_its_window_expires(api_any, stand_in) -> None:
    api = api_any
    api.clock.set(utc(2026, 3, 3))
    g = await setup(api, "A", "-4001", "10:00")
    stand_in.script("/sendMessage", (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}))
    fire_and_send(api, utc(2026, 3, 3, 5))
    [push] = await pushes_of(api, g["id"])
    assert (push["status"], push["detail"]) == ("pending", "Bad Gateway")      # retried later, the words kept
    fire_and_send(api, utc(2026, 3, 4, 5, 1))                                # the 24 h window closed
    [push] = [p for p in await pushes_of(api, g["id"]) if p["due_at"].startswith("2026-03-03")]
    assert (push["status"], push["reason"]) == ("failed", "expired")
