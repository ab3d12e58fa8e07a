"""The staff dashboard (`/`): empty for now; each area adds its widgets here."""

from __future__ import annotations

from litestar import Request, Response, get

from gateway.rendering import page
from gateway.roles import ALL_STAFF, allow


@get("/", name="dashboard", opt=allow(ALL_STAFF))
async def dashboard(request: Request) -> Response:
    return page(request, "pages/dashboard.html")


routes = [dashboard]
