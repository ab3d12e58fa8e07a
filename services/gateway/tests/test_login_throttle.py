"""Issue 8 §8: after 5 failed passwords for a login, or 20 from one address, in 15 minutes, further
tries wait (a clear, translated message saying how long). Counted in the gateway's database, so the
count survives a restart and covers replicas; a success resets the login's counter. SQLite and PostgreSQL
(`database_url`), time from an injectable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway import throttle
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.models import LoginFailure
from litestar.testing import AsyncTestClient
from shared.clock import FixedClock
from shared.db import Database
from sqlalchemy import func, select

from .conftest import csrf_of, gateway_settings

START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)


def app_on(database_url: str, clock: FixedClock):
    return create_app(gateway_settings(database_url), clock=clock, background=False, config=GatewayConfig())


async def try_login(client: AsyncTestClient, login: str, password: str, lang: str = "ru"):
    page = await client.get(f"/login?lang={lang}")
    return await client.post("/login", data={"login": login, "password": password, "_csrf": csrf_of(page.text),
                                             "next": "/"}, follow_redirects=False)


async def test_issue8_8_five_failures_for_a_login_make_the_next_try_wait(database_url: str) -> None:
    clock = FixedClock(START)
    async with AsyncTestClient(app_on(database_url, clock), base_url="http://127.0.0.1") as client:
        for minute in range(5):
            clock.set(START + timedelta(minutes=minute))
            response = await try_login(client, "manager1", f"wrong-{minute}")
            assert response.status_code == 422 and "Неверный логин или пароль." in response.text
        # The sixth try, even with the right password, waits: until the first failure is 15 minutes old.
        clock.set(START + timedelta(minutes=5))
        refused = await try_login(client, "manager1", "demo")
        assert refused.status_code == 429
        assert "Слишком много неудачных попыток входа. Попробуйте снова через 10 минут." in refused.text
        assert refused.headers["retry-after"] == "600"
        assert "zabota_session" not in client.cookies
        english = await try_login(client, "Manager1 ", "demo", lang="en")   # the same login, normalised
        assert english.status_code == 429
        assert "Too many failed attempts to sign in. Try again in 10 minutes." in english.text
        # Another login from the same address is not blocked by manager1's failures.
        assert (await try_login(client, "lead", "demo")).status_code == 303
        await client.post("/logout", data={"_csrf": csrf_of((await client.get("/")).text)})
        # A minute before the oldest failure leaves the window: one minute to wait.
        clock.set(START + timedelta(minutes=14, seconds=30))
        one = await try_login(client, "manager1", "demo", lang="en")
        assert one.status_code == 429 and "Try again in 1 minute." in one.text
        clock.set(START + timedelta(minutes=15))
        assert (await try_login(client, "manager1", "demo")).status_code == 303


async def test_issue8_8_a_success_resets_the_logins_counter(database_url: str) -> None:
    clock = FixedClock(START)
    db = Database(gateway_settings(database_url).database_url)
    try:
        async with AsyncTestClient(app_on(database_url, clock), base_url="http://127.0.0.1") as client:
            for _ in range(4):
                assert (await try_login(client, "analyst", "wrong")).status_code == 422
            assert (await try_login(client, "analyst", "demo")).status_code == 303
            await client.post("/logout", data={"_csrf": csrf_of((await client.get("/")).text)})
            async with db.transaction() as session:
                assert await session.scalar(select(func.count()).select_from(LoginFailure)
                                            .where(LoginFailure.login == "analyst")) == 0
            # Four more failures are allowed again before the fifth locks.
            for _ in range(4):
                assert (await try_login(client, "analyst", "wrong")).status_code == 422
            assert (await try_login(client, "analyst", "demo")).status_code == 303
    finally:
        await db.dispose()


async def test_issue8_8_twenty_failures_from_one_address_block_every_login_from_it(database_url: str) -> None:
    clock = FixedClock(START)
    async with AsyncTestClient(app_on(database_url, clock), base_url="http://127.0.0.1") as client:
        # 20 logins, 1 failure each (no single login reaches 5): the address is what counts.
        for i in range(20):
            clock.set(START + timedelta(seconds=30 * i))
            assert (await try_login(client, f"user{i}", "wrong")).status_code == 422
        refused = await try_login(client, "lead", "demo", lang="en")
        assert refused.status_code == 429 and "Try again in 6 minutes." in refused.text
        # The test client always comes from the address "testclient"; another address may still try.
        db = Database(gateway_settings(database_url).database_url)
        try:
            async with db.transaction() as session:
                config = GatewayConfig()
                assert await throttle.retry_after(session, config, "lead", "testclient", clock.now()) is not None
                assert await throttle.retry_after(session, config, "lead", "10.0.0.2", clock.now()) is None
        finally:
            await db.dispose()
        clock.set(START + timedelta(minutes=15))
        assert (await try_login(client, "lead", "demo")).status_code == 303


async def test_issue8_8_the_count_survives_a_restart(database_url: str) -> None:
    """A new process (another replica, or after a restart) on the same database sees the same count."""
    clock = FixedClock(START)
    async with AsyncTestClient(app_on(database_url, clock), base_url="http://127.0.0.1") as first:
        for _ in range(5):
            assert (await try_login(first, "growth", "wrong")).status_code == 422
    async with AsyncTestClient(app_on(database_url, clock), base_url="http://127.0.0.1") as second:
        assert (await try_login(second, "growth", "demo")).status_code == 429


async def test_issue8_8_old_failures_are_pruned(database_url: str) -> None:
    clock = FixedClock(START)
    db = Database(gateway_settings(database_url).database_url)
    try:
        async with AsyncTestClient(app_on(database_url, clock), base_url="http://127.0.0.1") as client:
            for _ in range(3):
                await try_login(client, "nobody", "wrong")
            clock.advance(timedelta(minutes=16))
            await try_login(client, "nobody", "wrong")
            async with db.transaction() as session:
                assert await session.scalar(select(func.count()).select_from(LoginFailure)) == 1
    finally:
        await db.dispose()
