"""The `clients` service: `create_app()` assembles its routes, consumers and timers on the shared runtime.

Timers (kind → handler): `clients.deadline` (CAL-3 breach at the due time), `clients.renewal_task`
(CL-11), `clients.auto_loss` (CL-13), `clients.money_back` (CL-15 / PAY-5), `clients.import` (CSV
import chunks). Consumes `content.post.published.v1` (CL-9).
"""

from __future__ import annotations

from litestar import Litestar
from shared.clock import Clock
from shared.service import Runtime, ServiceSpec, create_service_app
from shared.settings import Settings

from clients import controllers, handlers, imports, services
from clients.models import Base


def _timers(runtime: Runtime) -> dict:
    def make_ctx(session) -> services.Ctx:
        return services.Ctx(session, runtime.clock, runtime.settings, services.SYSTEM, runtime.scheduler.handlers)

    return {**services.timer_handlers(make_ctx), "clients.import": imports.import_handler(make_ctx)}


def spec() -> ServiceSpec:
    return ServiceSpec(name="clients", metadata=Base.metadata, api_routes=controllers.api_routes,
                       public_routes=controllers.public_routes, timers=_timers,
                       subscriptions=handlers.subscriptions)


def create_app(settings: Settings | None = None, clock: Clock | None = None, background: bool = True) -> Litestar:
    return create_service_app(spec(), settings=settings, clock=clock, background=background)
