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

LEAD, CONTENT_MANAGER, ANALYST, INTEGRATION = "lead", "content_manager", "analyst", "integration"
FULL = (LEAD, INTEGRATION)


def can_see(actor: Actor, account: Account | None) -> bool:
    if account is None:
        return False
    if actor.role in (LEAD, INTEGRATION, ANALYST):
        return True
    return actor.role == CONTENT_MANAGER and account.manager == actor.login


def require_visible(actor: Actor, account: Account | None, what: str = "deal") -> Account:
    if not can_see(actor, account):
        raise NotFound(f"{what} not found")
    assert account is not None
    return account


def require_change(actor: Actor, account: Account | None, what: str = "deal") -> Account:
    """Plans, items, submissions, comments, publications: the lead, integrations, the responsible manager."""
    account = require_visible(actor, account, what)
    if actor.role in FULL or (actor.role == CONTENT_MANAGER and account.manager == actor.login):
        return account
    raise Forbidden(f"role {actor.role} may not change this deal's content")


def require_lead(actor: Actor) -> None:
    if actor.role not in FULL:
        raise Forbidden(f"role {actor.role} may not do this")


def may_backdate(actor: Actor) -> bool:
    """Backdating a fact is for the lead and integrations (imports, the publishing integration): a manager
    reporting their own work is timed by the clock, so a deadline cannot be met after the fact."""
    return actor.role in FULL
