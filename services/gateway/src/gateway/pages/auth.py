"""Sign in (throttled: gateway.throttle) and sign out."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect
from shared.service import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import throttle
from gateway.config import gateway_config
from gateway.i18n import _, ngettext
from gateway.rendering import page, redirect, safe_next
from gateway.roles import ALL_STAFF, PUBLIC, allow
from gateway.sessions import end_session, start_session
from gateway.staff import authenticate


@get("/login", name="login", opt=PUBLIC)
async def login_page(request: Request,
                     next_: Annotated[str | None, QueryParameter(name="next")] = None) -> Response:
    if request.state.web.staff is not None:
        return Redirect(safe_next(next_), status_code=303)
    return page(request, "pages/login.html", {"next": safe_next(next_), "login": "", "errors": {}},
                block="login_form")


@post("/login", name="login_submit", opt=PUBLIC)
async def login_submit(request: Request, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> Response:
    form = await request.form()
    login = str(form.get("login", "")).strip()
    password = str(form.get("password", ""))
    next_url = safe_next(form.get("next"))
    errors: dict[str, str] = {}
    if not login:
        errors["login"] = _("Enter your login.")
    if not password:
        errors["password"] = _("Enter your password.")
    staff = None
    if not errors:
        now, config, address = runtime.clock.now(), gateway_config(request), client_address(request)
        # The try counts as a failure before the password is checked, in a transaction of its own, so that
        # a burst of parallel tries is throttled too; a success clears it again.
        async with _own_transaction(runtime, session) as own:
            wait = await throttle.retry_after(own, config, login, address, now)
            if wait is None:
                await throttle.record_failure(own, config, login, address, now)
        if wait is not None:
            minutes = max(1, math.ceil(wait.total_seconds() / 60))
            errors["form"] = ngettext(
                "Too many failed attempts to sign in. Try again in %(num)s minute.",
                "Too many failed attempts to sign in. Try again in %(num)s minutes.", minutes) % {"num": minutes}
            return page(request, "pages/login.html", {"next": next_url, "login": login, "errors": errors},
                        block="login_form", status_code=429,
                        headers={"Retry-After": str(math.ceil(wait.total_seconds()))})
        staff = await authenticate(session, login, password)
        if staff is None:
            # The same words whether the login exists or not.
            errors["form"] = _("Wrong login or password.")
        else:
            await throttle.clear_failures(session, login)
    if staff is None:
        return page(request, "pages/login.html", {"next": next_url, "login": login, "errors": errors},
                    block="login_form", status_code=422)
    await start_session(session, request.state.web, staff, runtime.clock.now())
    return redirect(request, next_url)


@asynccontextmanager
async def _own_transaction(runtime: Runtime, session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """PostgreSQL: a transaction of its own, committed before the password is checked. SQLite: the request's
    transaction — it already holds the process's one write turn (`Database.transaction` queues them), so a
    second transaction here would wait for the request forever (the request's session is opened by
    Litestar's dependency resolution in another task, so it is not recognised as nested), and the
    requests of one process are serial anyway, so a burst of tries is counted as well."""
    if runtime.db.dialect == "sqlite":
        yield session
        await session.flush()
        return
    async with runtime.db.transaction() as own:
        yield own


def client_address(request: Request) -> str:
    """The caller's IP address (uvicorn puts a trusted proxy's X-Forwarded-For here)."""
    return request.client.host if request.client else "unknown"


@post("/logout", name="logout", opt=allow(ALL_STAFF))
async def logout(request: Request, session: NamedDependency[AsyncSession]) -> Response:
    await end_session(session, request.state.web)
    return redirect(request, "/login")


routes = [login_page, login_submit, logout]
