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
    relay_poll_seconds: float = 0.5
    demo: bool = False
    service_urls: dict[str, str] = field(default_factory=dict)
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
            demo=_env("ZABOTA_DEMO", "0", env) in ("1", "true", "yes"),
            service_urls=urls,
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
