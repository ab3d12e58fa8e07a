"""Automatic assignment (issue 11 §assignment): a new conversation goes round-robin to a care agent who serves
its client account (EN-6), is on shift and has fewer open conversations than their cap; senior agents and the
lead reassign by hand. No such agent → the conversation stays unassigned (the "unassigned" inbox filter)."""

from __future__ import annotations

from datetime import datetime

from shared.auth import Actor
from shared.clock import Clock
from shared.errors import DomainError, Forbidden
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access, rules
from engagement.models import Agent, Conversation, StaffAccount


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
                    clear_cap: bool, clock: Clock) -> Agent:
    """An agent puts themselves on or off shift; the lead or a senior agent does it for anyone and sets caps."""
    manager = actor.role in (access.LEAD, access.INTEGRATION, access.SENIOR)
    if not manager and not (actor.role == access.AGENT and actor.login == login and cap is None and not clear_cap):
        raise Forbidden("only a senior agent or the lead changes another agent's shift or cap")
    if cap is not None and cap < 0:
        raise DomainError("cap must be 0 or more", field="cap")
    agent = await session.get(Agent, login)
    if agent is None:
        agent = Agent(login=login, on_shift=False, updated_at=clock.now(), updated_by=actor.login)
        session.add(agent)
    if on_shift is not None:
        agent.on_shift = on_shift
    if cap is not None or clear_cap:
        agent.cap = cap
    agent.updated_at, agent.updated_by = clock.now(), actor.login
    await session.flush()
    return agent


def agent_out(agent: Agent) -> dict:
    return {"login": agent.login, "on_shift": agent.on_shift,
            "cap": agent.cap if agent.cap is not None else rules.DEFAULT_OPEN_CAP, "cap_is_default": agent.cap is None}
