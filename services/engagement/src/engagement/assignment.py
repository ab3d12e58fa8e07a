"""Automatic assignment (issue 11 §assignment): a new conversation goes round-robin to a care agent who serves
its client account (EN-6), is on shift and has fewer open conversations than their cap; senior agents and the
lead reassign by hand. No such agent → the conversation stays unassigned (the "unassigned" inbox filter)."""

from __future__ import annotations

from datetime import datetime

from shared.auth import Actor
from shared.clock import Clock
from shared.errors import Forbidden
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access, rules
from engagement.models import Agent, Conversation, StaffAccount
from shared import messages as M


async def auto_assign(session: AsyncSession, conversation: Conversation, now: datetime) -> str | None:
    rows = (await session.execute(
        select(Agent).join(StaffAccount, StaffAccount.login == Agent.login)
        .where(StaffAccount.account == conversation.account, Agent.on_shift.is_(True)))).scalars().all()
    if not rows:
        return None
    counts = dict((await session.execute(
        select(Conversation.assignee, func.count()).where(Conversation.assignee.in_([a.login for a in rows]),
                                                          Conversation.status == rules.OPEN)
        .group_by(Conversation.assignee))).all())
    chosen = rules.pick_round_robin([(a.login, counts.get(a.login, 0), a.cap if a.cap is not None
                                      else rules.DEFAULT_OPEN_CAP, a.last_assigned_at) for a in rows])
    if chosen is not None:
        conversation.assignee = chosen
        next(a for a in rows if a.login == chosen).last_assigned_at = now
    return chosen


async def set_agent(session: AsyncSession, actor: Actor, login: str, *, on_shift: bool | None, cap: int | None,
                    clear_cap: bool, clock: Clock, team: str | None = None) -> Agent:
    """An agent puts themselves on or off shift; the lead or a senior agent does it for anyone and sets caps;
    only the lead puts agents in teams (a senior agent's team decides whose report they read)."""
    manager = actor.role in (access.LEAD, access.INTEGRATION, access.SENIOR)
    own_shift = actor.role == access.AGENT and actor.login == login and cap is None and not clear_cap
    if not manager and not (own_shift and team is None):
        raise M.refusal(Forbidden, None, M.SHIFT_SENIOR)
    if team is not None and actor.role not in (access.LEAD, access.INTEGRATION):
        raise M.refusal(Forbidden, None, M.TEAMS_LEAD)
    if cap is not None and cap < 0:
        raise M.error("cap", M.CAP_NOT_NEGATIVE)
    if team is not None and len(team.strip()) > 100:
        raise M.error("team", M.TEAM_TOO_LONG)
    agent = await session.get(Agent, login)
    if agent is None:
        agent = Agent(login=login, on_shift=False, updated_at=clock.now(), updated_by=actor.login)
        session.add(agent)
    if on_shift is not None:
        agent.on_shift = on_shift
    if cap is not None or clear_cap:
        agent.cap = cap
    if team is not None:
        agent.team = team.strip() or None
    agent.updated_at, agent.updated_by = clock.now(), actor.login
    await session.flush()
    return agent


def agent_out(agent: Agent, accounts: list[str] | None = None) -> dict:
    out = {"login": agent.login, "on_shift": agent.on_shift, "team": agent.team,
           "cap": agent.cap if agent.cap is not None else rules.DEFAULT_OPEN_CAP, "cap_is_default": agent.cap is None}
    return out if accounts is None else out | {"accounts": accounts}


async def list_agents(session: AsyncSession) -> list[dict]:
    """Every agent with a shift/cap/team record or served accounts (the care team page), by login."""
    served: dict[str, list[str]] = {}
    for login, account in (await session.execute(select(StaffAccount.login, StaffAccount.account)
                                                 .order_by(StaffAccount.login, StaffAccount.account))).all():
        served.setdefault(login, []).append(account)
    agents = {a.login: a for a in (await session.execute(select(Agent))).scalars()}
    out = []
    for login in sorted(set(agents) | set(served)):
        agent = agents.get(login) or Agent(login=login, on_shift=False, cap=None, team=None)
        out.append(agent_out(agent, served.get(login, [])))
    return out


async def team_members(session: AsyncSession, login: str) -> list[str] | None:
    """EN-6: whose report a senior agent reads — the agents of their team, themselves included; None (everyone)
    when they have no team (an agency with one care team does not name it)."""
    team = (await session.execute(select(Agent.team).where(Agent.login == login))).scalar_one_or_none()
    if not team:
        return None
    return sorted(set((await session.execute(select(Agent.login).where(Agent.team == team))).scalars()) | {login})


async def team_of(session: AsyncSession, team: str) -> list[str]:
    return list((await session.execute(select(Agent.login).where(Agent.team == team).order_by(Agent.login))).scalars())
