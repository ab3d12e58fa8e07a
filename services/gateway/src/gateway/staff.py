"""Staff accounts: create, authenticate, seed the demo team; and the `python -m gateway.staff` CLI.

    uv run python -m gateway.staff add aliya --role lead --name "Алия Сейтова"      # prompts twice
    echo "$PASSWORD" | uv run python -m gateway.staff add aliya --role lead --password-stdin
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import re
import sys
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from shared.errors import DomainError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.i18n import LANGUAGES, N_
from gateway.models import Staff
from gateway.roles import ROLES

log = logging.getLogger(__name__)

hasher = PasswordHasher()
# Verified when the login is unknown, so a wrong login costs as long as a wrong password
# and the timing does not tell which logins exist.
_DUMMY_HASH = hasher.hash("zabota: no such account")

LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 8


def normalize_login(login: str) -> str:
    return (login or "").strip().lower()


@dataclass
class NewStaff:
    login: str
    display_name: str
    role: str
    password: str
    language: str = "ru"

    def errors(self) -> list[dict[str, str]]:
        """Field-level problems; messages are msgids, translated where they are shown."""
        errors = []
        if not LOGIN_PATTERN.match(self.login):
            errors.append({"field": "login", "message": N_(
                "Use 2–64 characters: lowercase latin letters, digits, dot, dash or underscore.")})
        if not self.display_name.strip():
            errors.append({"field": "display_name", "message": N_("Enter the name colleagues will see.")})
        if self.role not in ROLES:
            errors.append({"field": "role", "message": N_("Choose a role.")})
        if len(self.password) < MIN_PASSWORD_LENGTH:
            errors.append({"field": "password", "message": N_("The password must have at least 8 characters.")})
        if self.language not in LANGUAGES:
            errors.append({"field": "language", "message": N_("Choose a language.")})
        return errors


async def create_staff(session: AsyncSession, new: NewStaff, now: datetime) -> Staff:
    """Add an account; raises DomainError with field messages on bad input or a taken login."""
    new.login = normalize_login(new.login)
    new.display_name = new.display_name.strip()
    errors = new.errors()
    if not errors and await _login_taken(session, new.login):
        errors.append({"field": "login", "message": N_("This login is already taken.")})
    if errors:
        raise DomainError("invalid staff account", errors=errors)
    staff = Staff(login=new.login, display_name=new.display_name, role=new.role,
                  password_hash=hasher.hash(new.password), active=True, language=new.language, created_at=now)
    session.add(staff)
    await session.flush()
    return staff


async def _login_taken(session: AsyncSession, login: str) -> bool:
    return bool(await session.scalar(select(func.count()).select_from(Staff).where(Staff.login == login)))


async def list_staff(session: AsyncSession) -> list[Staff]:
    return list(await session.scalars(select(Staff).order_by(Staff.role, Staff.login)))


async def authenticate(session: AsyncSession, login: str, password: str) -> Staff | None:
    """The active account with this login and password, else None (never says which part was wrong)."""
    staff = await session.scalar(select(Staff).where(Staff.login == normalize_login(login)))
    if staff is None or not staff.active:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(staff.password_hash, password):
        return None
    if hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = hasher.hash(password)
    return staff


def _verify(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# ------------------------------------------------------------------ demo team (ZABOTA_DEMO=1 only)

DEMO_STAFF: list[tuple[str, str, str]] = [
    ("lead", "lead", "Алия Сейтова"),
    ("manager1", "content_manager", "Дана Ахметова"),
    ("manager2", "content_manager", "Тимур Касымов"),
    ("admanager", "ad_manager", "Ерлан Нуров"),
    ("growth", "growth", "Мадина Абенова"),
    ("agent1", "care_agent", "Асель Жумабаева"),
    ("agent2", "care_agent", "Руслан Ким"),
    ("analyst", "analyst", "Ольга Ли"),
]


async def ensure_demo_staff(session: AsyncSession, password: str, now: datetime) -> list[str]:
    """Create the missing demo accounts; existing ones (and their passwords) are left alone."""
    existing = set(await session.scalars(select(Staff.login)))
    missing = [row for row in DEMO_STAFF if row[0] not in existing]
    if not missing:
        return []
    # One hash for all: the demo accounts share one password anyway, and hashing is deliberately slow.
    password_hash = hasher.hash(password)
    for login, role, name in missing:
        session.add(Staff(login=login, display_name=name, role=role, password_hash=password_hash,
                          active=True, language="ru", created_at=now))
    await session.flush()
    return [row[0] for row in missing]


async def seed_demo_staff(runtime) -> None:
    if not runtime.settings.demo:
        return
    password = os.environ.get("ZABOTA_DEMO_PASSWORD", "demo")
    try:
        async with runtime.db.transaction() as session:
            created = await ensure_demo_staff(session, password, runtime.clock.now())
    except IntegrityError:  # a replica starting beside us seeded them first
        created = []
    if created:
        log.info("demo staff created: %s", ", ".join(created))


# ------------------------------------------------------------------ CLI

def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat the password: "):
        raise SystemExit("The passwords differ.")
    return first


async def _add(args: argparse.Namespace, password: str) -> None:
    from shared.clock import SystemClock
    from shared.db import Database
    from shared.settings import Settings

    from shared import migrate

    settings = Settings.from_env("gateway")
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db, "gateway")
        async with db.transaction() as session:
            new = NewStaff(login=args.login, display_name=args.name or args.login, role=args.role,
                           password=password, language=args.language)
            staff = await create_staff(session, new, SystemClock().now())
        print(f"created {staff.login} ({staff.role})")
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.staff", description="Manage Zabota staff accounts.")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create a staff account")
    add.add_argument("login")
    add.add_argument("--role", required=True, choices=sorted(ROLES))
    add.add_argument("--name", help="display name (default: the login)")
    add.add_argument("--language", default="ru", choices=sorted(LANGUAGES))
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    args = parser.parse_args(argv)

    password = _read_password(args.password_stdin)
    try:
        asyncio.run(_add(args, password))
    except DomainError as exc:
        for error in exc.errors:
            print(f"{error['field']}: {error['message']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
