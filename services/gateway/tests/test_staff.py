"""Staff accounts: demo team, the CLI, password hashing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from gateway.app import create_app
from gateway.models import Staff
from gateway.staff import DEMO_STAFF, NewStaff, authenticate, create_staff
from litestar.testing import AsyncTestClient
from shared.clock import utcnow
from shared.db import Database
from shared.errors import DomainError
from sqlalchemy import select

from .conftest import gateway_settings


async def logins(db: Database) -> dict[str, str]:
    async with db.transaction() as session:
        return {s.login: s.role for s in await session.scalars(select(Staff))}


async def test_demo_team_is_created_once_with_argon2_hashes(database_url: str, db: Database) -> None:
    settings = gateway_settings(database_url)
    for _ in range(2):   # a restart does not duplicate or reset anything
        async with AsyncTestClient(create_app(settings, background=False)):
            pass
    assert await logins(db) == {login: role for login, role, _name in DEMO_STAFF}
    async with db.transaction() as session:
        lead = await session.scalar(select(Staff).where(Staff.login == "lead"))
        assert lead.password_hash.startswith("$argon2id$")
        assert await authenticate(session, "lead", "demo") is not None


async def test_demo_password_comes_from_the_environment(database_url: str, db: Database,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZABOTA_DEMO_PASSWORD", "s3cret-demo")
    async with AsyncTestClient(create_app(gateway_settings(database_url), background=False)):
        pass
    async with db.transaction() as session:
        assert await authenticate(session, "manager2", "s3cret-demo") is not None
        assert await authenticate(session, "manager2", "demo") is None


async def test_no_accounts_exist_outside_demo_mode(database_url: str, db: Database) -> None:
    async with AsyncTestClient(create_app(gateway_settings(database_url, demo=False), background=False)):
        pass
    assert await logins(db) == {}


async def test_create_staff_rejects_a_taken_login(database_url: str, db: Database) -> None:
    async with AsyncTestClient(create_app(gateway_settings(database_url, demo=False), background=False)):
        pass
    async with db.transaction() as session:
        await create_staff(session, NewStaff("aliya", "Алия", "lead", "long-password"), utcnow())
    async with db.transaction() as session:
        with pytest.raises(DomainError) as taken:
            await create_staff(session, NewStaff(" ALIYA ", "Другая", "analyst", "long-password"), utcnow())
    assert taken.value.errors == [{"field": "login", "message": "This login is already taken."}]


def test_cli_adds_an_account_with_the_password_from_stdin(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gw.db'}",
           "ZABOTA_VAR_DIR": str(tmp_path)}

    def cli(login: str, password: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "gateway.staff", "add", login, "--role", "lead", "--name", "Алия Сейтова",
                   "--password-stdin"]
        return subprocess.run(command, input=password + "\n", capture_output=True, text=True, env=env,
                              timeout=120, check=False)

    done = cli("aliya", "correct horse battery")
    assert done.returncode == 0, done.stderr
    assert "created aliya (lead)" in done.stdout
    again = cli("aliya", "correct horse battery")
    assert again.returncode == 1 and "login: This login is already taken." in again.stderr
    short = cli("bob", "short")
    assert short.returncode == 1 and "password" in short.stderr
