"""A small real Litestar app standing in for another service (served by uvicorn in the tests)."""

from __future__ import annotations

import hashlib

from litestar import Litestar, Request, Response, get, route
from litestar.enums import HttpMethod
from litestar.response import Stream

ALL = [HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE]


async def _echo(request: Request) -> dict:
    body = await request.body()
    return {
        "method": request.method,
        "raw_path": request.scope["raw_path"].decode(),
        "query": request.scope["query_string"].decode(),
        "headers": {k: v for k, v in request.headers.items()},
        "body_size": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_text": body[:200].decode("utf-8", "replace"),
    }


@route("/api/clients/echo/{rest:path}", http_method=ALL, request_max_body_size=None, status_code=200)
async def api_echo(request: Request) -> dict:
    return await _echo(request)


@route("/webhooks/{rest:path}", http_method=ALL, request_max_body_size=None, status_code=200)
async def webhook_echo(request: Request) -> dict:
    return await _echo(request)


@get("/api/clients/teapot")
async def teapot() -> Response:
    return Response(b"short and stout", status_code=418, media_type="text/plain")


@route("/api/clients/invalid", http_method=[HttpMethod.POST], status_code=422)
async def invalid() -> Response:
    return Response({"detail": "invalid request", "errors": [{"field": "client.phone", "message": "bad phone"}]},
                    status_code=422)


@get("/api/clients/empty", status_code=204)
async def empty() -> None:
    return None


@get("/api/clients/download")
async def download() -> Stream:
    async def chunks():
        for i in range(64):
            yield bytes([i % 256]) * 65536   # 4 MiB in 64 KiB chunks
    return Stream(chunks(), media_type="application/octet-stream",
                  headers={"content-disposition": 'attachment; filename="export.bin"'})


@get("/api/clients/paged")
async def paged() -> Response:
    return Response([1, 2], headers={"X-Total-Count": "7"})


@get("/api/clients/boom")
async def boom() -> Response:
    return Response({"detail": "internal"}, status_code=500)


@get("/health/ready")
async def ready() -> dict:
    return {"status": "ready"}


def create_upstream() -> Litestar:
    return Litestar([api_echo, webhook_echo, teapot, invalid, empty, download, paged, boom, ready])
