"""API authentication for the services' JSON APIs (DESIGN 8, issue 8 item 1): who may call what.

Three kinds of caller, each with its own credential:

| caller | credential | acts as |
|---|---|---|
| the gateway, for a signed-in staff member | `X-Zabota-Assertion`: a short-lived (60 s) HMAC-signed assertion `{login, role, aud=<service>, exp}` made with `ZABOTA_GATEWAY_SECRET` for one target service | that staff member and role |
| an integration (partner, script) | `Authorization: Bearer <token>`, one of `ZABOTA_API_TOKEN` (`name:token` pairs; a bare token is "api") | role `integration`, login = the token's name |
| a payment provider | `X-Zabota-Signature: sha256=<hex HMAC-SHA256 of the raw body with ZABOTA_WEBHOOK_SECRET>` | role `webhook` |

Only the gateway speaks for staff. A request that carries `X-Zabota-Actor` / `X-Zabota-Role` without a
valid assertion is refused (403, naming the header) instead of being believed or silently downgraded —
so a leaked integration token can neither reveal credentials (CL-8) nor write another person's name into
the audit log. A missing, forged, expired or other-service assertion → 401 with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from litestar.connection import ASGIConnection, Request
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from shared.errors import Forbidden
from shared.settings import Settings, api_tokens
from shared.signing import BadToken, make_token, read_token

ASSERTION_HEADER = "X-Zabota-Assertion"
ASSERTION_PURPOSE = "gateway-staff-assertion"
ASSERTION_TTL = 60  # seconds: one request's worth, with room for clock skew between hosts


@dataclass(frozen=True)
class Actor:
    login: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role not in ("integration", "webhook")


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- the gateway's staff assertion

def make_assertion(login: str, role: str, *, audience: str, secret: str, ttl: float = ASSERTION_TTL,
                   now: float | None = None) -> str:
    """The value of `X-Zabota-Assertion` for one call to `audience` (a service name).

    Wall-clock time, not a service's injectable business clock: this is transport security between
    processes, and a test's fixed clock must not make a fresh assertion look expired."""
    issued = time.time() if now is None else now
    return make_token({"l": login, "r": role, "a": audience}, secret_key=secret, purpose=ASSERTION_PURPOSE,
                      expires_at=datetime.fromtimestamp(issued + ttl, UTC))


def read_assertion(token: str, *, audience: str, secret: str, now: float | None = None) -> Actor:
    """The staff member a genuine, unexpired assertion for this service names; else BadToken (with why)."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    data = read_token(token.strip(), secret_key=secret, purpose=ASSERTION_PURPOSE, now=moment)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k] for k in ("l", "r", "a")):
        raise BadToken("malformed assertion")
    if data["a"] != audience:
        raise BadToken(f"assertion made for the {data['a']} service, not {audience}")
    return Actor(login=data["l"], role=data["r"])


def staff_assertion_headers(login: str, role: str, *, audience: str, secret: str,
                            ttl: float = ASSERTION_TTL) -> dict[str, str]:
    return {ASSERTION_HEADER: make_assertion(login, role, audience=audience, secret=secret, ttl=ttl)}


# ---------------------------------------------------------------- the guard

async def api_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard for every API route: a gateway assertion, a bearer token or a body signature."""
    settings: Settings = connection.app.state.settings
    claimed_login = connection.headers.get("x-zabota-actor")
    claimed_role = connection.headers.get("x-zabota-role")
    assertion = connection.headers.get("x-zabota-assertion")
    if assertion is not None:
        try:
            actor = read_assertion(assertion, audience=settings.service, secret=settings.gateway_secret)
        except BadToken as exc:
            raise NotAuthorizedException(f"invalid {ASSERTION_HEADER}: {exc}") from None
        if (claimed_login is not None and claimed_login != actor.login) or \
                (claimed_role is not None and claimed_role != actor.role):
            raise Forbidden("X-Zabota-Actor / X-Zabota-Role differ from the gateway assertion",
                            field="X-Zabota-Actor" if claimed_login not in (None, actor.login) else "X-Zabota-Role")
        connection.state.actor = actor
        return
    if claimed_login is not None or claimed_role is not None:
        header = "X-Zabota-Role" if claimed_role is not None else "X-Zabota-Actor"
        raise Forbidden(f"{header} is accepted only with a valid gateway assertion ({ASSERTION_HEADER}); "
                        "an integration token or webhook signature acts as itself and may not name a staff member",
                        field=header)
    authorization = connection.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
        name = None
        for known_name, known in api_tokens(settings):
            # compare every token (no early exit), so timing does not tell which prefix matched
            if hmac.compare_digest(token.encode(), known.encode()) and name is None:
                name = known_name
        if name is not None:
            connection.state.actor = Actor(login=name, role="integration")
            return
        raise NotAuthorizedException("invalid bearer token")
    signature = connection.headers.get("x-zabota-signature")
    if signature and isinstance(connection, Request):
        body = await connection.body()
        expected = sign(body, settings.webhook_secret)
        if hmac.compare_digest(signature.strip().encode(), expected.encode()):
            connection.state.actor = Actor(login="webhook", role="webhook")
            return
        raise NotAuthorizedException("invalid X-Zabota-Signature")
    raise NotAuthorizedException(
        f"missing credentials: {ASSERTION_HEADER} (gateway), Authorization: Bearer <token> or X-Zabota-Signature")


def provide_actor(request: Request) -> Actor:
    return request.state.actor
