"""Weekly statistics per client (CO-7): charts, the CSV upload of the platform's insights export with
progress and per-row errors, manual entry of a week's figures, and the shareable report link (the
client opens it at `/report/{token}`, content_public)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import _
from gateway.pages.content import EDITORS, READERS, client_name_of, is_htmx, may_change, staff_of, today_of
from gateway.pages.content_labels import figure, metric_name
from gateway.rendering import page, redirect
from gateway.service_client import ServiceClient, ServiceError
from gateway.ui import bar_chart, form_errors

Services = NamedDependency[ServiceClient]
METRICS = ("likes", "comments", "saves", "reach", "followers")
CHARTED = ("reach", "engagement_rate", "followers", "likes")
MAX_CSV = 10 * 1024 * 1024
WEEKS_SHOWN = 8


def week_label(week_start: str) -> str:
    try:
        return date.fromisoformat(week_start).strftime("%d.%m")
    except ValueError:
        return week_start


def stats_charts(weeks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One server-rendered SVG bar chart per charted figure, a bar per week (partials/charts.html)."""
    charts = []
    for metric in CHARTED:
        rows = [(week_label(w["week_start"]), float(w.get(metric) or 0), figure(metric, w.get(metric)))
                for w in weeks]
        charts.append({"metric": metric, "title": metric_name(metric),
                       "chart": bar_chart(rows, width=520, bar=18, gap=6, label_width=60, value_width=90)})
    return charts


async def stats_context(request: Request, services: ServiceClient, deal_id: str, *, result: dict | None = None,
                        errors: dict | None = None, values: dict | None = None, link: dict | None = None,
                        notice: str = "") -> dict[str, Any]:
    weeks = await services.get("content", f"/deals/{deal_id}/stats", params={"weeks": WEEKS_SHOWN})
    today = today_of(request)
    monday = today - timedelta(days=today.weekday())
    return {"deal_id": deal_id, "client": await client_name_of(services, deal_id), "weeks": weeks,
            "charts": stats_charts(weeks), "rights": may_change(staff_of(request)), "result": result,
            "errors": errors or {}, "values": values or {"week_start": (monday - timedelta(days=7)).isoformat()},
            "link": link, "notice": notice, "metrics": METRICS}


def stats_page(request: Request, ctx: dict[str, Any], status_code: int = 200) -> Response:
    return page(request, "pages/content_stats.html", ctx, block="stats", status_code=status_code)


@get("/content/deals/{deal_id:str}/stats", name="content_stats", opt=READERS)
async def content_stats(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    return stats_page(request, await stats_context(request, services, deal_id))


@post("/content/deals/{deal_id:str}/stats/import", name="content_stats_import", opt=EDITORS,
      request_max_body_size=MAX_CSV + 1024 * 1024)
async def content_stats_import(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """The insights export (CSV) forwarded to the content service; its row counts and per-row errors shown."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        ctx = await stats_context(request, services, deal_id, errors={"file": _("Choose the CSV file.")})
        return stats_page(request, ctx, 422)
    content = await upload.read()
    built = httpx.Request("POST", "http://x", files={"file": (upload.filename, content, "text/csv")})
    body = built.read()
    try:
        answer = await services.raw("POST", "content", f"/deals/{deal_id}/stats/import", content=body,
                                    content_type=built.headers["content-type"], accept="application/json")
    except ServiceError as exc:
        if exc.status_code not in (409, 422):
            raise
        ctx = await stats_context(request, services, deal_id, errors={"file": " ".join(form_errors(exc).values())})
        return stats_page(request, ctx, 422)
    result = answer.json()
    notice = _("This file was already imported: nothing changed.") if result.get("repeated") else \
        _("Imported %(ok)s of %(total)s rows.") % {"ok": result.get("rows_ok"), "total": result.get("rows_total")}
    return stats_page(request, await stats_context(request, services, deal_id, result=result, notice=notice))


@post("/content/deals/{deal_id:str}/stats/week", name="content_stats_week", opt=EDITORS)
async def content_stats_week(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """Manual entry of one week's figures (Monday of the week, counts)."""
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in ("week_start", *METRICS)}
    errors: dict[str, str] = {}
    week = None
    try:
        week = date.fromisoformat(values["week_start"])
    except ValueError:
        errors["week_start"] = _("Enter a date.")
    body: dict[str, int] = {}
    for metric in METRICS:
        raw = values[metric].replace(" ", "").replace("\u202f", "").replace(",", "")
        if not raw:
            continue
        if not raw.isdigit():
            errors[metric] = _("A whole number.")
        else:
            body[metric] = int(raw)
    if not body and not errors:
        errors["form"] = _("Enter at least one figure.")
    if not errors and week is not None:
        monday = week - timedelta(days=week.weekday())
        try:
            await services.put("content", f"/deals/{deal_id}/stats/weeks/{monday.isoformat()}", json=body)
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = form_errors(exc)
    if not errors and not is_htmx(request):
        return redirect(request, f"/content/deals/{deal_id}/stats")
    ctx = await stats_context(request, services, deal_id, errors=errors, values=values if errors else None,
                              notice="" if errors else _("Figures saved."))
    return stats_page(request, ctx, 422 if errors else 200)


@post("/content/deals/{deal_id:str}/stats/report-link", name="content_stats_link", opt=EDITORS)
async def content_stats_link(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """CO-7: a signed link to the weekly report for the client, shown to copy."""
    answer = await services.request("POST", "content", f"/deals/{deal_id}/stats/report-link",
                                    params={"weeks": 4})
    url = str(request.base_url).rstrip("/") + f"/report/{answer['token']}"
    ctx = await stats_context(request, services, deal_id, link={"url": url, "expires_at": answer.get("expires_at")})
    return stats_page(request, ctx)


routes = [content_stats, content_stats_import, content_stats_week, content_stats_link]
