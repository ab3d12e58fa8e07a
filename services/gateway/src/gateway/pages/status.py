"""System status: whether each service answers, and the messages its consumers gave up on (dead letters),
with a replay button for after the cause is fixed. Also the working example of calling services from a page."""

from __future__ import annotations

import asyncio

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from shared.service import Runtime
from shared.settings import SERVICES

from gateway.rendering import page, redirect
from gateway.roles import LEAD, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable

# Services whose consumers can dead-letter messages (those with a bus).
BUS_SERVICES = SERVICES


@get("/status", name="status", opt=allow(LEAD))
async def status(request: Request, services: NamedDependency[ServiceClient], runtime: NamedDependency[Runtime]) -> Response:
    ready = await asyncio.gather(*(services.ready(name) for name in SERVICES))
    letters = await asyncio.gather(*(dead_letters(services, name) if ok else _none()
                                     for name, ok in zip(SERVICES, ready, strict=True)))
    return page(request, "pages/status.html",
                {"services": list(zip(SERVICES, ready, letters, strict=True)), "checked_at": runtime.clock.now()})


async def _none() -> list:
    return []


async def dead_letters(services: ServiceClient, name: str) -> list[dict]:
    try:
        return await services.get(name, "/ops/dead-letters", params={"limit": 20})
    except (ServiceUnavailable, ServiceError):
        return []


@post("/status/dead-letters/{service:str}/{letter_id:str}/replay", name="replay_dead_letter", opt=allow(LEAD))
async def replay(request: Request, services: NamedDependency[ServiceClient], service: FromPath[str],
                 letter_id: FromPath[str]) -> Response:
    if service not in BUS_SERVICES:
        return Response({"detail": "unknown service", "errors": [{"field": "service", "message": "unknown service"}]},
                        status_code=422)
    await services.post(service, f"/ops/dead-letters/{letter_id}/replay")
    return redirect(request, "/status")


routes = [status, replay]
