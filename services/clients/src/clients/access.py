"""Who may see and change what in the clients service: DOMAIN.md "Roles", enforced here, not only in the
gateway, because the API is reachable without it.

| actor | sees | changes |
|---|---|---|
| `lead` | everything | everything (settings, roster, waivers, reassignment) |
| `content_manager` | own deals (responsible manager), own leads | own deals: stages, questionnaire, first post, attachments, renewal answers, the client card (CL-1); own tasks |
| `ad_manager` | deals of kind complex_promotion | renewal answers of those deals; own tasks (setup checklist, "ask the ad manager") |
| `growth` | deals where they are the growth specialist (they hold the growth task) | own tasks; may reveal those deals' credentials |
| `analyst` | every deal and report, read-only | nothing |
| other staff roles | nothing here | nothing |
| integration (bearer token without a staff actor) | everything | everything except revealing credentials |
| webhook (body signature only) | nothing | payments, and refunds against a deal named by id (`require_refund_target`) |

The client card (CL-1, issue 8 §4) has no rule of its own: it is one card per person (phone digits), shared
by that person's deals, and is read and edited only through a deal — whoever may see / change one of the
client's deals may see / edit the card; nobody else, by any route or list.

A deal an actor may not see answers 404, as if it did not exist (a manager cannot probe another
manager's deals); an action on a visible deal the role may not take answers 403. Credentials (CL-8)
are revealed only to the lead, the deal's responsible manager and its growth specialist — not to
integrations: DOMAIN names those three, and a token leaked from a partner must not open every account.
"""

from __future__ import annotations

from typing import Any

from shared.auth import Actor
from shared.errors import Forbidden, NotFound
from sqlalchemy import false, true

from clients.models import Deal, Task
from shared import messages as M

LEAD, CONTENT_MANAGER, AD_MANAGER, GROWTH, ANALYST = "lead", "content_manager", "ad_manager", "growth", "analyst"
INTEGRATION, WEBHOOK = "integration", "webhook"
FULL = (LEAD, INTEGRATION)


def is_full(actor: Actor) -> bool:
    return actor.role in FULL


def can_see_deal(actor: Actor, deal: Deal) -> bool:
    if actor.role in (LEAD, INTEGRATION, ANALYST):
        return True
    if actor.role == CONTENT_MANAGER:
        return deal.responsible_manager == actor.login
    if actor.role == AD_MANAGER:
        return deal.service_kind == "complex_promotion"
    if actor.role == GROWTH:
        return deal.growth_specialist == actor.login
    return False


def visible_deals(actor: Actor) -> Any:
    """`can_see_deal` as a SQL condition on `Deal`, so lists filter, count and page in the database."""
    if actor.role in (LEAD, INTEGRATION, ANALYST):
        return true()
    if actor.role == CONTENT_MANAGER:
        return Deal.responsible_manager == actor.login
    if actor.role == AD_MANAGER:
        return Deal.service_kind == "complex_promotion"
    if actor.role == GROWTH:
        return Deal.growth_specialist == actor.login
    return false()


def require_visible(actor: Actor, deal: Deal | None, not_found: str = M.DEAL_NOT_FOUND) -> Deal:
    """The deal, if the actor may see it; else 404 `not_found` (the code of what was asked for), as if absent."""
    if deal is None or not can_see_deal(actor, deal):
        raise M.refusal(NotFound, None, not_found)
    return deal


def require_deal_change(actor: Actor, deal: Deal) -> None:
    """Stages, questionnaire, first post, attachments: the lead, integrations, the responsible manager."""
    require_visible(actor, deal)
    if is_full(actor) or (actor.role == CONTENT_MANAGER and deal.responsible_manager == actor.login):
        return
    raise M.refusal(Forbidden, None, M.ROLE_MAY_NOT_CHANGE_DEAL, role=actor.role)


def require_renewal_answer(actor: Actor, deal: Deal) -> None:
    """CL-12: the responsible manager answers; for complex_promotion the ad manager may too (CL-11)."""
    require_visible(actor, deal)
    if actor.role == AD_MANAGER and deal.service_kind == "complex_promotion":
        return
    require_deal_change(actor, deal)


def require_task_complete(actor: Actor, deal: Deal, task: Task) -> None:
    """Only the task's assignee or the lead (and integrations) completes a task (issue 7 §6): the
    responsible manager does not complete the growth specialist's or the ad manager's task."""
    require_visible(actor, deal, M.TASK_NOT_FOUND)
    if is_full(actor) or (task.assignee is not None and task.assignee == actor.login
                          and actor.role in (CONTENT_MANAGER, AD_MANAGER, GROWTH)):
        return
    raise M.refusal(Forbidden, "task_id", M.TASK_ASSIGNEE_COMPLETES)


def require_checklist_tick(actor: Actor, deal: Deal, task: Task) -> None:
    """CL-7: only the task's assignee (the one doing the setup) or the lead ticks its checklist."""
    require_visible(actor, deal, M.TASK_NOT_FOUND)
    if is_full(actor) or (task.assignee is not None and task.assignee == actor.login
                          and actor.role in (CONTENT_MANAGER, AD_MANAGER, GROWTH)):
        return
    raise M.refusal(Forbidden, None, M.TASK_ASSIGNEE_TICKS)


def require_reveal(actor: Actor, deal: Deal) -> None:
    """CL-8: lead, the deal's responsible manager, that deal's growth specialist — nobody else."""
    require_visible(actor, deal)
    allowed = (actor.role == LEAD
               or (actor.role == CONTENT_MANAGER and deal.responsible_manager == actor.login)
               or (actor.role == GROWTH and deal.growth_specialist == actor.login))
    if not allowed:
        raise M.refusal(Forbidden, None, M.CREDENTIALS_REVEALED_TO)


def require_roles(actor: Actor, *roles: str) -> None:
    if actor.role not in roles:
        raise M.refusal(Forbidden, None, M.ROLE_MAY_NOT, role=actor.role)


def require_payments(actor: Actor) -> None:
    """Payments and refunds come from integrations and signed webhooks (and the lead, by hand)."""
    require_roles(actor, LEAD, INTEGRATION, WEBHOOK)


def require_refund_target(actor: Actor, deal: Deal | None) -> Deal:
    """CL-15: a refund is posted against a deal by the lead, an integration or a signed webhook. The
    payment provider names the deal it was told at payment time: a webhook may address that deal for a
    refund (and only for that) without seeing it — it cannot read the deal, and a refund's answer holds
    only the refund. Any other actor: as `require_visible` (404) and `require_payments` (403)."""
    if actor.role == WEBHOOK:
        if deal is None:
            raise M.refusal(NotFound, None, M.DEAL_NOT_FOUND)
        return deal
    require_payments(actor)
    return require_visible(actor, deal)


def require_reader(actor: Actor) -> None:
    if actor.role == WEBHOOK:
        raise M.refusal(Forbidden, None, M.WEBHOOK_PAYMENTS_ONLY)


def may_backdate(actor: Actor) -> bool:
    """Backdating a fact (`at`) is for imports and late webhooks (integrations) and the lead: a staff
    member reporting their own work is timed by the clock, so a deadline cannot be met after the fact."""
    return is_full(actor)
