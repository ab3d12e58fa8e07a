"""Instagram through Meta webhooks (CHANNELS.md §1): `entry[].changes[]` field `comments` (mentions arrive as
comments with Instagram Login) and `entry[].messaging[]` (Direct). Echoes of our own account are dropped.
Replies: `POST /{comment-id}/replies {"message"}` and `POST /{ig-user-id}/messages {"recipient", "message"}`.
Graph errors 4/17/32/613 (and the BUC 80002) are rate limits: retried.

Direct attachments that are files (`image` — a sticker too —, `video`, `audio`, `file`, a `story_mention`'s
media) are noted by their `payload.url` and fetched later (engagement.file_fetcher); shares, reels and posts are
links to Instagram, not files. A message without text keeps the `[image]`-style text it has always had."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from engagement.channels import Inbound, InboundFile, Outgoing, Permanent, Retry, from_epoch, json_or_none

RATE_LIMIT_CODES = {4, 17, 32, 613, 80002}
FILE_KINDS = {"image": "jpg", "video": "mp4", "audio": "mp4", "file": "", "story_mention": ""}


def parse_entry(entry: dict[str, Any], now: datetime) -> list[Inbound]:
    own_id = str(entry.get("id", ""))
    items: list[Inbound] = []
    entry_time = from_epoch(entry.get("time")) or now
    for change in entry.get("changes") or []:
        if change.get("field") != "comments":
            continue
        value = change.get("value") or {}
        sender = value.get("from") or {}
        comment_id = str(value.get("id") or value.get("comment_id") or "")
        if not comment_id or str(sender.get("id", "")) == own_id or sender.get("self_ig_scoped_id"):
            continue  # our own comment (an echo of a reply)
        media_id = str((value.get("media") or {}).get("id", ""))
        username = str(sender.get("username", ""))
        top_level = str(value.get("parent_id") or comment_id)
        items.append(Inbound(
            thread_kind="ig_comments", thread_key=f"media:{media_id}", external_id=comment_id,
            text=str(value.get("text", "")), at=entry_time, author=username or str(sender.get("id", "")),
            customer_name=username, customer_handle=f"@{username}" if username else str(sender.get("id", "")),
            reply_target={"comment_id": top_level, "media_id": media_id}, raw=change))
    for event in entry.get("messaging") or []:
        message = event.get("message") or {}
        sender_id = str((event.get("sender") or {}).get("id", ""))
        if not message or message.get("is_echo") or message.get("is_deleted") or sender_id == own_id:
            continue
        mid = str(message.get("mid", ""))
        if not mid:
            continue
        text = str(message.get("text", ""))
        if not text and message.get("attachments"):
            text = " ".join(f"[{a.get('type', 'attachment')}]" for a in message["attachments"])
        referral = message.get("referral") or event.get("referral") or {}
        items.append(Inbound(
            campaign=str(referral.get("ref") or referral.get("ad_id") or "") or None,
            thread_kind="ig_direct", thread_key=f"dm:{sender_id}", external_id=mid, text=text,
            at=from_epoch(event.get("timestamp"), millis=True) or now, author=sender_id,
            customer_name="", customer_handle=sender_id, reply_target={"igsid": sender_id}, raw=event,
            attachments=files_of(message.get("attachments"))))
    return items


def files_of(attachments: Any) -> list[InboundFile]:
    files: list[InboundFile] = []
    for n, item in enumerate(attachments if isinstance(attachments, list) else [], start=1):
        kind = item.get("type") if isinstance(item, dict) else None
        url = (item.get("payload") or {}).get("url") if kind in FILE_KINDS else None
        if not isinstance(url, str) or not url:
            continue
        base = urlsplit(url).path.rsplit("/", 1)[-1]
        ext = FILE_KINDS[kind]
        name = base if "." in base.strip(".") else f"{kind}_{n}" + (f".{ext}" if ext else "")
        files.append(InboundFile(kind, name, "", url=url))
    return files


async def send(http: httpx.AsyncClient, base_url: str, config: dict, secrets: dict[str, str],
               out: Outgoing) -> str:
    headers = {"Authorization": f"Bearer {secrets['access_token']}"}
    if out.thread_kind == "ig_comments":
        url = f"{base_url}/{out.target['comment_id']}/replies"
        body: dict[str, Any] = {"message": out.text}
    else:
        url = f"{base_url}/{config['ig_user_id']}/messages"
        body = {"recipient": {"id": out.target["igsid"]}, "message": {"text": out.text}}
    try:
        response = await http.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise Retry(f"instagram unreachable: {type(exc).__name__}") from exc
    data = json_or_none(response)
    error = data.get("error") if isinstance(data, dict) else None
    if response.status_code < 300 and not error:
        return str((data or {}).get("id") or (data or {}).get("message_id") or "")
    if isinstance(error, dict):
        code = error.get("code")
        reason = f"({code}) {error.get('message', '')}".strip()
        if code in RATE_LIMIT_CODES:
            raise Retry(reason)
        if response.status_code >= 500:
            raise Retry(reason)
        raise Permanent(reason)
    if response.status_code >= 500 or response.status_code == 429:
        raise Retry(f"HTTP {response.status_code}")
    raise Permanent(f"HTTP {response.status_code}")
