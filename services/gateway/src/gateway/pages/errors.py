"""The styled "page not found" (issue 7 §4): a mistyped URL gets the error page in the staff's
language, with the menu, instead of raw JSON. `/api/…`, `/webhooks/…`, `/static/…` and `/health/…`
keep their JSON (or plain) errors: they are not pages.

Litestar answers a path no route matches before any middleware runs, so there would be no session
and no language to render a page with; this catch-all route sits behind the session middleware and the
page guard like every page, and more specific routes always win over it.
"""

from __future__ import annotations

from litestar import Request, Response, route
from litestar.enums import HttpMethod
from litestar.exceptions import NotFoundException

from gateway.i18n import _
from gateway.rendering import page
from gateway.roles import PUBLIC

NOT_PAGES = ("/api/", "/webhooks/", "/static/", "/health/", "/schema")


def not_found_page(request: Request) -> Response:
    return page(request, "pages/error.html",
                {"title": _("Page not found"),
                 "message": _("There is no page at this address. Check the link or start from the dashboard.")},
                status_code=404, headers={"HX-Retarget": "#content", "HX-Reswap": "innerHTML"})


@route("/{unknown:path}", name="not_found",
       http_method=[HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE],
       opt=PUBLIC)
async def not_found(request: Request) -> Response:
    if request.url.path.startswith(NOT_PAGES):
        return Response({"status_code": 404, "detail": "Not Found"}, status_code=404)
    return not_found_page(request)


def not_found_handler(request: Request, exc: NotFoundException) -> Response:
    """A page handler's own 404 is the styled page; anything that is not a page keeps its JSON."""
    if "web" in request.scope.get("state", {}) and not request.url.path.startswith(NOT_PAGES):
        return not_found_page(request)
    return Response({"status_code": 404, "detail": exc.detail}, status_code=404, headers=exc.headers)


routes = [not_found]
