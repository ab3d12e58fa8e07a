"""Sign in and sign out."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect
from shared.service import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.i18n import _
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
        staff = await authenticate(session, login, password)
        if staff is None:
            # The same words whether the login exists or not.
            errors["form"] = _("Wrong login or password.")
    if staff is None:
        return page(request, "pages/login.html", {"next": next_url, "login": login, "errors": errors},
                    block="login_form", status_code=422)
    await start_session(session, request.state.web, staff, runtime.clock.now())
    return redirect(request, next_url)


@post("/logout", name="logout", opt=allow(ALL_STAFF))
async def logout(request: Request, session: NamedDependency[AsyncSession]) -> Response:
    await end_session(session, request.state.web)
    return redirect(request, "/login")


routes = [login_page, login_submit, logout]
