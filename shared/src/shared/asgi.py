"""Plain-ASGI helpers for the webhook fronts (engagement.ingest, gateway.webhook_front): the hot path that
answers the channels' webhooks without the framework reads a body and sends a short answer itself."""

from __future__ import annotations

from typing import Any


class BodyTooLarge(Exception):
    """The request body passed the limit (answer 413)."""


class Disconnected(Exception):
    """The client went away before its body was read (nothing to answer)."""


async def read_body(receive: Any, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_answer(send: Any, status: int, body: bytes,
                      content_type: bytes = b"text/plain; charset=utf-8") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})
