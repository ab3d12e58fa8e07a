"""Staff roles (DOMAIN.md, "Roles") and how a page route declares who may open it.

Every page route says which roles it allows through its `opt`; the page guard reads it and denies
anything undeclared, so a forgotten declaration locks a page instead of opening it:

    @get("/deals", name="deals", opt=allow(LEAD, CONTENT_MANAGER))
    @get("/login", name="login", opt=PUBLIC)
"""

from __future__ import annotations

from typing import Any

from gateway.i18n import N_

LEAD = "lead"
CONTENT_MANAGER = "content_manager"
AD_MANAGER = "ad_manager"
GROWTH = "growth"
MONITORING = "monitoring"
CARE_AGENT = "care_agent"
SENIOR_AGENT = "senior_agent"
ANALYST = "analyst"

# Role id -> label (translated where it is shown).
ROLES: dict[str, str] = {
    LEAD: N_("Project lead"),
    CONTENT_MANAGER: N_("Content manager"),
    AD_MANAGER: N_("Ad manager"),
    GROWTH: N_("Follower-growth specialist"),
    MONITORING: N_("Monitoring"),
    CARE_AGENT: N_("Care agent"),
    SENIOR_AGENT: N_("Senior agent"),
    ANALYST: N_("Analyst"),
}
ALL_STAFF: frozenset[str] = frozenset(ROLES)

# Opt of a page anyone may open, signed in or not (the login page).
PUBLIC: dict[str, Any] = {"public": True}
# A page anyone may open that is also in every staff member's menu (the event catalogue, issue 14).
PUBLIC_LISTED: dict[str, Any] = {"public": True, "roles": ALL_STAFF}


def allow(*roles: str | frozenset[str]) -> dict[str, Any]:
    """The `opt` of a route open to these roles: `allow(LEAD, ANALYST)` or `allow(ALL_STAFF)`."""
    allowed: set[str] = set()
    for role in roles:
        allowed |= {role} if isinstance(role, str) else set(role)
    unknown = allowed - ALL_STAFF
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")
    return {"roles": frozenset(allowed)}


def allowed_roles(opt: dict[str, Any]) -> frozenset[str]:
    """Roles a route admits; empty for an undeclared route (which therefore admits nobody)."""
    return opt.get("roles", frozenset())
