"""The gateway's own settings (sessions, sign-in throttling, the public URL), read from the environment.

| variable | default | meaning |
|---|---|---|
| `GATEWAY_PUBLIC_URL` | unset | the URL staff open; `https://…` means served over https (behind a TLS proxy): HSTS and `__Host-` cookies |
| `GATEWAY_SESSION_HOURS` | 12 | idle time before a session expires |
| `GATEWAY_SESSION_MAX_DAYS` | 7 | absolute lifetime of a session, however active |
| `GATEWAY_LOGIN_MAX_FAILURES` | 5 | failed passwords for one login … |
| `GATEWAY_LOGIN_MAX_FAILURES_PER_ADDRESS` | 20 | … or from one address … |
| `GATEWAY_LOGIN_WINDOW_MINUTES` | 15 | … within this window before further tries wait |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from litestar.connection import ASGIConnection


def _number(environ: dict[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class GatewayConfig:
    public_url: str | None = None
    session_idle: timedelta = timedelta(hours=12)
    session_max_age: timedelta = timedelta(days=7)
    login_max_failures: int = 5
    address_max_failures: int = 20
    login_window: timedelta = timedelta(minutes=15)

    @property
    def https(self) -> bool:
        """The public URL says https: the app sits behind a TLS proxy even if it sees plain http."""
        return bool(self.public_url) and self.public_url.lower().startswith("https://")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> GatewayConfig:
        env = dict(os.environ if environ is None else environ)
        return cls(
            public_url=env.get("GATEWAY_PUBLIC_URL") or None,
            session_idle=timedelta(hours=_number(env, "GATEWAY_SESSION_HOURS", 12)),
            session_max_age=timedelta(days=_number(env, "GATEWAY_SESSION_MAX_DAYS", 7)),
            login_max_failures=int(_number(env, "GATEWAY_LOGIN_MAX_FAILURES", 5)),
            address_max_failures=int(_number(env, "GATEWAY_LOGIN_MAX_FAILURES_PER_ADDRESS", 20)),
            login_window=timedelta(minutes=_number(env, "GATEWAY_LOGIN_WINDOW_MINUTES", 15)),
        )


def gateway_config(connection: ASGIConnection | dict) -> GatewayConfig:
    app = connection["app"] if isinstance(connection, dict) else connection.app
    return getattr(app.state, "gateway_config", None) or GatewayConfig()


def served_over_https(scope: dict) -> bool:
    """Over https: the request came in as https, or the public URL says so (a TLS proxy in front)."""
    return scope.get("scheme") == "https" or gateway_config(scope).https
