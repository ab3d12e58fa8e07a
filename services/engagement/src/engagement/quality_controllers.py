"""The care quality API under /api/engagement (issue 12): care settings per client account and the agents'
report. Who reads what (EN-6): the lead and analysts read every agent (or one team with `team=`); a senior
agent reads their team — every agent when they have none (an agency with a single care team need not name
it); a care agent reads only their own line. Only the lead changes care settings.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import get, post, put
from litestar.params import FromPath, Parameter
from shared.auth import Actor
from shared.errors import DomainError
from shared.service import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access, assignment, clocks, quality, rounds, services
from shared import messages as M

ANALYST = "analyst"
REPORT_READERS = (access.LEAD, access.INTEGRATION, access.SENIOR, ANALYST, access.AGENT)
MAX_REPORT_DAYS = 366
ROUND_OWNERS = ("content_manager", "ad_manager", "growth")  # who may own a client's check rounds


class CareSettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    target_s: int = clocks.DEFAULT_TARGET_SECONDS
    tz: str = ""
    hours: str = ""
    days: str = "1-7"
    holidays: list[str] = msgspec.field(default_factory=list)
    mode: str = "brand"
    contact_email: str = ""       # EN-5: the contact person told of a question by e-mail …
    contact_telegram: str = ""    # … or by Telegram (the chat id of their private chat with the agency's bot)


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _validate(data: CareSettingsIn) -> None:
    errors = []
    if not 30 <= data.target_s <= 7 * 24 * 3600:
        errors.append(M.item("target_s", M.CARE_TARGET))
    if data.mode not in ("brand", "rounds"):
        errors.append(M.item("mode", M.CARE_MODE))
    if data.contact_email.strip() and not EMAIL.match(data.contact_email.strip()):
        errors.append(M.item("contact_email", M.EMAIL))
    if data.contact_telegram.strip() and not data.contact_telegram.strip().lstrip("-").isdigit():
        errors.append(M.item("contact_telegram", M.TELEGRAM_CHAT_ID))
    for name, code, check in (
            ("tz", M.CARE_TZ, lambda: clocks.CareCalendar.from_strings(data.tz or "UTC")),
            ("hours", M.CARE_HOURS, lambda: clocks.CareCalendar.from_strings(hours=data.hours)),
            ("days", M.CARE_DAYS, lambda: clocks.CareCalendar.from_strings(days=data.days)),
            ("holidays", M.CARE_HOLIDAYS, lambda: clocks.CareCalendar.from_strings(holidays=",".join(data.holidays)))):
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any parse failure is the field's reason
            errors.append(M.item(name, code, reason=str(exc) or f"{name} is not valid"))
    if errors:
        raise DomainError(errors[0]["message"], errors=errors)


@get("/care-settings")
async def list_care_settings(session: AsyncSession, actor: Actor) -> list[dict[str, Any]]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.SENIOR, ANALYST)
    return await quality.all_settings(session)


@get("/care-settings/{account:str}")
async def get_care_settings(session: AsyncSession, actor: Actor, account: FromPath[str]) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.SENIOR, ANALYST)
    return quality.settings_out(await quality.settings_of(session, account))


@put("/care-settings/{account:str}")
async def put_care_settings(session: AsyncSession, actor: Actor, runtime: Runtime, account: FromPath[str],
                            data: CareSettingsIn) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION)
    _validate(data)
    row = await quality.put_settings(session, account, target_s=data.target_s, tz=data.tz, hours=data.hours,
                                     days=data.days, holidays=data.holidays, mode=data.mode, actor=actor.login,
                                     clock=runtime.clock, contact_email=data.contact_email,
                                     contact_telegram=data.contact_telegram)
    return quality.settings_out(row)


def _day(value: str | None, name: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise M.error(name, M.DATE_FORMAT) from exc


@get("/reports/agents")
async def agents_report(session: AsyncSession, actor: Actor, runtime: Runtime,
                        from_: Annotated[str | None, Parameter(query="from")] = None,
                        to: str | None = None, team: str | None = None,
                        account: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
    access.require_roles(actor, *REPORT_READERS)
    today = runtime.clock.now().astimezone(runtime.settings.calendar.tz).date()
    start = _day(from_, "from", today.replace(day=1))
    end = _day(to, "to", today)
    if end < start:
        raise M.error("to", M.END_BEFORE_START)
    if (end - start).days >= MAX_REPORT_DAYS:
        raise M.error("to", M.PERIOD_TOO_LONG, days=MAX_REPORT_DAYS)
    agents = await _readable_agents(session, actor, team or None)
    rows = await quality.agents_report(session, start=start, end=end, account=account or None, agents=agents,
                                       channel=channel or None)
    teams = {a["login"]: a["team"] for a in await assignment.list_agents(session)}
    return [r | {"team": teams.get(r["agent"])} for r in rows]


async def _readable_agents(session: AsyncSession, actor: Actor, team: str | None) -> list[str] | None:
    """The agents whose lines `actor` reads (None: everyone), narrowed to `team` when one is asked for."""
    if actor.role == access.AGENT:
        return [actor.login]
    readable = await assignment.team_members(session, actor.login) if actor.role == access.SENIOR else None
    if team is None:
        return readable
    members = await assignment.team_of(session, team)
    return members if readable is None else [m for m in members if m in readable]


@get("/check-rounds")
async def check_rounds(session: AsyncSession, actor: Actor, runtime: Runtime, date_: Annotated[
        str | None, Parameter(query="date")] = None, manager: str | None = None) -> list[dict[str, Any]]:
    """EN-4: a day's rounds. A content manager sees their own; the lead, analysts and senior agents every one."""
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.SENIOR, ANALYST, *ROUND_OWNERS)
    today = runtime.clock.now().astimezone(runtime.settings.calendar.tz).date()
    day = _day(date_, "date", today)
    if actor.role in ROUND_OWNERS:
        manager = actor.login
    return await rounds.list_rounds(session, day, manager or None)


@post("/conversations/{conversation_id:str}/checked", status_code=200)
async def mark_seen(session: AsyncSession, actor: Actor, runtime: Runtime,
                    conversation_id: FromPath[str]) -> dict[str, Any]:
    """EN-4: "seen" — nothing to answer (a thank-you, an emoji): the round no longer waits for it."""
    access.require_writer(actor)
    conversation = await services.get_conversation(session, actor, conversation_id)
    await rounds.mark_seen(session, conversation, runtime.clock)
    return {"id": conversation.id, "seen_until": conversation.seen_until}


class MarkIn(msgspec.Struct, forbid_unknown_fields=True):
    score: int
    note: str = ""


@post("/conversations/{conversation_id:str}/quality-mark", status_code=200)
async def quality_mark(session: AsyncSession, actor: Actor, runtime: Runtime, conversation_id: FromPath[str],
                       data: MarkIn) -> dict[str, Any]:
    """EN-6: senior agents (and the lead) mark single conversations; the report averages the marks."""
    access.require_roles(actor, access.LEAD, access.SENIOR)
    conversation = await services.get_conversation(session, actor, conversation_id)
    row = await quality.mark(session, conversation, by=actor.login, score=data.score, note=data.note,
                             clock=runtime.clock)
    return {"conversation_id": row.conversation_id, "agent": row.agent, "score": row.score, "note": row.note,
            "marked_by": row.marked_by}


quality_routes = [quality_mark, list_care_settings, get_care_settings, put_care_settings, agents_report, check_rounds, mark_seen]
