"""Telegram Bot API (CHANNELS.md §3): `message` updates of private chats and groups become messages (bots'
messages are dropped); `my_chat_member` with `kicked`/`left` marks the chat unreachable. Replies with
`sendMessage`: 429 waits `retry_after`, 403 (blocked / kicked / not a member) is permanent and marks the chat
unreachable, other 4xx are permanent with Telegram's description."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from engagement.channels import (
    PATH_SECRET_HEADER,
    PATH_SECRET_PLACEHOLDER,
    Inbound,
    Outgoing,
    Permanent,
    Retry,
    from_epoch,
    json_or_none,
)


def _name(user: dict[str, Any]) -> str:
    return " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p) or str(user.get("username", ""))


def parse_update(update: dict[str, Any], now: datetime) -> list[Inbound]:
    message = update.get("message") or update.get("edited_message")
    if not isinstance(message, dict) or "edited_message" in update:
        return []
    chat = message.get("chat") or {}
    sender = message.get("from") or {}
    if sender.get("is_bot") or "chat" not in message:
        return []
    text = message.get("text") or message.get("caption") or ""
    if not text:
        return []  # service messages (joins, migrations) and media without a caption
    chat_id = chat.get("id")
    private = chat.get("type") == "private"
    username = sender.get("username")
    start = str(text).split(maxsplit=1)
    campaign = start[1].strip() if len(start) == 2 and start[0].split("@")[0] == "/start" else None
    return [Inbound(
        campaign=campaign,
        thread_kind="tg_chat", thread_key=f"chat:{chat_id}", external_id=f"{chat_id}:{message.get('message_id')}",
        text=str(text), at=from_epoch(message.get("date")) or now, author=_name(sender),
        customer_name=_name(sender) if private else str(chat.get("title", "")),
        customer_handle=(f"@{username}" if username else str(sender.get("id", ""))) if private else str(chat_id),
        reply_target={"chat_id": chat_id, "reply_to": None if private else message.get("message_id")},
        raw=update)]


def kicked_from(update: dict[str, Any]) -> tuple[Any, str] | None:
    member = update.get("my_chat_member")
    if not isinstance(member, dict):
        return None
    status = ((member.get("new_chat_member") or {}).get("status"))
    if status in ("kicked", "left"):
        return (member.get("chat") or {}).get("id"), f"bot status in the chat: {status}"
    return None


def bot_member_change(update: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """Issue 13: (chat, the bot's new status) of a `my_chat_member` update."""
    member = update.get("my_chat_member")
    if not isinstance(member, dict) or not isinstance(member.get("chat"), dict):
        return None
    return member["chat"], str((member.get("new_chat_member") or {}).get("status") or "")


def migration_of(update: dict[str, Any]) -> tuple[str, str] | None:
    """Issue 13: (old chat id, new chat id) when a group became a supergroup (`migrate_to_chat_id`)."""
    message = update.get("message")
    if not isinstance(message, dict) or message.get("migrate_to_chat_id") is None:
        return None
    return str((message.get("chat") or {}).get("id")), str(message["migrate_to_chat_id"])


async def send(http: httpx.AsyncClient, base_url: str, config: dict, secrets: dict[str, str],
               out: Outgoing) -> str:
    body: dict[str, Any] = {"chat_id": out.target["chat_id"], "text": out.text}
    if out.target.get("reply_to"):
        body["reply_parameters"] = {"message_id": out.target["reply_to"], "allow_sending_without_reply": True}
    try:
        response = await http.post(f"{base_url}/bot{PATH_SECRET_PLACEHOLDER}/sendMessage", json=body,
                                   headers={PATH_SECRET_HEADER: secrets["bot_token"]})
    except httpx.HTTPError as exc:
        raise Retry(f"telegram unreachable: {type(exc).__name__}") from exc
    data = json_or_none(response) or {}
    if response.status_code == 200 and data.get("ok"):
        return f"{out.target['chat_id']}:{(data.get('result') or {}).get('message_id', '')}"
    raise_for(response.status_code, data)


def raise_for(status: int, data: dict[str, Any]) -> None:
    """Telegram's answer to a refused call, as Retry or Permanent (CHANNELS.md §3.4): 429 waits `retry_after`,
    5xx is retried, 400 with `migrate_to_chat_id` retargets, 403 marks the chat unreachable, the rest is permanent
    with Telegram's description."""
    description = str(data.get("description") or f"HTTP {status}")
    parameters = data.get("parameters") or {}
    if status == 429:
        raise Retry(description, after=parameters.get("retry_after"))
    if status >= 500:
        raise Retry(description)
    if status == 400 and parameters.get("migrate_to_chat_id"):
        raise Retry(description, after=0, retarget={"chat_id": parameters["migrate_to_chat_id"]})
    if status == 403:
        raise Permanent(description, unreachable=True)
    raise Permanent(description)


async def set_webhook(http: httpx.AsyncClient, base_url: str, secrets: dict[str, str], url: str) -> None:
    """Register our webhook address with the bot's secret token (`setWebhook`); raises Permanent with Telegram's
    description when refused."""
    body = {"url": url, "secret_token": secrets["secret_token"], "allowed_updates": ["message", "my_chat_member"]}
    try:
        response = await http.post(f"{base_url}/bot{PATH_SECRET_PLACEHOLDER}/setWebhook", json=body,
                                   headers={PATH_SECRET_HEADER: secrets["bot_token"]})
    except httpx.HTTPError as exc:
        raise Permanent(f"telegram unreachable: {type(exc).__name__}") from exc
    data = json_or_none(response) or {}
    if not (response.status_code == 200 and data.get("ok")):
        raise Permanent(str(data.get("description") or f"HTTP {response.status_code}"))
