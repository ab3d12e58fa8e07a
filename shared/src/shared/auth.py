"""API authentication for the services' JSON APIs (DESIGN 8).

A caller authenticates with `Authorization: Bearer <token>` (one token per integration; the gateway
has its own) or, for payment providers, by signing the raw body:
`X-Zabota-Signature: sha256=<hex HMAC-SHA256 of the body with the webhook secret>`. Neither → 401.
The gateway acts for a signed-in staff member and says who in `X-Zabota-Actor` / `X-Zabota-Role`;
those headers are believed only from a bearer of a token, never from a signature alone.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from litestar.connection import ASGIConnection, Request
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler


@dataclass(frozen=True)
class Actor:
    login: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role not in ("integration", "webhook")


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _tokens(connection: ASGIConnection) -> set[str]:
    settings = connection.app.state.settings
    return {t.strip() for t in settings.api_token.split(",") if t.strip()}


async def api_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard for every API route: a valid bearer token or a valid body signature."""
    authorization = connection.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
        if any(hmac.compare_digest(token, known) for known in _tokens(connection)):
            connection.state.actor = Actor(
                login=connection.headers.get("x-zabota-actor", "api"),
                role=connection.headers.get("x-zabota-role", "integration"),
            )
            return
        raise NotAuthorizedException("invalid bearer token")
    signature = connection.headers.get("x-zabota-signature")
    if signature and isinstance(connection, Request):
        body = await connection.body()
        expected = sign(body, connection.app.state.settings.webhook_secret)
        if hmac.compare_digest(signature.strip(), expected):
            connection.state.actor = Actor(login="webhook", role="webhook")
            return
        raise NotAuthorizedException("invalid X-Zabota-Signature")
    raise NotAuthorizedException("missing Authorization: Bearer <token> or X-Zabota-Signature")


def provide_actor(request: Request) -> Actor:
    return request.state.actor
