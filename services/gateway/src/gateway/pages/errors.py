"""The styled "page not found" (issue 7 §4): a mistyped URL gets the error page in the staff's
language, with the menu, instead of raw JSON. `/api/…`, `/webhooks/…`, `/static/…`, `/health/…` and
`/schema` keep their JSON errors: they are not pages.

Litestar answers a path no route matches before any middleware has run, so there is no session and
no language yet, and exception handlers are synchronous. The handler therefore answers with a
response that, when it is sent, first runs the session middleware (load the session, activate the
language, write its cookies) and only then renders the page.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import NotFoundException
from litestar.types import Receive, Scope, Send

from gateway.i18n import _
from gateway.rendering import page
from gateway.sessions import WebSessionMiddleware

NOT_PAGES = ("/api/", "/webhooks/", "/static/", "/health/", "/schema")


def not_found_page(request: Request) -> Response:
    return page(request, "pages/error.html",
                {"title": _("Page not found"),
                 "message": _("There is no page at this address. Check the link or start from the dashboard.")},
                status_code=404, headers={"HX-Retarget": "#content", "HX-Reswap": "innerHTML"})


class _PageAfterSession(Response):
    """Renders `not_found_page` once the session middleware has loaded the visitor's session."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=404)

    def to_asgi_response(self, app: Any, request: Request, **_kwargs: Any):  # type: ignore[override]
        async def render(scope: Scope, receive: Receive, send: Send) -> None:
            inner = Request(scope, receive, send)
            await not_found_page(inner).to_asgi_response(app=None, request=inner)(scope, receive, send)

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            await WebSessionMiddleware(render)(scope, receive, send)

        return respond


def not_found_handler(request: Request, exc: NotFoundException) -> Response:
    path = request.url.path
    if path.startswith(NOT_PAGES) or path in ("/api", "/webhooks", "/static", "/health"):
        return Response({"status_code": 404, "detail": exc.detail}, status_code=404, headers=exc.headers)
    if "web" in request.scope.get("state", {}):   # a page handler's own 404: the session is loaded
        return not_found_page(request)
    return _PageAfterSession()
