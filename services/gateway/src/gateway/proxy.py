"""The public API routing: `/api/<service>/…` and `/webhooks/<service>/…` to the owning service.

The gateway does not authenticate these itself; the service does (bearer token or body signature,
shared/auth.py), so the request goes through unchanged: method, raw path and query string, body, and
the headers below. The answer comes back as it is: status, body (streamed), content type.
`traceparent` is forwarded; the gateway's own span joins the same trace, so the trace id is kept.
"""

from __future__ import annotations

import httpx
from litestar import Request, Response, route
from litestar.background_tasks import BackgroundTask
from litestar.enums import HttpMethod
from litestar.params import FromPath
from litestar.response import Stream

from gateway.service_client import provide_http, service_url

FORWARDED_REQUEST_HEADERS = ("authorization", "x-zabota-signature", "content-type", "accept",
                             "idempotency-key", "traceparent",
                             # the channels' own webhook authentication (issue 11), checked by engagement
                             "x-hub-signature-256", "x-telegram-bot-api-secret-token")
# The channels' webhook addresses (issue 11: `/webhooks/instagram`, `/webhooks/telegram/{id}`, `/webhooks/vk/{id}`)
# belong to the engagement service and reach it with the path unchanged.
CHANNEL_WEBHOOKS = {"instagram": "engagement", "telegram": "engagement", "vk": "engagement"}
# Besides the content type, the few headers a client needs to use the answer (downloads, redirects, 429/503,
# the total of a paged list).
FORWARDED_RESPONSE_HEADERS = ("content-type", "content-encoding", "content-disposition", "location", "retry-after",
                              "x-total-count")
MAX_BODY = 50 * 1024 * 1024   # uploads (attachments, call recordings)
PROXY_TIMEOUT = httpx.Timeout(120.0, connect=3.0)
METHODS = [HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE]


async def forward(request: Request, service: str, upstream_path: bytes) -> Response:
    base = service_url(request.app.state.settings, service)
    if base is None:
        return Response({"detail": f"unknown service {service!r}"}, status_code=404)
    url = base.encode() + upstream_path
    if query := request.scope.get("query_string"):
        url += b"?" + query
    headers = {name: value for name in FORWARDED_REQUEST_HEADERS if (value := request.headers.get(name)) is not None}
    http = provide_http(request)
    upstream_request = http.build_request(request.method, httpx.URL(url.decode("ascii")), headers=headers,
                                          content=await request.body(), timeout=PROXY_TIMEOUT)
    try:
        upstream = await http.send(upstream_request, stream=True)
    except httpx.HTTPError:
        return Response({"detail": f"{service} service unavailable"}, status_code=503)

    response_headers = {name: value for name in FORWARDED_RESPONSE_HEADERS
                        if (value := upstream.headers.get(name)) is not None}
    if upstream.status_code in (204, 304) or request.method == "HEAD":
        await upstream.aclose()
        return Response(b"", status_code=upstream.status_code, headers=response_headers)

    async def body():
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    response_headers.setdefault("content-type", "application/octet-stream")
    return Stream(body(), status_code=upstream.status_code, headers=response_headers,
                  background=BackgroundTask(upstream.aclose))   # also closes it if the body was never read


def _raw_path(request: Request) -> bytes:
    # The raw (still percent-encoded) path, so an encoded slash or space reaches the service as sent.
    # (Some servers leave the query string in raw_path; it is forwarded separately.)
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    return raw.split(b"?", 1)[0]


@route("/api/{service:str}/{path:path}", http_method=METHODS, name="api_proxy", include_in_schema=False,
       request_max_body_size=MAX_BODY)
async def api_proxy(request: Request, service: FromPath[str], path: FromPath[str]) -> Response:
    return await forward(request, service, _raw_path(request))


@route("/webhooks/{service:str}/{path:path}", http_method=METHODS, name="webhook_proxy", include_in_schema=False,
       request_max_body_size=MAX_BODY)
async def webhook_proxy(request: Request, service: FromPath[str], path: FromPath[str]) -> Response:
    raw = _raw_path(request)
    if service in CHANNEL_WEBHOOKS:
        return await forward(request, CHANNEL_WEBHOOKS[service], raw)
    prefix = b"/webhooks/" + service.encode()
    return await forward(request, service, b"/webhooks" + raw[len(prefix):])


@route("/webhooks/{service:str}", http_method=METHODS, name="channel_webhook_proxy", include_in_schema=False,
       request_max_body_size=MAX_BODY)
async def channel_webhook_proxy(request: Request, service: FromPath[str]) -> Response:
    """Meta's app-level `GET|POST /webhooks/instagram` (the hub.challenge handshake and the deliveries)."""
    if service not in CHANNEL_WEBHOOKS:
        return Response({"detail": f"unknown webhook {service!r}"}, status_code=404)
    return await forward(request, CHANNEL_WEBHOOKS[service], _raw_path(request))


proxy_routes = [api_proxy, webhook_proxy, channel_webhook_proxy]
