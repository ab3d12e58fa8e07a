"""A small client of the Instagram Graph API (Content Publishing and Insights), as CHANNELS.md §2 documents it.

Settings (environment, read when used so a process and its tests can point them elsewhere):
- `INSTAGRAM_GRAPH_URL` (default `https://graph.instagram.com`): the Graph host, with a version path if wanted;
- `INSTAGRAM_TIMEOUT_SECONDS` (10): one call's timeout;
- `INSTAGRAM_POLL_SECONDS` (60) and `INSTAGRAM_POLL_MAX` (5): a container's status is polled once a minute
  for at most five minutes (Meta's recommendation);
- `INSTAGRAM_QUOTA_RETRY_MINUTES` (60): when the account's publishing quota is used up, try again later.

The access token goes in the `Authorization: Bearer` header, never in a URL (URLs end up in logs).
Errors: a Graph error body (`{"error": {"code", "error_subcode", "message", "type", …}}`) is a `GraphError`
keyed on `error.code` (not the HTTP status); a timeout, a transport error or a 5xx without a Graph error
body is `Unavailable` — for a write, its outcome is uncertain.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import httpx
from shared.errors import DomainError

DEFAULT_GRAPH_URL = "https://graph.instagram.com"
RATE_LIMIT_CODES = {4, 17, 32, 613, 80002}
TOKEN_CODES = {190}


@dataclass(frozen=True)
class GraphConfig:
    url: str
    timeout: float
    poll_seconds: int
    poll_max: int
    quota_retry_minutes: int

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> GraphConfig:
        env = os.environ if environ is None else environ
        return cls(url=env.get("INSTAGRAM_GRAPH_URL", DEFAULT_GRAPH_URL).rstrip("/"),
                   timeout=float(env.get("INSTAGRAM_TIMEOUT_SECONDS", "10")),
                   poll_seconds=int(env.get("INSTAGRAM_POLL_SECONDS", "60")),
                   poll_max=int(env.get("INSTAGRAM_POLL_MAX", "5")),
                   quota_retry_minutes=int(env.get("INSTAGRAM_QUOTA_RETRY_MINUTES", "60")))


class GraphError(Exception):
    """A Graph API error, in the channel's words."""

    def __init__(self, code: int | None, message: str, *, subcode: int | None = None, type_: str = "",
                 user_message: str = "", http_status: int = 0) -> None:
        super().__init__(message)
        self.code, self.subcode, self.type, self.message = code, subcode, type_, message
        self.user_message, self.http_status = user_message, http_status

    @property
    def kind(self) -> str:
        if self.code in TOKEN_CODES:
            return "token_expired"
        if self.code in RATE_LIMIT_CODES:
            return "rate_limit"
        return "error"

    def as_dict(self, at: datetime, step: str) -> dict[str, Any]:
        return {"kind": self.kind, "code": self.code, "subcode": self.subcode, "type": self.type,
                "message": self.message, "user_message": self.user_message, "http_status": self.http_status,
                "step": step, "at": at.isoformat()}


class BadGateway(DomainError):
    """An answer to our caller when Instagram refused or did not answer a call made for it (502)."""

    status_code = 502


class Unavailable(Exception):
    """No answer we can trust (timeout, network, 5xx without a Graph error)."""


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process (building one per client costs more than the call on loopback)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class Graph:
    """One connection pool per use (a publishing step, a week's fetch): `async with Graph(...) as graph`."""

    def __init__(self, config: GraphConfig, token: str) -> None:
        self.config = config
        self.token = token
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Graph:
        self._client = httpx.AsyncClient(timeout=self.config.timeout, verify=_tls())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def call(self, method: str, path: str, params: dict[str, Any] | None = None,
                   data: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            if self._client is None:
                async with self:
                    return await self.call(method, path, params, data)
            response = await self._client.request(method, f"{self.config.url}/{path.lstrip('/')}", params=params,
                                                  data=data, headers=headers)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{type(exc).__name__} calling {path}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            code = err.get("code")
            raise GraphError(code if isinstance(code, int) else None, str(err.get("message") or ""),
                             subcode=err.get("error_subcode"), type_=str(err.get("type") or ""),
                             user_message=str(err.get("error_user_msg") or ""), http_status=response.status_code)
        if response.status_code >= 500:
            raise Unavailable(f"HTTP {response.status_code} from {path}")
        if response.status_code >= 400 or not isinstance(body, dict):
            raise GraphError(None, f"HTTP {response.status_code}: {response.text[:300]}",
                             http_status=response.status_code)
        return body

    async def account(self, ig_user_id: str) -> dict[str, Any]:
        return await self.call("GET", ig_user_id, params={"fields": "id,username"})

    async def publishing_limit(self, ig_user_id: str) -> tuple[int, int | None]:
        """(posts published in the moving 24 hours, the account's quota — None when not given)."""
        body = await self.call("GET", f"{ig_user_id}/content_publishing_limit",
                               params={"fields": "quota_usage,config"})
        rows = body.get("data") or [{}]
        usage = int(rows[0].get("quota_usage") or 0)
        total = (rows[0].get("config") or {}).get("quota_total")
        return usage, int(total) if total is not None else None

    async def create_container(self, ig_user_id: str, fields: dict[str, Any]) -> str:
        return str((await self.call("POST", f"{ig_user_id}/media", data=fields))["id"])

    async def container_status(self, container_id: str) -> tuple[str, str]:
        body = await self.call("GET", container_id, params={"fields": "status_code,status"})
        return str(body.get("status_code") or ""), str(body.get("status") or "")

    async def publish(self, ig_user_id: str, container_id: str) -> str:
        return str((await self.call("POST", f"{ig_user_id}/media_publish", data={"creation_id": container_id}))["id"])

    async def media(self, media_id: str) -> dict[str, Any]:
        return await self.call("GET", media_id, params={"fields": "id,permalink,timestamp"})

    async def insights(self, ig_user_id: str, metrics: list[str], since: datetime, until: datetime,
                       metric_type: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"metric": ",".join(metrics), "period": "day",
                                  "since": int(since.timestamp()), "until": int(until.timestamp())}
        if metric_type:
            params["metric_type"] = metric_type
        return list((await self.call("GET", f"{ig_user_id}/insights", params=params)).get("data") or [])
