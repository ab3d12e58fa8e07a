"""The service runtime and app factory (DESIGN 1): every service is `create_service_app(spec)`.

The lifespan applies migrations, connects NATS in the background (so /health/live answers and
/health/ready says 503 until it is up), and runs the outbox relay, the timer scheduler and the
durable consumers. On shutdown (SIGTERM through uvicorn: stop accepting, finish in-flight requests)
it stops the consumers and the scheduler, flushes the outbox, drains NATS and closes the database.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from shared import migrate
from shared.auth import api_guard, provide_actor
from shared.bus import Bus
from shared.clock import Clock, SystemClock
from shared.consumer import Consumer, Subscription
from shared.db import Database
from shared.errors import exception_handlers
from shared.health import health_routes
from shared.infra import InfraBase
from shared.ops import ops_routes
from shared.outbox import OutboxRelay
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
        self.bus = Bus(settings.nats_url, f"zabota-{spec.name}") if spec.uses_bus else None
        self.relay = (OutboxRelay(self.db, self.bus, batch=settings.relay_batch,
                                  poll_seconds=settings.relay_poll_seconds, clock=clock) if self.bus else None)
        self.scheduler = Scheduler(self.db, spec.timers(self), clock=clock)
        self.consumers = [Consumer(self.db, self.bus, sub, max_deliver=settings.max_deliver, clock=clock)
                          for sub in spec.subscriptions(self)] if self.bus else []
        self.state: dict[str, Any] = {}
        self.stopping = False
        self._tasks: list[asyncio.Task] = []

    async def start(self, background: bool = True) -> None:
        instrument_engine(self.db.engine)
        if self.spec.create_all:
            async with self.db.engine.begin() as conn:
                await conn.run_sync(InfraBase.metadata.create_all)
                await conn.run_sync(self.spec.metadata.create_all)
        else:
            await migrate.upgrade(self.db, self.spec.name)
        for hook in self.spec.on_startup:
            await hook(self)
        if not background:
            return
        loops: list[Awaitable[None]] = [self.scheduler.run()]
        if self.bus is not None:
            loops += [self.bus.connect(), self.relay.run(), *(c.run() for c in self.consumers)]
        self._tasks = [asyncio.create_task(loop) for loop in loops]

    async def stop(self) -> None:
        self.stopping = True
        for consumer in self.consumers:
            consumer.stop()
        self.scheduler.stop()
        if self.relay is not None:
            self.relay.stop()
        # Let the loops finish the batch in hand, then cancel what still waits.
        await asyncio.sleep(0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
        for consumer in self.consumers:
            await consumer.close()
        if self.bus is not None and self.bus.is_connected:
            with suppress(Exception):
                await self.relay.flush()
            await self.bus.drain()
        await self.db.dispose()


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, rolled back when it raises."""
    async with state.runtime.db.transaction() as session:
        yield session


def provide_runtime(state: State) -> Runtime:
    return state.runtime


def log_config() -> LoggingConfig:
    """Litestar's logs go to the root JSON handler; every server error is logged (not only in debug mode)."""
    return LoggingConfig(configure_root_logger=False, log_exceptions="always", handlers={}, formatters={},
                         loggers={"litestar": {"level": "INFO", "handlers": [], "propagate": True}},
                         exception_logging_handler=_log_server_errors)


def _log_server_errors(logger: logging.Logger, scope: Any, _traceback: list[str]) -> None:
    # Called inside the except block: 4xx (bad input, not signed in, not found) is the caller's business.
    error = sys.exc_info()[1]
    if getattr(error, "status_code", 500) >= 500:
        logger.error("unhandled error on %s %s", scope.get("method", scope["type"]), scope["path"], exc_info=error)


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

    routes: list[Any] = [*health_routes, *spec.public_routes]
    api_routes = [*spec.api_routes, *(ops_routes if spec.uses_bus else [])]
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
        exception_handlers={**exception_handlers, **options.pop("exception_handlers", {})},
        logging_config=options.pop("logging_config", None) or log_config(),
        openapi_config=OpenAPIConfig(title=f"Zabota {spec.name}", version="1.0.0", path="/schema"),
        plugins=[OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=provider,
                                                         exclude=["/health"])), *options.pop("plugins", [])],
        **options,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    return app


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
