"""The `content` service: `create_app()` assembles its routes, consumers and timers on the shared runtime.

Timers (kind → handler): `content.deadline` (CO-3 breach at the due time), `content.cadence_check` (CO-5,
daily at the check time; each schedules the next day's), `content.publish` (automatic publishing of a
scheduled item through the Instagram Content Publishing API, publishing.py), `content.insights` (CO-7:
weekly figures from the Insights API for connected accounts, insights.py). Consumes the clients events
that build its accounts read model (`handlers.py`); emits plan, deadline and publication events.
"""

from __future__ import annotations

from litestar import Litestar
from shared.clock import Clock
from shared.service import Runtime, ServiceSpec, create_service_app
from shared.settings import Settings

from content import cadence, controllers, handlers, insights, instagram_routes, publishing, services
from content.models import Base


def _timers(runtime: Runtime) -> dict:
    def make_ctx(session) -> services.Ctx:
        return services.Ctx(session, runtime.clock, runtime.settings, services.SYSTEM, runtime.scheduler.handlers)

    return {**services.timer_handlers(make_ctx), **cadence.timer_handlers(make_ctx),
            **publishing.timer_handlers(make_ctx), **insights.timer_handlers(make_ctx)}


async def schedule_daily_check(rt: Runtime) -> None:
    """CO-5: the daily missed-cadence check is a durable timer; today's is scheduled at start (once)."""
    async with rt.db.transaction() as session:
        await cadence.start_daily_check(services.Ctx(session, rt.clock, rt.settings, services.SYSTEM))


def spec() -> ServiceSpec:
    return ServiceSpec(name="content", metadata=Base.metadata,
                       api_routes=[*controllers.api_routes, *instagram_routes.api_routes],
                       public_routes=[*controllers.public_routes, *instagram_routes.public_routes], timers=_timers,
                       subscriptions=handlers.subscriptions, on_startup=[schedule_daily_check])


def create_app(settings: Settings | None = None, clock: Clock | None = None, background: bool = True) -> Litestar:
    return create_service_app(spec(), settings=settings, clock=clock, background=background)
