"""Who may open a page (DESIGN 8): sign-in, CSRF on every unsafe request, role checks.

`page_guard` sits on the router of all pages. For each request it
1. sends an anonymous visitor of a non-public page to /login,
2. checks the CSRF token of every unsafe request (header `X-CSRF-Token`, which htmx sends from
   `hx-headers` on <body>, or the form field `_csrf` for plain forms),
3. admits only the roles the route declares in its `opt` (see gateway.roles.allow).
"""

from __future__ import annotations

import hmac
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect

from gateway.i18n import _
from gateway.messages import say_item
from gateway.rendering import page
from gateway.roles import allowed_roles
from gateway.service_client import ServiceError, ServiceUnavailable

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "_csrf"


class LoginRequired(Exception):
    pass


class AccessDenied(Exception):
    pass


class CsrfFailed(Exception):
    pass


async def page_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    web = connection.state.web
    public = handler.opt.get("public") is True
    if not public and web.staff is None:
        raise LoginRequired()
    # A public form that is embedded on other sites checks a signed token of its own (gateway.pages.webform).
    if connection.method not in SAFE_METHODS and handler.opt.get("own_csrf") is not True:
        await _check_csrf(connection, web.csrf_token)
    if not public and web.staff.role not in allowed_roles(handler.opt):
        raise AccessDenied()


async def _check_csrf(connection: ASGIConnection, expected: str) -> None:
    sent = connection.headers.get(CSRF_HEADER)
    if not sent and isinstance(connection, Request):
        # Reading the form here is cached: the handler gets the same parsed form.
        sent = (await connection.form()).get(CSRF_FIELD)
    if not sent or not expected or not hmac.compare_digest(str(sent), expected):
        raise CsrfFailed()


# ------------------------------------------------------------------ what the user sees instead

def _error_page(request: Request, status_code: int, title: str, message: str, **extra: object) -> Response:
    # For htmx, the explanation replaces the main area, wherever the request meant to swap.
    headers = {"HX-Retarget": "#content", "HX-Reswap": "innerHTML"}
    return page(request, "pages/error.html", {"title": title, "message": message, **extra},
                status_code=status_code, headers=headers)


def login_required_handler(request: Request, _exc: LoginRequired) -> Response:
    if request.headers.get("hx-request") == "true":
        # Back, after signing in, to the page the person was on — not to the fragment it was refreshing.
        location = "/login?next=" + quote(_page_of_htmx(request), safe="/")
        return Response(b"", status_code=401, headers={"HX-Redirect": location, "Vary": "HX-Request"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect("/login?next=" + quote(target, safe="/"), status_code=303)


def _page_of_htmx(request: Request) -> str:
    """The path (and query) of the page an htmx request came from (its `HX-Current-URL`), else "/"."""
    current = urlsplit(request.headers.get("hx-current-url") or "")
    if not current.path.startswith("/") or current.path.startswith("//"):
        return "/"
    return current.path + (f"?{current.query}" if current.query else "")


def access_denied_handler(request: Request, _exc: AccessDenied) -> Response:
    return _error_page(request, 403, _("No access"), _("Your role does not allow opening this page."))


def csrf_failed_handler(request: Request, _exc: CsrfFailed) -> Response:
    return _error_page(request, 403, _("The form has expired"),
                       _("Reload the page and try again. Nothing was changed."))


def service_unavailable_handler(request: Request, exc: ServiceUnavailable) -> Response:
    return _error_page(request, 503, _("Service unavailable"), "", unavailable_service=exc.service)


def service_error_handler(request: Request, exc: ServiceError) -> Response:
    """A refusal no page handled itself: its coded items in the reader's language, else the service's words."""
    status = exc.status_code if exc.status_code in (400, 403, 404, 409, 422) else 400
    said = " ".join(say_item(item) for item in exc.errors if item.get("code"))
    return _error_page(request, status, _("The request was refused"), said or exc.detail)


page_exception_handlers = {
    LoginRequired: login_required_handler,
    AccessDenied: access_denied_handler,
    CsrfFailed: csrf_failed_handler,
    ServiceUnavailable: service_unavailable_handler,
    ServiceError: service_error_handler,
}
