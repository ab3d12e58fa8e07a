"""Staff who leave (issue 13 EN-12 "owner has left", CL-3's roster): the lead deactivates an account on the Staff
page — the person can no longer sign in, and the services' own rosters follow (engagement: group owners, whose
pending pushes then fail as "owner left"; clients: who gets new deals). Real engagement and clients processes."""

from __future__ import annotations

import pytest
from shared.settings import Settings

from .backends import Backend
from .conftest import csrf_of, down_service_urls, gateway_settings, password_of, sign_in

LEAD = ("lead", "lead")


@pytest.fixture
def urls(service_process, nats_server) -> dict[str, str]:
    return {name: service_process(name, nats_url=nats_server.url) for name in ("engagement", "clients")}


@pytest.fixture
def settings(tmp_path, urls) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", service_urls={**down_service_urls(), **urls})


async def test_the_lead_deactivates_a_manager_who_left_and_the_rosters_follow(client, urls) -> None:
    csrf = await sign_in(client, "lead")
    page = await client.get("/staff")
    assert page.status_code == 200 and "Отключить" in page.text
    assert 'action="/staff/lead/active"' not in page.text               # not one's own account

    gone = await client.post("/staff/manager1/active", data={"_csrf": csrf, "active": "0"}, headers={"HX-Request": "true"})
    assert gone.status_code == 200 and "отключён" in gone.text and 'role="alert"' not in gone.text
    assert Backend(urls["engagement"], "engagement").call("GET", "/staff/manager1/owner", as_=LEAD)["active"] is False
    roster = {s["login"]: s for s in Backend(urls["clients"], "clients").call("GET", "/staff", as_=LEAD)}
    assert roster["manager1"]["active"] is False

    await client.post("/logout", data={"_csrf": csrf})
    login_page = await client.get("/login")
    refused = await client.post("/login", data={"login": "manager1", "password": password_of("manager1"),
                                                "_csrf": csrf_of(login_page.text), "next": "/"}, follow_redirects=False)
    assert refused.status_code != 303                                   # they can no longer sign in

    csrf = await sign_in(client, "lead")
    back = await client.post("/staff/manager1/active", data={"_csrf": csrf, "active": "1"}, headers={"HX-Request": "true"})
    assert back.status_code == 200 and "снова в команде" in back.text
    assert Backend(urls["engagement"], "engagement").call("GET", "/staff/manager1/owner", as_=LEAD)["active"] is True
    # The chat where manager1's push reminders go (issue 13): a number, or nothing.
    bad = await client.post("/staff/manager1/telegram", data={"_csrf": csrf, "telegram_chat_id": "@dana"},
                            headers={"HX-Request": "true"})
    assert bad.status_code == 422 and "Id чата Telegram — это число" in bad.text
    linked = await client.post("/staff/manager1/telegram", data={"_csrf": csrf, "telegram_chat_id": "555123"},
                               headers={"HX-Request": "true"})
    assert linked.status_code == 200 and 'value="555123"' in linked.text
    owner = Backend(urls["engagement"], "engagement").call("GET", "/staff/manager1/owner", as_=LEAD)
    assert (owner["telegram_chat_id"], owner["active"]) == ("555123", True)
    assert owner["language"] == "ru"   # their reminders are written in the person's language
    own = await client.post("/staff/lead/active", data={"_csrf": csrf, "active": "0"}, headers={"HX-Request": "true"})
    assert "Нельзя отключить собственную учётную запись." in own.text
    assert (await client.get("/")).status_code == 200                 # still signed in


async def test_deactivation_stands_and_says_which_services_did_not_hear_of_it(tmp_path) -> None:
    from gateway.app import create_app
    from litestar.testing import AsyncTestClient

    app = create_app(gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"))   # every service down
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        csrf = await sign_in(client, "lead")
        answer = await client.post("/staff/manager1/active", data={"_csrf": csrf, "active": "0"},
                                   headers={"HX-Request": "true"})
        assert answer.status_code == 200 and 'role="alert"' in answer.text and "engagement, clients" in answer.text
        assert "отключён" in answer.text
