"""Sign-in, sessions, CSRF (DESIGN 8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.app import create_app
from gateway.models import Staff, WebSession
from litestar.testing import AsyncTestClient
from shared.clock import FixedClock
from shared.db import Database
from sqlalchemy import func, select

from .conftest import csrf_of, gateway_settings, sign_in


async def test_anonymous_page_request_redirects_to_login_with_next(client: AsyncTestClient) -> None:
    response = await client.get("/staff?x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/staff%3Fx%3D1"


async def test_anonymous_htmx_request_gets_hx_redirect(client: AsyncTestClient) -> None:
    response = await client.get("/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login?next=/"
    # A fragment refreshed on an open page (the session ended meanwhile): back to that page after signing in.
    fragment = await client.get("/inbox/abc/thread", follow_redirects=False, headers={
        "HX-Request": "true", "HX-Current-URL": "http://127.0.0.1/inbox/abc?scope=all"})
    assert fragment.status_code == 401 and fragment.headers["hx-redirect"] == "/login?next=/inbox/abc%3Fscope%3Dall"
    for foreign in ("https://evil.example//x", "javascript:alert(1)", "//evil.example/x"):
        away = await client.get("/inbox/abc/thread", follow_redirects=False,
                                headers={"HX-Request": "true", "HX-Current-URL": foreign})
        location = away.headers["hx-redirect"]
        assert "evil" not in location and "javascript" not in location and "next=//" not in location, foreign


async def test_sign_in_sets_an_httponly_lax_session_cookie_and_returns_to_next(client: AsyncTestClient) -> None:
    page = await client.get("/login?next=/staff")
    assert 'name="next" value="/staff"' in page.text
    response = await client.post("/login", data={"login": "lead", "password": "demo", "_csrf": csrf_of(page.text),
                                                 "next": "/staff"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/staff"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "zabota_session=" in v)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie   # plain http on localhost
    assert (await client.get("/staff")).status_code == 200


async def test_cookies_are_secure_when_not_plain_http_localhost(app) -> None:
    async with AsyncTestClient(app, base_url="https://zabota.example.kz") as client:
        page = await client.get("/login")
        cookie = page.headers["set-cookie"]
        assert "zabota_csrf=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


async def test_login_is_case_insensitive_and_trimmed(client: AsyncTestClient) -> None:
    await sign_in(client, "  Manager1 ", "demo")


async def test_wrong_password_and_unknown_login_get_the_same_clear_message(client: AsyncTestClient) -> None:
    page = await client.get("/login")
    token = csrf_of(page.text)
    wrong_password = await client.post("/login", data={"login": "manager1", "password": "nope", "_csrf": token})
    unknown_login = await client.post("/login", data={"login": "nobody", "password": "nope", "_csrf": token})
    assert wrong_password.status_code == unknown_login.status_code == 422
    assert "Неверный логин или пароль." in wrong_password.text
    assert "Неверный логин или пароль." in unknown_login.text
    assert "zabota_session" not in client.cookies
    # The login typed is kept, the password never comes back.
    assert 'value="manager1"' in wrong_password.text and "nope" not in wrong_password.text


async def test_empty_login_form_names_each_missing_field(client: AsyncTestClient) -> None:
    page = await client.get("/login?lang=en")
    response = await client.post("/login", data={"login": " ", "password": "", "_csrf": csrf_of(page.text)})
    assert response.status_code == 422
    assert "Enter your login." in response.text and "Enter your password." in response.text


async def test_htmx_login_error_returns_only_the_form(client: AsyncTestClient) -> None:
    page = await client.get("/login")
    response = await client.post("/login", data={"login": "manager1", "password": "x"},
                                 headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(page.text)})
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<form id="login-form"')
    assert "<html" not in response.text
    assert response.headers["vary"] == "HX-Request"


async def test_htmx_login_success_redirects_with_hx_redirect(client: AsyncTestClient) -> None:
    page = await client.get("/login?next=/staff")
    response = await client.post("/login", data={"login": "lead", "password": "demo", "next": "/staff"},
                                 headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(page.text)})
    assert response.status_code == 200 and response.headers["hx-redirect"] == "/staff"


async def test_next_cannot_send_the_user_to_another_site(client: AsyncTestClient) -> None:
    page = await client.get("/login")
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = await client.post("/login", data={"login": "lead", "password": "demo", "next": evil,
                                                     "_csrf": csrf_of(page.text)}, follow_redirects=False)
        assert response.headers["location"] == "/"
        page = await client.get("/login?next=/")   # already signed in: back to the dashboard
        await client.post("/logout", data={"_csrf": csrf_of((await client.get("/")).text)})
        page = await client.get("/login")


async def test_inactive_staff_cannot_sign_in_and_loses_open_sessions(db: Database, client: AsyncTestClient) -> None:
    await sign_in(client, "manager1")
    async with db.transaction() as session:
        staff = await session.scalar(select(Staff).where(Staff.login == "manager1"))
        staff.active = False
    assert (await client.get("/", follow_redirects=False)).status_code == 303
    page = await client.get("/login")
    response = await client.post("/login", data={"login": "manager1", "password": "demo", "_csrf": csrf_of(page.text)})
    assert response.status_code == 422 and "Неверный логин или пароль." in response.text


async def test_logout_ends_the_session_on_the_server(db: Database, client: AsyncTestClient) -> None:
    token = await sign_in(client, "agent1")
    session_cookie = client.cookies["zabota_session"]
    response = await client.post("/logout", data={"_csrf": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    async with db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(WebSession)) == 0
    # Replaying the old cookie does not bring the session back.
    client.cookies.set("zabota_session", session_cookie)
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_session_expires_after_the_idle_timeout(database_url: str) -> None:
    clock = FixedClock(datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    app = create_app(gateway_settings(database_url), clock=clock, background=False)
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        await sign_in(client, "analyst")
        clock.advance(timedelta(hours=11))
        assert (await client.get("/", follow_redirects=False)).status_code == 200   # use renews the session
        clock.advance(timedelta(hours=11))
        assert (await client.get("/", follow_redirects=False)).status_code == 200
        clock.advance(timedelta(hours=12, minutes=1))
        response = await client.get("/", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_sign_in_replaces_the_session_id(client: AsyncTestClient) -> None:
    await sign_in(client, "lead")
    first = client.cookies["zabota_session"]
    page = await client.get("/login?next=/", follow_redirects=False)
    assert page.status_code == 303   # signed in: the login page sends you on
    await client.post("/logout", data={"_csrf": csrf_of((await client.get("/")).text)})
    await sign_in(client, "lead")
    assert client.cookies["zabota_session"] != first


async def test_unsafe_request_without_csrf_token_is_refused_and_changes_nothing(db: Database,
                                                                                 client: AsyncTestClient) -> None:
    token = await sign_in(client, "lead")
    form = {"login": "newbie", "display_name": "New", "role": "analyst", "password": "long-password", "language": "ru"}
    assert (await client.post("/staff", data=form)).status_code == 403
    assert (await client.post("/staff", data={**form, "_csrf": "forged"})).status_code == 403
    refused = await client.post("/staff", data=form, headers={"HX-Request": "true", "X-CSRF-Token": "forged"})
    assert refused.status_code == 403 and "Форма устарела" in refused.text
    async with db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Staff).where(Staff.login == "newbie")) == 0
    # The header (htmx) and the form field (plain forms) both work.
    assert (await client.post("/staff", data=form, headers={"X-CSRF-Token": token},
                              follow_redirects=False)).status_code == 303
    assert (await client.post("/staff", data={**form, "login": "newbie2", "_csrf": token},
                              follow_redirects=False)).status_code == 303


async def test_login_form_needs_its_csrf_token(client: AsyncTestClient) -> None:
    await client.get("/login")
    response = await client.post("/login", data={"login": "lead", "password": "demo"})
    assert response.status_code == 403
    assert "zabota_session" not in client.cookies


async def test_anonymous_csrf_token_is_bound_to_the_browser(client: AsyncTestClient) -> None:
    stolen = csrf_of((await client.get("/login")).text)
    client.cookies.clear()   # now another browser, with its own CSRF cookie
    await client.get("/login")
    response = await client.post("/login", data={"login": "lead", "password": "demo", "_csrf": stolen})
    assert response.status_code == 403
