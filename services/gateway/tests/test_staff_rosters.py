"""The services' rosters follow the staff accounts (gateway/rosters.py; CL-3, EN-12): a manager added on the Staff
page gets deals at once, a person's language switch reaches their group-SOP reminders, and a change a service
did not hear of (it was down) reaches it through the supervised "staff rosters" loop. Real engagement and
clients processes; the gateway runs its background loops."""

from __future__ import annotations

import asyncio

import pytest
from gateway.app import create_app
from gateway.models import Staff
from litestar import Litestar
from shared.settings import Settings
from sqlalchemy import update

from .backends import Backend
from .conftest import csrf_of, down_service_urls, gateway_settings, sign_in

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
