"""Content (issue 10): the content calendar (month / week, one client or all of mine, drag an item to
another day) and the plan editor (live validation, submission and the client's link, comments per round,
publishing by hand, the client's own publication requests).

Everything comes from the content service's JSON API as the signed-in staff member; the service
decides who sees and changes what (another manager's deal is a 404 there, an analyst's change a 403),
and these pages show only the buttons the role may use. Its 409/422 answers are shown beside the
field they name. The deal card's block and the cadence board are in `content_board`, the client's
public approval page and report in `content_public`, statistics in `content_stats`.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import _
from gateway.pages.content_labels import content_message
from gateway.rendering import page, redirect
from gateway.roles import ANALYST, CONTENT_MANAGER, LEAD, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.sessions import SignedIn
from gateway.ui import form_errors

READERS = allow(LEAD, CONTENT_MANAGER, ANALYST)
EDITORS = allow(LEAD, CONTENT_MANAGER)
Services = NamedDependency[ServiceClient]

KINDS = ("feed", "story", "reel")
EDITABLE = ("not_due", "due", "draft", "changes_requested")
CAPTION_MAX = 2200
ITEM_FIELDS = ("date", "kind", "caption", "scheduled_at", "media")
CALENDAR_DEALS = 60   # "all my clients" reads each client's plans: beyond this, choose a client
NAME_LOOKUPS = 200   # at most this many names read from the clients service per page


def staff_of(request: Request) -> SignedIn:
    return request.state.web.staff


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def may_change(staff: SignedIn) -> bool:
    """Buttons only: the content service checks that a manager changes only their own deals."""
    return staff.role in (LEAD, CONTENT_MANAGER)


def calendar_of(request: Request):
    return request.app.state.settings.calendar


def today_of(request: Request) -> date:
    return calendar_of(request).local(request.app.state.runtime.clock.now()).date()


def parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def local_to_iso(request: Request, value: str) -> str | None:
    """A `datetime-local` field (the agency's wall time) as ISO-8601 with its offset; None if empty or bad."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return None
    if naive.tzinfo is not None:
        return naive.isoformat()
    return naive.replace(tzinfo=calendar_of(request).tz).isoformat()


def content_errors(exc: ServiceError, default_field: str = "form") -> dict[str, str]:
    errors: dict[str, str] = {}
    raw = {str(e.get("field") or default_field): str(e.get("message") or "") for e in exc.errors}
    said = form_errors(exc, default_field)
    for field, message in said.items():
        # The page's own wording where it has one (days by name); else the code's translation (or the service's words).
        worded = content_message(field, raw[field]) if field in raw else message
        errors[field] = worded if field in raw and worded != raw[field] else message
    if exc.status_code == 409 and "CO-2" in exc.detail:
        errors = {default_field: _("Plan 1 of this period must be approved by the client before a post is "
                                   "published (CO-2).")}
    return errors


def decorate_plan(plan: dict[str, Any]) -> dict[str, Any]:
    plan["editable"] = plan.get("status") in EDITABLE
    plan["open_comments"] = [c for c in plan.get("comments", []) if not c.get("resolved")]
    return plan


# ------------------------------------------------------------------ the deals a user works on

async def my_deals(services: ServiceClient, day: date) -> list[dict[str, Any]]:
    """The current clients the user sees (a manager: their own; the lead and the analyst: all), from the
    cadence board, which lists exactly those."""
    rows = await fill_names(services, await services.get("content", "/cadence", params={"date": day.isoformat()}))
    return [{"deal_id": r["deal_id"], "client_name": r.get("client_name") or "", "manager": r.get("manager")}
            for r in rows]


async def fill_names(services: ServiceClient, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows the content service could not name (it has not seen the client's profile event yet) get
    the name from the clients service; the page works without it."""
    missing = [r for r in rows if not r.get("client_name")]
    names = await asyncio.gather(*(client_name_of(services, r["deal_id"]) for r in missing[:NAME_LOOKUPS]))
    for row, name in zip(missing, names, strict=False):
        row["client_name"] = name
    return rows


async def client_name_of(services: ServiceClient, deal_id: str) -> str:
    """The client's name from the clients service; the page still works without it."""
    try:
        deal = await services.get("clients", f"/deals/{deal_id}")
    except (ServiceError, ServiceUnavailable):
        return ""
    return str((deal.get("client") or {}).get("full_name") or "")


# ------------------------------------------------------------------ Content calendar

def calendar_days(view: str, at: date) -> list[date]:
    if view == "week":
        monday = at - timedelta(days=at.weekday())
        return [monday + timedelta(days=i) for i in range(7)]
    first = at.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    start = first - timedelta(days=first.weekday())
    end = last + timedelta(days=6 - last.weekday())
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


async def calendar_context(request: Request, services: ServiceClient, deal: str, view: str, at: str,
                           notice: str = "", error: str = "") -> dict[str, Any]:
    today = today_of(request)
    view = view if view in ("month", "week") else "month"
    day = parse_day(at) or today
    deals = await my_deals(services, today)
    names = {d["deal_id"]: d["client_name"] for d in deals}
    chosen = [deal] if deal else [d["deal_id"] for d in deals][:CALENDAR_DEALS]
    truncated = not deal and len(deals) > CALENDAR_DEALS
    if deal and deal not in names:
        names[deal] = await client_name_of(services, deal)
    plans_per_deal = await asyncio.gather(*(services.get("content", f"/deals/{d}/plans") for d in chosen))
    days = calendar_days(view, day)
    by_day: dict[str, list[dict[str, Any]]] = {d.isoformat(): [] for d in days}
    rights = may_change(staff_of(request))
    for deal_id, plans in zip(chosen, plans_per_deal, strict=True):
        for plan in plans:
            editable = plan.get("status") in EDITABLE and rights
            for item in plan.get("items", []):
                if item["date"] in by_day:
                    by_day[item["date"]].append({"item": item, "plan": plan, "deal_id": deal_id,
                                                 "client": names.get(deal_id, ""), "movable": editable})
    weeks = [days[i:i + 7] for i in range(0, len(days), 7)]
    if view == "week":
        prev_at, next_at = day - timedelta(days=7), day + timedelta(days=7)
    else:
        first = day.replace(day=1)
        prev_at = (first - timedelta(days=1)).replace(day=1)
        next_at = (first + timedelta(days=32)).replace(day=1)
    return {"view": view, "at": day, "deal": deal, "deals": deals, "names": names, "weeks": weeks,
            "by_day": by_day, "today": today, "month": day.month, "prev_at": prev_at, "next_at": next_at,
            "notice": notice, "error": error, "rights": rights, "truncated": truncated}


@get("/content", name="content_calendar", opt=READERS)
async def content_calendar(request: Request, services: Services, deal: str = "", view: str = "month",
                           at: str = "") -> Response:
    ctx = await calendar_context(request, services, deal, view, at)
    return page(request, "pages/content_calendar.html", ctx, block="calendar")


@post("/content/move", name="content_move", opt=EDITORS)
async def content_move(request: Request, services: Services) -> Response:
    """Move an item to another day (drag and drop, or the date field without JS): `PATCH /items/{id}`."""
    form = await request.form()
    item_id = str(form.get("item_id") or "")
    day = parse_day(str(form.get("date") or ""))
    back = {k: str(form.get(k) or "") for k in ("deal", "view", "at")}
    error = ""
    if not item_id or day is None:
        error = _("Choose the day to move the item to.")
    else:
        try:
            await services.patch("content", f"/items/{item_id}", json={"date": day.isoformat()})
        except ServiceError as exc:
            if exc.status_code not in (403, 404, 409, 422):
                raise
            error = " ".join(content_errors(exc, "date").values())
    if not error and not is_htmx(request):
        query = "&".join(f"{k}={v}" for k, v in back.items() if v)
        return redirect(request, "/content" + (f"?{query}" if query else ""))
    ctx = await calendar_context(request, services, back["deal"], back["view"], back["at"],
                                 notice="" if error else _("Item moved."), error=error)
    return page(request, "pages/content_calendar.html", ctx, block="calendar", status_code=422 if error else 200)


# ------------------------------------------------------------------ Plan editor

def item_body(request: Request, form: Any, partial: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The item form as the API's body; local checks (what the gateway can say without the service)."""
    values = {k: str(form.get(k) or "").strip() for k in ITEM_FIELDS}
    body: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if values["date"]:
        if parse_day(values["date"]) is None:
            errors["date"] = _("Enter a date.")
        body["date"] = values["date"]
    elif not partial:
        errors["date"] = _("Required.")
    if values["kind"]:
        body["kind"] = values["kind"]
    elif not partial:
        errors["kind"] = _("Required.")
    if "caption" in form:
        body["caption"] = values["caption"]
    if values["scheduled_at"]:
        body["scheduled_at"] = local_to_iso(request, values["scheduled_at"])
        if body["scheduled_at"] is None:
            errors["scheduled_at"] = _("Enter a valid date and time.")
    if "media" in form:
        body["media"] = [line.strip() for line in values["media"].splitlines() if line.strip()]
    return body, errors


def check_item(plan: dict[str, Any], body: dict[str, Any], errors: dict[str, str]) -> dict[str, str]:
    """Live validation, as the service will judge (CO-1 plan days, the formats, Instagram's caption limit)."""
    errors = dict(errors)
    day = parse_day(body.get("date"))
    if day is not None and not plan["first_day"] <= day.isoformat() <= plan["last_day"]:
        errors["date"] = content_message("date", f"outside the plan's days {plan['first_day']}…{plan['last_day']}")
    if body.get("kind") and body["kind"] not in KINDS:
        errors["kind"] = content_message("kind", "must be one of")
    if len(body.get("caption") or "") > CAPTION_MAX:
        errors["caption"] = content_message("caption", "2,200")
    return errors


async def plan_context(request: Request, services: ServiceClient, plan_id: str, *, item_errors: dict | None = None,
                       item_values: dict | None = None, edit_errors: dict | None = None, errors: dict | None = None,
                       notice: str = "", link: dict | None = None) -> dict[str, Any]:
    plan = decorate_plan(await services.get("content", f"/plans/{plan_id}"))
    deal_id = plan["deal_id"]
    client, requests = await asyncio.gather(client_name_of(services, deal_id),
                                            services.get("content", f"/deals/{deal_id}/requests"))
    items = {i["id"]: i for i in plan.get("items", [])}
    rights = may_change(staff_of(request))
    now = request.app.state.runtime.clock.now()
    return {"plan": plan, "client": client, "items": items, "requests": requests, "rights": rights,
            "item_errors": item_errors or {}, "item_values": item_values or {"kind": "feed"},
            "edit_errors": edit_errors or {}, "errors": errors or {}, "notice": notice, "link": link,
            "now_local": calendar_of(request).local(now).strftime("%Y-%m-%dT%H:%M"), "kinds": KINDS}


def plan_page(request: Request, ctx: dict[str, Any], status_code: int = 200) -> Response:
    return page(request, "pages/content_plan.html", ctx, block="plan", status_code=status_code)


@get("/content/plans/{plan_id:str}", name="content_plan", opt=READERS)
async def content_plan(request: Request, services: Services, plan_id: FromPath[str]) -> Response:
    return plan_page(request, await plan_context(request, services, plan_id))


@post("/content/plans/{plan_id:str}/check", name="content_item_check", opt=EDITORS)
async def content_item_check(request: Request, services: Services, plan_id: FromPath[str]) -> Response:
    """Live validation of the add-item form (htmx on change): nothing is written."""
    form = await request.form()
    body, errors = item_body(request, form, partial=True)
    plan = await services.get("content", f"/plans/{plan_id}")
    errors = check_item(plan, body, errors)
    return page(request, "partials/content_item_check.html", {"item_errors": errors}, block="item_check",
                status_code=422 if errors else 200)


@post("/content/plans/{plan_id:str}/items", name="content_item_add", opt=EDITORS)
async def content_item_add(request: Request, services: Services, plan_id: FromPath[str]) -> Response:
    form = await request.form()
    body, errors = item_body(request, form, partial=False)
    values = {k: str(form.get(k) or "") for k in ITEM_FIELDS}
    if not errors:
        try:
            await services.post("content", f"/plans/{plan_id}/items", json=body)
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = content_errors(exc)
    if not errors and not is_htmx(request):
        return redirect(request, f"/content/plans/{plan_id}")
    ctx = await plan_context(request, services, plan_id, item_errors=errors, item_values=values if errors else None,
                             notice="" if errors else _("Item added."))
    return plan_page(request, ctx, 422 if errors else 200)


@post("/content/items/{item_id:str}/edit", name="content_item_edit", opt=EDITORS)
async def content_item_edit(request: Request, services: Services, item_id: FromPath[str]) -> Response:
    form = await request.form()
    plan_id = str(form.get("plan_id") or "")
    body, errors = item_body(request, form, partial=True)
    if not errors:
        try:
            await services.patch("content", f"/items/{item_id}", json=body)
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = content_errors(exc)
    if not plan_id:
        return page(request, "pages/error.html", {"title": _("The request was refused"),
                                                  "message": _("Open the plan and try again.")}, status_code=422)
    if not errors and not is_htmx(request):
        return redirect(request, f"/content/plans/{plan_id}")
    ctx = await plan_context(request, services, plan_id, edit_errors={item_id: errors} if errors else None,
                             notice="" if errors else _("Item saved."))
    return plan_page(request, ctx, 422 if errors else 200)


def approval_link(request: Request, answer: dict[str, Any]) -> dict[str, Any]:
    """The client's link on this gateway (the content service mints the token; `/approve/<token>`)."""
    url = str(request.base_url).rstrip("/") + f"/approve/{answer['token']}"
    return {"url": url, "expires_at": answer.get("expires_at"), "round": answer.get("round")}


@post("/content/plans/{plan_id:str}/submit", name="content_plan_submit", opt=EDITORS)
async def content_plan_submit(request: Request, services: Services, plan_id: FromPath[str]) -> Response:
    """CO-4: send the plan to the client; the link is shown to copy. Comments not addressed → 422 listing them."""
    errors: dict[str, str] = {}
    link = None
    try:
        link = approval_link(request, await services.post("content", f"/plans/{plan_id}/submit", json={}))
    except ServiceError as exc:
        if exc.status_code not in (409, 422):
            raise
        open_comments = [e for e in exc.errors if str(e.get("field") or "").startswith("comments.")]
        if open_comments:
            errors = {"submit": _("Answer or mark done every comment first (CO-4): %(count)s left.")
                      % {"count": len(open_comments)}}
            errors |= {str(e["comment_id"]): _("Not addressed yet.") for e in open_comments if e.get("comment_id")}
        elif any(e.get("field") == "items" for e in exc.errors):
            errors = {"submit": _("Add at least one item before sending the plan.")}
        else:
            errors = {"submit": " ".join(content_errors(exc).values())}
    ctx = await plan_context(request, services, plan_id, errors=errors, link=link,
                             notice="" if errors else _("The plan was sent to the client."))
    return plan_page(request, ctx, 422 if errors else 200)


@post("/content/plans/{plan_id:str}/link", name="content_plan_link", opt=EDITORS)
async def content_plan_link(request: Request, services: Services, plan_id: FromPath[str]) -> Response:
    errors: dict[str, str] = {}
    link = None
    try:
        link = approval_link(request, await services.post("content", f"/plans/{plan_id}/link", json={}))
    except ServiceError as exc:
        if exc.status_code not in (409, 422):
            raise
        errors = {"submit": " ".join(content_errors(exc).values())}
    ctx = await plan_context(request, services, plan_id, errors=errors, link=link)
    return plan_page(request, ctx, 422 if errors else 200)


@post("/content/plans/{plan_id:str}/comments/{comment_id:str}/resolve", name="content_comment_resolve",
      opt=EDITORS)
async def content_comment_resolve(request: Request, services: Services, plan_id: FromPath[str],
                                  comment_id: FromPath[str]) -> Response:
    """CO-4: answer a client's comment, or mark it done."""
    form = await request.form()
    reply = str(form.get("reply") or "").strip()
    errors: dict[str, str] = {}
    try:
        await services.post("content", f"/plans/{plan_id}/comments/{comment_id}/resolve",
                            json={"reply": reply} if reply else {})
    except ServiceError as exc:
        if exc.status_code not in (409, 422):
            raise
        errors = {comment_id: " ".join(content_errors(exc).values())}
    if not errors and not is_htmx(request):
        return redirect(request, f"/content/plans/{plan_id}")
    ctx = await plan_context(request, services, plan_id, errors=errors,
                             notice="" if errors else _("Comment addressed."))
    return plan_page(request, ctx, 422 if errors else 200)


@post("/content/items/{item_id:str}/published", name="content_item_published", opt=EDITORS)
async def content_item_published(request: Request, services: Services, item_id: FromPath[str]) -> Response:
    """Published by hand: the time (now by default; only the lead may backdate) and the permalink.
    CO-2: before plan 1 is approved the service refuses (409), said beside the button."""
    form = await request.form()
    plan_id = str(form.get("plan_id") or "")
    published_at = local_to_iso(request, str(form.get("published_at") or "")) or \
        request.app.state.runtime.clock.now().isoformat()
    body = {"published_at": published_at}
    if permalink := str(form.get("permalink") or "").strip():
        body["permalink"] = permalink
    errors: dict[str, str] = {}
    try:
        await services.post("content", f"/items/{item_id}/published", json=body)
    except ServiceError as exc:
        if exc.status_code not in (403, 409, 422):
            raise
        errors = {item_id: " ".join(content_errors(exc, "form").values())}
    if not plan_id:
        return page(request, "pages/error.html", {"title": _("The request was refused"),
                                                  "message": _("Open the plan and try again.")}, status_code=422)
    if not errors and not is_htmx(request):
        return redirect(request, f"/content/plans/{plan_id}")
    ctx = await plan_context(request, services, plan_id, edit_errors={item_id: errors[item_id]} if errors else None,
                             notice="" if errors else _("Marked as published."))
    return plan_page(request, ctx, 422 if errors else 200)


@post("/content/requests/{request_id:str}/answer", name="content_request_answer", opt=EDITORS)
async def content_request_answer(request: Request, services: Services, request_id: FromPath[str]) -> Response:
    """CO-6: approve the client's own publication, or decline it with a reason."""
    form = await request.form()
    plan_id = str(form.get("plan_id") or "")
    decision = str(form.get("decision") or "")
    reason = str(form.get("reason") or "").strip()
    errors: dict[str, str] = {}
    if decision not in ("approve", "decline"):
        errors = {request_id: _("Approve or decline.")}
    elif decision == "decline" and not reason:
        errors = {request_id: _("Say why you decline.")}
    else:
        try:
            await services.post("content", f"/requests/{request_id}/answer",
                                json={"decision": decision, "reason": reason or None})
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = {request_id: " ".join(content_errors(exc).values())}
    if not plan_id:
        return page(request, "pages/error.html", {"title": _("The request was refused"),
                                                  "message": errors.get(request_id) or _("Open the plan and try again.")},
                    status_code=422)
    if not errors and not is_htmx(request):
        return redirect(request, f"/content/plans/{plan_id}")
    ctx = await plan_context(request, services, plan_id, errors=errors, notice="" if errors else _("Answer sent."))
    return plan_page(request, ctx, 422 if errors else 200)


routes = [content_calendar, content_move, content_plan, content_item_check, content_item_add, content_item_edit,
          content_plan_submit, content_plan_link, content_comment_resolve, content_item_published,
          content_request_answer]
