"""The group calendar (issue 13, EN-10): one-off dated pushes for a group, a category or a tag, planned weeks
ahead, shown as a month grid in the agency's time zone, with the form to plan one and a cancel button while an
entry is not yet due.
"""

from __future__ import annotations

import calendar as cal
from datetime import date, datetime, time
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import _
from gateway.pages.sop_common import (
    MODES,
    SOP_EDITORS,
    WEEKDAYS,
    attachments_json,
    content_of,
    form_values,
    parse_date,
    sop_errors,
    target_of,
    today,
)
from gateway.pages.sop_rules import HHMM, UPLOAD_LIMIT, group_titles, target_words
from gateway.rendering import page, redirect
from gateway.service_client import ServiceClient, ServiceError
from gateway.ui import parse_ts, shift_month, valid_month

Services = NamedDependency[ServiceClient]


def month_grid(month: str, entries: list[dict[str, Any]], tz: Any) -> list[list[dict[str, Any]]]:
    """Weeks (Monday first) of days; each day of the month carries its entries in time order."""
    year, mon = int(month[:4]), int(month[5:7])
    by_day: dict[date, list[dict[str, Any]]] = {}
    for e in entries:
        at = parse_ts(e.get("at"))
        if at is not None:
            by_day.setdefault(at.astimezone(tz).date(), []).append(e)
    weeks = []
    for week in cal.Calendar(firstweekday=0).monthdatescalendar(year, mon):
        weeks.append([{"date": d, "in_month": d.month == mon,
                       "entries": sorted(by_day.get(d, []), key=lambda e: e.get("at", ""))} for d in week])
    return weeks


async def calendar_context(request: Request, services: ServiceClient, month: str, *,
                           values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                           notice: str = "") -> dict[str, Any]:
    tz = request.app.state.settings.calendar.tz
    entries = await services.get("engagement", "/calendar", params={"month": month})
    groups = await group_titles(services)
    titles = dict(groups)
    now = request.app.state.runtime.clock.now()
    for e in entries:
        e["target_text"] = target_words(e.get("target") or {}, titles)
        at = parse_ts(e.get("at"))
        e["can_cancel"] = at is not None and at > now
    v = values or {"date": today(request).isoformat(), "time": "10:00", "mode": "manual", "group_ids": [],
                   "attachments": []}
    return {"month": month, "weeks": month_grid(month, entries, tz), "entries": entries,
            "previous": shift_month(month, -1), "next": shift_month(month, 1), "weekdays": WEEKDAYS,
            "groups": groups, "v": v, "errors": errors or {}, "notice": notice, "modes": MODES,
            "attachments": attachments_json(v.get("attachments") or []), "today": today(request)}


@get("/sop/calendar", name="sop_calendar", opt=SOP_EDITORS)
async def calendar_page(request: Request, services: Services, month: str = "") -> Response:
    chosen = valid_month(month) or today(request).strftime("%Y-%m")
    ctx = await calendar_context(request, services, chosen)
    if month and not valid_month(month):
        ctx["errors"] = {"month": _("Choose a month like 2026-12.")}
    return page(request, "pages/sop_calendar.html", ctx, block="calendar")


@post("/sop/calendar", name="sop_calendar_create", opt=SOP_EDITORS, request_max_body_size=UPLOAD_LIMIT)
async def calendar_create(request: Request, services: Services) -> Response:
    form = await request.form()
    errors: dict[str, str] = {}
    day = parse_date(str(form.get("date") or "").strip())
    if day is None:
        errors["date"] = _("Enter a date.")
    at_text = str(form.get("time") or "").strip()
    if not HHMM.match(at_text):
        errors["time"] = _("Enter a time like 09:00.")
    tz = request.app.state.settings.calendar.tz
    at = None
    if day and not errors.get("time"):
        hours, minutes = (int(x) for x in at_text.split(":"))
        at = datetime.combine(day, time(hours, minutes), tzinfo=tz)
        if at <= request.app.state.runtime.clock.now():
            errors["date"] = _("Choose a time in the future.")
    body: dict[str, Any] = {"at": at.isoformat() if at else "", "target": target_of(form, errors),
                            "mode": str(form.get("mode") or "manual"), "title": str(form.get("title") or "").strip()}
    if body["mode"] not in dict(MODES):
        errors["mode"] = _("Choose who sends the push.")
    body["content"] = await content_of(form, services, errors)
    if not errors:
        try:
            await services.post("engagement", "/calendar", json=body)
        except ServiceError as exc:
            if exc.status_code not in (400, 404, 409, 422):
                raise
            errors = sop_errors(exc, "title")
            if "at" in errors:
                errors["date"] = errors.pop("at")
    month = day.strftime("%Y-%m") if day else today(request).strftime("%Y-%m")
    if errors:
        ctx = await calendar_context(request, services, month, values=form_values(form, body["content"]),
                                     errors=errors)
        return page(request, "pages/sop_calendar.html", ctx, block="calendar", status_code=422)
    if request.headers.get("hx-request") != "true":
        return redirect(request, f"/sop/calendar?month={month}")
    ctx = await calendar_context(request, services, month, notice=_("The push is planned for %(at)s.") % {
        "at": at.strftime("%d.%m.%Y %H:%M") if at else ""})
    return page(request, "pages/sop_calendar.html", ctx, block="calendar")


@post("/sop/calendar/{entry_id:str}/delete", name="sop_calendar_delete", opt=SOP_EDITORS)
async def calendar_delete(request: Request, services: Services, entry_id: FromPath[str]) -> Response:
    form = await request.form()
    month = valid_month(str(form.get("month") or "")) or today(request).strftime("%Y-%m")
    errors: dict[str, str] = {}
    try:
        await services.delete("engagement", f"/calendar/{entry_id}")
    except ServiceError as exc:
        if exc.status_code not in (404, 409, 422):
            raise
        errors = {"form": _("This push is already due and cannot be cancelled.")}
    if not errors and request.headers.get("hx-request") != "true":
        return redirect(request, f"/sop/calendar?month={month}")
    ctx = await calendar_context(request, services, month, errors=errors,
                                 notice="" if errors else _("The planned push is cancelled."))
    return page(request, "pages/sop_calendar.html", ctx, block="calendar", status_code=409 if errors else 200)


routes = [calendar_page, calendar_create, calendar_delete]
