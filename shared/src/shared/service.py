"""The service runtime and app factory (DESIGN 1): every service is `create_service_app(spec)`.

The lifespan applies migrations, connects NATS in the background (so /health/live answers and
/health/ready says 503 until it is up), and runs the outbox relay, the timer scheduler, the durable
consumers and the retention job — each under a `Supervisor` (shared.loop): an unexpected error is
logged once and the loop restarts with back-off, and a loop that cannot run (restarting, or waiting out
an outage) makes /health/ready 503 with its name (issue 7 §3). On shutdown (SIGTERM through uvicorn:
stop accepting, finish in-flight requests) it stops the loops, flushes the outbox, drains NATS and
closes the database.

Errors (issue 7 §4): a request that meets a database outage answers 503 with Retry-After (one log line
when the outage starts, one when a request commits again); only real server errors (500) are logged
with a traceback — refusals (401, 403, 404, 409, 422, and the gateway's page refusals) are not errors.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import migrate
from shared.agency_calendar import follow_calendar
from shared.auth import api_guard, provide_actor
from shared.bus import Bus
from shared.clock import Clock, SystemClock
from shared.consumer import Consumer, Subscription
from shared.db import Database
from shared.errors import Outage, describe, exception_handlers, is_transient, unavailable_handler
from shared.health import health_routes
from shared.infra import InfraBase, OutboxRow
from shared.loop import LoopHealth, Supervisor
from shared.metrics import (
    ServiceMetrics,
    count_relay_publishes,
    http_metrics_middleware,
    list_journeys,
    metrics_endpoint,
    trace_publishes,
)
from shared.ops import ops_routes
from shared.outbox import OutboxRelay
from shared.retention import RetentionJob
from shared.settings import InsecureSettings, Settings, check_secrets
from shared.telemetry import instrument_engine, setup_logging, setup_tracing
from shared.timers import Scheduler, TimerHandler

log = logging.getLogger(__name__)


@dataclass
class ServiceSpec:
    name: str
    metadata: MetaData
    api_routes: Sequence[Any] = ()          # mounted under /api/<name>, guarded by api_guard
    public_routes: Sequence[Any] = ()       # mounted at /, no API guard (gateway pages, signed links)
    subscriptions: Callable[[Runtime], list[Subscription]] = lambda rt: []
    timers: Callable[[Runtime], dict[str, TimerHandler]] = lambda rt: {}
    on_startup: Sequence[Callable[[Runtime], Awaitable[None]]] = ()
    # Further background loops of the service (name -> coroutine function), supervised like the built-in ones:
    # restarted with back-off after an unexpected error, and named by /health/ready while they cannot run.
    loops: Callable[[Runtime], dict[str, Callable[[], Awaitable[None]]]] = lambda rt: {}
    uses_bus: bool = True
    # Tests of the runtime itself use throwaway specs with no migrations directory: create tables directly.
    create_all: bool = False
    app_options: dict[str, Any] = field(default_factory=dict)


class Runtime:
    """Everything long-lived in one service process."""

    def __init__(self, spec: ServiceSpec, settings: Settings, clock: Clock) -> None:
        self.spec = spec
        self.settings = settings
        self.clock = clock
        self.db = Database(settings.database_url)
        self.bus = Bus(settings.nats_url, f"zabota-{spec.name}", settings.stream_replicas) if spec.uses_bus else None
        self.relay = (OutboxRelay(self.db, self.bus, batch=settings.relay_batch,
                                  poll_seconds=settings.relay_poll_seconds, clock=clock) if self.bus else None)
        # /metrics (issue 14): this app's registry; publish spans and the relay counter hook in from outside.
        self.metrics = ServiceMetrics()
        if self.bus is not None:
            trace_publishes(self.bus)
            count_relay_publishes(self.relay, self.metrics)
        self.scheduler = Scheduler(self.db, spec.timers(self), clock=clock)
        self.consumers = [Consumer(self.db, self.bus, sub, max_deliver=settings.max_deliver, clock=clock,
                                   dead_letter_after=settings.dead_letter_after_seconds,
                                   retention_days=settings.retention_days)
                          for sub in spec.subscriptions(self)] if self.bus else []
        self.retention = RetentionJob(self.db, days=settings.retention_days, batch=settings.retention_batch,
                                      interval_seconds=settings.retention_interval_seconds, clock=clock)
        self.supervisor = Supervisor()
        self.db_outage = Outage(f"{spec.name} database", log)
        self.state: dict[str, Any] = {}
        self.stopping = False

    async def start(self, background: bool = True) -> None:
        instrument_engine(self.db.engine)
        if self.spec.create_all:
            async with self.db.engine.begin() as conn:
                await conn.run_sync(InfraBase.metadata.create_all)
                await conn.run_sync(self.spec.metadata.create_all)
        elif self.settings.migrate_on_start:
            # In a cluster a Job migrates once per release (ZABOTA_MIGRATE_ON_START=0), not every replica at start.
            await migrate.upgrade(self.db, self.spec.name)
        for hook in self.spec.on_startup:
            await hook(self)
        if not background:
            return
        sup = self.supervisor
        sup.start("scheduler", self.scheduler.run,
                  health=_observe_rounds(self.scheduler, "run_due", "scheduler"))
        sup.start("retention", self.retention.run, health=self.retention.health)
        if self.bus is not None:
            sup.start("nats", self._connect_bus, once=True)
            sup.start("relay", self.relay.run, health=_observe_rounds(self.relay, "publish_batch", "relay"))
            for consumer in self.consumers:
                sup.start(f"consumer {consumer.name}", consumer.run, health=consumer.health)
            sup.start("agency calendar", lambda: follow_calendar(self))
        for name, loop in self.spec.loops(self).items():
            sup.start(name, loop)

    async def _connect_bus(self) -> None:
        """Connect to NATS and make sure the streams exist; a retry (after the streams could not be set up)
        closes the connection of the failed try first, so retries do not pile up connections."""
        if self.bus.nc is not None and not self.bus.nc.is_closed:
            with suppress(Exception):
                await self.bus.nc.close()
        await self.bus.connect()

    async def readiness(self) -> dict[str, Any]:
        """The state behind /health/ready: checks, failing loops, consumer lag, outbox age (issue 7 §3)."""
        database = await self.db.ping()
        nats = self.bus.is_connected if self.bus else True
        failing = self.supervisor.failing()
        body: dict[str, Any] = {
            "service": self.spec.name,
            "checks": {"database": database, "nats": nats},
            "failing": failing,
            "loops": {name: health.view() for name, health in self.supervisor.loops.items()},
            "consumers": {},
            "outbox": None,
        }
        if nats and self.consumers:
            lags = await asyncio.gather(*(consumer.lag() for consumer in self.consumers), return_exceptions=True)
            body["consumers"] = {c.name: (lag if isinstance(lag, dict) else {"error": describe(lag)})
                                 for c, lag in zip(self.consumers, lags, strict=True)}
        if database and self.bus is not None:
            body["outbox"] = await self._outbox_state()
        return body

    async def _outbox_state(self) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(2), self.db.transaction() as session:
                oldest, unsent = (await session.execute(
                    select(func.min(OutboxRow.created_at), func.count(OutboxRow.id))
                    .where(OutboxRow.published_at.is_(None)))).one()
        except Exception as exc:
            return {"error": describe(exc)}
        age = (self.clock.now() - oldest).total_seconds() if oldest is not None else 0.0
        return {"unsent": unsent, "oldest_unsent_age_seconds": round(max(age, 0.0), 3)}

    async def stop(self) -> None:
        self.stopping = True
        self.supervisor.stopping = True  # loops that end from here on are not restarted (nor reported as crashed)
        for consumer in self.consumers:
            consumer.stop()
        self.scheduler.stop()
        self.retention.stop()
        if self.relay is not None:
            self.relay.stop()
        # Let the loops finish the batch in hand, then cancel what still waits.
        await self.supervisor.stop(timeout=5)
        for consumer in self.consumers:
            await consumer.close()
        if self.bus is not None and self.bus.is_connected:
            with suppress(Exception):
                await self.relay.flush()
            await self.bus.drain()
        await self.db.dispose()


def _observe_rounds(loop: Any, method: str, name: str) -> LoopHealth:
    """Report a loop's rounds to a LoopHealth by wrapping its round method (for loops that catch their own
    errors and retry, like the outbox relay and the timer scheduler): a round that raises makes it
    `retrying` (readiness 503 naming it), one that succeeds `running`. Wrapped from outside, so the loops'
    own modules need not know about health."""
    health = LoopHealth(name)
    original = getattr(loop, method, None)
    if original is None:
        return health

    async def observed(*args: Any, **kwargs: Any) -> Any:
        try:
            result = await original(*args, **kwargs)
        except Exception as exc:
            health.retrying(describe(exc))
            raise
        health.running()
        return result

    setattr(loop, method, observed)
    return health


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, rolled back when it raises."""
    runtime = state.runtime
    async with runtime.db.transaction() as session:
        yield session
    if runtime.db_outage.active:
        runtime.db_outage.end()


def provide_runtime(state: State) -> Runtime:
    return state.runtime


def log_config() -> LoggingConfig:
    """Litestar's logs go to the root JSON handler; every server error is logged (not only in debug mode)."""
    return LoggingConfig(configure_root_logger=False, log_exceptions="always", handlers={}, formatters={},
                         loggers={"litestar": {"level": "INFO", "handlers": [], "propagate": True}},
                         exception_logging_handler=_log_server_errors)


def _log_server_errors(logger: logging.Logger, scope: Any, _traceback: list[str]) -> None:
    """Litestar calls this for every exception, before its handler: log only an HTTPException that is a
    server error by itself (a 5xx raised on purpose). Every other exception goes to a handler: the handlers
    of refusals (401, 403, 404, 409, 422, the gateway's sign-in and role pages) log nothing, the database
    outage handler logs once per outage, and `internal_error` logs a real bug with its traceback."""
    error = sys.exc_info()[1]
    if isinstance(error, HTTPException) and error.status_code > 500:  # a 500 goes to internal_error, which logs
        logger.error("server error %s on %s %s", error.status_code, scope.get("method", scope["type"]),
                     scope["path"], exc_info=error)


def internal_error(request: Request, exc: Exception) -> Response:
    """Any exception no handler claims: a plain 500 (no internals to the caller), logged with its traceback —
    unless it is the database (or its driver) saying "not now": that is a 503 (see `unavailable_handler`)."""
    if is_transient(exc):
        return unavailable_handler(request, exc)
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response({"status_code": 500, "detail": "Internal Server Error"}, status_code=500)


def create_service_app(spec: ServiceSpec, settings: Settings | None = None, clock: Clock | None = None,
                       background: bool = True) -> Litestar:
    settings = settings or Settings.from_env(spec.name)
    runtime = Runtime(spec, settings, clock or SystemClock())
    provider = setup_tracing(spec.name, settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start(background=background)
        try:
            yield
        finally:
            await runtime.stop()

    routes: list[Any] = [*health_routes, metrics_endpoint, *spec.public_routes]
    api_routes = [*spec.api_routes, *([*ops_routes, list_journeys] if spec.uses_bus else [])]
    if api_routes:
        routes.append(Router(path=f"/api/{spec.name}", route_handlers=api_routes, guards=[api_guard],
                             dependencies={"actor": Provide(provide_actor, sync_to_thread=False)}))
    options = dict(spec.app_options)
    app = Litestar(
        route_handlers=routes,
        lifespan=[lifespan],
        dependencies={
            "session": Provide(provide_session),
            "runtime": Provide(provide_runtime, sync_to_thread=False),
            **options.pop("dependencies", {}),
        },
        exception_handlers={500: internal_error, **exception_handlers, **options.pop("exception_handlers", {})},
        logging_config=options.pop("logging_config", None) or log_config(),
        openapi_config=OpenAPIConfig(title=f"Zabota {spec.name}", version="1.0.0", path="/schema"),
        plugins=[OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=provider,
                                                         exclude=["/health", "/metrics"])),
                 *options.pop("plugins", [])],
        middleware=[http_metrics_middleware, *options.pop("middleware", [])],
        **options,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.db_outage = runtime.db_outage
    return app


def quieter_garbage_collection() -> None:
    """Fewer, cheaper collector pauses in a web process (the webhooks' p99, issue 11): what is alive after
    start-up (modules, mappers, compiled statements) is frozen out of every collection, and the youngest
    generation is collected every 20,000 allocations instead of 700 (a request allocates a few hundred objects).
    Measured with bench/engagement_ingest.py: p99 at 32 connections ~100 ms → ~50 ms."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def serve(service: str, factory: str) -> None:
    """Run one service with uvicorn: `python -m <service>` calls this."""
    import uvicorn

    settings = Settings.from_env(service)
    setup_logging(service)
    try:
        check_secrets(settings)   # issue 8 item 6: no default or short secret outside demo mode
    except InsecureSettings as exc:
        log.critical("%s", exc)
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(factory, factory=True, host=settings.host, port=settings.port, log_config=None,
                timeout_graceful_shutdown=10, access_log=False)
