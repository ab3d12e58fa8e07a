"""System status: whether each service answers and is ready, what its background loops are doing, how far
behind its consumers are (lag per durable) and how old its oldest unsent outbox event is (issue 7 §3); and
the messages its consumers gave up on (dead letters), with a replay button for after the cause is fixed.
Also the working example of calling services from a page.

Slow flows (issue 14): the slowest deal journeys of the last hour, from the services' own timing facts —
each service's `GET /api/<service>/ops/journeys` (its finished journey spans, shared.telemetry.JourneyLog)
and the gateway's own — merged by trace id and measured from the first step's start (the payment request)
to the last step's end (the last consumer's effect); with a link to each journey's trace when
`ZABOTA_TRACE_URL` is set."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from shared.service import Runtime
from shared.settings import SERVICES
from shared.telemetry import JOURNEYS, merge_journeys, trace_url

from gateway.i18n import N_
from gateway.rendering import page, redirect
from gateway.roles import LEAD, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable, service_url

# Services whose consumers can dead-letter messages (those with a bus).
BUS_SERVICES = SERVICES


# What a background loop is doing (shared.loop.LoopHealth states), as the page says it.
LOOP_STATES = {"starting": N_("starting"), "running": N_("works"), "retrying": N_("waiting out an outage"),
               "restarting": N_("restarting after a crash"), "stopped": N_("stopped")}


@get("/status", name="status", opt=allow(LEAD))
async def status(request: Request, services: NamedDependency[ServiceClient], runtime: NamedDependency[Runtime]) -> Response:
    readiness = await asyncio.gather(*(ready_state(services, name) for name in SERVICES))
    letters = await asyncio.gather(*(dead_letters(services, name) if state is not None else _none()
                                     for name, state in zip(SERVICES, readiness, strict=True)))
    journeys = await slowest_journeys(services, [name for name, state in zip(SERVICES, readiness, strict=True)
                                                 if state is not None])
    return page(request, "pages/status.html",
                {"services": list(zip(SERVICES, readiness, letters, strict=True)), "loop_states": LOOP_STATES,
                 "checked_at": runtime.clock.now(), "journeys": journeys})


JOURNEY_WINDOW_SECONDS = 3600
JOURNEYS_SHOWN = 10


async def slowest_journeys(services: ServiceClient, names: list[str]) -> list[dict[str, Any]]:
    """The slowest deal journeys of the last hour across the services that answer (and this gateway)."""
    answers = await asyncio.gather(*(journeys_of(services, name) for name in names))
    parts = [journey for answer in answers for journey in answer]
    parts += JOURNEYS.journeys(JOURNEY_WINDOW_SECONDS)
    shown = []
    for journey in merge_journeys(parts)[:JOURNEYS_SHOWN]:
        shown.append({
            "deal_id": journey["deal_id"],
            "started_at": datetime.fromtimestamp(journey["start"], UTC),
            "duration_seconds": journey["duration_seconds"],
            "steps": [{"service": step.get("service") or "", "name": step.get("name") or "",
                       "duration_seconds": step.get("duration_seconds", 0.0)} for step in journey["steps"]],
            "trace_url": trace_url(journey["deal_id"], journey["trace_id"]),
        })
    return shown


async def journeys_of(services: ServiceClient, name: str) -> list[dict]:
    try:
        answer = await services.get(name, "/ops/journeys",
                                    params={"window_seconds": JOURNEY_WINDOW_SECONDS, "limit": 50})
    except (ServiceUnavailable, ServiceError):
        return []
    return [j for j in answer if isinstance(j, dict)] if isinstance(answer, list) else []


async def ready_state(services: ServiceClient, name: str) -> dict[str, Any] | None:
    """The service's /health/ready body (200 or 503 alike), or None when it does not answer at all."""
    base = service_url(services.settings, name)
    if base is None:
        return None
    try:
        response = await services.http.get(f"{base}/health/ready", timeout=3.0)
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    outbox = body.get("outbox") or {}
    return {
        "ready": response.status_code == 200,
        "checks": body.get("checks") or {},
        "failing": body.get("failing") or [],
        "loops": body.get("loops") or {},
        "consumers": body.get("consumers") or {},
        "outbox": outbox if "unsent" in outbox else None,
    }


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
