"""Staff shown by their full name (issue 9, "people as people see them").

The gateway keeps the staff accounts with their display names; `person(login)` in every template turns
a login the services answer with into that name. The names are read once per request (a small table;
cached for a few seconds per app) by `PeopleMiddleware` on the page router (before the handler's own database
session opens: SQLite transactions queue), and kept
in a context variable the template global reads.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

from litestar import Request
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy import select

from gateway.models import Staff

TTL_SECONDS = 5.0
_people: ContextVar[dict[str, str] | None] = ContextVar("zabota_people", default=None)


async def load_people(state) -> None:
    cached = state.get("people_cache")
    if cached is None or time.monotonic() - cached[0] > TTL_SECONDS:
        # A plain read on its own connection, outside the transaction queue of shared.db (a page's own
        # transaction opens later in the same task and must not find the queue taken).
        async with state.runtime.db.engine.connect() as conn:
            names = {login: name for login, name in await conn.execute(select(Staff.login, Staff.display_name))}
        cached = (time.monotonic(), names)
        state.people_cache = cached
    _people.set(cached[1])


def forget_people(request: Request) -> None:
    """After a staff account changed: the next request reads the names again."""
    request.app.state.people_cache = None


def person(login: str | None) -> str:
    """The staff member's full name; an unknown login is shown as it is, none as a dash."""
    if not login:
        return "—"
    return (_people.get() or {}).get(login) or login


class PeopleMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await load_people(scope["app"].state)
        await self.app(scope, receive, send)
