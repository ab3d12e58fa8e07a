"""Bot auto-send of an SOP push (issue 13, EN-11): one push's content into one group chat through the channel's
bot, paced at the platform's documented limits. No database and no models here: the push loop calls `deliver`
(many at once, e.g. in a TaskGroup: the pacer gives each its moment) and records what it returns or raises; one
`Pacer` per process orders them (two replicas sending through one bot would each keep the full pace: the 429
handling below absorbs that, a shared budget is not built).

Telegram (CHANNELS.md §3.3-3.5): text alone → `sendMessage` (links appended, split at 4096 characters); one image
→ `sendPhoto`, one video → `sendVideo`, one file → `sendDocument` (caption = the text); 2-10 images/videos →
`sendMediaGroup` (caption on the first, files uploaded as multipart `attach://fileN`); other mixes → albums of
≤ 10 images/videos, then each document. A text too long for a caption (1024) goes first as its own message.
Every call waits on the pacer. 429 → the chat is paused for `retry_after` and the call repeated, up to
`max_wait` in total, then `Retry`; 5xx / network → `Retry`; 400 with `migrate_to_chat_id` → `Migrated`;
403 (kicked, blocked, not a member) → `Permanent(description, unreachable=True)`; other 4xx → `Permanent`.
The bot token travels only in SecretPathTransport's placeholder header (`sender.channel_http` makes the client).

The Bot API has no idempotency key: the parts of a push already accepted (an album, then a 429 on its document)
are remembered by `dedupe_key` in the pacer, so a retried delivery in this process resumes after them. A call
whose answer is lost (timeout after Telegram took it) is retried and may show twice — CHANNELS.md §3.3's
accepted rare duplicate; a 429 or 4xx never took effect.

VK (§4.3-4.4; `v` = `config["api_version"]` or 5.199; API calls ≤ 20 a second per community token through the
same pacer): `messages.send` with `peer_id` = the chat, `random_id` derived from `dedupe_key` (VK drops a
repeat, so a retry never doubles the message), links in the text. Images are uploaded by
`photos.getMessagesUploadServer` → POST → `photos.saveMessagesPhoto` (`photo{owner}_{id}`), videos and files by
`docs.getMessagesUploadServer` → POST → `docs.save` (`doc{owner}_{id}`: a video goes as a document, VK's video
upload being a separate product). VK errors inside HTTP 200: 6 and 9 are waited out with backoff (bounded),
5xx/10 → `Retry`, the rest `Permanent` with VK's reason (7, 900-902, 917, 945, 946 mark the chat unreachable).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from engagement.channels import (
    PATH_SECRET_HEADER,
    PATH_SECRET_PLACEHOLDER,
    Permanent,
    Retry,
    json_or_none,
    telegram,
    vk,
)
from engagement.pacing import Pacer, PaceSettings
from engagement.rules import vk_random_id

__all__ = ["Migrated", "PaceSettings", "Pacer", "PushContent", "PushFile", "deliver", "telegram_calls"]


@dataclass(frozen=True)
class PushFile:
    kind: Literal["image", "video", "file"]
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class PushContent:
    text: str
    files: tuple[PushFile, ...] = ()
    links: tuple[str, ...] = ()


class Migrated(Exception):
    """Telegram: the group was upgraded to a supergroup; the push belongs to `new_chat_id` now."""

    def __init__(self, new_chat_id: str, reason: str = "group chat was upgraded to a supergroup chat") -> None:
        super().__init__(reason)
        self.new_chat_id = new_chat_id
        self.reason = reason


async def deliver(http: httpx.AsyncClient, pacer: Pacer, *, kind: str, base_url: str, config: dict,
                  secrets: dict[str, str], chat_id: str, is_group: bool, content: PushContent,
                  dedupe_key: str) -> str:
    """Send one push; returns the channel's message id(s), ",".join. Raises channels.Retry (try later, `after`
    seconds if the channel said), channels.Permanent (the channel's words) or Migrated (Telegram)."""
    if not secrets.get("bot_token" if kind == "telegram" else "access_token"):
        raise Permanent(f"the {kind} channel has no token to send with")
    if kind == "telegram":
        ids = await _telegram(http, pacer, base_url, secrets, str(chat_id), is_group, content, dedupe_key)
    elif kind == "vk":
        ids = await _vk(http, pacer, base_url, config, secrets, str(chat_id), content, dedupe_key)
    else:
        raise Permanent(f"auto-send on {kind} is not available")
    pacer.forget(dedupe_key)
    return ",".join(ids)


def text_with_links(content: PushContent) -> str:
    links = [link for link in content.links if link and link not in content.text]
    return "\n\n".join(part for part in (content.text.strip(), "\n".join(links)) if part)


# --- Telegram ---------------------------------------------------------------------------------------------------

TEXT_LIMIT, CAPTION_LIMIT, ALBUM_LIMIT = 4096, 1024, 10
SINGLE = {"image": ("sendPhoto", "photo"), "video": ("sendVideo", "video"), "file": ("sendDocument", "document")}
MEDIA_TYPE = {"image": "photo", "video": "video", "file": "document"}


@dataclass(frozen=True)
class Call:
    method: str
    fields: dict[str, Any]
    files: tuple[tuple[str, PushFile], ...] = ()   # (multipart field, file)
    messages: int = 1                              # what it counts against the group and bot windows


def telegram_calls(chat_id: str, content: PushContent) -> list[Call]:
    """The Bot API calls that make one push, in order."""
    chat = _chat(chat_id)
    text = text_with_links(content)
    visual = [f for f in content.files if f.kind in ("image", "video")]
    parts = [visual[i:i + ALBUM_LIMIT] for i in range(0, len(visual), ALBUM_LIMIT)]
    parts += [[f] for f in content.files if f.kind not in ("image", "video")]
    if not parts or len(text) > CAPTION_LIMIT:
        calls = [Call("sendMessage", {"chat_id": chat, "text": chunk}) for chunk in _chunks(text, TEXT_LIMIT)]
        text = ""
    else:
        calls = []
    for i, files in enumerate(parts):
        calls.append(_media_call(chat, files, text if i == 0 else ""))
    return calls


def _media_call(chat: int | str, files: list[PushFile], caption: str) -> Call:
    if len(files) == 1:
        method, field_name = SINGLE[files[0].kind]
        fields: dict[str, Any] = {"chat_id": chat, **({"caption": caption} if caption else {})}
        return Call(method, fields, ((field_name, files[0]),))
    media = [{"type": MEDIA_TYPE[f.kind], "media": f"attach://file{i}", **({"caption": caption} if i == 0 and caption
                                                                           else {})} for i, f in enumerate(files)]
    return Call("sendMediaGroup", {"chat_id": chat, "media": media},
                tuple((f"file{i}", f) for i, f in enumerate(files)), messages=len(files))


def _chat(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def _chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _bot_key(kind: str, secret: str) -> str:
    """The pacer's key for a bot: a hash, so the token itself is never kept outside the request."""
    return f"{kind}:{hashlib.sha256(secret.encode()).hexdigest()[:16]}"


async def _telegram(http: httpx.AsyncClient, pacer: Pacer, base_url: str, secrets: dict[str, str], chat_id: str,
                    is_group: bool, content: PushContent, dedupe_key: str) -> list[str]:
    token = secrets["bot_token"]
    bot = _bot_key("telegram", token)
    ids = pacer.progress(dedupe_key)
    for n, call in enumerate(telegram_calls(chat_id, content)):
        if n < len(ids):
            continue  # accepted before a retry of this push
        ids.append(await _telegram_call(http, pacer, base_url, token, bot, chat_id, is_group, call))
        pacer.keep(dedupe_key, ids)
    return ids


async def _telegram_call(http: httpx.AsyncClient, pacer: Pacer, base_url: str, token: str, bot: str, chat_id: str,
                         is_group: bool, call: Call) -> str:
    """One Bot API call, waiting on the pacer and through 429s (bounded): the accepted message ids, ",".join."""
    url, headers = f"{base_url}/bot{PATH_SECRET_PLACEHOLDER}/{call.method}", {PATH_SECRET_HEADER: token}
    waited, unit = 0.0, pacer.settings.unit
    while True:
        await pacer.acquire(bot, chat_id, group=is_group, messages=call.messages)
        try:
            async with pacer.in_flight:
                if call.files:
                    data = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                            for k, v in call.fields.items()}
                    files = [(name, (f.name, f.data, f.content_type)) for name, f in call.files]
                    response = await http.post(url, data=data, files=files, headers=headers)
                else:
                    response = await http.post(url, json=call.fields, headers=headers)
        except httpx.HTTPError as exc:
            raise Retry(f"telegram unreachable: {type(exc).__name__}") from exc
        body = json_or_none(response) or {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code == 200 and body.get("ok"):
            result = body.get("result")
            messages = result if isinstance(result, list) else [result or {}]
            return ",".join(str(m.get("message_id", "")) for m in messages)
        parameters = body.get("parameters") or {}
        description = str(body.get("description") or f"HTTP {response.status_code}")
        if response.status_code == 400 and parameters.get("migrate_to_chat_id"):
            raise Migrated(str(parameters["migrate_to_chat_id"]), description)
        if response.status_code == 429:
            after = float(parameters.get("retry_after") or 1)
            waited += after
            if waited > pacer.settings.max_wait:
                raise Retry(description, after=after * unit)
            pacer.pause(bot, chat_id, after * unit)
            continue
        telegram.raise_for(response.status_code, body)


# --- VK ---------------------------------------------------------------------------------------------------------

VK_VERSION = "5.199"
VK_WAIT_CODES = {6: "bot", 9: "chat"}   # too many requests per second (the token) / flood control (the chat)
# 7 no permission, 900-902 the user's choices, 917 no access to the chat, 945 chat disabled, 946 chat not supported
VK_UNREACHABLE = {7, 900, 901, 902, 917, 945, 946}


@dataclass
class _Vk:
    http: httpx.AsyncClient
    pacer: Pacer
    base_url: str
    version: str
    token: str
    bot: str = field(init=False)

    def __post_init__(self) -> None:
        self.bot = _bot_key("vk", self.token)

    async def call(self, method: str, params: dict[str, Any], chat: str | None = None) -> Any:
        waited, attempt, unit = 0.0, 0, self.pacer.settings.unit
        while True:
            await self.pacer.acquire(self.bot, chat, group=False, per_second=self.pacer.settings.vk_per_second)
            try:
                async with self.pacer.in_flight:
                    response = await self.http.post(f"{self.base_url}/{method}", data={**params, "v": self.version},
                                                    headers={"Authorization": f"Bearer {self.token}"})
            except httpx.HTTPError as exc:
                raise Retry(f"vk unreachable: {type(exc).__name__}") from exc
            body = json_or_none(response)
            error = body.get("error") if isinstance(body, dict) else None
            code = error.get("error_code") if isinstance(error, dict) else None
            if code in VK_WAIT_CODES and waited + 2 ** attempt <= self.pacer.settings.max_wait:
                wait, attempt = 2 ** attempt, attempt + 1
                waited += wait
                self.pacer.pause(self.bot, chat if VK_WAIT_CODES[code] == "chat" else None, wait * unit)
                continue
            return vk.result_of(response, unreachable=VK_UNREACHABLE)

    async def upload(self, url: str, field_name: str, file: PushFile) -> dict[str, Any]:
        try:
            response = await self.http.post(url, files={field_name: (file.name, file.data, file.content_type)})
        except httpx.HTTPError as exc:
            raise Retry(f"vk upload unreachable: {type(exc).__name__}") from exc
        body = json_or_none(response)
        if response.status_code >= 500 or not isinstance(body, dict):
            raise Retry(f"vk upload: HTTP {response.status_code}")
        if body.get("error") or response.status_code != 200:
            raise Permanent(f"vk upload of {file.name}: {body.get('error') or response.status_code}")
        return body

    async def attachment(self, chat_id: str, file: PushFile) -> str:
        if file.kind == "image":
            server = await self.call("photos.getMessagesUploadServer", {"peer_id": chat_id})
            uploaded = await self.upload(server["upload_url"], "photo", file)
            [photo, *_] = await self.call("photos.saveMessagesPhoto", {
                "server": uploaded.get("server"), "photo": uploaded.get("photo"), "hash": uploaded.get("hash")})
            key = f"_{photo['access_key']}" if photo.get("access_key") else ""
            return f"photo{photo['owner_id']}_{photo['id']}{key}"
        server = await self.call("docs.getMessagesUploadServer", {"type": "doc", "peer_id": chat_id})
        uploaded = await self.upload(server["upload_url"], "file", file)
        saved = await self.call("docs.save", {"file": uploaded.get("file"), "title": file.name})
        doc = (saved.get("doc") or saved) if isinstance(saved, dict) else saved[0]
        return f"doc{doc['owner_id']}_{doc['id']}"


async def _vk(http: httpx.AsyncClient, pacer: Pacer, base_url: str, config: dict, secrets: dict[str, str],
              chat_id: str, content: PushContent, dedupe_key: str) -> list[str]:
    api = _Vk(http, pacer, base_url, str(config.get("api_version") or VK_VERSION), secrets["access_token"])
    attachments = pacer.progress(dedupe_key)   # uploaded before a retry: not uploaded again
    for file in content.files[len(attachments):]:
        attachments.append(await api.attachment(chat_id, file))
        pacer.keep(dedupe_key, attachments)
    params: dict[str, Any] = {"peer_id": chat_id, "random_id": vk_random_id(dedupe_key),
                              "message": text_with_links(content)}
    if attachments:
        params["attachment"] = ",".join(attachments)
    result = await api.call("messages.send", params, chat=chat_id)
    if isinstance(result, list):   # the peer_ids form answers a list of {peer_id, message_id}
        result = ",".join(str(r.get("message_id", "")) for r in result)
    return [str(result)]
