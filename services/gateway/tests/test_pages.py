"""Pages: full page or fragment (DESIGN 7), language, local time, forms, services that are down."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from gateway.app import spec
from gateway.guards import page_guard
from gateway.models import Staff
from gateway.rendering import page
from gateway.roles import ALL_STAFF, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.sessions import SignedIn, WebSessionMiddleware
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from shared.auth import Actor, read_assertion
from shared.db import Database
from shared.service import create_service_app
from shared.testing import eventually
from sqlalchemy import select

from .conftest import csrf_of, down_service_urls, gateway_settings, sign_in
from .upstream import create_upstream


async def test_dashboard_is_a_full_page_or_only_its_block_for_htmx(client: AsyncTestClient) -> None:
    await sign_in(client, "manager1")
    full = await client.get("/")
    assert full.text.lstrip().startswith("<!doctype html>") and "На этой неделе больше ничего" in full.text
    fragment = await client.get("/", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and "<nav" not in fragment.text
    assert "На этой неделе больше ничего" in fragment.text
    assert full.headers["vary"] == fragment.headers["vary"] == "HX-Request"
    # A boosted link wants the whole page.
    boosted = await client.get("/", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.text


async def test_layout_carries_csrf_for_htmx_and_a_real_logout_form(client: AsyncTestClient) -> None:
    token = await sign_in(client, "agent1")
    html = (await client.get("/")).text
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in html
    assert '<form method="post" action="/logout"' in html
    assert "/static/js/htmx-2.0.11.min.js" in html


async def test_static_files_are_served(client: AsyncTestClient) -> None:
    js = await client.get("/static/js/htmx-2.0.11.min.js")
    assert js.status_code == 200 and b"htmx" in js.content[:200]
    assert (await client.get("/static/css/app.css")).status_code == 200


async def test_language_defaults_to_russian_and_switches_per_session(client: AsyncTestClient) -> None:
    assert "Вход в Zabota" in (await client.get("/login")).text
    assert "Sign in to Zabota" in (await client.get("/login?lang=en")).text
    assert "Sign in to Zabota" in (await client.get("/login")).text   # remembered for the visitor
    await sign_in(client, "analyst")   # chose English before signing in: stays English
    assert "Sign out" in (await client.get("/")).text
    assert "Выйти" in (await client.get("/?lang=ru")).text
    assert "Выйти" in (await client.get("/")).text   # stored in the session
    assert "Sign out" in (await client.get("/?lang=en")).text
    assert "Sign out" in (await client.get("/?lang=xx")).text   # an unknown code changes nothing


async def test_sign_in_uses_the_account_language_when_none_was_chosen(db: Database, client: AsyncTestClient) -> None:
    async with db.transaction() as session:
        (await session.scalar(select(Staff).where(Staff.login == "growth"))).language = "en"
    await sign_in(client, "growth")
    assert "Sign out" in (await client.get("/")).text


async def test_a_language_chosen_while_signed_in_is_remembered_for_the_person(db: Database,
                                                                              client: AsyncTestClient) -> None:
    csrf = await sign_in(client, "growth")
    assert "Sign out" in (await client.get("/?lang=en")).text
    async with db.transaction() as session:
        assert (await session.scalar(select(Staff).where(Staff.login == "growth"))).language == "en"
    await client.post("/logout", data={"_csrf": csrf})
    client.cookies.clear()   # another browser: no language cookie
    await sign_in(client, "growth")
    assert "Sign out" in (await client.get("/")).text


async def test_local_filter_shows_utc_in_the_agency_time_zone(app) -> None:
    env = app.template_engine.engine
    # 19:30 UTC is 00:30 next day in Almaty (UTC+5).
    assert env.from_string("{{ ts|local }}").render(ts=datetime(2026, 3, 2, 19, 30, tzinfo=UTC)) == "03.03.2026 00:30"
    assert env.from_string("{{ ts|local('%H:%M') }}").render(ts=datetime(2026, 3, 2, 5, 0, tzinfo=UTC)) == "10:00"
    assert env.from_string("{{ ts|local }}").render(ts=None) == ""


async def test_staff_form_shows_field_messages_and_keeps_input(client: AsyncTestClient) -> None:
    token = await sign_in(client, "lead")
    response = await client.post("/staff?lang=en", data={"_csrf": token, "login": "Bad Login!", "display_name": " ",
                                                          "role": "boss", "password": "short", "language": "ru"})
    assert response.status_code == 422
    for message in ("lowercase latin letters", "Enter the name colleagues will see.", "Choose a role.",
                    "at least 8 characters"):
        assert message in response.text
    assert 'value="bad login!"' in response.text and "short" not in response.text
    taken = await client.post("/staff", data={"_csrf": token, "login": "manager1", "display_name": "X",
                                              "role": "analyst", "password": "long-password", "language": "ru"},
                              headers={"HX-Request": "true"})
    assert taken.status_code == 422 and "This login is already taken." in taken.text
    assert taken.headers["hx-retarget"] == "#staff-form" and "<table" not in taken.text


async def test_staff_form_adds_an_account_that_can_sign_in(client: AsyncTestClient) -> None:
    token = await sign_in(client, "lead")
    response = await client.post("/staff?lang=en", headers={"HX-Request": "true"},
                                 data={"_csrf": token, "login": "dana.k", "display_name": "Дана К.",
                                       "role": "senior_agent", "password": "a-long-password", "language": "en"})
    assert response.status_code == 200
    assert "Account dana.k created." in response.text and "<table" in response.text and "<html" not in response.text
    client.cookies.clear()
    await sign_in(client, "dana.k", "a-long-password")


async def test_status_page_shows_which_services_are_unavailable(database_url: str, live_server) -> None:
    clients_url = live_server(create_upstream())
    settings = gateway_settings(database_url, service_urls={**down_service_urls(), "clients": clients_url})
    from gateway.app import create_app

    async with AsyncTestClient(create_app(settings, background=False), base_url="http://127.0.0.1") as client:
        await sign_in(client, "lead")
        response = await client.get("/status?lang=en")
    assert response.status_code == 200
    assert "available</span> <strong>Clients and deals</strong> <code>clients</code>" in response.text
    for name in ("Content", "Care inbox", "Payroll"):   # services by the names people know (issue 9)
        assert f"The {name} service is not answering right now." in response.text


# ------------------------------------------------------------------ ServiceClient

@get("/probe/{service:str}", name="probe", opt=allow(ALL_STAFF))
async def probe(request: Request, service: FromPath[str], services: NamedDependency[ServiceClient]) -> Response:
    """A page that shows data from a service, as the real pages will."""
    data = await services.get(service, "/echo/probe", params={"q": "1"})
    actor = read_assertion(data["headers"]["x-zabota-assertion"], audience=service,
                           secret=request.app.state.settings.gateway_secret)
    return page(request, "pages/error.html", {"title": "probe", "message": actor.login})


@pytest.fixture
async def probe_client(database_url: str, live_server) -> AsyncTestClient:
    clients_url = live_server(create_upstream())
    settings = gateway_settings(database_url, service_urls={**down_service_urls(), "clients": clients_url})
    service_spec = spec(settings)
    probe_pages = Router(path="/", route_handlers=[probe], guards=[page_guard], middleware=[WebSessionMiddleware])
    service_spec.public_routes = [probe_pages, *service_spec.public_routes]
    app = create_service_app(service_spec, settings=settings, background=False)
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        yield client


async def test_page_calls_a_service_as_the_signed_in_user(probe_client: AsyncTestClient) -> None:
    await sign_in(probe_client, "manager1")
    response = await probe_client.get("/probe/clients")
    assert response.status_code == 200 and "<p>manager1</p>" in response.text


async def test_page_shows_service_unavailable_instead_of_an_error(probe_client: AsyncTestClient) -> None:
    await sign_in(probe_client, "manager1")
    response = await probe_client.get("/probe/content?lang=en")
    assert response.status_code == 503
    assert "Service unavailable" in response.text and "The Content service is not answering" in response.text
    assert "<nav" in response.text   # inside the normal layout
    fragment = await probe_client.get("/probe/content", headers={"HX-Request": "true"})
    assert fragment.status_code == 503 and "<html" not in fragment.text
    assert fragment.headers["hx-retarget"] == "#content"


async def test_service_client_sends_the_gateway_token_and_the_actor(live_server) -> None:
    clients_url = live_server(create_upstream())
    settings = gateway_settings("sqlite+aiosqlite://", service_urls={"clients": clients_url},
                                api_token="gateway-token,partner-token")
    async with httpx.AsyncClient() as http:
        services = ServiceClient(http, settings, SignedIn(1, "manager1", "Дана", "content_manager"))
        seen = await services.post("clients", "/echo/deals", json={"a": 1})
        assert seen["raw_path"] == "/api/clients/echo/deals"
        # issue 8 item 1: the staff identity travels only as the gateway's signed assertion for this service
        assert "authorization" not in seen["headers"] and "x-zabota-actor" not in seen["headers"]
        assert read_assertion(seen["headers"]["x-zabota-assertion"], audience="clients",
                              secret=settings.gateway_secret) == Actor("manager1", "content_manager")
        with pytest.raises(ServiceError) as refused:
            await services.post("clients", "/invalid", json={})
        assert refused.value.status_code == 422 and refused.value.field_errors() == {"client.phone": "bad phone"}
        with pytest.raises(ServiceUnavailable):
            await services.get("clients", "/boom")   # a failing service is treated as unavailable
        assert await services.get("clients", "/empty") is None
        with pytest.raises(ValueError):
            await services.get("gateway", "/x")


async def test_status_page_shows_dead_letters_and_the_lead_replays_one(database_url: str, service_process,
                                                                       nats_server) -> None:
    """DESIGN 4: a message a consumer gave up on is visible to operators, with its reason, and replayable."""
    from gateway.app import create_app
    from shared.bus import Bus, Outgoing

    payroll_url = service_process("payroll", nats_url=nats_server.url, env={"ZABOTA_MAX_DELIVER": "2",
                                                                             "ZABOTA_DEAD_LETTER_AFTER_SECONDS": "0"})
    bus = Bus(nats_server.url, "partner")
    await bus.connect(retry_forever=False)
    # A partner publishes a renewal that does not fit the event's schema: payroll can never apply it.
    await bus.publish_many([Outgoing("clients.deal.renewed.v1", b'{"manager": 7}', {"Nats-Msg-Id": "bad-1"})])
    await bus.drain()
    settings = gateway_settings(database_url, service_urls={**down_service_urls(), "payroll": payroll_url})
    async with AsyncTestClient(create_app(settings, background=False), base_url="http://127.0.0.1") as client:
        token = await sign_in(client, "lead")

        async def shown():
            page = await client.get("/status?lang=en")
            return page if "dead letters" in page.text else None

        page = await eventually(shown, message="the dead letter on the status page")
        assert "clients.deal.renewed.v1" in page.text and "payroll-clients" in page.text
        letter_id = re.search(r'/status/dead-letters/payroll/(\d+)/replay', page.text).group(1)
        replay = await client.post(f"/status/dead-letters/payroll/{letter_id}/replay",
                                   data={"_csrf": token}, follow_redirects=False)
        assert replay.status_code == 303 and replay.headers["location"] == "/status"
        await sign_in(client, "manager1")
        assert (await client.post(f"/status/dead-letters/payroll/{letter_id}/replay",
                                  data={"_csrf": csrf_of((await client.get("/")).text)})).status_code == 403
