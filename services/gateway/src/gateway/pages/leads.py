"""Clients (issue 3): leads and their stages, the funnel report (CL-16), the amoCRM import, and the
client's public questionnaire page on the signed link (CL-5)."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, Parameter

from gateway.i18n import _
from gateway.labels import LEAD_STAGES, QUESTIONS, label
from gateway.pages.deals import Services, is_htmx, staff_of
from gateway.pages.sales import CHANNEL_KINDS, DISQUALIFY, channel_label
from gateway.rendering import page, redirect
from gateway.roles import ANALYST, CONTENT_MANAGER, LEAD, PUBLIC, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.ui import bar_chart, form_errors, month_of, page_number, page_of, recent_months, valid_month

LEAD_EXTRAS = {"channel_label": channel_label, "disqualify": DISQUALIFY}   # issue 15: the lead's channel, spam
LEAD_READERS = allow(LEAD, CONTENT_MANAGER, ANALYST)
LEAD_WRITERS = allow(LEAD, CONTENT_MANAGER)
PAGE_SIZE = 25
SORTS = {"name": "full_name", "stage": "stage", "owner": "owner", "created": "created_at"}
LEAD_FIELDS = ("full_name", "phone", "instagram", "email", "product", "source", "notes")


# ------------------------------------------------------------------ leads

async def leads_context(request: Request, services: ServiceClient, query: dict[str, str],
                        form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                        notice: str = "") -> dict[str, Any]:
    """One page of leads, filtered, searched, sorted and counted by the clients service."""
    sort = query.get("sort") if query.get("sort") in SORTS else "created"
    direction = "asc" if query.get("dir") == "asc" else "desc"
    params = {k: query[k] for k in ("stage", "owner", "q") if (query.get(k) or "").strip()}
    params["sort"] = ("-" if direction == "desc" else "") + SORTS[sort]
    page_no = page_number(query.get("page"))
    leads, total = await services.get_page("clients", "/leads", params={
        **params, "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE})
    last = max(1, -(-total // PAGE_SIZE))
    past_end = 0
    if page_no > last:   # past the end (an old link, a narrower filter): say so and show the last page
        past_end, page_no = page_no, last
        leads, total = await services.get_page("clients", "/leads", params={
            **params, "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE})
    staff = staff_of(request)
    owners: set[str] = set()
    if staff.role != CONTENT_MANAGER:   # a manager sees their own leads and no owner filter
        owners = ({lead["owner"] for lead in leads if lead.get("owner")} | await roster_logins(services)
                  | ({query["owner"]} if query.get("owner") else set()))
    return {"leads": page_of(leads, page_no, PAGE_SIZE, total), "query": {**query, "sort": sort, "dir": direction},
            "owners": sorted(owners), "form": form or {}, "errors": errors or {}, "notice": notice,
            "can_write": staff.role in (LEAD, CONTENT_MANAGER), "past_end": past_end}


async def roster_logins(services: ServiceClient) -> set[str]:
    """Who may own leads, for the owner filter (the page only has one page of leads to look at)."""
    try:
        return {m["login"] for m in await services.get("clients", "/staff") if m.get("active", True)}
    except ServiceError:
        return set()


def query_of(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in request.query_params.items() if k in ("stage", "owner", "q", "sort", "dir", "page")}


@get("/leads", name="leads", opt=LEAD_READERS)
async def leads_page(request: Request, services: Services) -> Response:
    return page(request, "pages/leads.html", await leads_context(request, services, query_of(request)),
                block="leads")


@post("/leads", name="lead_create", opt=LEAD_WRITERS)
async def lead_create(request: Request, services: Services) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in LEAD_FIELDS}
    body: dict[str, Any] = {k: v or None for k, v in values.items()}
    try:
        lead = await services.post("clients", "/leads", json=body)
    except ServiceError as exc:
        if exc.status_code not in (409, 422):
            raise
        ctx = await leads_context(request, services, {}, values, form_errors(exc))
        return page(request, "pages/leads.html", ctx, block="leads", status_code=422)
    if not is_htmx(request):
        return redirect(request, f"/leads/{lead['id']}")
    ctx = await leads_context(request, services, {}, notice=_("Lead %(name)s registered.") % {"name": lead["full_name"]})
    return page(request, "pages/leads.html", ctx, block="leads")


async def find_lead(services: ServiceClient, lead_id: str) -> dict[str, Any]:
    """The lead, as the signed-in user may see it (the service answers 404 otherwise), with its inbox
    conversations (issue 15) and their messages as the inbox shows them to this user (a conversation the
    inbox does not show them — a content manager, the analyst — is listed without its messages)."""
    lead = await services.get("clients", f"/leads/{lead_id}")
    for conversation in lead.get("conversations", []):
        try:
            conversation["detail"] = await services.get("engagement",
                                                        f"/conversations/{conversation['conversation_id']}")
        except (ServiceError, ServiceUnavailable):   # not shown to this user, or the inbox is away
            conversation["detail"] = None
    return lead


def next_stages(lead: dict[str, Any]) -> list[str]:
    order = [s for s in LEAD_STAGES if s != "paid"]   # paid comes from a payment (CL-16)
    if lead["stage"] not in order:
        return []
    return order[order.index(lead["stage"]) + 1:]


@get("/leads/{lead_id:str}", name="lead", opt=LEAD_READERS)
async def lead_card(request: Request, services: Services, lead_id: FromPath[str]) -> Response:
    lead = await find_lead(services, lead_id)
    return page(request, "pages/lead.html", {**LEAD_EXTRAS, "lead": lead, "choices": next_stages(lead), "errors": {}, "notice": "",
                                             "can_write": staff_of(request).role in (LEAD, CONTENT_MANAGER)},
                block="lead")


@post("/leads/{lead_id:str}/stage", name="lead_stage", opt=LEAD_WRITERS)
async def lead_stage(request: Request, services: Services, lead_id: FromPath[str]) -> Response:
    form = await request.form()
    stage = str(form.get("stage") or "")
    errors: dict[str, str] = {}
    if not stage:
        errors["stage"] = _("Choose the stage.")
    else:
        try:
            await services.post("clients", f"/leads/{lead_id}/stage", json={"stage": stage})
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = form_errors(exc, "stage")
    if not errors and not is_htmx(request):
        return redirect(request, f"/leads/{lead_id}")
    lead = await find_lead(services, lead_id)
    return page(request, "pages/lead.html", {**LEAD_EXTRAS, "lead": lead, "choices": next_stages(lead), "errors": errors,
                                             "notice": "" if errors else _("Stage changed."), "can_write": True},
                block="lead", status_code=422 if errors else 200)


# ------------------------------------------------------------------ funnel (CL-16)

def duration(seconds: float | None) -> str:
    """A median time from the first message: days, hours and minutes."""
    if seconds is None:
        return "—"
    minutes = int(round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)s d %(h)s h") % {"d": days, "h": hours}
    if hours:
        return _("%(h)s h %(m)s min") % {"h": hours, "m": mins}
    return _("%(m)s min") % {"m": mins}


def valid_day(value: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return ""


@get("/reports/funnel", name="funnel", opt=LEAD_READERS)
async def funnel(request: Request, services: Services, month: str = "", manager: str = "", channel: str = "",
                 date_from: Annotated[str, Parameter(query="from")] = "",
                 date_to: Annotated[str, Parameter(query="to")] = "") -> Response:
    """CL-16 × issue 15: filters administrator (the lead's owner: for an inbox dialog the agent who answered
    first), channel and period (a month, or from…to); totals, then the same funnel per administrator and per
    channel, with the median time from the first message to each step."""
    staff = staff_of(request)
    current = month_of(request.app.state.runtime.clock.now(), request)
    month = valid_month(month) or current
    date_from, date_to = valid_day(date_from), valid_day(date_to)
    ranged = bool(date_from and date_to and date_from <= date_to)
    channel = channel if channel in CHANNEL_KINDS else ""
    if staff.role == CONTENT_MANAGER:
        manager = staff.login
        managers = [staff.login]
    else:
        try:
            managers = [m["login"] for m in await services.get("clients", "/staff") if m["role"] == "content_manager"]
        except ServiceError:
            managers = []
    params: dict[str, str] = {"from": date_from, "to": date_to} if ranged else {"month": month}
    params |= {k: v for k, v in (("manager", manager), ("channel", channel)) if v}
    report = await services.get("clients", "/reports/funnel", params=params)
    managers = sorted({*managers, *(a["administrator"] for a in report.get("by_administrator", [])
                                     if a["administrator"]), *([manager] if manager else [])})
    steps = report["steps"]
    rows = []
    for step in steps:
        conversion = step.get("conversion_from_previous")
        caption = str(step["count"]) + (f" · {conversion * 100:.1f}%" if conversion is not None else "")
        rows.append((label("funnel", step["step"]), float(step["count"]), caption))

    def brief(block: dict[str, Any]) -> dict[str, Any]:
        return {s["step"]: s for s in block["steps"]}

    ctx = {"report": report, "steps": steps, "chart": bar_chart(rows), "month": month, "manager": manager,
           "managers": managers, "months": recent_months(current), "channel": channel, "date_from": date_from,
           "date_to": date_to, "ranged": ranged, "channels": CHANNEL_KINDS, "channel_label": channel_label,
           "duration": duration, "by_administrator": [(a["administrator"], brief(a))
                                                      for a in report.get("by_administrator", [])],
           "by_channel": [(c["channel"], brief(c)) for c in report.get("by_channel", [])]}
    return page(request, "pages/funnel.html", ctx, block="report")


# ------------------------------------------------------------------ import (amoCRM CSV)

@get("/imports", name="imports", opt=allow(LEAD))
async def imports_page(request: Request) -> Response:
    return page(request, "pages/import.html", {"errors": {}, "job": None})


@post("/imports", name="import_upload", opt=allow(LEAD), request_max_body_size=21 * 1024 * 1024)
async def import_upload(request: Request, services: Services) -> Response:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return page(request, "pages/import.html", {"errors": {"file": _("Choose the CSV file.")}, "job": None},
                    status_code=422)
    built = httpx.Request("POST", "http://x", files={"file": (upload.filename, await upload.read(), "text/csv")})
    body = built.read()
    try:
        job = (await services.raw("POST", "clients", "/imports", content=body,
                                  content_type=built.headers["content-type"], accept="application/json")).json()
    except ServiceError as exc:
        if exc.status_code not in (409, 422):
            raise
        return page(request, "pages/import.html", {"errors": form_errors(exc, "file"), "job": None}, status_code=422)
    return redirect(request, f"/imports/{job['id']}")


@get("/imports/{import_id:str}", name="import_progress", opt=allow(LEAD))
async def import_progress(request: Request, services: Services, import_id: FromPath[str]) -> Response:
    """The progress bar polls this every second (htmx) until the import is done; then the row errors."""
    job = await services.get("clients", f"/imports/{import_id}")
    return page(request, "pages/import.html", {"errors": {}, "job": job}, block="progress")


# ------------------------------------------------------------------ the client's questionnaire (public)

REQUIRED_QUESTIONS = ("business", "audience", "goals")


def link_problem(request: Request, exc: ServiceError) -> Response:
    """The service answers 410 for an expired link and 404 for an invalid one; the client gets a page
    saying which (an older clients service said 422 on `token` for an expired link: same page)."""
    expired_422 = exc.status_code == 422 and any(e.get("field") == "token" for e in exc.errors)
    if exc.status_code == 410 or expired_422:
        return page(request, "pages/questionnaire.html", {"state": "expired"}, status_code=410)
    if exc.status_code == 404:
        return page(request, "pages/questionnaire.html", {"state": "invalid"}, status_code=404)
    raise exc


@get("/q/{token:str}", name="questionnaire", opt=PUBLIC)
async def questionnaire(request: Request, services: Services, token: FromPath[str]) -> Response:
    try:
        info = await services.public("GET", "clients", f"/questionnaire/{token}")
    except ServiceError as exc:
        return link_problem(request, exc)
    state = "sent" if info.get("submitted") else "form"
    return page(request, "pages/questionnaire.html", {"state": state, "info": info, "token": token,
                                                      "questions": QUESTIONS, "answers": {}, "errors": {},
                                                      "required": REQUIRED_QUESTIONS})


@post("/q/{token:str}", name="questionnaire_submit", opt=PUBLIC)
async def questionnaire_submit(request: Request, services: Services, token: FromPath[str]) -> Response:
    form = await request.form()
    answers = {key: str(form.get(key) or "").strip() for key, _q in QUESTIONS}
    errors = {key: _("Please answer this question.") for key in REQUIRED_QUESTIONS if not answers[key]}
    try:
        info = await services.public("GET", "clients", f"/questionnaire/{token}")
        if info.get("submitted"):
            return page(request, "pages/questionnaire.html", {"state": "sent", "info": info})
        if not errors:
            await services.public("POST", "clients", f"/questionnaire/{token}",
                                  json={"answers": {k: v for k, v in answers.items() if v}})
    except ServiceError as exc:
        if exc.status_code in (409, 422) and not any(e.get("field") == "token" for e in exc.errors):
            errors = {"form": " ".join(form_errors(exc).values())}
        else:
            return link_problem(request, exc)
    if errors:
        return page(request, "pages/questionnaire.html", {"state": "form", "info": info, "token": token,
                                                          "questions": QUESTIONS, "answers": answers,
                                                          "errors": errors, "required": REQUIRED_QUESTIONS},
                    status_code=422)
    return page(request, "pages/questionnaire.html", {"state": "thanks", "info": info})


routes = [leads_page, lead_create, lead_card, lead_stage, funnel, imports_page, import_upload, import_progress,
          questionnaire, questionnaire_submit]
