"""Telegram Bot API (CHANNELS.md §3): `message` updates of private chats and groups become messages (bots'
messages are dropped); `my_chat_member` with `kicked`/`left` marks the chat unreachable. Replies with
`sendMessage`: 429 waits `retry_after`, 403 (blocked / kicked / not a member) is permanent and marks the chat
unreachable, other 4xx are permanent with Telegram's description.

Files a message carries (the largest `photo` size, `document`, `video`, `animation`, `voice`, `audio`,
`video_note`, `sticker`) are noted by `file_id`; the file fetcher (engagement.file_fetcher) asks `getFile` for
its path and downloads `{api}/file/bot<token>/<file_path>` (Bot API: up to 20 MB)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from engagement.channels import (
    PATH_SECRET_HEADER,
    PATH_SECRET_PLACEHOLDER,
    Inbound,
    InboundFile,
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
    files = files_of(message)
    if not text and not files:
        return []  # service messages (joins, migrations)
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
        raw=update, attachments=files)]


# kind -> (default name, default content type); a document's type is whatever its sender's client said
MEDIA = {"animation": ("animation_{id}.mp4", "video/mp4"), "document": ("document_{id}", ""),
         "video": ("video_{id}.mp4", "video/mp4"), "voice": ("voice_{id}.ogg", "audio/ogg"),
         "audio": ("audio_{id}.mp3", "audio/mpeg"), "video_note": ("video_note_{id}.mp4", "video/mp4")}


def files_of(message: dict[str, Any]) -> list[InboundFile]:
    """The files of a message, by `file_id`: the largest size of a `photo` (always JPEG), each media object.
    An animation is also sent as `document` (older clients): taken once."""
    mid = message.get("message_id")
    files: list[InboundFile] = []
    sizes = [p for p in message.get("photo") or [] if isinstance(p, dict) and p.get("file_id")]
    if sizes:
        best = max(sizes, key=lambda p: (int(p.get("width") or 0) * int(p.get("height") or 0),
                                         int(p.get("file_size") or 0)))
        files.append(InboundFile("photo", f"photo_{mid}.jpg", "image/jpeg", _size(best), file_id=str(best["file_id"])))
    for kind, (name, content_type) in MEDIA.items():
        media = message.get(kind)
        if not isinstance(media, dict) or not media.get("file_id"):
            continue
        if kind == "document" and isinstance(message.get("animation"), dict):
            continue
        files.append(InboundFile(kind, str(media.get("file_name") or name.format(id=mid)),
                                 str(media.get("mime_type") or content_type), _size(media),
                                 file_id=str(media["file_id"])))
    sticker = message.get("sticker")
    if isinstance(sticker, dict) and sticker.get("file_id"):
        ext, content_type = ("tgs", "application/x-tgsticker") if sticker.get("is_animated") else \
            ("webm", "video/webm") if sticker.get("is_video") else ("webp", "image/webp")
        files.append(InboundFile("sticker", f"sticker_{mid}.{ext}", content_type, _size(sticker),
                                 file_id=str(sticker["file_id"])))
    return files


def _size(media: dict[str, Any]) -> int | None:
    size = media.get("file_size")
    return size if isinstance(size, int) and size >= 0 else None


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


def raise_for(status: int, data: dict[str, Any]) -> NoReturn:
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


async def file_path(http: httpx.AsyncClient, base_url: str, secrets: dict[str, str],
                    file_id: str) -> tuple[str, int | None]:
    """`getFile`: the path to download the file from (valid for an hour at least) and its size. Telegram's
    refusals as `raise_for` says ("Bad Request: file is too big" beyond 20 MB is permanent)."""
    try:
        response = await http.post(f"{base_url}/bot{PATH_SECRET_PLACEHOLDER}/getFile", json={"file_id": file_id},
                                   headers={PATH_SECRET_HEADER: secrets["bot_token"]})
    except httpx.HTTPError as exc:
        raise Retry(f"telegram unreachable: {type(exc).__name__}") from exc
    data = json_or_none(response) or {}
    if response.status_code == 200 and data.get("ok"):
        result = data.get("result") or {}
        if not result.get("file_path"):
            raise Permanent("Telegram gave no file_path for the file")
        return str(result["file_path"]), _size(result)
    raise_for(response.status_code, data)


def download_url(base_url: str, path: str) -> str:
    """Where `getFile`'s path is downloaded; the bot token travels in PATH_SECRET_HEADER (never in logs)."""
    return f"{base_url}/file/bot{PATH_SECRET_PLACEHOLDER}/{quote(path, safe='/')}"


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
