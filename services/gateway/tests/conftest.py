"""Gateway test fixtures: an app on the test's database, clients signed in as any role."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from gateway.app import create_app
from litestar import Litestar
from litestar.testing import AsyncTestClient
from shared.clock import utcnow
from shared.db import Database
from shared.settings import Settings
from shared.testing import free_port, make_settings

ROOT = Path(__file__).resolve().parents[3]

# The browser fixtures live in tests/e2e/conftest.py; a conftest's fixtures only reach tests below it,
# so load that module and re-export them here.
_spec = importlib.util.spec_from_file_location("zabota_e2e_conftest", ROOT / "tests" / "e2e" / "conftest.py")
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)
live_server = _e2e.live_server
browser_page = _e2e.browser_page

DEMO_PASSWORD = "demo"
# Logins of the demo team by role, plus accounts for the roles the demo team lacks.
ROLE_LOGINS = {"lead": "lead", "content_manager": "manager1", "ad_manager": "admanager", "growth": "growth",
               "care_agent": "agent1", "analyst": "analyst", "monitoring": "monitor1", "senior_agent": "senior1"}


def down_service_urls() -> dict[str, str]:
    """Service URLs on ports nothing listens on (another engineer may be running the real ones)."""
    return {name: f"http://127.0.0.1:{free_port()}" for name in ("clients", "content", "engagement", "payroll")}


def gateway_settings(database_url: str, **overrides: object) -> Settings:
    overrides.setdefault("demo", True)
    overrides.setdefault("service_urls", down_service_urls())
    return make_settings("gateway", database_url=database_url, **overrides)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return gateway_settings(database_url)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings, background=False)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The gateway's database, for the test's own reads and writes (the app runs on another event loop)."""
    database = Database(settings.database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def client(app: Litestar, db: Database) -> AsyncIterator[AsyncTestClient]:
    # http://127.0.0.1 is "plain http on localhost", where cookies are not Secure.
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        await add_role_accounts(db)
        yield client


async def add_role_accounts(db: Database) -> None:
    """Accounts for the roles the demo team lacks (the app has migrated and seeded by now)."""
    from gateway.staff import NewStaff, create_staff, list_staff

    async with db.transaction() as session:
        existing = {s.login for s in await list_staff(session)}
        for role, login in ROLE_LOGINS.items():
            if login not in existing:
                await create_staff(session, NewStaff(login, f"Test {role}", role, "long-password-1"), utcnow())


def password_of(login: str) -> str:
    return DEMO_PASSWORD if login in {"lead", "manager1", "admanager", "growth", "agent1", "analyst"} else "long-password-1"


def csrf_of(html: str) -> str:
    match = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def sign_in(client: AsyncTestClient, login: str, password: str | None = None) -> str:
    """Sign in through the login form; returns the CSRF token of the new session."""
    page = await client.get("/login")
    response = await client.post("/login", data={"login": login, "password": password or password_of(login),
                                                 "_csrf": csrf_of(page.text), "next": "/"},
                                 follow_redirects=False)
    assert response.status_code == 303, response.text
    dashboard = await client.get("/")
    assert dashboard.status_code == 200
    return csrf_of(dashboard.text)


SignIn = Callable[[str], Awaitable[str]]
