"""Bot auto-send of an SOP push (issue 13, EN-11): one push's content into one group chat through the channel's
bot, paced at the platform's documented limits. No database and no models here: the push loop calls `deliver`
(many at once, e.g. in a TaskGroup) and records what it returns or raises; one `Pacer` per process orders them.

Telegram (CHANNELS.md §3.3-3.5): text alone → `sendMessage` (links appended, split at 4096 characters); one image
→ `sendPhoto`, one video → `sendVideo`, one file → `sendDocument` (caption = the text); 2-10 images/videos →
`sendMediaGroup` (caption on the first, files uploaded as multipart `attach://fileN`); other mixes → albums of
≤ 10 images/videos, then each document. A text too long for a caption (1024) goes first as its own message.
Every call waits on the pacer. 429 → the chat is paused for `retry_after` and the call repeated, up to
`max_wait` in total, then `Retry`; 5xx / network → `Retry`; 400 with `migrate_to_chat_id` → `Migrated`;
403 (kicked, blocked, not a member) → `Permanent(description, unreachable=True)`; other 4xx → `Permanent`.
The bot token travels only in SecretPathTransport's placeholder header (`sender.channel_http` makes the client).

The Bot API has no idempotency key: the parts of a push already accepted (an album, then a 429 on its document)
are remembered by `dedupe_key` in the pacer, so a retried delivery in this process resumes after them.

VK (§4.3-4.4): `messages.send` with `peer_id` = the chat, `random_id` derived from `dedupe_key` (VK drops a
repeat, so a retry never doubles the message), links in the text. Images are uploaded by
`photos.getMessagesUploadServer` → POST → `photos.saveMessagesPhoto` (`photo{owner}_{id}`), videos and files by
`docs.getMessagesUploadServer` → POST → `docs.save` (`doc{owner}_{id}`: a video goes as a document, VK's video
upload being a separate product). VK errors inside HTTP 200: 6 and 9 are waited out with backoff (bounded),
5xx/10 → `Retry`, the rest `Permanent` with VK's reason (7, 900-902, 917, 945, 946 mark the chat unreachable).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
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
from engagement.rules import vk_random_id


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


@dataclass(frozen=True)
class PaceSettings:
    """The documented limits (Bots FAQ, CHANNELS.md §3.5; VK §4.4), in `unit`s of time: tests scale `unit` down
    and the stand-in Bot API enforces the same scaled limits. `margin` widens every spacing and window a little,
    because arrival at the platform jitters by some milliseconds against our clock."""

    chat_interval: float = 1.0     # "avoid sending more than one message per second" in a chat
    group_per_minute: int = 20     # "not able to send more than 20 messages per minute" in a group
    bot_per_second: int = 30       # "not able to broadcast more than about 30 messages per second"
    vk_per_second: int = 20        # API calls per second with a community token
    max_wait: float = 60.0         # 429 / flood waits inside one delivery before it is handed back as Retry
    margin: float = 0.05
    unit: float = 1.0              # seconds per unit of the limits above (1 in production)


class Pacer:
    """Per chat ≤ 1 send call per `chat_interval`; per group ≤ `group_per_minute` messages in any minute; per bot
    ≤ `bot_per_second` messages in any second (an album of n counts n against the windows, one call against the
    chat spacing); a chat or a whole bot paused after a 429 for its `retry_after`. Kept per process (asyncio: the
    check and the note have no await between them). `monotonic` and `sleep` are injectable for tests."""

    def __init__(self, settings: PaceSettings | None = None, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, remember: int = 10_000) -> None:
        self.settings = settings or PaceSettings()
        self.monotonic, self.sleep = monotonic, sleep
        self._chat_last: dict[tuple[str, str], float] = {}
        self._group_sent: dict[tuple[str, str], deque[float]] = {}
        self._bot_sent: dict[str, deque[float]] = {}
        self._paused: dict[tuple[str, str | None], float] = {}
        self._progress: OrderedDict[str, list[str]] = OrderedDict()
        self._remember = remember

    def _span(self, units: float) -> float:
        return units * self.settings.unit * (1 + self.settings.margin)

    def wait_for(self, bot: str, chat: str | None, *, group: bool, messages: int = 1,
                 per_second: int | None = None) -> float:
        """Seconds until a call of `messages` messages to `chat` may go (0: now)."""
        now, s = self.monotonic(), self.settings
        waits = [self._paused.get((bot, None), now), self._paused.get((bot, chat), now) if chat else now]
        if chat is not None and (bot, chat) in self._chat_last:
            waits.append(self._chat_last[(bot, chat)] + self._span(s.chat_interval))
        if chat is not None and group:
            waits.append(_window_free(self._group_sent.get((bot, chat)), now, self._span(60), s.group_per_minute,
                                      messages))
        waits.append(_window_free(self._bot_sent.get(bot), now, self._span(1), per_second or s.bot_per_second,
                                  messages))
        return max(0.0, max(waits) - now)

    async def acquire(self, bot: str, chat: str | None, *, group: bool, messages: int = 1,
                      per_second: int | None = None) -> None:
        while (wait := self.wait_for(bot, chat, group=group, messages=messages, per_second=per_second)) > 0:
            await self.sleep(wait)
        now = self.monotonic()
        if chat is not None:
            self._chat_last[(bot, chat)] = now
            if group:
                self._group_sent.setdefault((bot, chat), deque()).extend([now] * messages)
        self._bot_sent.setdefault(bot, deque()).extend([now] * messages)

    def pause(self, bot: str, chat: str | None, seconds: float) -> None:
        """After a 429: nothing more to `chat` (or, with None, from the bot) for `seconds`."""
        until = self.monotonic() + seconds
        self._paused[(bot, chat)] = max(until, self._paused.get((bot, chat), until))

    def progress(self, dedupe_key: str) -> list[str]:
        """The parts of a push already accepted by the channel (message ids, uploaded attachments)."""
        return list(self._progress.get(dedupe_key, ()))

    def keep(self, dedupe_key: str, parts: list[str]) -> None:
        self._progress[dedupe_key] = list(parts)
        self._progress.move_to_end(dedupe_key)
        while len(self._progress) > self._remember:
            self._progress.popitem(last=False)

    def forget(self, dedupe_key: str) -> None:
        self._progress.pop(dedupe_key, None)


def _window_free(sent: deque[float] | None, now: float, window: float, limit: int, messages: int) -> float:
    """When `messages` more fit under `limit` in the sliding `window` (old entries are dropped on the way)."""
    if not sent:
        return now
    while sent and sent[0] <= now - window:
        sent.popleft()
    over = len(sent) + min(messages, limit) - limit
    return now if over <= 0 else sent[over - 1] + window


async def deliver(http: httpx.AsyncClient, pacer: Pacer, *, kind: str, base_url: str, config: dict,
                  secrets: dict[str, str], chat_id: str, is_group: bool, content: PushContent,
                  dedupe_key: str) -> str:
    """Send one push; returns the channel's message id(s), ",".join. Raises channels.Retry (try later, `after`
    seconds if the channel said), channels.Permanent (the channel's words) or Migrated (Telegram)."""
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
            if call.files:
                data = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in call.fields.items()}
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
                response = await self.http.post(f"{self.base_url}/{method}", data={**params, "v": self.version},
                                                headers={"Authorization": f"Bearer {self.token}"})
            except httpx.HTTPError as exc:
                raise Retry(f"vk unreachable: {type(exc).__name__}") from exc
            body = json_or_none(response)
            code = (body.get("error") or {}).get("error_code") if isinstance(body, dict) else None
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
