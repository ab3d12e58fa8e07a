"""VK Callback API (CHANNELS.md §4): `message_new` (dialogs; outgoing `out=1` dropped) and `wall_reply_new`
(comments on the community's posts, one conversation per post). Replies: `messages.send` with a `random_id`
derived from our message id (VK drops a repeat), `wall.createComment` with `guid`. VK answers errors inside
HTTP 200: 6/9/10 are retried with backoff, 900/901/902 (and the rest) are permanent with VK's reason.

Files of a message or comment (`attachments[]`): a `photo` by the URL of its largest `sizes[]` entry, a `doc` by
its `url`, a voice message (`audio_message`) by `link_ogg` / `link_mp3`, a `sticker` by its largest image;
videos, music, posts and links are not files VK hands out by URL and are left as they are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from engagement.channels import Inbound, InboundFile, Outgoing, Permanent, Retry, from_epoch, json_or_none
from engagement.rules import vk_random_id

RETRY_CODES = {6, 9, 10}
UNREACHABLE_CODES = {900, 901, 902}
CHAT_PEER_BASE = 2_000_000_000


# A chat's service message (`action`) that adds or removes a member; about the community itself it is the bot's
# membership of the chat (issue 13, EN-8).
MEMBER_ACTIONS = {"chat_invite_user": "member", "chat_invite_user_by_link": "member", "chat_kick_user": "kicked"}


def _message_of(body: dict[str, Any]) -> dict[str, Any]:
    obj = body.get("object") or {}
    message = obj.get("message") if isinstance(obj.get("message"), dict) else obj
    return message if isinstance(message, dict) else {}


def bot_member_change(body: dict[str, Any]) -> tuple[str, str] | None:
    """Issue 13 (EN-8): (the chat's peer id, "member" | "kicked") of a `message_new` whose `action` adds the
    community (`member_id` = −group_id) to a chat or removes it; None for anything else."""
    if body.get("type") != "message_new":
        return None
    message = _message_of(body)
    action = message.get("action")
    if not isinstance(action, dict) or action.get("type") not in MEMBER_ACTIONS:
        return None
    try:
        ours = int(action.get("member_id")) == -abs(int(body.get("group_id")))
        chat = int(message.get("peer_id")) > CHAT_PEER_BASE
    except (TypeError, ValueError):
        return None
    return (str(message["peer_id"]), MEMBER_ACTIONS[action["type"]]) if ours and chat else None


def chat_number(peer_id: str | int) -> int:
    """The chat's own number (peer id − 2,000,000,000), as VK shows it."""
    return int(peer_id) - CHAT_PEER_BASE


def parse_event(body: dict[str, Any], now: datetime) -> list[Inbound]:
    kind = body.get("type")
    obj = body.get("object") or {}
    if kind == "message_new":
        message = _message_of(body)
        if message.get("out") or message.get("action"):
            return []   # ours, or a chat's service message (someone joined, the title changed): nobody wrote
        peer_id, from_id = message.get("peer_id"), message.get("from_id")
        return [Inbound(
            campaign=str(message.get("ref") or message.get("ref_source") or "") or None,
            thread_kind="vk_dialog", thread_key=f"peer:{peer_id}",
            external_id=f"msg:{peer_id}:{message.get('conversation_message_id') or message.get('id')}",
            text=str(message.get("text", "")), at=from_epoch(message.get("date")) or now, author=f"id{from_id}",
            customer_name="" if peer_id != from_id else f"id{from_id}",
            customer_handle=f"id{from_id}" if peer_id == from_id else f"chat {chat_number(peer_id)}",
            reply_target={"peer_id": peer_id}, raw=body, attachments=files_of(message.get("attachments")))]
    if kind == "wall_reply_new":
        owner_id = obj.get("post_owner_id") or obj.get("owner_id")
        post_id, from_id = obj.get("post_id"), obj.get("from_id")
        if from_id is not None and owner_id is not None and int(from_id) == int(owner_id):
            return []  # the community's own comment
        top = (obj.get("parents_stack") or [obj.get("id")])[0]
        return [Inbound(
            thread_kind="vk_wall", thread_key=f"wall:{owner_id}_{post_id}", external_id=f"wall:{owner_id}_{obj.get('id')}",
            text=str(obj.get("text", "")), at=from_epoch(obj.get("date")) or now, author=f"id{from_id}",
            customer_name=f"id{from_id}", customer_handle=f"id{from_id}",
            reply_target={"owner_id": owner_id, "post_id": post_id, "comment_id": top}, raw=body,
            attachments=files_of(obj.get("attachments")))]
    return []


def _largest(images: Any, key: str = "url") -> str | None:
    """The URL of the largest of VK's sizes (`width` × `height`; the last one listed when they do not say)."""
    rows = [(int(i.get("width") or 0) * int(i.get("height") or 0), n, i[key]) for n, i in enumerate(images or [])
            if isinstance(i, dict) and i.get(key)]
    return max(rows)[2] if rows else None


def files_of(attachments: Any) -> list[InboundFile]:
    files: list[InboundFile] = []
    for item in attachments if isinstance(attachments, list) else []:
        kind = item.get("type") if isinstance(item, dict) else None
        obj = item.get(kind) if kind else None
        if not isinstance(obj, dict):
            continue
        ref = f"{obj.get('owner_id', '')}_{obj.get('id', '')}"
        if kind == "photo" and (url := _largest(obj.get("sizes"))):
            files.append(InboundFile("photo", f"photo_{ref}.jpg", "", url=url))
        elif kind == "doc" and obj.get("url"):
            title, ext = str(obj.get("title") or f"doc_{ref}"), str(obj.get("ext") or "")
            name = title if not ext or title.lower().endswith(f".{ext.lower()}") else f"{title}.{ext}"
            size = obj.get("size") if isinstance(obj.get("size"), int) else None
            files.append(InboundFile("document", name, "", size, url=str(obj["url"])))
        elif kind == "audio_message" and (url := obj.get("link_ogg") or obj.get("link_mp3")):
            ogg = bool(obj.get("link_ogg"))
            files.append(InboundFile("voice", f"voice_{ref}.{'ogg' if ogg else 'mp3'}",
                                     "audio/ogg" if ogg else "audio/mpeg", url=str(url)))
        elif kind == "sticker" and (url := _largest(obj.get("images"))):
            files.append(InboundFile("sticker", f"sticker_{obj.get('sticker_id', '')}.png", "", url=url))
    return files


async def send(http: httpx.AsyncClient, base_url: str, version: str, config: dict, secrets: dict[str, str],
               out: Outgoing) -> str:
    if out.thread_kind == "vk_wall":
        method = "wall.createComment"
        params: dict[str, Any] = {"owner_id": out.target["owner_id"], "post_id": out.target["post_id"],
                                  "from_group": config["group_id"], "message": out.text, "guid": out.message_id}
        if out.target.get("comment_id"):
            params["reply_to_comment"] = out.target["comment_id"]
    else:
        method = "messages.send"
        params = {"peer_id": out.target["peer_id"], "message": out.text, "random_id": vk_random_id(out.message_id)}
    params["v"] = version
    try:
        response = await http.post(f"{base_url}/{method}", data=params,
                                   headers={"Authorization": f"Bearer {secrets['access_token']}"})
    except httpx.HTTPError as exc:
        raise Retry(f"vk unreachable: {type(exc).__name__}") from exc
    result = result_of(response)
    if isinstance(result, dict):
        result = result.get("comment_id") or result.get("message_id") or ""
    where = f"wall:{out.target['owner_id']}_" if out.thread_kind == "vk_wall" else f"msg:{out.target['peer_id']}:"
    return f"{where}{result}"


def result_of(response: httpx.Response, unreachable: set[int] = UNREACHABLE_CODES) -> Any:
    """The `response` of a VK API call; VK's errors (inside HTTP 200) as Retry (6 too many requests, 9 flood
    control, 10 internal error, and 5xx) or Permanent with VK's reason ("(901) Can't send messages …")."""
    data = json_or_none(response)
    if response.status_code >= 500 or not isinstance(data, dict):
        raise Retry(f"HTTP {response.status_code}")
    if "error" in data:
        error = data["error"] or {}
        code = error.get("error_code")
        reason = f"({code}) {error.get('error_msg', '')}".strip()
        if code in RETRY_CODES:
            raise Retry(reason)
        raise Permanent(reason, unreachable=code in unreachable)
    return data.get("response")
