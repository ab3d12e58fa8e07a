"""The engagement service under test: the real app over SQLite or PostgreSQL with a FixedClock, its inbound
processor and sender driven deterministically (`process()`, `send()`), and a stand-in for the channels' APIs:
a real HTTP server on a loopback port (uvicorn in its own thread) that answers as CHANNELS.md documents,
including the documented errors, scripted per test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest
import uvicorn
from engagement.app import create_app
from engagement.config import ChannelSettings
from litestar import Litestar, Request, Response, get, post
from litestar.response import Stream
from litestar.testing import AsyncTestClient
from shared.clock import FixedClock
from shared.events import decode
from shared.infra import OutboxRow
from shared.testing import free_port, make_settings
from sqlalchemy import func, select

from .payloads import APP_SECRET, LEAD, T0, TG_CONFIG, TOKEN, VERIFY_TOKEN, meta_signature, staff

TG_BOT_TOKEN = TG_CONFIG["bot_token"]


class StandIn:
    """Instagram Graph, Telegram Bot API and VK API on one loopback server. `script(path_suffix, *answers)`
    queues (status, json) answers for the next calls whose path ends with the suffix; otherwise it succeeds.
    `calls` has every request; `delivered` only the ones that took effect (VK drops a repeated random_id).

    Files (issue 11 attachments): `tg_file(file_id, data, ...)` makes Telegram's `getFile` answer with the
    file's path and size (an unknown file_id is Telegram's 400 "Bad Request: invalid file_id"), downloaded with
    `GET /tg/file/bot<token>/<file_path>`; `web_file(path, data, ...)` serves a platform's CDN URL
    (`{url}{path}`), `chunked` without a Content-Length. GETs are scripted like POSTs (`script`) and kept in
    `downloads`."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.downloads: list[str] = []
        self.tg_files: dict[str, tuple[str, bytes, str]] = {}
        self.web: dict[str, tuple[bytes, str, bool]] = {}
        self.redirects: dict[str, str] = {}
        self.delivered: list[dict[str, Any]] = []
        self.scripts: dict[str, list[tuple[int, Any]]] = {}
        self._vk_random_ids: dict[str, int] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def script(self, suffix: str, *answers: tuple[int, Any]) -> None:
        self.scripts.setdefault(suffix, []).extend(answers)

    def tg_file(self, file_id: str, data: bytes, path: str | None = None, content_type: str = "") -> str:
        path = path or f"documents/file_{len(self.tg_files)}.bin"
        self.tg_files[file_id] = (path, data, content_type)
        self.web[f"/tg/file/bot{TG_BOT_TOKEN}/{path}"] = (data, content_type or "application/octet-stream", False)
        return path

    def web_file(self, path: str, data: bytes, content_type: str = "application/octet-stream",
                 chunked: bool = False) -> str:
        self.web[path] = (data, content_type, chunked)
        return f"{self.url}{path}"

    def redirect(self, path: str, location: str) -> str:
        """`path` answers 302 to `location` (a CDN's redirect)."""
        self.redirects[path] = location
        return f"{self.url}{path}"

    def download(self, path: str) -> Response:
        self.downloads.append(path)
        if path in self.redirects:
            return Response(b"", status_code=302, headers={"Location": self.redirects[path]})
        for suffix, answers in self.scripts.items():
            if path.endswith(suffix) and answers:
                status, answer = answers.pop(0)
                return Response(answer, status_code=status)
        if path not in self.web:
            return Response({"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404)
        data, content_type, chunked = self.web[path]
        if chunked:
            async def body() -> AsyncIterator[bytes]:
                for start in range(0, len(data), 4096):
                    yield data[start:start + 4096]
            return Stream(body(), media_type=content_type)
        return Response(data, media_type=content_type)

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        path = request.url.path
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            body = json.loads(raw)
        else:
            body = {k: v for k, v in (await request.form()).items()}
        call = {"path": path, "body": body, "authorization": request.headers.get("authorization")}
        self.calls.append(call)
        for suffix, answers in self.scripts.items():
            if path.endswith(suffix) and answers:
                status, answer = answers.pop(0)
                if answer != "deliver-then-fail":
                    return Response(answer, status_code=status)
                await self.answer(path, body, call)   # it took effect, but the answer is lost
                return Response({"error": "upstream timeout"}, status_code=status)
        return await self.answer(path, body, call)

    async def answer(self, path: str, body: dict[str, Any], call: dict[str, Any]) -> Response:
        n = len(self.delivered) + 1
        if path.endswith("/getFile"):
            if body.get("file_id") not in self.tg_files:
                return Response({"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"},
                                status_code=400)
            file_path, data, _ = self.tg_files[body["file_id"]]
            return Response({"ok": True, "result": {"file_id": body["file_id"], "file_unique_id": f"u{n}",
                                                    "file_size": len(data), "file_path": file_path}})
        if path.endswith("/setWebhook"):
            self.delivered.append(call)
            return Response({"ok": True, "result": True, "description": "Webhook was set"})
        if path.endswith("/sendMessage"):
            self.delivered.append(call)
            return Response({"ok": True, "result": {"message_id": 9000 + n, "chat": {"id": body["chat_id"]},
                                                    "date": 1760000000, "text": body["text"]}})
        if path.endswith("/messages.send"):
            if body["random_id"] in self._vk_random_ids:  # VK: the same random_id is the same message
                return Response({"response": self._vk_random_ids[body["random_id"]]})
            self.delivered.append(call)
            self._vk_random_ids[body["random_id"]] = 500 + n
            return Response({"response": 500 + n})
        if path.endswith("/wall.createComment"):
            self.delivered.append(call)
            return Response({"response": {"comment_id": 700 + n, "parents_stack": []}})
        if path.endswith("/replies"):
            self.delivered.append(call)
            return Response({"id": f"1800602296782{n:04d}"})
        if path.endswith("/messages"):
            self.delivered.append(call)
            return Response({"recipient_id": body["recipient"]["id"], "message_id": f"aWdfZAG1faXRlbTox{n}"})
        return Response({"error": {"message": "Unknown path", "code": 100}}, status_code=400)


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    stand = StandIn()

    @post("/{path:path}", status_code=200)
    async def any_post(request: Request) -> Response:
        return await stand.handle(request)

    @get("/{path:path}")
    async def any_get(request: Request) -> Response:
        return stand.download(request.url.path)

    server = uvicorn.Server(uvicorn.Config(Litestar([any_post, any_get]), host="127.0.0.1", port=stand.port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "stand-in server did not start"
        time.sleep(0.02)
    yield stand
    server.should_exit = True
    thread.join(10)


class Api:
    def __init__(self, client: AsyncTestClient, app: Any, clock: FixedClock) -> None:
        self.client, self.app, self.clock = client, app, clock

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def headers(self, as_: tuple[str, str] | None) -> dict[str, str]:
        return dict(TOKEN) if as_ is None else staff(as_[0], as_[1], self.app.state.settings)

    async def post(self, path: str, json: Any = None, as_: tuple[str, str] | None = LEAD):
        return await self.client.post(f"/api/engagement{path}", json=json, headers=self.headers(as_))

    async def put(self, path: str, json: Any = None, as_: tuple[str, str] | None = LEAD):
        return await self.client.put(f"/api/engagement{path}", json=json, headers=self.headers(as_))

    async def patch(self, path: str, json: Any = None, as_: tuple[str, str] | None = LEAD):
        return await self.client.patch(f"/api/engagement{path}", json=json, headers=self.headers(as_))

    async def get(self, path: str, as_: tuple[str, str] | None = LEAD, **params: Any):
        return await self.client.get(f"/api/engagement{path}", headers=self.headers(as_), params=params)

    async def ok(self, method: str, path: str, json: Any = None, as_: tuple[str, str] | None = LEAD,
                 status: int | tuple[int, ...] = (200, 201, 202)) -> Any:
        response = await (self.get(path, as_) if method == "get" else getattr(self, method)(path, json, as_))
        expected = (status,) if isinstance(status, int) else status
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def channel(self, kind: str, config: dict[str, Any], deal_id: str | None = "deal-1",
                      name: str | None = None) -> dict[str, Any]:
        body = {"kind": kind, "name": name or f"{kind} of {deal_id}", "config": config}
        if deal_id:
            body["deal_id"] = deal_id
        return await self.ok("post", "/channels", body, status=201)

    async def webhook(self, path: str, body: bytes | dict, headers: dict[str, str] | None = None,
                      method: str = "post"):
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        return await getattr(self.client, method)(path, content=raw,
                                                  headers={"Content-Type": "application/json", **(headers or {})})

    async def instagram(self, body: dict | bytes, signature: str | None = "auto"):
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        headers = {} if signature is None else {
            "X-Hub-Signature-256": meta_signature(raw) if signature == "auto" else signature}
        return await self.webhook("/webhooks/instagram", raw, headers)

    def in_app(self, fn: Any, *args: Any) -> Any:
        return self.client.blocking_portal.call(fn, *args)

    async def process(self) -> int:
        return self.in_app(self.runtime.state["processor"].run_due)

    async def send(self) -> int:
        return self.in_app(self.runtime.state["sender"].run_due)

    async def fetch(self) -> int:
        """One round of the file fetcher (inbound attachments)."""
        return self.in_app(self.runtime.state["fetcher"].run_due)

    async def count(self, model: Any) -> int:
        async def read() -> int:
            async with self.runtime.db.transaction() as session:
                return (await session.execute(select(func.count()).select_from(model))).scalar_one()

        return self.in_app(read)

    async def rows(self, model: Any) -> list[Any]:
        async def read() -> list[Any]:
            async with self.runtime.db.transaction() as session:
                return list((await session.execute(select(model))).scalars())

        return self.in_app(read)

    async def events(self, subject: str | None = None) -> list[Any]:
        rows = sorted(await self.rows(OutboxRow), key=lambda r: r.id)
        return [decode(r.subject, r.payload) for r in rows if subject is None or r.subject == subject]

    async def conversations(self, as_: tuple[str, str] | None = LEAD, **params: Any) -> list[dict[str, Any]]:
        response = await self.get("/conversations", as_, **params)
        assert response.status_code == 200, response.text
        return response.json()


def channel_settings(stand_url: str = "http://127.0.0.1:1") -> ChannelSettings:
    return ChannelSettings(meta_app_secret=APP_SECRET, meta_verify_token=VERIFY_TOKEN,
                           instagram_graph_url=f"{stand_url}/graph", telegram_api_url=f"{stand_url}/tg",
                           vk_api_url=f"{stand_url}/vk/method", public_url="https://zabota.example",
                           http_timeout_seconds=5.0,
                           file_hosts=("127.0.0.1", "localhost"))   # the stand-ins serve the VK/IG file URLs


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture(autouse=True)
def _var_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ZABOTA_VAR_DIR", str(tmp_path / "var"))


async def _api(url: str, clock: FixedClock, stand_url: str, **channels: Any) -> AsyncIterator[Api]:
    """`channels`: ChannelSettings fields other than the stand-in's (e.g. `mail_ca_file`)."""
    app = create_app(settings=make_settings("engagement", database_url=url), clock=clock, background=False,
                     channels=replace(channel_settings(stand_url), **channels))
    async with AsyncTestClient(app) as client:
        yield Api(client, app, clock)


@pytest.fixture
async def api(tmp_path, clock, stand_in) -> AsyncIterator[Api]:
    """SQLite, with the stand-in channel APIs."""
    async for a in _api(f"sqlite+aiosqlite:///{tmp_path / 'engagement.db'}", clock, stand_in.url):
        yield a


@pytest.fixture
async def api_any(database_url, clock, stand_in) -> AsyncIterator[Api]:
    """SQLite and PostgreSQL, with the stand-in channel APIs."""
    async for a in _api(database_url, clock, stand_in.url):
        yield a


@pytest.fixture
def mailserver() -> Iterator[Any]:
    """A real SMTP + IMAP server on loopback (mail-devel), for the e-mail channel and the EN-5 notices."""
    from .mailserver import MailServer

    server = MailServer()
    server.start()
    yield server
    server.stop()
