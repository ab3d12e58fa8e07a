"""A local stand-in Bot API server (CHANNELS.md §3.3-3.5) for the SOP auto-send (issue 13), with a small VK API
beside it (§4.3-4.4): a real HTTP server (Litestar under uvicorn, its own thread) on a free loopback port.

Telegram: `sendMessage`, `sendPhoto`, `sendVideo`, `sendDocument`, `sendMediaGroup` (multipart uploads with
`attach://` and JSON with file ids/URLs). It ENFORCES the documented limits on real (monotonic) time — per chat one
call per second, per group 20 messages a minute, per bot 30 messages a second; an album of n counts n messages —
answering Telegram's 429 `{"ok": false, "error_code": 429, "description": "Too Many Requests: retry after N",
"parameters": {"retry_after": N}}`. `unit` scales time (seconds per limit second, and per `retry_after` unit) so
tests run the same limits in milliseconds while the bench runs the real ones.

Every accepted message is recorded with its arrival time (`accepted`), every 429 answered too (`rejected`);
`violations()` recomputes the limits from the accepted log alone (a message accepted in violation would be a bug
here). Chats can be set to answer 403 "Forbidden: bot was kicked from the group chat" (`kick`) or 400 "Bad
Request: group chat was upgraded to a supergroup chat" with `migrate_to_chat_id` (`migrate`), and the next calls
of a chat can be told to answer 429 with a given `retry_after` (`throttle`).

VK: `messages.send` (a repeated `random_id` is the same message: not delivered twice), the message upload flows
(`photos.getMessagesUploadServer` → POST → `photos.saveMessagesPhoto`, `docs.getMessagesUploadServer` → POST →
`docs.save`) and scripted answers per method (`vk_script`, with "deliver-then-fail": it takes effect, the answer
is a 502).
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, post
from litestar.datastructures import UploadFile as LitestarUpload
from shared.testing import free_port

TOKEN = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
VK_TOKEN = "vk1.a.push-community-token"
VK_GROUP = 171104414
KICKED = "Forbidden: bot was kicked from the group chat"
UPGRADED = "Bad Request: group chat was upgraded to a supergroup chat"
SINGLE = {"sendPhoto": "photo", "sendVideo": "video", "sendDocument": "document"}


@dataclass(frozen=True)
class UploadFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Accepted:
    method: str
    chat_id: str
    at: float                      # time.monotonic() on arrival
    messages: int
    message_ids: list[int]
    text: str | None = None
    caption: str | None = None
    media: list[dict[str, Any]] = field(default_factory=list)    # {"type", "media", "caption"?, "file"?}
    files: list[dict[str, Any]] = field(default_factory=list)    # {"field", "name", "content_type", "size"}


def _error(status: int, description: str, **parameters: Any) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Response(body, status_code=status)


class BotApi:
    def __init__(self, unit: float = 1.0, token: str = TOKEN, *, chat_interval: float = 1.0,
                 group_per_minute: int = 20, bot_per_second: int = 30) -> None:
        self.unit, self.token = unit, token
        self.chat_interval, self.group_per_minute, self.bot_per_second = chat_interval, group_per_minute, bot_per_second
        self.accepted: list[Accepted] = []
        self.rejected: list[dict[str, Any]] = []          # every 429 answered: {"chat_id", "at", "limit", "retry_after"}
        self.calls: list[dict[str, Any]] = []             # every request: {"method", "chat_id", "status"}
        self.refusals: dict[str, tuple[int, str]] = {}
        self.migrated: dict[str, str] = {}
        self.throttled: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        self._chat_last: dict[str, float] = {}
        self._group: dict[str, deque[float]] = defaultdict(deque)
        self._bot: deque[float] = deque()
        self._ids = itertools.count(9001)
        # VK
        self.vk_messages: list[dict[str, Any]] = []
        self.vk_calls: list[dict[str, Any]] = []
        self.vk_scripts: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        self._vk_random_ids: dict[str, int] = {}
        self._vk_ids = itertools.count(501)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    # --- control -----------------------------------------------------------------------------------------------

    def start(self) -> BotApi:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the Bot API stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def kick(self, chat_id: str | int) -> None:
        self.refuse(chat_id, 403, KICKED)

    def refuse(self, chat_id: str | int, status: int, description: str) -> None:
        """Every call to the chat answers this error (e.g. 400 "Bad Request: chat not found")."""
        self.refusals[str(chat_id)] = (status, description)

    def migrate(self, chat_id: str | int, new_chat_id: str | int) -> None:
        self.migrated[str(chat_id)] = str(new_chat_id)

    def throttle(self, chat_id: str | int, *retry_after: int, method: str | None = None) -> None:
        """The next calls to the chat (of `method`, or any) answer 429 with these `retry_after`s, not accepted."""
        self.throttled[(str(chat_id), method)].extend(retry_after)

    def vk_script(self, method: str, *answers: tuple[int, Any]) -> None:
        self.vk_scripts[method].extend(answers)

    def in_chat(self, chat_id: str | int) -> list[Accepted]:
        return [a for a in self.accepted if a.chat_id == str(chat_id)]

    # --- limits ------------------------------------------------------------------------------------------------

    def _limit(self, chat_id: str, messages: int, now: float) -> tuple[str, float] | None:
        """Which limit a call would break now, and for how long (seconds); None when it may be accepted."""
        u = self.unit
        last = self._chat_last.get(chat_id)
        if last is not None and now - last < self.chat_interval * u:
            return "chat", last + self.chat_interval * u - now
        if chat_id.startswith("-"):
            wait = _window_wait(self._group[chat_id], now, 60 * u, self.group_per_minute, messages)
            if wait > 0:
                return "group", wait
        wait = _window_wait(self._bot, now, u, self.bot_per_second, messages)
        return ("bot", wait) if wait > 0 else None

    def violations(self) -> int:
        """Recomputed from the accepted log alone: calls closer than the chat interval, and messages beyond the
        group's minute or the bot's second, in any sliding window."""
        u, count = self.unit, 0
        by_chat: dict[str, list[float]] = defaultdict(list)
        for a in sorted(self.accepted, key=lambda a: a.at):
            by_chat[a.chat_id].append(a.at)
        for times in by_chat.values():
            count += sum(1 for x, y in itertools.pairwise(times) if y - x < self.chat_interval * u)
        for chat_id in by_chat:
            if chat_id.startswith("-"):
                count += _over(_messages(a for a in self.accepted if a.chat_id == chat_id), 60 * u,
                               self.group_per_minute)
        return count + _over(_messages(self.accepted), u, self.bot_per_second)

    # --- Telegram ----------------------------------------------------------------------------------------------

    async def telegram(self, token: str, method: str, request: Request) -> Response:
        fields, uploads = await _read(request)
        chat_id = str(fields.get("chat_id", ""))
        call = {"method": method, "chat_id": chat_id, "status": 200}
        self.calls.append(call)
        answer = self._refuse(token, method, fields, uploads, chat_id) or self._accept(method, fields, uploads,
                                                                                        chat_id)
        call["status"] = answer.status_code
        return answer

    def _refuse(self, token: str, method: str, fields: dict[str, Any], uploads: dict[str, UploadFile],
                chat_id: str) -> Response | None:
        if token != self.token:
            return _error(401, "Unauthorized")
        if method not in ("sendMessage", "sendMediaGroup", *SINGLE):
            return _error(404, "Not Found")
        if not chat_id:
            return _error(400, "Bad Request: chat_id is empty")
        if chat_id in self.refusals:
            return _error(*self.refusals[chat_id])
        if chat_id in self.migrated:
            return _error(400, UPGRADED, migrate_to_chat_id=int(self.migrated[chat_id]))
        problem = _malformed(method, fields, uploads)
        if problem:
            return _error(400, f"Bad Request: {problem}")
        told = self.throttled.get((chat_id, method)) or self.throttled.get((chat_id, None))
        if told:
            after = told.pop(0)
            self.rejected.append({"chat_id": chat_id, "at": time.monotonic(), "limit": "told", "retry_after": after})
            return _error(429, f"Too Many Requests: retry after {after}", retry_after=after)
        return None

    def _accept(self, method: str, fields: dict[str, Any], uploads: dict[str, UploadFile], chat_id: str) -> Response:
        """Checks the limits and notes the message at one instant (one event loop: nothing runs in between)."""
        n, now = _count(method, fields), time.monotonic()
        broken = self._limit(chat_id, n, now)
        if broken is not None:
            after = max(1, math.ceil(broken[1] / self.unit))
            self.rejected.append({"chat_id": chat_id, "at": now, "limit": broken[0], "retry_after": after})
            return _error(429, f"Too Many Requests: retry after {after}", retry_after=after)
        self._chat_last[chat_id] = now
        if chat_id.startswith("-"):
            self._group[chat_id].extend([now] * n)
        self._bot.extend([now] * n)
        ids = [next(self._ids) for _ in range(n)]
        record = Accepted(method, chat_id, now, n, ids, text=fields.get("text"), caption=fields.get("caption"))
        if method == "sendMediaGroup":
            record.media = [_media_item(item, uploads) for item in _media(fields)]
            record.caption = next((m.get("caption") for m in record.media if m.get("caption")), None)
        for name, upload in uploads.items():
            record.files.append({"field": name, "name": upload.filename, "content_type": upload.content_type,
                                 "size": len(upload.data)})
        self.accepted.append(record)
        messages = [{"message_id": i, "date": int(time.time()), "chat": {"id": _int(chat_id)}} for i in ids]
        if method == "sendMessage":
            messages[0]["text"] = fields.get("text")
        return Response({"ok": True, "result": messages if method == "sendMediaGroup" else messages[0]})

    # --- VK ----------------------------------------------------------------------------------------------------

    async def vk(self, method: str, request: Request) -> Response:
        fields, _ = await _read(request)
        call = {"method": method, "body": fields, "authorization": request.headers.get("authorization")}
        self.vk_calls.append(call)
        if call["authorization"] != f"Bearer {VK_TOKEN}":
            return Response({"error": {"error_code": 5, "error_msg": "User authorization failed: invalid token"}})
        if self.vk_scripts.get(method):
            status, answer = self.vk_scripts[method].pop(0)
            if answer != "deliver-then-fail":
                return Response(answer, status_code=status)
            self._vk_answer(method, fields)
            return Response({"error": "upstream timeout"}, status_code=status)
        return self._vk_answer(method, fields)

    def _vk_answer(self, method: str, fields: dict[str, Any]) -> Response:
        if method == "messages.send":
            random_id = str(fields.get("random_id"))
            if random_id not in self._vk_random_ids:      # the same random_id is the same message
                self._vk_random_ids[random_id] = next(self._vk_ids)
                self.vk_messages.append({**fields, "message_id": self._vk_random_ids[random_id]})
            return Response({"response": self._vk_random_ids[random_id]})
        if method in ("photos.getMessagesUploadServer", "docs.getMessagesUploadServer"):
            kind = "photo" if method.startswith("photos") else "doc"
            return Response({"response": {"upload_url": f"{self.url}/vk/upload/{kind}", "album_id": -3,
                                          "group_id": VK_GROUP}})
        if method == "photos.saveMessagesPhoto":
            stored = json.loads(str(fields.get("photo") or "{}"))
            return Response({"response": [{"id": stored.get("id"), "owner_id": -VK_GROUP, "access_key": "ak"}]})
        if method == "docs.save":
            return Response({"response": {"type": "doc", "doc": {"id": int(str(fields.get("file"))),
                                                                 "owner_id": -VK_GROUP, "title": fields.get("title")}}})
        return Response({"error": {"error_code": 3, "error_msg": "Unknown method passed"}})

    async def vk_upload(self, kind: str, request: Request) -> Response:
        _, uploads = await _read(request)
        upload = uploads.get("photo" if kind == "photo" else "file")
        if upload is None:
            return Response({"error": "no file"})
        file_id = next(self._vk_ids)
        self.vk_calls.append({"method": f"upload.{kind}", "body": {"name": upload.filename,
                                                                   "content_type": upload.content_type}})
        if kind == "photo":
            return Response({"server": 1, "photo": json.dumps({"id": file_id}), "hash": "h"})
        return Response({"file": str(file_id)})

    def app(self) -> Litestar:
        @post("/{bot:str}/{method:str}", status_code=200)
        async def bot_method(bot: str, method: str, request: Request) -> Response:
            if not bot.startswith("bot"):
                return _error(404, "Not Found")
            return await self.telegram(bot.removeprefix("bot"), method, request)

        @post("/vk/method/{method:str}", status_code=200)
        async def vk_method(method: str, request: Request) -> Response:
            return await self.vk(method, request)

        @post("/vk/upload/{kind:str}", status_code=200)
        async def vk_upload(kind: str, request: Request) -> Response:
            return await self.vk_upload(kind, request)

        return Litestar([bot_method, vk_method, vk_upload])


async def _read(request: Request) -> tuple[dict[str, Any], dict[str, UploadFile]]:
    """(fields, uploads) of a JSON, urlencoded or multipart body."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return json.loads(await request.body() or b"{}"), {}
    form = await request.form()
    fields, uploads = {}, {}
    for key, value in form.multi_items():
        if isinstance(value, LitestarUpload):
            uploads[key] = UploadFile(value.filename, value.content_type, await value.read())
        else:
            fields[key] = value
    return fields, uploads


def _media(fields: dict[str, Any]) -> list[dict[str, Any]]:
    media = fields.get("media")
    if isinstance(media, str):
        try:
            media = json.loads(media)
        except ValueError:
            return []
    return media if isinstance(media, list) else []


def _malformed(method: str, fields: dict[str, Any], uploads: dict[str, UploadFile]) -> str | None:
    if method == "sendMessage":
        text = str(fields.get("text") or "")
        return "message text is empty" if not text else "message is too long" if len(text) > 4096 else None
    if len(str(fields.get("caption") or "")) > 1024:
        return "message caption is too long"
    if method in SINGLE:
        name = SINGLE[method]
        return None if name in uploads or fields.get(name) else f"there is no {name} in the request"
    media = _media(fields)
    if not 2 <= len(media) <= 10:
        return "media must include 2-10 items"
    for item in media:
        ref = str(item.get("media") or "")
        if not ref or (ref.startswith("attach://") and ref.removeprefix("attach://") not in uploads):
            return "wrong file identifier/HTTP URL specified"
    types = {item.get("type") for item in media}
    if "document" in types and types != {"document"}:
        return "document can't be mixed with other media types"
    return None


def _media_item(item: dict[str, Any], uploads: dict[str, UploadFile]) -> dict[str, Any]:
    ref = str(item.get("media") or "")
    upload = uploads.get(ref.removeprefix("attach://")) if ref.startswith("attach://") else None
    return {**item, **({"file": upload.filename} if upload else {})}


def _count(method: str, fields: dict[str, Any]) -> int:
    return max(1, len(_media(fields))) if method == "sendMediaGroup" else 1


def _int(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def _window_wait(sent: deque[float], now: float, window: float, limit: int, messages: int) -> float:
    while sent and sent[0] <= now - window:
        sent.popleft()
    over = len(sent) + messages - limit
    return 0.0 if over <= 0 else sent[over - 1] + window - now


def _messages(accepted: Any) -> list[float]:
    return sorted(t for a in accepted for t in [a.at] * a.messages)


def _over(times: list[float], window: float, limit: int) -> int:
    """Messages that were the (limit+1)-th or later inside a sliding window."""
    count, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        if end - start + 1 > limit:
            count += 1
    return count
