"""The website form (issue 11): a public page `/f/{slug}` — name, contact (e-mail or phone), message — that a
client's site embeds with an `<iframe>` (the snippet is on the channel: `embed_html`). The visitor's message goes
to engagement (`POST /api/engagement/webform/{slug}`, with the gateway's own integration credential, never a
staff member's) and becomes a conversation; the thank-you page answers only after engagement has stored it.

- Language: `?lang=`, else the visitor's earlier choice (cookie), else their browser's `Accept-Language`, else
  the agency's default (ru).
- CSRF: a public form has no session to ride, and inside an iframe on the client's site the browser does not
  send our SameSite cookies, so the cookie-bound token of the other pages cannot work here. The form carries
  its own token instead: a nonce and the time it was served, HMAC-signed with `ZABOTA_SECRET_KEY`, valid for
  a day. A POST without a valid one is refused (403, nothing stored); the nonce is the submission id, so the
  same rendered form sent twice is stored once.
- Spam: a honeypot field (`website`, hidden from people; a filled one gets the thank-you page and nothing is
  stored) and engagement's per-IP rate limit (429 with a translated message).
- Framing: this page alone may be framed by any site (`frame-ancestors *`); every other page stays unframeable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway import i18n
from gateway.i18n import _
from gateway.pages.auth import client_address
from gateway.rendering import page
from gateway.service_client import ServiceClient, ServiceError
from gateway.sessions import LANGUAGE_COOKIE

Services = NamedDependency[ServiceClient]
TEMPLATE = "pages/webform.html"
TOKEN_MAX_AGE = 24 * 3600
HONEYPOT = "website"
OPT: dict[str, Any] = {"public": True, "own_csrf": True}
FRAMEABLE_CSP = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
    "connect-src 'self'", "form-action 'self'", "frame-ancestors *", "base-uri 'none'", "object-src 'none'",
])


def form_token(secret_key: str, slug: str, now: float | None = None) -> str:
    nonce = secrets.token_urlsafe(18)
    issued = str(int(now if now is not None else time.time()))
    mac = hmac.new(secret_key.encode(), f"webform:{slug}:{nonce}:{issued}".encode(), hashlib.sha256).hexdigest()
    return f"{nonce}.{issued}.{mac}"


def check_token(secret_key: str, slug: str, token: str, now: float | None = None) -> str | None:
    """The nonce of a valid token for this form (its submission id), else None."""
    try:
        nonce, issued, mac = token.split(".")
        age = (now if now is not None else time.time()) - int(issued)
    except ValueError:
        return None
    expected = hmac.new(secret_key.encode(), f"webform:{slug}:{nonce}:{issued}".encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected) or not -300 <= age <= TOKEN_MAX_AGE:
        return None
    return nonce


def visitor_language(request: Request) -> str:
    chosen = i18n.normalize(request.query_params.get("lang")) or i18n.normalize(request.cookies.get(LANGUAGE_COOKIE))
    if chosen:
        return chosen
    ranked = []
    for part in request.headers.get("accept-language", "").split(","):
        tag, _sep, params = part.strip().partition(";")
        try:
            weight = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            weight = 0.0
        if language := i18n.normalize(tag.split("-")[0]):
            ranked.append((weight, language))
    ranked.sort(key=lambda x: -x[0])
    return ranked[0][1] if ranked and ranked[0][0] > 0 else i18n.DEFAULT_LANGUAGE


def _render(request: Request, context: dict[str, Any], status_code: int = 200) -> Response:
    language = visitor_language(request)
    request.state.web.language = language
    token = i18n.activate(language)
    try:
        return page(request, TEMPLATE, {"form": None, "phone": False, **context}, status_code=status_code,
                    headers={"content-security-policy": FRAMEABLE_CSP, "cache-control": "no-store"})
    finally:
        i18n.deactivate(token)


def _integration(services: ServiceClient) -> ServiceClient:
    """Engagement hears from the gateway itself (integration), whoever happens to be signed in."""
    return ServiceClient(services.http, services.settings, None)


async def _form(request: Request, services: ServiceClient, slug: str) -> dict[str, Any] | Response:
    try:
        return await _integration(services).request("GET", "engagement", f"/webform/{slug}")
    except ServiceError as exc:
        if exc.status_code in (404, 422):
            return _render(request, {"state": "missing"}, status_code=404)
        raise


def _context(request: Request, form: dict[str, Any], slug: str, **extra: Any) -> dict[str, Any]:
    secret = request.app.state.settings.secret_key
    return {"state": "form", "form": form, "slug": slug, "token": form_token(secret, slug), "values": {},
            "errors": {}, "honeypot": HONEYPOT, **extra}


@get("/f/{slug:str}", name="webform", opt=OPT)
async def webform_page(request: Request, services: Services, slug: FromPath[str]) -> Response:
    form = await _form(request, services, slug)
    if isinstance(form, Response):
        return form
    return _render(request, _context(request, form, slug))


FIELD_MESSAGES = {
    "name": lambda: _("Please write your name."),
    "contact": lambda: _("Write an e-mail address or a phone number we can answer to."),
    "message": lambda: _("Please write your message."),
}


@post("/f/{slug:str}", name="webform_submit", opt=OPT)
async def webform_submit(request: Request, services: Services, slug: FromPath[str]) -> Response:
    form_data = await request.form()
    values = {k: str(form_data.get(k) or "").strip() for k in ("name", "contact", "message")}
    secret = request.app.state.settings.secret_key
    nonce = check_token(secret, slug, str(form_data.get("_form") or ""))
    if nonce is None:
        return _render(request, {"state": "expired", "slug": slug}, status_code=403)
    if str(form_data.get(HONEYPOT) or "").strip():
        return _render(request, {"state": "thanks", "phone": False})  # a bot: thanked, nothing stored
    form = await _form(request, services, slug)
    if isinstance(form, Response):
        return form
    errors = {field: message() for field, message in FIELD_MESSAGES.items() if not values[field]}
    if not errors:
        try:
            await _integration(services).request(
                "POST", "engagement", f"/webform/{slug}",
                json={**values, "submission_id": nonce, "ip": client_address(request)})
        except ServiceError as exc:
            if exc.status_code == 429:
                return _render(request, _context(request, form, slug, values=values, errors={
                    "form": _("Too many messages from your address. Please try again in a few minutes.")}),
                    status_code=429)
            if exc.status_code == 404:
                return _render(request, {"state": "missing"}, status_code=404)
            if exc.status_code != 422:
                raise
            errors = {e["field"]: FIELD_MESSAGES[e["field"]]() for e in exc.errors if e.get("field") in FIELD_MESSAGES}
            errors = errors or {"form": _("The message could not be sent. Please check the fields.")}
    if errors:
        return _render(request, _context(request, form, slug, values=values, errors=errors), status_code=422)
    phone = "@" not in values["contact"]
    return _render(request, {"state": "thanks", "phone": phone, "form": form})


routes = [webform_page, webform_submit]
