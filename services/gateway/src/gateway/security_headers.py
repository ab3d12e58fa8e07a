"""Security headers on every gateway response (issue 8 §7): pages, error pages, static files, the
public questionnaire, the API routing — and the 404 of a path no route knows.

It is a `before_send` hook of the app, which Litestar runs for every message it sends, before routing
decides anything, so nothing escapes it.

- `Content-Security-Policy`: scripts and styles only from our own files (htmx and `static/js/app.js`):
  no inline script, no `on*=` handler, no `hx-on`, no `eval` (htmx runs with `allowEval: false`), no
  inline style (htmx's indicator style is in app.css, `includeIndicatorStyles: false`). No framing — except
  the public website form (`/f/{slug}`, issue 11), whose own policy says `frame-ancestors *` so client sites
  can embed it; such a response gets no `X-Frame-Options` either.
- `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`.
- A response that sets its own `Content-Security-Policy` keeps it (the printable document's, which
  is stricter: gateway.printable).
- `Strict-Transport-Security` when served over https (the request's scheme, or `GATEWAY_PUBLIC_URL`).
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from gateway.config import served_over_https

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
])
HSTS = "max-age=31536000; includeSubDomains"

HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",   # frame-ancestors for browsers that predate it
}


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    own_policy = headers.get("content-security-policy") or ""
    frameable = "frame-ancestors *" in own_policy  # the embeddable website form (gateway.pages.webform)
    for name, value in HEADERS.items():
        # A response may bring a policy of its own (the printable document: gateway.printable).
        if name == "content-security-policy" and own_policy:
            continue
        if name == "x-frame-options" and frameable:
            continue
        headers[name] = value
    if served_over_https(scope):
        headers["strict-transport-security"] = HSTS
