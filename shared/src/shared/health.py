"""Health checks: live = the process answers; ready = its database and NATS answer and every background
loop can run (else 503, naming the loops that cannot: `failing`).

`/health/ready` also tells how far behind the service is (issue 7 §3):

    {"status": "ready" | "unavailable", "service": "payroll",
     "checks": {"database": true, "nats": true},
     "failing": [],                                   # e.g. ["consumer payroll-clients"]
     "loops": {"consumer payroll-clients": {"state": "running", "error": null, "restarts": 0, "since": "..."},
               "relay": {...}, "scheduler": {...}, "retention": {...}, "nats": {...}},
     "consumers": {"payroll-clients": {"pending": 0, "ack_pending": 0, "redelivered": 0}},
     "outbox": {"unsent": 0, "oldest_unsent_age_seconds": 0.0}}

`consumers` is the lag of each durable from JetStream's consumer info (`pending`: not yet delivered to
it); `outbox` the events written but not yet relayed to NATS. Loop states: see shared.loop.LoopHealth.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get


@get("/health/live", sync_to_thread=False, include_in_schema=False)
def live() -> dict[str, str]:
    return {"status": "live"}


@get("/health/ready", include_in_schema=False)
async def ready(request: Request) -> Response[dict]:
    runtime = request.app.state.runtime
    body = await runtime.readiness()
    ok = is_ready(runtime, body)
    return Response({"status": "ready" if ok else "unavailable", **body}, status_code=200 if ok else 503)


def is_ready(runtime: Any, body: dict[str, Any]) -> bool:
    """Whether /health/ready answers 200 for this readiness body (also `zabota_ready` of /metrics)."""
    return all(body["checks"].values()) and not body["failing"] and not runtime.stopping


health_routes = [live, ready]
