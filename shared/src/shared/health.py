"""Health checks: live = the process answers; ready = its database and NATS both answer (else 503)."""

from __future__ import annotations

from litestar import Request, Response, get


@get("/health/live", sync_to_thread=False, include_in_schema=False)
def live() -> dict[str, str]:
    return {"status": "live"}


@get("/health/ready", include_in_schema=False)
async def ready(request: Request) -> Response[dict]:
    runtime = request.app.state.runtime
    checks = {"database": await runtime.db.ping(), "nats": runtime.bus.is_connected if runtime.bus else True}
    ok = all(checks.values()) and not runtime.stopping
    return Response({"status": "ready" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


health_routes = [live, ready]
