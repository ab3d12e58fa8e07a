"""Staff who leave (issue 13 EN-12 "owner has left", CL-3's roster): the lead deactivates an account on the Staff
page — the person can no longer sign in, and the services' own rosters follow (engagement: group owners, whose
pending pushes then fail as "owner left"; clients: who gets new deals). A manager added on the Staff page gets deals at
once, a person's language switch reaches their reminders, and a change a service did not hear of (it was down)
reaches it through the supervised "staff rosters" loop (gateway/rosters.py). Real engagement and clients processes;
the gateway runs its background loops."""

from __future__ import annotations

import asyncio

import pytest
from gateway.app import create_app
from gateway.models import Staff
from litestar import Litestar
from shared.settings import Settings
from sqlalchemy import update

from .backends import Backend
from .conftest import csrf_of, down_service_urls, gateway_settings, password_of, sign_in

LEAD = ("lead", "lead")


@pytest.fixture
def urls(service_process, nats_server) -> dict[str, str]:
    return {name: service_process(name, nats_url=nats_server.url) for name in ("engagement", "clients")}


@pytest.fixture
def settings(tmp_path, urls) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", service_urls={**down_service_urls(), **urls})


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings, background=True)   # with its loops, "staff rosters" among them


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
    from litestar.testing import AsyncTestClient

    app = create_app(gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"))   # every service down
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        csrf = await sign_in(client, "lead")
        answer = await client.post("/staff/manager1/active", data={"_csrf": csrf, "active": "0"},
                                   headers={"HX-Request": "true"})
        assert answer.status_code == 200 and 'role="alert"' in answer.text and "engagement, clients" in answer.text
        assert "отключён" in answer.text


async def until(check, seconds: float = 60) -> None:
    """Until the services' roster says what `check` wants (the loop runs on the app's own event loop)."""
    async with asyncio.timeout(seconds):
        while not await asyncio.to_thread(check):
            await asyncio.sleep(0.1)


async def test_rosters_follow_new_managers_language_switches_and_changes_a_service_missed(client, urls, db) -> None:
    clients = Backend(urls["clients"], "clients")
    engagement = Backend(urls["engagement"], "engagement")
    csrf = await sign_in(client, "lead")

    # A content manager added on the Staff page is on the clients roster at once: new deals can go to her.
    added = await client.post("/staff", data={"_csrf": csrf, "login": "dana", "display_name": "Дана Ержанова",
                                              "role": "content_manager", "language": "kk", "password": "long-password-1"},
                              headers={"HX-Request": "true"})
    assert added.status_code == 200 and 'role="alert"' not in added.text
    roster = {s["login"]: s for s in clients.call("GET", "/staff", as_=LEAD)}
    assert roster["dana"] == {"login": "dana", "role": "content_manager", "full_name": "Дана Ержанова", "active": True}
    assert "lead" not in roster and "agent1" not in roster     # only the roles deals are assigned to

    # manager1 gets push reminders in a linked chat (in Russian); she switches to Chinese: they follow.
    linked = await client.post("/staff/manager1/telegram", data={"_csrf": csrf, "telegram_chat_id": "555123"},
                               headers={"HX-Request": "true"})
    assert linked.status_code == 200
    assert engagement.call("GET", "/staff/manager1/owner", as_=LEAD)["language"] == "ru"
    await client.post("/logout", data={"_csrf": csrf})
    await sign_in(client, "manager1")
    assert (await client.get("/?lang=zh")).status_code == 200
    await until(lambda: engagement.call("GET", "/staff/manager1/owner", as_=LEAD)["language"] == "zh")
    owner = engagement.call("GET", "/staff/manager1/owner", as_=LEAD)
    assert (owner["telegram_chat_id"], owner["active"]) == ("555123", True)   # the chat link is kept

    # Changes no service heard of (as if both were down when they were made) reach them by the loop.
    async with db.transaction() as session:
        await session.execute(update(Staff).where(Staff.login == "manager1").values(
            display_name="Айгерим Нурлановна"))
        await session.execute(update(Staff).where(Staff.login == "admanager").values(active=False))
    assert (await client.get("/?lang=en")).status_code == 200      # a switch wakes the loop; else within a minute
    await until(lambda: {s["login"]: s for s in clients.call("GET", "/staff", as_=LEAD)}["admanager"]["active"] is False)
    roster = {s["login"]: s for s in clients.call("GET", "/staff", as_=LEAD)}
    assert roster["manager1"]["full_name"] == "Айгерим Нурлановна"
    await until(lambda: engagement.call("GET", "/staff/manager1/owner", as_=LEAD)["full_name"] == "Айгерим Нурлановна")
    assert engagement.call("GET", "/staff/manager1/owner", as_=LEAD)["language"] == "en"
    # Nobody became a group owner by being synchronised: engagement's roster holds whom it had heard of.
    assert {o["login"] for o in engagement.call("GET", "/owners", as_=LEAD)} == {"manager1"}
    assert csrf_of((await client.get("/")).text)
