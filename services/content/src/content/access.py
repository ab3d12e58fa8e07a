"""Who may see and change what in the content service: DOMAIN.md "Roles", enforced here because the API
is reachable without the gateway.

| actor | sees | changes |
|---|---|---|
| `lead` | everything | everything (settings, backdating) |
| `content_manager` | own deals' plans (the deal's responsible manager) | own plans, items, submissions, comments, publications |
| `analyst` | everything, read-only | nothing |
| integration (bearer without a staff actor) | everything | everything (it may backdate, as an import does) |
| other roles, signed webhooks | nothing | nothing |
| client | only the plan its signed link opens | its approval answer |

A deal an actor may not see answers 404 (a manager cannot probe another manager's deals); an action on
a visible deal the role may not take answers 403.
"""

from __future__ import annotations

from shared.auth import Actor
from shared.errors import Forbidden, NotFound

from content.models import Account
from shared import messages as M

LEAD, CONTENT_MANAGER, ANALYST, INTEGRATION = "lead", "content_manager", "analyst", "integration"
FULL = (LEAD, INTEGRATION)


def can_see(actor: Actor, account: Account | None) -> bool:
    if account is None:
        return False
    if actor.role in (LEAD, INTEGRATION, ANALYST):
        return True
    return actor.role == CONTENT_MANAGER and account.manager == actor.login


def require_visible(actor: Actor, account: Account | None, not_found: str = M.DEAL_NOT_FOUND) -> Account:
    """The account, if the actor may see it; else 404 `not_found` (the code of what was asked for)."""
    if not can_see(actor, account):
        raise M.refusal(NotFound, None, not_found)
    assert account is not None
    return account


def require_change(actor: Actor, account: Account | None, not_found: str = M.DEAL_NOT_FOUND) -> Account:
    """Plans, items, submissions, comments, publications: the lead, integrations, the responsible manager."""
    account = require_visible(actor, account, not_found)
    if actor.role in FULL or (actor.role == CONTENT_MANAGER and account.manager == actor.login):
        return account
    raise M.refusal(Forbidden, None, M.ROLE_MAY_NOT_CHANGE_CONTENT, role=actor.role)


def require_lead(actor: Actor) -> None:
    if actor.role not in FULL:
        raise M.refusal(Forbidden, None, M.ROLE_MAY_NOT, role=actor.role)


def may_backdate(actor: Actor) -> bool:
    """Backdating a fact is for the lead and integrations (imports, the publishing integration): a manager
    reporting their own work is timed by the clock, so a deadline cannot be met after the fact."""
    return actor.role in FULL
