"""Calling the other services' JSON APIs from pages, as the signed-in staff member.

One `httpx.AsyncClient` per process (opened on startup, closed on shutdown) keeps connections
pooled. Pages get a `ServiceClient` bound to the current user by dependency injection:

    async def deals(request: Request, services: ServiceClient) -> Response:
        deals = await services.get("clients", "/deals", params={"stage": "contacted"})

Every call made for a signed-in staff member carries `X-Zabota-Assertion`: the staff member's login and
role, signed with `ZABOTA_GATEWAY_SECRET` for the one target service and valid 60 s — the only way a
service believes a staff identity (shared/auth.py, issue 8). A call without a staff member (none today)
uses the gateway's bearer token and acts as an integration. A service that is down, times out
or fails (5xx) raises `ServiceUnavailable`, which the page layer turns into a "service unavailable"
block (503) instead of a 500; a 4xx raises `ServiceError` with the service's field errors.
"""

from __future__ import annotations

from typing import Any

import httpx
from litestar import Litestar, Request
from shared.auth import staff_assertion_headers
from shared.settings import SERVICES, Settings, api_tokens

from gateway.sessions import SignedIn

PAGE_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class ServiceUnavailable(Exception):
    def __init__(self, service: str) -> None:
        super().__init__(f"{service} service unavailable")
        self.service = service


class ServiceError(Exception):
    """The service refused the call (4xx): `detail` and field `errors` as in shared/errors.py."""

    def __init__(self, service: str, status_code: int, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{service}: {status_code} {detail}")
        self.service = service
        self.status_code = status_code
        self.detail = detail
        self.errors = errors

    def field_errors(self) -> dict[str, str]:
        return {str(e.get("field")): str(e.get("message")) for e in self.errors if e.get("field")}


def service_url(settings: Settings, service: str) -> str | None:
    """Base URL of one of our services; None for anything else (the gateway never calls itself)."""
    if service not in SERVICES:
        return None
    url = settings.service_urls.get(service)
    return url.rstrip("/") if url else None


def gateway_token(settings: Settings) -> str:
    # ZABOTA_API_TOKEN may list several tokens (one per integration); the gateway's own is the first.
    tokens = api_tokens(settings)
    return tokens[0][1] if tokens else ""


async def open_http_client(runtime: Any) -> None:
    """Startup hook (spec.on_startup): the process-wide HTTP client."""
    runtime.state["http"] = httpx.AsyncClient(timeout=PAGE_TIMEOUT, follow_redirects=False,
                                              limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))


async def close_http_client(app: Litestar) -> None:
    """Shutdown hook: close pooled connections."""
    http = app.state.runtime.state.pop("http", None)
    if http is not None:
        await http.aclose()


def provide_http(request: Request) -> httpx.AsyncClient:
    return request.app.state.runtime.state["http"]


class ServiceClient:
    def __init__(self, http: httpx.AsyncClient, settings: Settings, actor: SignedIn | None) -> None:
        self.http = http
        self.settings = settings
        self.actor = actor

    def _headers(self, service: str) -> dict[str, str]:
        if self.actor is None:
            return {"Authorization": f"Bearer {gateway_token(self.settings)}", "Accept": "application/json"}
        return {"Accept": "application/json",
                **staff_assertion_headers(self.actor.login, self.actor.role, audience=service,
                                          secret=self.settings.gateway_secret)}

    async def request(self, method: str, service: str, path: str, *, params: Any = None, json: Any = None) -> Any:
        """Call `/api/<service>/<path>`; the decoded JSON body (None for an empty answer)."""
        return _json_or_none(await self._call(method, service, path, params=params, json=json))

    async def get_page(self, service: str, path: str, *, params: Any = None) -> tuple[list[Any], int]:
        """A page of a list (`limit` / `offset` / `sort` in `params`) and the total the service counted
        for its filters (`X-Total-Count`; the page's own length if the header is missing)."""
        response = await self._call("GET", service, path, params=params)
        items = _json_or_none(response) or []
        try:
            total = int(response.headers.get("x-total-count", ""))
        except ValueError:
            total = len(items)
        return items, total

    def _base(self, service: str) -> str:
        base = service_url(self.settings, service)
        if base is None:
            raise ValueError(f"unknown service {service!r}")
        return base

    async def _send(self, service: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request; transport errors and 5xx raise ServiceUnavailable, 4xx ServiceError with the fields."""
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(service) from exc
        _raise_for(service, response)
        return response

    async def stream(self, method: str, service: str, path: str, *, params: Any = None) -> httpx.Response:
        """Call `/api/<service>/<path>` and hand back the answer with its body not read yet (a download passed on
        as it comes); the caller closes it. Errors as for `request` (an error's body is read and closed here)."""
        request = self.http.build_request(
            method, f"{self._base(service)}/api/{service}/{path.lstrip('/')}", params=params,
            headers={**self._headers(service), "Accept": "*/*"}, timeout=httpx.Timeout(120.0, connect=3.0))
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(service) from exc
        if response.status_code >= 400:
            try:
                await response.aread()
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(service) from exc
            finally:
                await response.aclose()
            _raise_for(service, response)
        return response

    async def _call(self, method: str, service: str, path: str, *, params: Any = None, json: Any = None
                    ) -> httpx.Response:
        url = f"{self._base(service)}/api/{service}/{path.lstrip('/')}"
        return await self._send(service, method, url, params=params, json=json, headers=self._headers(service))

    async def raw(self, method: str, service: str, path: str, *, params: Any = None, content: bytes | None = None,
                  content_type: str | None = None, accept: str = "*/*") -> httpx.Response:
        """Call `/api/<service>/<path>` for a non-JSON body (uploads, downloads, printable documents).

        The whole answer is read (files here are at most a few tens of MB); 5xx and transport errors
        raise ServiceUnavailable and 4xx ServiceError, as for JSON calls."""
        headers = {**self._headers(service), "Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        return await self._send(service, method, f"{self._base(service)}/api/{service}/{path.lstrip('/')}",
                                params=params, content=content, headers=headers,
                                timeout=httpx.Timeout(120.0, connect=3.0))

    async def public(self, method: str, service: str, path: str, *, json: Any = None) -> Any:
        """Call a service's public route (`/public/<service>/...`: the client's signed links), without
        a staff actor; errors as for `request`."""
        response = await self._send(service, method, f"{self._base(service)}/public/{service}/{path.lstrip('/')}",
                                    json=json, headers={"Accept": "application/json"})
        return _json_or_none(response)

    async def get(self, service: str, path: str, *, params: Any = None) -> Any:
        return await self.request("GET", service, path, params=params)

    async def post(self, service: str, path: str, *, json: Any = None) -> Any:
        return await self.request("POST", service, path, json=json)

    async def put(self, service: str, path: str, *, json: Any = None) -> Any:
        return await self.request("PUT", service, path, json=json)

    async def patch(self, service: str, path: str, *, json: Any = None) -> Any:
        return await self.request("PATCH", service, path, json=json)

    async def delete(self, service: str, path: str) -> Any:
        return await self.request("DELETE", service, path)

    async def ready(self, service: str) -> bool:
        """Whether the service answers its readiness check (for the status page)."""
        try:
            response = await self.http.get(f"{self._base(service)}/health/ready", timeout=3.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def provide_services(request: Request) -> ServiceClient:
    web = getattr(request.state, "web", None)
    return ServiceClient(provide_http(request), request.app.state.settings, web.staff if web else None)


def _raise_for(service: str, response: httpx.Response) -> None:
    """5xx: ServiceUnavailable; 4xx: ServiceError with the service's detail and field errors."""
    if response.status_code >= 500:
        raise ServiceUnavailable(service)
    if response.status_code >= 400:
        body = _json_or_none(response) or {}
        detail = body.get("detail", response.reason_phrase) if isinstance(body, dict) else response.reason_phrase
        errors = body.get("errors", []) if isinstance(body, dict) else []
        raise ServiceError(service, response.status_code, str(detail), errors)
