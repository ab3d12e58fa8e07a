"""The `payroll` service: `create_app()` assembles its routes, consumers and timers on the shared runtime."""

from __future__ import annotations

from litestar import Litestar
from shared.clock import Clock
from shared.service import Runtime, ServiceSpec, create_service_app
from shared.settings import Settings

from payroll import rule_sets
from payroll.controllers import api_routes
from payroll.handlers import subscriptions
from payroll.models import Base


async def seed_default_rules(rt: Runtime) -> None:
    """The DOMAIN.md defaults as the first rule-set version, once."""
    async with rt.db.transaction() as session:
        await rule_sets.ensure_default_rules(session, rt.clock)


def spec() -> ServiceSpec:
    return ServiceSpec(name="payroll", metadata=Base.metadata, api_routes=api_routes, subscriptions=subscriptions,
                       on_startup=[seed_default_rules])


def create_app(settings: Settings | None = None, clock: Clock | None = None, background: bool = True) -> Litestar:
    return create_service_app(spec(), settings=settings, clock=clock, background=background)
