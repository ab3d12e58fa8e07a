"""The services' rosters kept in step with the staff accounts (CL-3, EN-12).

Whether someone works here, under which name, role and language is the gateway's to say; two services keep
a roster of their own so they work while the gateway is down: clients (the content, ad and growth managers
new deals are assigned to, CL-3) and engagement (the group owners, whose reminders are written in their
language and whose pending pushes fail as "owner left", EN-12).

The Staff page tells them at once when the lead adds or (de)activates someone, and a person's language
switch wakes this loop; the supervised "staff rosters" loop then compares every `REFRESH_SECONDS` and sends
what differs, so a service that did not answer at the moment catches up by itself (the PUTs are
idempotent). Choices: a manager added on the Staff page joins the clients roster (before, only the API
did that, and a new manager never got a deal); engagement's roster holds only the people it has heard of
(a linked reminder chat, a deactivation) — nobody is made a group owner by being synchronised.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select

from gateway.models import Staff
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0
CLIENTS_ROLES = ("content_manager", "ad_manager", "growth")   # the clients service assigns deals to these


def clients_entry(member: Staff) -> dict[str, Any]:
    """What the clients roster should say of a manager."""
    return {"role": member.role, "full_name": member.display_name, "active": member.active}


def owner_entry(member: Staff) -> dict[str, Any]:
    """What engagement's owners' roster should say of a person (their reminder chat is set on the Staff page)."""
    return {"active": member.active, "full_name": member.display_name, "language": member.language}


def clients_updates(staff: list[Staff], roster: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """login → the entry to put, for every manager the clients roster lacks or describes otherwise."""
    known = {entry["login"]: entry for entry in roster}
    updates = {}
    for member in staff:
        if member.role not in CLIENTS_ROLES:
            continue
        wanted = clients_entry(member)
        have = known.get(member.login)
        if have is None or any(have.get(key) != value for key, value in wanted.items()):
            updates[member.login] = wanted
    return updates


def owner_updates(staff: list[Staff], owners: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """login → the entry to put, for every owner engagement knows whose name, language or activity changed."""
    by_login = {member.login: member for member in staff}
    updates = {}
    for owner in owners:
        member = by_login.get(owner["login"])
        if member is None:
            continue
        wanted = owner_entry(member)
        if any(owner.get(key) != value for key, value in wanted.items()):
            updates[member.login] = wanted
    return updates


async def _put_all(services: ServiceClient, service: str, path: str,
                   updates: dict[str, dict[str, Any]]) -> int:
    sent = 0
    for login, body in updates.items():
        try:
            await services.put(service, path.format(login=login), json=body)
            sent += 1
        except (ServiceError, ServiceUnavailable) as exc:
            log.warning("%s roster: %s not updated: %s", service, login, exc)
    return sent


async def sync(runtime: Any) -> int:
    """Send each service's roster what differs from the staff accounts; the number of entries sent."""
    http = runtime.state.get("http")
    if http is None:
        return 0
    async with runtime.db.transaction() as session:
        staff = list((await session.execute(select(Staff))).scalars())
    services = ServiceClient(http, runtime.settings, None)   # the integration token: the gateway itself
    sent = 0
    try:
        roster = await services.get("clients", "/staff")
        sent += await _put_all(services, "clients", "/staff/{login}", clients_updates(staff, roster))
    except (ServiceError, ServiceUnavailable) as exc:
        log.info("clients roster not compared: %s", exc)
    try:
        owners = await services.get("engagement", "/owners")
        sent += await _put_all(services, "engagement", "/staff/{login}/owner", owner_updates(staff, owners))
    except (ServiceError, ServiceUnavailable) as exc:
        log.info("owners' roster not compared: %s", exc)
    return sent


def wake(state: Any) -> None:
    """Compare now (a person switched language); a no-op where the loop does not run."""
    event = state.get("rosters_wake")
    if event is not None:
        event.set()


async def follow(runtime: Any) -> None:
    """The gateway's supervised "staff rosters" loop."""
    event = runtime.state.setdefault("rosters_wake", asyncio.Event())
    while True:
        event.clear()
        await sync(runtime)
        try:
            await asyncio.wait_for(event.wait(), REFRESH_SECONDS)
        except TimeoutError:
            pass
