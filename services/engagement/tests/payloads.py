"""Channel payloads in the documented shapes (CHANNELS.md §1.3, §1.5, §3.2, §4.2), with ids and times of the test."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
TOKEN = {"Authorization": "Bearer dev-token"}
APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "meatyhamhock"
LEAD = ("aliya", "lead")

IG_USER = "17841474524784050"
T0_S = int(T0.timestamp())


def ig_comment(comment_id: str = "17894227972186120", text: str = "Сколько стоит доставка?",
               media_id: str = "18012345678901234", username: str = "aigerim.cakes", user_id: str = "6543210",
               parent_id: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"from": {"id": user_id, "username": username}, "id": comment_id, "text": text,
                             "media": {"id": media_id, "media_product_type": "FEED"}}
    if parent_id:
        value["parent_id"] = parent_id
    return {"field": "comments", "value": value}


def ig_direct(mid: str = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx", text: str = "Здравствуйте, заказ не пришёл",
              sender: str = "1234567890123456", at_s: int = T0_S) -> dict[str, Any]:
    return {"sender": {"id": sender}, "recipient": {"id": IG_USER}, "timestamp": at_s * 1000,
            "message": {"mid": mid, "text": text}}


def meta_batch(*, changes: list[dict] = (), messaging: list[dict] = (), entry_id: str = IG_USER) -> dict[str, Any]:
    """A batched delivery: one entry with comments (changes[]) and one with Direct messages (messaging[])."""
    entries = []
    if changes:
        entries.append({"id": entry_id, "time": T0_S, "changes": list(changes)})
    if messaging:
        entries.append({"id": entry_id, "time": T0_S * 1000, "messaging": list(messaging)})
    return {"object": "instagram", "entry": entries}


def tg_private(update_id: int = 734512001, message_id: int = 52, text: str = "Здравствуйте, заказ не пришёл",
               user_id: int = 1111111) -> dict[str, Any]:
    return {"update_id": update_id,
            "message": {"message_id": message_id, "date": T0_S,
                        "from": {"id": user_id, "is_bot": False, "first_name": "Anna", "username": "anna_k",
                                 "language_code": "ru"},
                        "chat": {"id": user_id, "first_name": "Anna", "username": "anna_k", "type": "private"},
                        "text": text}}


def tg_group(update_id: int = 734512002, message_id: int = 9031, text: str = "А до какого числа акция?") -> dict:
    return {"update_id": update_id,
            "message": {"message_id": message_id, "date": T0_S,
                        "from": {"id": 2222222, "is_bot": False, "first_name": "Ivan"},
                        "chat": {"id": -1001234567890, "title": "Brand Club", "type": "supergroup"},
                        "reply_to_message": {"message_id": 9020, "date": T0_S - 3600,
                                             "from": {"id": 7000000001, "is_bot": True, "first_name": "Zabota",
                                                      "username": "zabota_bot"},
                                             "chat": {"id": -1001234567890, "title": "Brand Club",
                                                      "type": "supergroup"},
                                             "text": "Акция недели …"},
                        "text": text}}


def vk_message(secret: str, event_id: str = "45586712573ba1939fbad3b0f37ed885781bb8a6", text: str = "1231",
               from_id: int = 51422811, cmid: int = 2551, group_id: int = 171104414) -> dict[str, Any]:
    return {"type": "message_new",
            "object": {"message": {"date": T0_S, "from_id": from_id, "id": 3774, "out": 0, "attachments": [],
                                   "conversation_message_id": cmid, "fwd_messages": [], "important": False,
                                   "is_hidden": False, "peer_id": from_id, "random_id": 0, "text": text},
                       "client_info": {"button_actions": ["text"], "keyboard": True, "inline_keyboard": True,
                                       "carousel": True, "lang_id": 0}},
            "group_id": group_id, "event_id": event_id, "v": "5.199", "secret": secret}


def vk_wall_reply(secret: str, event_id: str = "e1f0c0ffee", comment_id: int = 2, group_id: int = 171104414,
                  post_id: int = 1, text: str = "Когда новая коллекция?") -> dict[str, Any]:
    return {"type": "wall_reply_new",
            "object": {"id": comment_id, "from_id": 457838735, "date": T0_S, "text": text,
                       "post_owner_id": -group_id, "owner_id": -group_id, "post_id": post_id},
            "group_id": group_id, "event_id": event_id, "v": "5.199", "secret": secret}


IG_CONFIG = {"ig_user_id": IG_USER, "access_token": "IGAAL-secret-token-1"}
TG_CONFIG = {"bot_token": "7000000001:AAH-secret-bot-token", "secret_token": "tg-webhook-secret-42"}
VK_CONFIG = {"group_id": 171104414, "access_token": "vk1.a.secret-community-token", "secret": "vk-callback-secret",
             "confirmation": "693d0ba9"}


def meta_signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def staff(login: str, role: str, settings) -> dict[str, str]:
    """Headers that call the service as a staff member the way the gateway does: the signed staff assertion
    (`shared.testing.staff_headers`, issue 8) where the shared runtime has it, else the older bearer token with
    `X-Zabota-Actor` / `X-Zabota-Role`."""
    try:
        from shared.testing import staff_headers
    except ImportError:
        return TOKEN | {"X-Zabota-Actor": login, "X-Zabota-Role": role}
    return staff_headers(login, role, settings)
