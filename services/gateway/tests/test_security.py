"""Issue 8 §3 (no open redirect after sign-in), §7 (security headers, __Host- cookies, absolute session
lifetime) and issue 7 §4 (a mistyped URL gets the styled 404 page; the API keeps JSON)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.models import WebSession
from gateway.urls import http_url, link, safe_next
from litestar.testing import AsyncTestClient
from shared.clock import FixedClock
from shared.db import Database
from sqlalchemy import func, select

from .conftest import csrf_of, gateway_settings, sign_in

# ------------------------------------------------------------------ §3 open redirect

# Known ways to make a "local" next= leave the site (browsers strip tab/CR/LF inside URLs, read a
# backslash as a slash, and take `//host` as another host), plus schemes and plain hosts.
OPEN_REDIRECT_CORPUS = [
    "//evil.example", "///evil.example", "////evil.example", "/\\evil.example", "\\\\evil.example",
    "/\\/evil.example", "\\/evil.example", "/\t/evil.example", "/\n/evil.example", "/\r/evil.example",
    "/\r\n/evil.example", "/\x00/evil.example", "/\x0b/evil.example", "/\x0c/evil.example", "/\x1f/evil.example",
    "/\x7f/evil.example", " //evil.example", "\t//evil.example", "\x00//evil.example", "/ /evil.example",
    "/\u00a0/evil.example", "/\u2028/evil.example", "/\u200b/evil.example", "/\ufeff/evil.example",
    "https://evil.example", "http://evil.example/", "HTTPS://evil.example", "http:evil.example",
    "https:/evil.example", "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>",
    "evil.example", "evil.example/path", "", "//evil.example/%2F..", "/%2F/evil.example", "/%2f%2fevil.example",
    "%2F%2Fevil.example", "/%5Cevil.example", "/%09/evil.example", "/%0d%0a/evil.example", "//evil.example@good",
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("value", OPEN_REDIRECT_CORPUS)
def test_issue8_3_next_refuses_known_open_redirect_bypasses(value: str) -> None:
    assert safe_next(value) == "/"


@pytest.mark.parametrize(("value", "expected"), [
    ("/", "/"), ("/staff", "/staff"), ("/staff?x=1", "/staff?x=1"), ("/deals/abc#tasks", "/deals/abc#tasks"),
    ("/leads?q=%D0%90&page=2", "/leads?q=%D0%90&page=2"), ("/leads?q=Айгерим", "/leads?q=%D0%90%D0%B9%D0%B3%D0%B5%D1%80%D0%B8%D0%BC"),
    ("/payroll/2026-01/manager1", "/payroll/2026-01/manager1"),
])
def test_issue8_3_next_keeps_local_paths(value: str, expected: str) -> None:
    assert safe_next(value) == expected


async def test_issue8_3_login_never_redirects_off_site(client: AsyncTestClient) -> None:
    """`next=/\\t/evil.example` passed the old check and HX-Redirect sent the browser away."""
    for bad in ("/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example"):
        page = await client.get("/login", params={"next": bad})
        assert 'name="next" value="/"' in page.text
        htmx = await client.post("/login", headers={"HX-Request": "true"}, data={
            "login": "lead", "password": "demo", "_csrf": csrf_of(page.text), "next": bad})
        assert htmx.status_code == 200 and htmx.headers["hx-redirect"] == "/", bad
        # Signed in now: the login page itself sends you on — home, not away.
        again = await client.get("/login", params={"next": bad}, follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"] == "/", bad
        await client.post("/logout", data={"_csrf": csrf_of((await client.get("/")).text)})
    page = await client.get("/login")
    plain = await client.post("/login", data={"login": "lead", "password": "demo", "_csrf": csrf_of(page.text),
                                              "next": "/\t/evil.example"}, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/"


# ------------------------------------------------------------------ §5 the one link helper (unit)

@pytest.mark.parametrize("value", ["javascript:alert(1)", "JAVASCRIPT:alert(1)", " javascript:alert(1)",
                                   "java\tscript:alert(1)", "data:text/html;base64,PHNjcmlwdD4=",
                                   "vbscript:msgbox(1)", "//evil.example", "instagram.com/x", "@aigerim.cakes",
                                   "http://", "https:///x", "file:///etc/passwd", "\x01https://x.example"])
def test_issue8_5_link_renders_anything_but_http_as_text(value: str) -> None:
    html = str(link(value))
    assert "<a" not in html and "href" not in html
    assert http_url(value) is None


def test_issue8_5_link_makes_http_urls_links_and_escapes() -> None:
    html = str(link('https://instagram.com/a"b<c>'))
    assert html.startswith('<a href="https://instagram.com/a&#34;b&lt;c&gt;"')
    assert 'rel="noopener noreferrer nofollow"' in html
    assert str(link("")) == "—" and str(link(None)) == "—"
    assert str(link("<b>x</b>")) == '<span class="unlinked">&lt;b&gt;x&lt;/b&gt;</span>'


# ------------------------------------------------------------------ §7 headers, cookies, session lifetime

def assert_security_headers(response, hsts: bool = False) -> None:
    csp = response.headers["content-security-policy"]
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";")}
    assert directives["script-src"] == "script-src 'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert directives["style-src"] == "style-src 'self'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert ("strict-transport-security" in response.headers) is hsts
    if hsts:
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_issue8_7_security_headers_on_every_response(client: AsyncTestClient) -> None:
    responses = {
        "login page": await client.get("/login"),
        "static js": await client.get("/static/js/app.js"),
        "static css": await client.get("/static/css/app.css"),
        "public questionnaire (clients down: 503 page)": await client.get("/q/some-token"),
        "anonymous redirect": await client.get("/staff", follow_redirects=False),
        "api routing, service down": await client.get("/api/clients/deals"),
        "unknown api path": await client.get("/api/nowhere"),
        "health": await client.get("/health/live"),
        "csrf refusal": await client.post("/login", data={"login": "x"}),
    }
    await sign_in(client, "manager1")
    responses |= {
        "dashboard": await client.get("/"),
        "mistyped url": await client.get("/dashbord"),
        "role refusal": await client.get("/staff"),
        "service unavailable page": await client.get("/deals"),
    }
    for what, response in responses.items():
        try:
            assert_security_headers(response)
        except (AssertionError, KeyError) as exc:
            raise AssertionError(f"{what}: {response.status_code} {dict(response.headers)}") from exc
    assert responses["public questionnaire (clients down: 503 page)"].status_code == 503


async def test_issue8_7_htmx_is_configured_for_the_csp(client: AsyncTestClient) -> None:
    page = (await client.get("/login")).text
    assert '"includeIndicatorStyles": false' in page and '"allowEval": false' in page
    assert "<script>" not in page and " onclick=" not in page and "hx-on" not in page
    css = (await client.get("/static/css/app.css")).text
    assert ".htmx-request .htmx-indicator" in css


async def test_issue8_7_https_gets_hsts_and_a_host_prefixed_session_cookie(settings) -> None:
    app = create_app(settings, background=False)
    async with AsyncTestClient(app, base_url="https://zabota.example.kz") as client:
        page = await client.get("/login")
        assert_security_headers(page, hsts=True)
        csrf_cookie = page.headers["set-cookie"]
        assert csrf_cookie.startswith("__Host-zabota_csrf=") and "Secure" in csrf_cookie
        response = await client.post("/login", data={"login": "lead", "password": "demo",
                                                     "_csrf": csrf_of(page.text), "next": "/"},
                                     follow_redirects=False)
        assert response.status_code == 303
        cookie = next(v for k, v in response.headers.multi_items()
                      if k == "set-cookie" and v.startswith("__Host-zabota_session="))
        assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie.title()
        assert "HttpOnly" in cookie
        home = await client.get("/")
        assert home.status_code == 200 and "lead" in home.text.lower()


async def test_issue8_7_behind_a_tls_proxy_the_public_url_setting_means_https(settings) -> None:
    """The app sees plain http from the proxy; GATEWAY_PUBLIC_URL=https://… says what the browser sees."""
    config = GatewayConfig(public_url="https://crm.agency.kz")
    assert GatewayConfig.from_env({"GATEWAY_PUBLIC_URL": "https://crm.agency.kz"}).https
    app = create_app(settings, background=False, config=config)
    async with AsyncTestClient(app, base_url="http://crm.agency.kz") as client:
        page = await client.get("/login")
        assert_security_headers(page, hsts=True)
        assert page.headers["set-cookie"].startswith("__Host-zabota_csrf=")


async def test_issue8_7_plain_http_on_localhost_keeps_plain_cookie_names_and_no_hsts(client) -> None:
    page = await client.get("/login")
    assert_security_headers(page, hsts=False)
    assert page.headers["set-cookie"].startswith("zabota_csrf=")


def test_issue8_7_settings_from_the_environment() -> None:
    default = GatewayConfig.from_env({})
    assert default.session_max_age == timedelta(days=7) and default.session_idle == timedelta(hours=12)
    assert (default.login_max_failures, default.address_max_failures) == (5, 20)
    assert default.login_window == timedelta(minutes=15) and not default.https
    custom = GatewayConfig.from_env({"GATEWAY_SESSION_MAX_DAYS": "1.5", "GATEWAY_SESSION_HOURS": "2"})
    assert custom.session_max_age == timedelta(hours=36) and custom.session_idle == timedelta(hours=2)
    with pytest.raises(ValueError, match="GATEWAY_SESSION_MAX_DAYS"):
        GatewayConfig.from_env({"GATEWAY_SESSION_MAX_DAYS": "forever"})


async def test_issue8_7_absolute_session_lifetime_signs_out_an_active_session(database_url: str) -> None:
    """Used every 11 hours (never idle 12), the session still ends 7 days after sign-in."""
    start = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    clock = FixedClock(start)
    app = create_app(gateway_settings(database_url), clock=clock, background=False, config=GatewayConfig())
    db = Database(gateway_settings(database_url).database_url)
    try:
        async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
            await sign_in(client, "analyst")
            while clock.now() + timedelta(hours=11) < start + timedelta(days=7):
                clock.advance(timedelta(hours=11))
                assert (await client.get("/", follow_redirects=False)).status_code == 200, clock.now()
            async with db.transaction() as session:
                row = await session.scalar(select(WebSession))
                # Renewal never reaches past the absolute end.
                assert row.expires_at <= start + timedelta(days=7)
            clock.set(start + timedelta(days=7))
            response = await client.get("/", follow_redirects=False)
            assert response.status_code == 303 and response.headers["location"].startswith("/login")
            async with db.transaction() as session:
                assert await session.scalar(select(func.count()).select_from(WebSession)) == 0
            await sign_in(client, "analyst")   # a new sign-in starts a new lifetime
    finally:
        await db.dispose()


# ------------------------------------------------------------------ issue 7 §4: styled 404

async def test_issue7_4_mistyped_url_while_signed_in_gets_the_styled_404(client: AsyncTestClient) -> None:
    await sign_in(client, "manager1")
    ru = await client.get("/dealz/123")
    assert ru.status_code == 404 and ru.headers["content-type"].startswith("text/html")
    assert "Страница не найдена" in ru.text and "mainnav" in ru.text
    assert "Дана Ахметова" in ru.text   # the page of a signed-in staff member, with the menu
    en = await client.get("/tasks/oops/more?lang=en")
    assert en.status_code == 404 and "Page not found" in en.text
    htmx = await client.get("/nope", headers={"HX-Request": "true"})
    assert htmx.status_code == 404 and htmx.headers["hx-retarget"] == "#content" and "<html" not in htmx.text
    # The API keeps JSON errors.
    api = await client.get("/api/nowhere")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")
    api_unknown_service = await client.get("/api/nowhere/deals")
    assert api_unknown_service.status_code == 404
    assert api_unknown_service.headers["content-type"].startswith("application/json")
    assert (await client.get("/static/nope.js")).status_code == 404
    assert "Страница" not in (await client.get("/static/nope.js")).text


def test_issue8_5_no_template_puts_a_data_value_at_the_start_of_a_url_attribute() -> None:
    """A URL from data goes through `|link`; a template may start an href/src/action with `{{ … }}` only
    for the few values the gateway itself builds (the menu, the pager's base path)."""
    import re
    from pathlib import Path

    templates = Path(__file__).resolve().parents[1] / "src" / "gateway" / "templates"
    # Built by the gateway: the menu, the pager's base path, htmx; the trace links come from the
    # ZABOTA_TRACE_URL setting with the ids URL-quoted (shared.telemetry.trace_url); schema URLs from the catalogue.
    allowed = {"item.href", "base", "htmx_js", "trace_link", "journey.trace_url", "evt.schema_url"}
    found = []
    for path in templates.rglob("*.html"):
        for match in re.finditer(r'\b(?:href|src|action|formaction|hx-(?:get|post|put|patch|delete))\s*=\s*'
                                 r'["\']?\{\{\s*([^}|]+?)\s*(?:\|[^}]*)?\}\}', path.read_text()):
            if match.group(1) not in allowed:
                found.append(f"{path.name}: {match.group(0)}")
    assert not found, found
