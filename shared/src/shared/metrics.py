"""`/metrics` in Prometheus text format on every service (issue 14), with prometheus-client.

One registry per app (tests run many apps in one process). What the manifests in
`deploy/components/monitoring` expect, exactly (no `service` label: Prometheus adds the target's):

| metric | type | labels | source |
|---|---|---|---|
| `http_server_duration_seconds` | histogram | `route` (the route template), `status` | the HTTP middleware |
| `zabota_relay_published_total` | counter | | events the outbox relay published (this process) |
| `zabota_outbox_backlog` | gauge | | outbox rows not yet published (database, at scrape) |
| `zabota_outbox_oldest_age_seconds` | gauge | | age of the oldest of them (0 when none) |
| `zabota_consumer_pending` | gauge | `durable` | JetStream consumer info `num_pending`, at scrape |
| `zabota_dead_letters_total` | counter | `consumer` | rows of `dead_letters` per consumer, at scrape |
| `zabota_timer_backlog` | gauge | | timers due and not fired (nor cancelled) |
| `zabota_timer_lateness_seconds` | gauge | | how late the oldest due, unfired timer is (0 when none) |
| `zabota_db_pool_in_use` | gauge | | connections checked out of the SQLAlchemy pool |
| `zabota_ready` | gauge | | 1 when `/health/ready` would answer 200, else 0 |

Scrape-time values reuse the readiness state (`Runtime.readiness`: database and NATS checks, failing loops,
consumer lag, outbox age) plus two small queries (timers, dead letters); a figure that cannot be read (the
database away) is left out of that scrape rather than reported as 0 — `zabota_ready` says 0 then. Nothing
secret is exposed (counts, route templates, durable names); `/metrics` is outside the API guard, the OpenAPI
schema and the tracing. Dead letters are counted from the table (written once per consumer and event), so
the counter survives restarts and is the same on every replica — alert on `increase()`.

The HTTP middleware also names the deal on the request's server span (`zabota.deal_id`): from a `deal_id`
path parameter, else from a JSON response body's top-level `deal_id` (a payment answers with its deal).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from opentelemetry import propagate, trace
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from shared import messages as M
from shared.auth import Actor
from shared.bus import Bus, Outgoing
from shared.errors import Forbidden
from shared.infra import DeadLetter, Timer
from shared.telemetry import DEAL_ID, JOURNEYS, extract_context, messaging_attributes, tracer

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Not measured (scrapes and probes would drown the requests) and not traced.
UNMEASURED_PREFIXES = ("/metrics", "/health/")
_BODY_SNIFF_LIMIT = 64 * 1024


class _Snapshot(Collector):
    """The scrape-time families, computed (async) just before each scrape by `ServiceMetrics.refresh`."""

    def __init__(self) -> None:
        self.families: list[Any] = []

    def collect(self):  # noqa: ANN201 - prometheus-client's protocol
        return list(self.families)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http = Histogram("http_server_duration_seconds", "HTTP request duration by route template and status",
                              ["route", "status"], buckets=HTTP_BUCKETS, registry=self.registry)
        self.relay_published = Counter("zabota_relay_published", "Events the outbox relay published",
                                       registry=self.registry)
        self.snapshot = _Snapshot()
        self.registry.register(self.snapshot)

    async def refresh(self, runtime: Any) -> None:
        from shared.health import is_ready

        families: list[Any] = []
        body = await runtime.readiness()

        def gauge(name: str, doc: str, value: float) -> None:
            families.append(GaugeMetricFamily(name, doc, value=value))

        gauge("zabota_ready", "1 when /health/ready answers 200", 1.0 if is_ready(runtime, body) else 0.0)
        outbox = body.get("outbox") or {}
        if "unsent" in outbox:
            gauge("zabota_outbox_backlog", "Outbox rows not yet published", outbox["unsent"])
            gauge("zabota_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row",
                  outbox["oldest_unsent_age_seconds"])
        pending = GaugeMetricFamily("zabota_consumer_pending", "Messages not yet delivered to the durable consumer",
                                    labels=["durable"])
        for durable, lag in sorted((body.get("consumers") or {}).items()):
            if isinstance(lag, dict) and "pending" in lag:
                pending.add_metric([durable], lag["pending"])
        families.append(pending)
        if body["checks"].get("database"):
            families += await self._from_database(runtime)
        pool = getattr(runtime.db.engine.pool, "checkedout", None)
        gauge("zabota_db_pool_in_use", "Database connections checked out of the pool",
              float(pool()) if callable(pool) else 0.0)
        self.snapshot.families = families

    async def _from_database(self, runtime: Any) -> list[Any]:
        now = runtime.clock.now()
        try:
            async with asyncio.timeout(2), runtime.db.transaction() as session:
                due, oldest = (await session.execute(
                    select(func.count(Timer.id), func.min(Timer.due_at))
                    .where(Timer.fired_at.is_(None), Timer.cancelled_at.is_(None), Timer.due_at <= now))).one()
                letters = dict((await session.execute(
                    select(DeadLetter.consumer, func.count(DeadLetter.id)).group_by(DeadLetter.consumer))).all())
        except Exception:  # the table missing (a service without it) or the database busy: leave them out
            return []
        lateness = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        dead = CounterMetricFamily("zabota_dead_letters", "Messages dead-lettered by a consumer", labels=["consumer"])
        for consumer in sorted({c.name for c in runtime.consumers} | set(letters)):
            dead.add_metric([consumer], letters.get(consumer, 0))
        return [GaugeMetricFamily("zabota_timer_backlog", "Timers due and not fired", value=due),
                GaugeMetricFamily("zabota_timer_lateness_seconds", "How late the oldest due, unfired timer is",
                                  value=round(lateness, 3)),
                dead]

    def render(self) -> bytes:
        return generate_latest(self.registry)


@get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response[bytes]:
    runtime = request.app.state.runtime
    await runtime.metrics.refresh(runtime)
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)


# ------------------------------------------------------------------ HTTP: duration histogram, deal on the span

def http_metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Litestar middleware (inside the OpenTelemetry one, so the server span is current)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(UNMEASURED_PREFIXES):
            await app(scope, receive, send)
            return
        span = trace.get_current_span()
        deal_id = (scope.get("path_params") or {}).get("deal_id")
        if deal_id:
            span.set_attribute(DEAL_ID, str(deal_id))
        state = {"status": 500, "json": False, "named": bool(deal_id)}
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = dict(message.get("headers") or [])
                state["json"] = headers.get(b"content-type", b"").startswith(b"application/json")
            elif message["type"] == "http.response.body" and state["json"] and not state["named"]:
                state["named"] = True   # the first chunk only: a small JSON answer comes in one
                _name_deal_from_body(span, message.get("body", b""))
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            route = scope.get("path_template") or "unmatched"
            runtime = getattr(scope["app"].state, "runtime", None)
            if runtime is not None:
                runtime.metrics.http.labels(route, str(state["status"])).observe(time.perf_counter() - started)

    return middleware


def _name_deal_from_body(span: trace.Span, body: bytes) -> None:
    if not body or len(body) > _BODY_SNIFF_LIMIT or b'"deal_id"' not in body:
        return
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return
    if isinstance(data, dict) and isinstance(data.get("deal_id"), str) and data["deal_id"]:
        span.set_attribute(DEAL_ID, data["deal_id"])


# ------------------------------------------------------------------ NATS publish spans, relay counter

def _deal_of(payload: bytes) -> str | None:
    if b'"deal_id"' not in payload:
        return None
    try:
        data = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return None
    deal_id = data.get("deal_id") if isinstance(data, dict) else None
    return deal_id if isinstance(deal_id, str) and deal_id else None


def trace_publishes(bus: Bus) -> None:
    """Wrap this Bus's `publish_many` (the relay's, dead letters', replays' publishes) with one PRODUCER span
    per message, `publish <subject>`, continuing the trace the message's headers carry (the request that
    wrote the outbox row) and handing the publish span's context on in the message headers, so each
    `process` span is its child. From outside shared.bus, so the bus itself stays free of tracing."""
    original = bus.publish_many

    async def publish_many(messages: Sequence[Outgoing], timeout: float = 5.0) -> None:
        spans, traced = [], []
        for m in messages:
            message_id = (m.headers or {}).get("Nats-Msg-Id")
            parent = extract_context(m.headers)
            span = tracer().start_span(f"publish {m.subject}", context=parent, kind=trace.SpanKind.PRODUCER,
                                       attributes=messaging_attributes(m.subject, message_id, "publish",
                                                                       deal_id=_deal_of(m.payload)))
            headers = dict(m.headers or {})
            propagate.inject(headers, context=trace.set_span_in_context(span, parent))
            spans.append(span)
            traced.append(Outgoing(m.subject, m.payload, headers))
        try:
            await original(traced, timeout)
        except Exception as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
            raise
        finally:
            for span in spans:
                span.end()

    bus.publish_many = publish_many  # type: ignore[method-assign]


def count_relay_publishes(relay: Any, metrics: ServiceMetrics) -> None:
    original = relay.publish_batch

    async def publish_batch(*args: Any, **kwargs: Any) -> int:
        published = await original(*args, **kwargs)
        if published:
            metrics.relay_published.inc(published)
        return published

    relay.publish_batch = publish_batch


# ------------------------------------------------------------------ the journeys of the last hour (ops route)

@get("/ops/journeys")
async def list_journeys(actor: NamedDependency[Actor],
                        window_seconds: Annotated[int, Parameter(ge=60, le=86_400)] = 3600,
                        limit: Annotated[int, Parameter(ge=1, le=200)] = 20) -> list[dict]:
    """This process's slowest deal journeys of the last `window_seconds` (shared.telemetry.JourneyLog):
    `[{trace_id, deal_id, start, end, duration_seconds, steps: [{name, service, start, end,
    duration_seconds}]}]`, times in epoch seconds. Project lead or an integration token only."""
    if actor.role not in ("lead", "integration"):
        raise M.refusal(Forbidden, None, M.LEAD_JOURNEYS)
    return JOURNEYS.slowest(window_seconds, limit)
