"""Who may see and change what in the care inbox (DOMAIN "Roles", EN-6), enforced here because the API is
reachable without the gateway.

| actor | sees | changes |
|---|---|---|
| `lead`, integration | everything | everything; only the lead creates channel accounts |
| `senior_agent` | all of the inbox | assignment, which accounts agents serve, replies, tags, status |
| `care_agent` | conversations of the client accounts they serve (`staff_accounts`) | replies, tags, status; takes an unassigned conversation |
| `monitoring` | all of the inbox, read-only; the mentions queue, sources, keyword rules | triage: convert / dismiss mentions, enter mentions, sources and rules (engagement.monitoring) |
| `content_manager`, `ad_manager`, `growth` | conversations of the clients they manage (EN-4 check rounds) | replies, status, "seen" |
| other staff roles | nothing (404) | nothing |
| a signed payment webhook | nothing (403) | nothing |

A conversation an actor may not see answers 404, as if it did not exist.
"""

from __future__ import annotations

from typing import Any

from shared.auth import Actor
from shared.errors import Forbidden, NotFound
from sqlalchemy import false, select, true

from engagement.models import Conversation, StaffAccount
from shared import messages as M

LEAD, SENIOR, AGENT, MONITORING, INTEGRATION = "lead", "senior_agent", "care_agent", "monitoring", "integration"
WEBHOOK = "webhook"   # a payment provider's body signature (shared/auth.py): nothing here
SEES_ALL = (LEAD, INTEGRATION, SENIOR, MONITORING)
MANAGERS = ("content_manager", "ad_manager", "growth")  # EN-4: they check their own clients' accounts
WRITERS = (LEAD, INTEGRATION, SENIOR, AGENT, *MANAGERS)


def visible_conversations(actor: Actor) -> Any:
    if actor.role == WEBHOOK:   # a payment provider's signature is nobody in the inbox (issue 8 matrix)
        raise M.refusal(Forbidden, None, M.WEBHOOK_NO_INBOX)
    if actor.role in SEES_ALL:
        return true()
    if actor.role == AGENT:
        served = select(StaffAccount.account).where(StaffAccount.login == actor.login)
        return Conversation.account.in_(served)
    if actor.role in MANAGERS:
        from engagement.quality_models import ClientAccount
        managed = select(ClientAccount.deal_id).where(ClientAccount.manager == actor.login)
        return Conversation.account.in_(managed)
    return false()


async def require_visible(session: Any, actor: Actor, conversation: Conversation | None) -> Conversation:
    if conversation is None:
        raise M.refusal(NotFound, None, M.CONVERSATION_NOT_FOUND)
    if actor.role in SEES_ALL:
        return conversation
    if actor.role == AGENT:
        served = await session.get(StaffAccount, (actor.login, conversation.account))
        if served is not None:
            return conversation
    if actor.role in MANAGERS:
        from engagement.quality_models import ClientAccount
        account = await session.get(ClientAccount, conversation.account)
        if account is not None and account.manager == actor.login:
            return conversation
    raise M.refusal(NotFound, None, M.CONVERSATION_NOT_FOUND)


def require_writer(actor: Actor) -> None:
    if actor.role not in WRITERS:
        raise M.refusal(Forbidden, None, M.ROLE_MAY_NOT_CHANGE_CONVERSATIONS, role=actor.role)


def require_assigner(actor: Actor, conversation: Conversation, agent: str | None) -> None:
    """Senior agents and the lead (re)assign; a care agent may only take an unassigned conversation."""
    if actor.role in (LEAD, INTEGRATION, SENIOR):
        return
    if actor.role == AGENT and conversation.assignee is None and agent == actor.login:
        return
    raise M.refusal(Forbidden, None, M.REASSIGN_SENIOR)


def require_roles(actor: Actor, *roles: str) -> None:
    if actor.role not in roles:
        raise M.refusal(Forbidden, None, M.ROLE_MAY_NOT, role=actor.role)
