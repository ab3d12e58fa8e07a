"""The deal card's content block (plans with status, round and CO-3 dates; CO-2's "materials received"
button) and the "Today" cadence board (CO-5) for the manager (own clients) and the lead (all)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import _
from gateway.pages.content import (
    EDITORS,
    READERS,
    content_errors,
    decorate_plan,
    fill_names,
    is_htmx,
    may_change,
    parse_day,
    staff_of,
    today_of,
)
from gateway.rendering import page, redirect
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable

Services = NamedDependency[ServiceClient]


# ------------------------------------------------------------------ the deal card's plans block

async def deal_plans_context(request: Request, services: ServiceClient, deal_id: str, notice: str = "",
                             error: str = "") -> dict[str, Any]:
    plans = [decorate_plan(p) for p in await services.get("content", f"/deals/{deal_id}/plans")]
    return {"plans": plans, "deal_id": deal_id, "rights": may_change(staff_of(request)), "notice": notice,
            "error": error}


@get("/content/deals/{deal_id:str}/plans", name="content_deal_plans", opt=READERS)
async def content_deal_plans(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """The deal card loads this block (htmx on load): the deal's plans with status, round and deadlines."""
    # The block sits inside the deal card: a refusal or an outage is said here, not over the whole card. A deal
    # the content service does not show this member (another manager's, or not known yet) is an empty block
    # answered 404 (htmx swaps it in; a 2xx would say the deal is theirs to read: issue 8 page matrix).
    status = 200
    try:
        ctx = await deal_plans_context(request, services, deal_id)
    except (ServiceError, ServiceUnavailable) as exc:
        not_found = isinstance(exc, ServiceError) and exc.status_code == 404
        status = 404 if not_found else 200
        error = "" if not_found else _("The content service is unavailable; the plans are not shown.")
        ctx = {"plans": [], "deal_id": deal_id, "rights": False, "notice": "", "error": error}
    return page(request, "partials/content_plans.html", ctx, block="content_plans", status_code=status)


@post("/content/deals/{deal_id:str}/materials", name="content_materials", opt=EDITORS)
async def content_materials(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """CO-2's button: the materials are in, plan 1 becomes due."""
    error = ""
    try:
        await services.post("content", f"/deals/{deal_id}/materials-received", json={})
    except ServiceError as exc:
        if exc.status_code not in (403, 404, 409, 422):
            raise
        error = " ".join(content_errors(exc).values())
    if not error and not is_htmx(request):
        return redirect(request, f"/deals/{deal_id}")
    ctx = await deal_plans_context(request, services, deal_id, notice="" if error else _("Materials received."),
                                   error=error)
    return page(request, "partials/content_plans.html", ctx, block="content_plans",
                status_code=422 if error else 200)


# ------------------------------------------------------------------ "Today" cadence board (CO-5)

@get("/cadence", name="cadence", opt=READERS)
async def cadence_board(request: Request, services: Services) -> Response:
    day = parse_day(request.query_params.get("date")) or today_of(request)
    rows = await fill_names(services, await services.get("content", "/cadence", params={"date": day.isoformat()}))
    missed = sum(1 for r in rows if r.get("missed"))
    ctx = {"rows": rows, "missed": missed, "prev_day": day - timedelta(days=1),
           "next_day": day + timedelta(days=1), "today": today_of(request), "day_shown": day}
    return page(request, "pages/content_cadence.html", ctx, block="cadence")


routes = [content_deal_plans, content_materials, cadence_board]
