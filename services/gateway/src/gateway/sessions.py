"""Server-side web sessions, the CSRF token, the request language, and the cookies that carry them.

`WebSessionMiddleware` wraps every page route. It reads the session cookie, loads the session and
its staff member from the gateway database, and leaves a `WebContext` in `request.state.web` that
guards, handlers and templates read. Handlers add cookies to `web.cookies` (login, logout); the
middleware writes them on whatever response goes out, error pages included.

Cookies are HttpOnly and SameSite=Lax, and Secure unless the request is plain http to localhost
(behind a TLS proxy the host is public, so they are Secure there). Served over https (the request's
scheme, or `GATEWAY_PUBLIC_URL` says https), the session and CSRF cookies carry the `__Host-` prefix:
the browser then keeps them only if Secure, Path=/ and without Domain, so no sibling host can plant one.

A session ends when idle for `GATEWAY_SESSION_HOURS`, and in any case `GATEWAY_SESSION_MAX_DAYS` after
sign-in, however active (issue 8 §7).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from litestar.connection import ASGIConnection, Request
from litestar.datastructures import Cookie
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import i18n
from gateway.config import GatewayConfig, gateway_config, served_over_https
from gateway.models import Staff, WebSession

SESSION_COOKIE = "zabota_session"
CSRF_COOKIE = "zabota_csrf"        # anonymous visitors only (the login form); signed-in users use the session's
LANGUAGE_COOKIE = "zabota_lang"    # anonymous visitors only; signed-in users keep it in the session
HOST_PREFIX = "__Host-"           # over https: Secure, Path=/, no Domain, enforced by the browser
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
# A session is renewed at most this often, so browsing does not write the database on every click.
RENEW_INTERVAL = timedelta(minutes=5)


def cookie_name(base: str, https: bool) -> str:
    return HOST_PREFIX + base if https else base


def session_expiry(config: GatewayConfig, created_at: datetime, now: datetime) -> datetime:
    """Idle timeout from now, never past the absolute lifetime from sign-in."""
    return min(now + config.session_idle, created_at + config.session_max_age)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """The staff member of the current request (a plain copy, safe to use after the DB session closed)."""

    id: int
    login: str
    display_name: str
    role: str


@dataclass
class WebContext:
    staff: SignedIn | None
    csrf_token: str
    language: str
    secure: bool
    https: bool = False
    config: GatewayConfig = field(default_factory=GatewayConfig)
    token_hash: str | None = None
    # An anonymous visitor picked a language (switch or cookie): it beats the account's preference at login.
    language_chosen: bool = False
    cookies: list[Cookie] = field(default_factory=list)

    def cookie_key(self, base: str) -> str:
        return cookie_name(base, self.https) if base in (SESSION_COOKIE, CSRF_COOKIE) else base

    def set_cookie(self, key: str, value: str, max_age: int | None = None) -> None:
        self.cookies.append(Cookie(key=self.cookie_key(key), value=value, max_age=max_age, path="/",
                                   httponly=True, samesite="lax", secure=self.secure or self.https))

    def delete_cookie(self, key: str) -> None:
        self.cookies.append(Cookie(key=self.cookie_key(key), value="", max_age=0, expires=0, path="/",
                                   httponly=True, samesite="lax", secure=self.secure or self.https))


def web_context(connection: ASGIConnection) -> WebContext:
    return connection.state.web


def _is_local_http(connection: ASGIConnection) -> bool:
    return connection.url.scheme == "http" and (connection.url.hostname or "") in LOCAL_HOSTS


def _anonymous_csrf_token(nonce: str, secret_key: str) -> str:
    # The token is an HMAC of the cookie's nonce, so someone able to plant a cookie still cannot forge it.
    return hmac.new(secret_key.encode(), f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()


async def start_session(session: AsyncSession, web: WebContext, staff: Staff, now: datetime) -> None:
    """Sign `staff` in: a new session with a new id and CSRF token (never reuse the anonymous ones)."""
    await session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    if web.token_hash:
        await session.execute(delete(WebSession).where(WebSession.token_hash == web.token_hash))
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_hash(token), staff_id=staff.id, csrf_token=secrets.token_urlsafe(32),
                           language=web.language if web.language_chosen else staff.language,
                           created_at=now, expires_at=session_expiry(web.config, now, now)))
    web.set_cookie(SESSION_COOKIE, token)


async def end_session(session: AsyncSession, web: WebContext) -> None:
    if web.token_hash:
        await session.execute(delete(WebSession).where(WebSession.token_hash == web.token_hash))
    web.delete_cookie(SESSION_COOKIE)
    web.staff = None


async def _load(scope: Scope) -> WebContext:
    connection = ASGIConnection(scope)
    runtime = scope["app"].state.runtime
    settings = scope["app"].state.settings
    now = runtime.clock.now()
    cookies = connection.cookies
    switch = i18n.normalize(connection.query_params.get("lang"))
    config = gateway_config(connection)
    web = WebContext(staff=None, csrf_token="", language=i18n.agency_default(),
                     secure=not _is_local_http(connection), https=served_over_https(scope), config=config)

    token = cookies.get(web.cookie_key(SESSION_COOKIE))
    switched = False
    if token:
        async with runtime.db.transaction() as session:
            row = (await session.execute(
                select(WebSession, Staff).join(Staff, Staff.id == WebSession.staff_id)
                .where(WebSession.token_hash == _hash(token)))).first()
            if (row is None or row[0].expires_at <= now or not row[1].active
                    or now - row[0].created_at >= config.session_max_age):
                if row is not None:
                    await session.delete(row[0])
                web.delete_cookie(SESSION_COOKIE)
            else:
                web_session, staff = row
                renewed = session_expiry(config, web_session.created_at, now)
                if renewed - web_session.expires_at >= RENEW_INTERVAL:
                    web_session.expires_at = renewed
                if switch and switch != web_session.language:
                    # remembered for the person, not only this session: their next sign-in opens in it
                    web_session.language = staff.language = switch
                    switched = True
                web.staff = SignedIn(staff.id, staff.login, staff.display_name, staff.role)
                web.token_hash = web_session.token_hash
                web.csrf_token = web_session.csrf_token
                web.language = web_session.language
        if switched:   # committed: their group-SOP reminders follow
            from gateway import rosters  # here: rosters → service_client → this module

            rosters.wake(runtime.state)

    if web.staff is None:
        nonce = cookies.get(web.cookie_key(CSRF_COOKIE)) or ""
        if len(nonce) < 20:
            nonce = secrets.token_urlsafe(24)
            web.set_cookie(CSRF_COOKIE, nonce)
        web.csrf_token = _anonymous_csrf_token(nonce, settings.secret_key)
        chosen = i18n.normalize(cookies.get(LANGUAGE_COOKIE))
        web.language = chosen or i18n.agency_default()
        web.language_chosen = chosen is not None
        if switch and switch != chosen:
            web.language, web.language_chosen = switch, True
            web.set_cookie(LANGUAGE_COOKIE, switch, max_age=365 * 24 * 3600)
    return web


class WebSessionMiddleware:
    """Loads the `WebContext` of a page request and activates its language (see module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        web = await _load(scope)
        scope.setdefault("state", {})["web"] = web

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start" and web.cookies:
                headers = list(message.get("headers") or [])
                headers += [cookie.to_encoded_header() for cookie in web.cookies]
                message = {**message, "headers": headers}  # type: ignore[typeddict-item]
            await send(message)

        token = i18n.activate(web.language)
        try:
            await self.app(scope, receive, send_with_cookies)
        finally:
            i18n.deactivate(token)


def current_request_is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
