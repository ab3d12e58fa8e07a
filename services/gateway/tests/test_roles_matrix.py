"""The role × route matrix (DESIGN 8): every page route declares its roles, and the guard enforces them."""

from __future__ import annotations

import re

from gateway.guards import page_guard
from gateway.roles import ALL_STAFF, allowed_roles
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from .conftest import ROLE_LOGINS, csrf_of, sign_in


def page_routes(app: Litestar) -> list[tuple[str, str, dict]]:
    """(method, path, opt) of every handler behind the page guard."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if page_guard not in handler.resolve_guards():
                continue
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                found.append((method, route.path, handler.opt))
    # Sign-out last: it ends the session the walk runs in.
    return sorted(found, key=lambda r: (r[1] == "/logout", r[1], r[0]))


def test_every_page_route_declares_who_may_open_it(app: Litestar) -> None:
    routes = page_routes(app)
    assert {(m, p) for m, p, _ in routes} >= {("GET", "/"), ("GET", "/login"), ("POST", "/login"),
                                               ("POST", "/logout"), ("GET", "/staff"), ("POST", "/staff"),
                                               ("GET", "/status")}
    for method, path, opt in routes:
        assert opt.get("public") is True or allowed_roles(opt), f"{method} {path} declares no roles"
        assert allowed_roles(opt) <= ALL_STAFF


def test_pages_are_not_reachable_around_the_guard(app: Litestar) -> None:
    """Everything that is not a page, static file, health check, metrics or API routing is guarded."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(("/static", "/health", "/api/", "/webhooks/",
                                                                      "/schema", "/metrics")):
            continue
        for handler in route.route_handlers:
            assert page_guard in handler.resolve_guards(), route.path


# Sample values for path parameters; `{manager}` is the signed-in login (a manager's own statement).
SAMPLE_PARAMS = {"month": "2026-01"}


def concrete(path: str, login: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", lambda m: SAMPLE_PARAMS.get(m.group(1), login if m.group(1) == "manager"
                                                                   else "sample-id"), path)


async def test_role_route_matrix(app: Litestar, client: AsyncTestClient) -> None:
    """The other services are down here: a page the role may open answers, or says the service it needs
    is unavailable (503 with the explanation) — never 403, never a sign-in redirect."""
    routes = [(m, p, opt) for m, p, opt in page_routes(app) if not opt.get("public")]

    # Anonymous: every protected page sends you to sign in, whatever the method.
    await client.get("/login")
    for method, path, _opt in routes:
        response = await client.request(method, concrete(path, "anonymous"), follow_redirects=False)
        assert response.status_code == 303, (method, path)
        assert response.headers["location"].startswith("/login?next="), (method, path)

    for role, login in ROLE_LOGINS.items():
        client.cookies.clear()
        token = await sign_in(client, login)
        for method, path, opt in routes:
            data = {"_csrf": token} if method != "GET" else None
            response = await client.request(method, concrete(path, login), data=data, follow_redirects=False)
            if role in allowed_roles(opt):
                # Allowed: the page itself answers (a form posted empty says what is missing), or
                # explains that the service behind it is down.
                assert response.status_code in (200, 303, 422, 503), (role, method, path, response.status_code)
                if response.status_code == 503:
                    assert 'class="unavailable"' in response.text, (role, method, path)
                assert not response.headers.get("location", "").startswith("/login?"), (role, method, path)
            else:
                assert response.status_code == 403, (role, method, path, response.status_code)


async def test_navigation_shows_only_what_the_role_may_open(client: AsyncTestClient) -> None:
    page = await sign_in_and_get(client, "lead", "/?lang=en")
    assert 'href="/staff"' in page and 'href="/status"' in page
    client.cookies.clear()
    page = await sign_in_and_get(client, "manager1", "/?lang=en")
    assert 'href="/"' in page and 'href="/staff"' not in page and 'href="/status"' not in page


async def sign_in_and_get(client: AsyncTestClient, login: str, path: str) -> str:
    await sign_in(client, login)
    response = await client.get(path)
    assert response.status_code == 200
    assert csrf_of(response.text)
    return response.text
