"""Typed settings from environment variables, one object per service process.

Every number the business can change lives in the agency's settings (DOMAIN.md: "every number is a
default"); this object only carries what a process needs to run: where its database and NATS are,
its port, the agency calendar and the integration token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from shared.calendar import BusinessCalendar

DEFAULT_PORTS = {"gateway": 8000, "clients": 8001, "content": 8002, "engagement": 8003, "payroll": 8004}
SERVICES = ("clients", "content", "engagement", "payroll")


def _env(name: str, default: str, environ: dict[str, str]) -> str:
    return environ.get(name, default)


def _int(name: str, default: int, environ: dict[str, str]) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def var_dir(environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("ZABOTA_VAR_DIR", "var")).resolve()


@dataclass(frozen=True)
class Settings:
    service: str
    port: int
    host: str
    database_url: str
    nats_url: str
    otlp_endpoint: str | None
    api_token: str
    webhook_secret: str
    secret_key: str
    calendar: BusinessCalendar
    max_deliver: int = 5
    relay_batch: int = 500
    migrate_on_start: bool = True
    stream_replicas: int = 1
    relay_poll_seconds: float = 0.5
    demo: bool = False
    service_urls: dict[str, str] = field(default_factory=dict)
    # Security settings (issue 8): see the block at the end of this module.
    gateway_secret: str = "dev-gateway-secret-change-me"
    encryption_keys: tuple[str, ...] = ("dev-encryption-key-change-me",)
    # Resilience and retention (issue 7 §3, §7) — one block.
    dead_letter_after_seconds: float = 60.0
    retention_days: int = 14
    retention_batch: int = 500
    retention_interval_seconds: float = 3600.0

    @classmethod
    def from_env(cls, service: str, environ: dict[str, str] | None = None) -> Settings:
        """Read `<SERVICE>_DATABASE_URL` (or `DATABASE_URL`), `NATS_URL`, ports, calendar, secrets."""
        env = dict(os.environ if environ is None else environ)
        upper = service.upper()
        vdir = var_dir(env)
        default_db = f"sqlite+aiosqlite:///{vdir / (service + '.db')}"
        database_url = env.get(f"{upper}_DATABASE_URL") or env.get("DATABASE_URL") or default_db
        urls = {
            name: env.get(f"{name.upper()}_URL", f"http://127.0.0.1:{_int(name.upper() + '_PORT', port, env)}")
            for name, port in DEFAULT_PORTS.items()
        }
        return cls(
            service=service,
            port=_int(f"{upper}_PORT", DEFAULT_PORTS.get(service, 8000), env),
            host=_env("ZABOTA_HOST", "127.0.0.1", env),
            database_url=normalize_database_url(database_url),
            nats_url=_env("NATS_URL", "nats://127.0.0.1:4222", env),
            otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
            api_token=_env("ZABOTA_API_TOKEN", "dev-token", env),
            webhook_secret=_env("ZABOTA_WEBHOOK_SECRET", "dev-webhook-secret", env),
            secret_key=_env("ZABOTA_SECRET_KEY", "dev-secret-key-change-me", env),
            calendar=BusinessCalendar.from_strings(
                tz=_env("AGENCY_TIMEZONE", "Asia/Almaty", env),
                hours=_env("AGENCY_WORKING_HOURS", "10:00-20:00", env),
                workdays=_env("AGENCY_WORKDAYS", "1-5", env),
                holidays=_env("AGENCY_HOLIDAYS", "", env),
            ),
            max_deliver=_int("ZABOTA_MAX_DELIVER", 5, env),
            relay_batch=_int("ZABOTA_RELAY_BATCH", 500, env),
            migrate_on_start=_env("ZABOTA_MIGRATE_ON_START", "1", env) not in ("0", "false", "no"),
            stream_replicas=max(1, _int("ZABOTA_STREAM_REPLICAS", 1, env)),
            demo=_env("ZABOTA_DEMO", "0", env) in ("1", "true", "yes"),
            service_urls=urls,
            gateway_secret=_env("ZABOTA_GATEWAY_SECRET", DEFAULT_SECRETS["ZABOTA_GATEWAY_SECRET"], env),
            encryption_keys=split_list(_env("ZABOTA_ENCRYPTION_KEYS", DEFAULT_SECRETS["ZABOTA_ENCRYPTION_KEYS"], env)),
            # Resilience and retention (issue 7 §3, §7) — one block.
            dead_letter_after_seconds=float(_int("ZABOTA_DEAD_LETTER_AFTER_SECONDS", 60, env)),
            retention_days=_retention_days(env),
            retention_batch=_int("ZABOTA_RETENTION_BATCH", 500, env),
            retention_interval_seconds=float(_int("ZABOTA_RETENTION_INTERVAL_SECONDS", 3600, env)),
        )


def _retention_days(env: dict[str, str]) -> int:
    """ZABOTA_RETENTION_DAYS (default 14): sent outbox rows, processed event ids and settled timers older than
    this are pruned. It must outlast any redelivery (minutes) and JetStream's duplicate window (10 minutes):
    at least one day."""
    days = _int("ZABOTA_RETENTION_DAYS", 14, env)
    if days < 1:
        raise ValueError(f"ZABOTA_RETENTION_DAYS must be at least 1, got {days}")
    return days


def normalize_database_url(url: str) -> str:
    """Accept the usual `postgresql://` / `postgres://` forms and use the async drivers."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    return url


# ---------------------------------------------------------------- security settings (issue 8)
#
# ZABOTA_API_TOKEN       integration bearer tokens, comma-separated; an entry `name:token` names the
#                        integration (its actor login), a bare token acts as login "api".
# ZABOTA_WEBHOOK_SECRET  HMAC secret of `X-Zabota-Signature` (payment providers).
# ZABOTA_SECRET_KEY      signs links (questionnaire, approvals) and the gateway's anonymous CSRF tokens.
# ZABOTA_GATEWAY_SECRET  signs the gateway's per-request staff assertion (`X-Zabota-Assertion`, shared/auth.py).
# ZABOTA_ENCRYPTION_KEYS Fernet key material for secrets at rest, comma-separated, newest first: new
#                        writes use the first, every key decrypts (rotation: prepend, run the rekey command,
#                        then drop the old one).
# Outside demo mode (ZABOTA_DEMO=1) a service refuses to start while any of these is a default or shorter
# than MIN_SECRET_LENGTH characters (`check_secrets`, called by `shared.service.serve`).

MIN_SECRET_LENGTH = 32
DEFAULT_SECRETS = {
    "ZABOTA_API_TOKEN": "dev-token",
    "ZABOTA_WEBHOOK_SECRET": "dev-webhook-secret",
    "ZABOTA_SECRET_KEY": "dev-secret-key-change-me",
    "ZABOTA_GATEWAY_SECRET": "dev-gateway-secret-change-me",
    "ZABOTA_ENCRYPTION_KEYS": "dev-encryption-key-change-me",
}


class InsecureSettings(RuntimeError):
    """A secret is a default or too short outside demo mode: the process must not start."""


def split_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def api_tokens(settings: Settings) -> list[tuple[str, str]]:
    """The integration tokens as (name, token): `name:token` entries are named, bare tokens are "api"."""
    tokens = []
    for entry in split_list(settings.api_token):
        name, sep, token = entry.partition(":")
        if sep and name and token and name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            tokens.append((name, token))
        else:
            tokens.append(("api", entry))
    return tokens


def insecure_secrets(settings: Settings) -> list[str]:
    """Why the secrets would be unsafe in production: one line per problem, naming the variable."""
    defaults = set(DEFAULT_SECRETS.values())
    checked: list[tuple[str, str]] = [(f"ZABOTA_API_TOKEN ({name})", token) for name, token in api_tokens(settings)]
    if not checked:
        checked.append(("ZABOTA_API_TOKEN", ""))
    checked += [("ZABOTA_WEBHOOK_SECRET", settings.webhook_secret), ("ZABOTA_SECRET_KEY", settings.secret_key),
                ("ZABOTA_GATEWAY_SECRET", settings.gateway_secret)]
    checked += [(f"ZABOTA_ENCRYPTION_KEYS (key {i + 1})", key) for i, key in enumerate(settings.encryption_keys)]
    if not settings.encryption_keys:
        checked.append(("ZABOTA_ENCRYPTION_KEYS", ""))
    problems = []
    for name, value in checked:
        if value in defaults:
            problems.append(f"{name} is the built-in default")
        elif len(value) < MIN_SECRET_LENGTH:
            problems.append(f"{name} is shorter than {MIN_SECRET_LENGTH} characters")
    return problems


def check_secrets(settings: Settings) -> None:
    """Refuse to run outside demo mode with a default or short secret (raises InsecureSettings, naming which)."""
    if settings.demo:
        return
    problems = insecure_secrets(settings)
    if problems:
        raise InsecureSettings(
            f"{settings.service}: refusing to start outside demo mode (ZABOTA_DEMO=1) with unsafe secrets: "
            + "; ".join(problems) + f". Set each to a random value of at least {MIN_SECRET_LENGTH} characters, "
            "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`.")
