"""The `content` service: `create_app()` assembles its routes, consumers and timers on the shared runtime."""

from __future__ import annotations

from litestar import Litestar
from shared.clock import Clock
from shared.service import ServiceSpec, create_service_app
from shared.settings import Settings

from content.models import Base


def spec() -> ServiceSpec:
    return ServiceSpec(name="content", metadata=Base.metadata)


def create_app(settings: Settings | None = None, clock: Clock | None = None, background: bool = True) -> Litestar:
    return create_service_app(spec(), settings=settings, clock=clock, background=background)
