"""The staff dashboard (`/`), per role (issue 9 §1): what needs this person today.

- content manager / ad manager / growth: my overdue tasks (oldest first), due today, due this week,
  my deadlines at risk (due within 2 working hours, CAL-2), my deals by stage with counts;
- project lead: the team's overdue tasks and today's breached deadlines by person, deals waiting in
  each stage with the oldest, this month's payroll preview and best-manager standing, dead letters;
- analyst: this month's funnel and deadline compliance per manager;
- monitoring: new mentions per client account and the feeds that fail (gateway.pages.monitoring);
- roles whose areas are not built yet: what they will find here.

Every widget reads its own service; a service that does not answer hides only its widget (with a
note), never the page. `/nav/counts` is the navigation badge (My tasks ③, overdue in red), polled by htmx.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from gateway.labels import STAGES
from gateway.rendering import page
from gateway.roles import (
    AD_MANAGER,
    ALL_STAFF,
    ANALYST,
    CARE_AGENT,
    CONTENT_MANAGER,
    GROWTH,
    LEAD,
    MONITORING,
    SENIOR_AGENT,
    allow,
)
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.ui import month_of, parse_ts

Services = NamedDependency[ServiceClient]
MANAGER_ROLES = (CONTENT_MANAGER, AD_MANAGER, GROWTH)
TASK_ROLES_SET = (LEAD, *MANAGER_ROLES)
CARE_ROLES = (CARE_AGENT, SENIOR_AGENT)
INBOX_ROLES = (LEAD, CARE_AGENT, SENIOR_AGENT, MONITORING)
AT_RISK = timedelta(hours=2)   # "deadlines at risk": due within 2 working hours (issue 9 §1)
UNAVAILABLE = (ServiceUnavailable, ServiceError)


def _now(request: Request) -> datetime:
    return request.app.state.runtime.clock.now()


def _calendar(request: Request):
    return request.app.state.settings.calendar


async def _safe(coro: Any, default: Any = None) -> Any:
    """A widget's data, or `default` when its service does not answer (the widget says so)."""
    try:
        return await coro
    except UNAVAILABLE:
        return default


def sort_tasks(request: Request, tasks: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Open tasks in buckets: overdue (oldest first), due today, due later this week (agency time)."""
    now, calendar = _now(request), _calendar(request)
    today = calendar.local(now).date()
    week_end = today + timedelta(days=6 - today.weekday())
    buckets: dict[str, list[dict[str, Any]]] = {"overdue": [], "today": [], "week": []}
    for task in tasks:
        due = parse_ts(task.get("due_at"))
        if due is None:
            continue
        day = calendar.local(due).date()
        if due < now:
            buckets["overdue"].append(task)
        elif day == today:
            buckets["today"].append(task)
        elif day <= week_end:
            buckets["week"].append(task)
    for rows in buckets.values():
        rows.sort(key=lambda t: t["due_at"])
    return buckets


def at_risk(request: Request, deadlines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open deadlines not yet due whose remaining working time is at most 2 working hours (CAL-2)."""
    now, calendar = _now(request), _calendar(request)
    rows = []
    for deadline in deadlines:
        due = parse_ts(deadline.get("due_at"))
        if due is None or due < now:
            continue
        if calendar.working_hours_between(now, due) <= AT_RISK:
            rows.append(deadline)
    return sorted(rows, key=lambda d: d["due_at"])


async def deals_by_stage(services: ServiceClient, params: dict[str, str]) -> list[dict[str, Any]]:
    """Per stage: how many deals, and the one waiting longest (the earliest first payment)."""
    async def one(stage: str) -> dict[str, Any]:
        deals, total = await services.get_page("clients", "/deals", params={
            **params, "stage": stage, "sort": "first_payment_at", "limit": "1"})
        return {"stage": stage, "count": total, "oldest": deals[0] if deals else None}
    return list(await asyncio.gather(*(one(stage) for stage in STAGES if stage != "lost")))


async def manager_context(request: Request, services: ServiceClient) -> dict[str, Any]:
    staff = request.state.web.staff
    deal_params = {"manager": staff.login} if staff.role == CONTENT_MANAGER else {}
    tasks, deadlines, stages, rounds = await asyncio.gather(
        _safe(services.get("clients", "/tasks", params={"status": "open", "assignee": staff.login, "limit": "200"})),
        _safe(services.get("clients", "/deadlines", params={"state": "open", "owner": staff.login, "limit": "200"})),
        _safe(deals_by_stage(services, deal_params)),
        _safe(services.get("engagement", "/check-rounds")))   # EN-4: today's rounds of my clients
    return {"buckets": sort_tasks(request, tasks or []), "risk": at_risk(request, deadlines or []),
            "stages": stages, "deal_params": deal_params, "clients_down": tasks is None, "rounds": rounds or []}


async def lead_context(request: Request, services: ServiceClient) -> dict[str, Any]:
    now, calendar = _now(request), _calendar(request)
    today = calendar.local(now).date()
    month = month_of(now, request)
    tasks, breached, stages, payroll, letters, agency, rounds = await asyncio.gather(
        _safe(services.get("clients", "/tasks", params={"status": "open", "limit": "200"})),
        _safe(services.get("clients", "/deadlines", params={"state": "breached", "sort": "-due_at", "limit": "200"})),
        _safe(deals_by_stage(services, {})),
        _safe(services.get("payroll", f"/months/{month}")),
        dead_letter_counts(services),
        _safe(services.get("clients", "/settings")),
        _safe(services.get("engagement", "/check-rounds")))   # EN-4: the team's rounds today
    overdue: dict[str, list[dict[str, Any]]] = {}
    for task in sort_tasks(request, tasks or [])["overdue"]:
        overdue.setdefault(task.get("assignee") or "", []).append(task)
    breached_today: dict[str, list[dict[str, Any]]] = {}
    for deadline in breached or []:
        resolved = parse_ts(deadline.get("resolved_at")) or parse_ts(deadline.get("due_at"))
        if resolved is not None and calendar.local(resolved).date() == today:
            breached_today.setdefault(deadline.get("owner") or "", []).append(deadline)
    standing = []
    if payroll:
        standing = (payroll.get("best_manager_why") or {}).get("ranking") or []
    return {"team_overdue": sorted(overdue.items(), key=lambda kv: -len(kv[1])),
            "breached_today": sorted(breached_today.items(), key=lambda kv: -len(kv[1])),
            "stages": stages, "payroll": payroll, "standing": standing[:3], "month": month,
            "letters": [(name, count) for name, count in letters if count], "clients_down": tasks is None,
            "rounds": rounds or [],
            # CL-12: documents cannot be paid by until the requisites are entered; the lead is told here.
            "requisites_missing": missing_requisites((agency or {}).get("values") or {}) if agency else []}


def missing_requisites(values: dict[str, Any]) -> list[str]:
    from gateway.pages.settings import missing_requisites as missing

    return missing(values)


async def dead_letter_counts(services: ServiceClient) -> list[tuple[str, int]]:
    from shared.settings import SERVICES

    async def one(name: str) -> tuple[str, int]:
        letters = await _safe(services.get(name, "/ops/dead-letters", params={"limit": 100}), [])
        return name, len(letters or [])
    return list(await asyncio.gather(*(one(name) for name in SERVICES)))


async def analyst_context(request: Request, services: ServiceClient) -> dict[str, Any]:
    month = month_of(_now(request), request)
    funnel, payroll = await asyncio.gather(
        _safe(services.get("clients", "/reports/funnel", params={"month": month})),
        _safe(services.get("payroll", f"/months/{month}")))
    ranking = ((payroll or {}).get("best_manager_why") or {}).get("ranking") or []
    compliance = sorted(ranking, key=lambda r: r.get("manager") or "")
    return {"month": month, "funnel": funnel, "compliance": compliance, "payroll_down": payroll is None}


async def care_context(request: Request, services: ServiceClient) -> dict[str, Any]:
    """Care and senior agents (issue 11): my open conversations (the ones waiting for my answer first), the
    ones waiting for the client, the unassigned count, my unread @mentions."""
    counts, mine, waiting, unassigned = await asyncio.gather(
        _safe(services.get("engagement", "/counts")),
        _safe(services.get("engagement", "/conversations", params={"assignee": "me", "status": "open",
                                                                    "limit": "20"})),
        _safe(services.get("engagement", "/conversations", params={"assignee": "me", "status": "waiting_client",
                                                                    "limit": "10"})),
        _safe(services.get("engagement", "/conversations", params={"assignee": "none", "status": "active",
                                                                    "limit": "10"})))
    mine = sorted(mine or [], key=lambda c: c["last_message"]["direction"] != "in")
    return {"counts": counts or {}, "mine": mine, "waiting": waiting or [], "unassigned": unassigned or [],
            "engagement_down": counts is None}


@get("/", name="dashboard", opt=allow(ALL_STAFF))
async def dashboard(request: Request, services: Services) -> Response:
    role = request.state.web.staff.role
    if role in MANAGER_ROLES:
        ctx = {"kind": "manager", **await manager_context(request, services)}
    elif role == LEAD:
        ctx = {"kind": "lead", **await lead_context(request, services)}
    elif role == ANALYST:
        ctx = {"kind": "analyst", **await analyst_context(request, services)}
    elif role == MONITORING:
        from gateway.pages.monitoring import dashboard_context

        ctx = {"kind": "monitoring", **await dashboard_context(services)}
    elif role in CARE_ROLES:
        ctx = {"kind": "care", **await care_context(request, services)}
    else:
        ctx = {"kind": "coming"}
    return page(request, "pages/dashboard.html", ctx)


@get("/nav/counts", name="nav_counts", opt=allow(ALL_STAFF))
async def nav_counts(request: Request, services: Services) -> Response:
    """The navigation badge: my open tasks and how many are overdue (htmx polls it every minute); with
    `?for=inbox`, the inbox badge: conversations waiting for my answer, unassigned ones, my unread mentions;
    with `?for=pushes`, the My pushes badge: my pushes still to send (issue 13)."""
    staff = request.state.web.staff
    if request.query_params.get("for") == "pushes":
        from gateway.pages.sop_common import PUSH_OWNERS

        pending = 0
        if staff.role in PUSH_OWNERS["roles"]:
            answer = await _safe(services.get("engagement", "/pushes/count", params={"owner": "me"}), {}) or {}
            pending = int(answer.get("pending") or 0)
        return page(request, "partials/nav_counts.html", {"pushes_pending": pending, "open_count": 0,
                                                          "overdue": 0, "inbox": {}}, block="push_counts")
    if request.query_params.get("for") == "inbox":
        counts = {}
        if staff.role in INBOX_ROLES:
            counts = await _safe(services.get("engagement", "/counts"), {}) or {}
        return page(request, "partials/nav_counts.html", {"inbox": counts, "open_count": 0, "overdue": 0,
                                                          "pushes_pending": 0},
                    block="inbox_counts")
    open_count = overdue = 0
    if staff.role in TASK_ROLES_SET:
        tasks = await _safe(services.get("clients", "/tasks", params={
            "status": "open", "assignee": staff.login, "limit": "200"}), [])
        now = _now(request)
        open_count = len(tasks or [])
        overdue = sum(1 for t in tasks or [] if (due := parse_ts(t.get("due_at"))) is not None and due < now)
    return page(request, "partials/nav_counts.html", {"open_count": open_count, "overdue": overdue, "inbox": {},
                                                      "pushes_pending": 0},
                block="counts")


routes = [dashboard, nav_counts]
