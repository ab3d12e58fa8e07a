"""System status: whether each service answers. Also the working example of calling services from a page."""

from __future__ import annotations

import asyncio

from litestar import Request, Response, get
from litestar.di import NamedDependency
from shared.service import Runtime
from shared.settings import SERVICES

from gateway.rendering import page
from gateway.roles import LEAD, allow
from gateway.service_client import ServiceClient


@get("/status", name="status", opt=allow(LEAD))
async def status(request: Request, services: NamedDependency[ServiceClient], runtime: NamedDependency[Runtime]) -> Response:
    ready = await asyncio.gather(*(services.ready(name) for name in SERVICES))
    return page(request, "pages/status.html",
                {"services": list(zip(SERVICES, ready, strict=True)), "checked_at": runtime.clock.now()})


routes = [status]
