"""The webhook hot path (issue 11 benchmark: ≥ 2,000 req/s, p99 ≤ 50 ms, verify → durable → 200).

**Group commit.** `DeliveryWriter.store()` queues the raw delivery and waits; one flusher task per process
writes everything queued so far in ONE transaction (one statement: PostgreSQL `INSERT … SELECT FROM unnest(…)
ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key`; SQLite a multi-row `INSERT … ON CONFLICT DO NOTHING
RETURNING`), commits, and only then answers each waiting request: a 200 is never sent before ITS row is durable.
There is no timed linger: the first delivery is written at once (after one turn of the event loop, so requests
already parsed join it), and while a batch is being committed the next ones gather behind it — at low rates the
latency is one commit, under load a batch takes hundreds of rows per commit. If the batch's transaction fails,
each request of THAT batch gets `StoreFailed` and answers 503 (the channel retries; nothing half-written); the
next batch tries again. A redelivery is still one row (the unique `dedupe_key`); the same key twice in one batch
is written once, and only its first request is "new".

**Webhook front.** `WebhookFront` wraps the Litestar app as plain ASGI: `POST /webhooks/instagram`,
`/webhooks/telegram/{id}` and `/webhooks/vk/{id}` are answered by the same functions the Litestar routes call
(`inbound.*_answer`), without the framework's routing, dependency injection, OpenTelemetry span and metrics
middleware per request (together most of a request's CPU). Everything else (the handshake `GET`, the API,
health, metrics) goes to Litestar unchanged. `python -m engagement` serves the wrapped app; tests of the routes
run against the plain app and the front's own test runs the same checks through it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from shared.asgi import BodyTooLarge, Disconnected, read_body, send_answer
from shared.clock import Clock
from shared.db import Database
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from engagement.models import Delivery

log = logging.getLogger(__name__)

MAX_BATCH = 1000

PG_INSERT = text(
    "INSERT INTO deliveries (kind, channel_id, dedupe_key, body, received_at, next_attempt_at, attempts, outcome) "
    "SELECT k, c, d, b, r, r, 0, '' FROM unnest(CAST(:kinds AS varchar[]), CAST(:channels AS varchar[]), "
    "CAST(:keys AS varchar[]), CAST(:bodies AS bytea[]), CAST(:received AS timestamptz[])) AS t(k, c, d, b, r) "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key"
).bindparams(bindparam("kinds"), bindparam("channels"), bindparam("keys"), bindparam("bodies"),
             bindparam("received"))


class StoreFailed(Exception):
    """The batch holding this delivery could not be committed: answer 503 so the channel retries."""


Row = tuple[str, str | None, str, bytes, datetime]


class DeliveryWriter:
    def __init__(self, db: Database, clock: Clock, on_new: Callable[[], None] | None = None,
                 max_batch: int = MAX_BATCH) -> None:
        self.db, self.clock, self.on_new, self.max_batch = db, clock, on_new, max_batch
        self._queue: list[tuple[Row, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0   # committed batches (for tests and the benchmark's curiosity)

    async def store(self, *, kind: str, channel_id: str | None, dedupe_key: str, body: bytes) -> bool:
        """Queue the delivery, wait until its batch is committed; True if it was new. Raises StoreFailed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(((kind, channel_id, dedupe_key[:200], body, self.clock.now()), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        # shield: a caller that goes away (client disconnect) does not cancel the batch of the others
        return await asyncio.shield(future)

    async def _flush_all(self) -> None:
        while self._queue:
            await asyncio.sleep(0)   # requests already runnable join this batch
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            first: dict[str, Row] = {}
            for row, _ in batch:
                first.setdefault(row[2], row)
            try:
                inserted = await self._write(list(first.values()))
            except Exception as exc:  # the whole batch was rolled back: each of its requests answers 503
                log.warning("delivery batch of %d not stored: %s", len(batch), exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreFailed(str(exc)))
                continue
            self.batches += 1
            answered: set[str] = set()
            for row, future in batch:
                key = row[2]
                new = key in inserted and key not in answered
                answered.add(key)
                if not future.done():
                    future.set_result(new)
            if inserted and self.on_new is not None:
                self.on_new()

    async def _write(self, rows: list[Row]) -> set[str]:
        if self.db.dialect == "postgresql":
            async with self.db.engine.begin() as conn:
                result = await conn.execute(PG_INSERT, {
                    "kinds": [r[0] for r in rows], "channels": [r[1] for r in rows], "keys": [r[2] for r in rows],
                    "bodies": [r[3] for r in rows], "received": [r[4] for r in rows]})
                return set(result.scalars())
        statement = sqlite_insert(Delivery.__table__).values([
            {"kind": r[0], "channel_id": r[1], "dedupe_key": r[2], "body": r[3], "received_at": r[4],
             "next_attempt_at": r[4], "attempts": 0, "outcome": ""} for r in rows
        ]).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Delivery.__table__.c.dedupe_key)
        async with self.db.transaction() as session:   # the process's SQLite writer queue
            return set((await session.execute(statement)).scalars())


# ---------------------------------------------------------------- the ASGI front

Answer = Callable[[Any, str | None, Callable[[str], str | None], bytes], Awaitable[tuple[int, str]]]


class WebhookFront:
    """Plain-ASGI answers for the webhook POSTs (see the module docstring); the rest goes to `app`."""

    def __init__(self, app: Any) -> None:
        from engagement import inbound

        self.app = app
        self.state = app.state
        self.max_body = getattr(app, "request_max_body_size", None) or 10_000_000
        self.routes: dict[str, tuple[Answer, bool]] = {
            "instagram": (inbound.instagram_answer, False),
            "telegram": (inbound.telegram_answer, True),
            "vk": (inbound.vk_answer, True),
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith("/webhooks/"):
            parts = scope["path"][len("/webhooks/"):].split("/")
            route = self.routes.get(parts[0])
            if route is not None and len(parts) == (2 if route[1] else 1) and all(parts):
                await self._answer(route[0], parts[1] if route[1] else None, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, answer: Answer, channel_id: str | None, scope: dict[str, Any], receive: Any,
                      send: Any) -> None:
        try:
            raw = await read_body(receive, self.max_body)
        except Disconnected:
            return
        except BodyTooLarge:
            await send_answer(send, 413, b"Request Entity Too Large")
            return
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        try:
            status, body = await answer(self.state, channel_id, headers.get, raw)
        except (DBAPIError, OSError) as exc:   # the database is away (reading the channel): the channel retries
            log.warning("webhook %s not stored: %s", scope["path"], exc)
            status, body = 503, "not stored, try again"
        except Exception:
            log.exception("webhook %s failed", scope["path"])
            status, body = 500, "Internal Server Error"
        await send_answer(send, status, body.encode())
