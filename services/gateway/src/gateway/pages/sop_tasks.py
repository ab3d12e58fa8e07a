"""Push tasks and their metrics (issue 13, EN-13): the tasks of a period with the six numbers (1 owners not
executed, 2 owners executed, 3 failed push tasks, 4 groups not sent, 5 groups sent, 6 groups failed), a task's
page with the drill-down (7 per owner, 8 per group, the failure reasons in the reader's language) and the lead's
re-target of transferred pushes, and the report by day / week / month and per owner, with a chart and as CSV.

The service counts; this module asks, names people and writes the CSV in the reader's language.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import N_, _
from gateway.pages.sop_common import SOP_READERS, STATUSES, bounds, owner_choices, period, reason_text
from gateway.people import person
from gateway.rendering import page, redirect
from gateway.roles import LEAD, allow
from gateway.service_client import ServiceClient, ServiceError
from gateway.ui import bar_chart

Services = NamedDependency[ServiceClient]
METRICS = (("owners_pending", N_("Owners not done")), ("owners_done", N_("Owners done")),
           ("failed_tasks", N_("Failed tasks")), ("groups_pending", N_("Groups not sent")),
           ("groups_sent", N_("Groups sent")), ("groups_failed", N_("Groups failed")))
GROUP_BY = {"day": N_("Day"), "week": N_("Week"), "month": N_("Month")}
SORTS = ("due_at", "-due_at", "-groups_failed", "-groups_pending")


def delay_text(seconds: Any) -> str:
    """Seconds between due and sent as "1 h 05 min" / "7 min"."""
    if seconds is None:
        return "—"
    minutes = round(float(seconds) / 60)
    hours, minutes = divmod(minutes, 60)
    return _("%(h)s h %(m)02d min") % {"h": hours, "m": minutes} if hours else _("%(m)s min") % {"m": minutes}


def dates_of(request: Request) -> tuple[str, str]:
    """The period's `from` / `to` (local dates) of the query; `start` / `end` are read too (older links)."""
    q = request.query_params
    return q.get("from") or q.get("start") or "", q.get("to") or q.get("end") or ""


# ------------------------------------------------------------------ tasks of a period

@get("/sop/tasks", name="push_tasks", opt=SOP_READERS)
async def tasks_page(request: Request, services: Services, sort: str = "-due_at", owner: str = "") -> Response:
    first, last, errors = period(request, *dates_of(request))
    params = {**bounds(first, last), **({"owner": owner} if owner else {})}
    tasks = await services.get("engagement", "/push-tasks", params=params)
    sort = sort if sort in SORTS else "-due_at"
    key = sort.lstrip("-")
    tasks.sort(key=lambda t: t.get("due_at") or "" if key == "due_at" else t.get("metrics", {}).get(key, 0),
               reverse=sort.startswith("-"))
    totals = {k: sum(t.get("metrics", {}).get(k, 0) for t in tasks) for k, _label in METRICS}
    ctx = {"tasks": tasks, "totals": totals, "metrics": METRICS, "start": first.isoformat(), "end": last.isoformat(),
           "errors": errors, "sort": sort, "owner": owner, "owners": await owner_choices(request)}
    return page(request, "pages/push_tasks.html", ctx, block="tasks", status_code=422 if errors else 200)


async def task_context(request: Request, services: ServiceClient, task_id: str, **extra: Any) -> dict[str, Any]:
    task = await services.get("engagement", f"/push-tasks/{task_id}")
    for o in task.get("owners", []):
        o["name"] = person(o.get("owner")) if o.get("owner") else _("No owner yet")
    for p in task.get("pushes", []):
        p["owner_name"] = person(p.get("owner")) if p.get("owner") else _("No owner yet")
        p["reason_text"] = reason_text(p) if p.get("status") == "failed" else ""
        p["delay_text"] = delay_text(p.get("delay_seconds")) if p.get("sent_at") else ""
    status = request.query_params.get("status", "")
    shown = [p for p in task.get("pushes", []) if not status or p.get("status") == status]
    owner = request.query_params.get("owner", "")
    if owner:
        shown = [p for p in shown if p.get("owner") == owner]
    reasons: dict[str, int] = {}
    for p in task.get("pushes", []):
        if p.get("status") == "failed":
            reasons[p["reason_text"]] = reasons.get(p["reason_text"], 0) + 1
    return {"task": task, "metrics": METRICS, "shown": shown, "status": status, "owner": owner,
            "statuses": STATUSES, "reasons": sorted(reasons.items(), key=lambda r: -r[1]),
            "is_lead": request.state.web.staff.role == LEAD, "notice": "", "errors": {}, **extra}


@get("/sop/tasks/{task_id:str}", name="push_task", opt=SOP_READERS)
async def task_page(request: Request, services: Services, task_id: FromPath[str]) -> Response:
    return page(request, "pages/push_task.html", await task_context(request, services, task_id), block="task")


@post("/sop/tasks/{task_id:str}/pushes/{push_id:str}/retarget", name="push_retarget", opt=allow(LEAD))
async def push_retarget(request: Request, services: Services, task_id: FromPath[str],
                        push_id: FromPath[str]) -> Response:
    """A push failed as transferred goes to the group's current owner, pending again."""
    errors: dict[str, str] = {}
    try:
        await services.post("engagement", f"/pushes/{push_id}/retarget")
    except ServiceError as exc:
        if exc.status_code not in (404, 409, 422):
            raise
        errors[push_id] = _("Only a push failed as transferred or because its owner left is re-targeted, to a group that has "
                            "an owner.")
    if not errors and request.headers.get("hx-request") != "true":
        return redirect(request, f"/sop/tasks/{task_id}")
    ctx = await task_context(request, services, task_id, errors=errors,
                             notice="" if errors else _("The push went to the group's current owner."))
    return page(request, "pages/push_task.html", ctx, block="task", status_code=409 if errors else 200)


# ------------------------------------------------------------------ the report

async def report_rows(request: Request, services: ServiceClient, first: Any, last: Any,
                      group_by: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    params = bounds(first, last)
    periods = await services.get("engagement", "/push-reports", params={**params, "group_by": group_by})
    owners = await services.get("engagement", "/push-reports/owners", params=params)
    for o in owners:
        o["name"] = person(o.get("owner")) if o.get("owner") else _("No owner yet")
    owners.sort(key=lambda o: (-(o.get("completion_rate") or 0), o["name"]))
    return periods, owners


def period_label(row: dict[str, Any]) -> str:
    return str(row.get("period") or row.get("start") or "")


def period_text(row: dict[str, Any], group_by: str) -> str:
    """A period as the reader says it: a day or a week's Monday as DD.MM.YYYY, a month by its name."""
    from gateway.rendering import day, month_name

    label = period_label(row)
    return month_name(label) if group_by == "month" else day(label)


@get("/sop/reports", name="push_reports", opt=SOP_READERS)
async def reports_page(request: Request, services: Services, group_by: str = "day") -> Response:
    first, last, errors = period(request, *dates_of(request), default_days=30)
    group_by = group_by if group_by in GROUP_BY else "day"
    periods, owners = await report_rows(request, services, first, last, group_by)
    chart = bar_chart([(period_text(r, group_by), float(r.get("metrics", r).get("groups_sent", 0)),
                        _("%(sent)s sent · %(failed)s failed") % {
                            "sent": r.get("metrics", r).get("groups_sent", 0),
                            "failed": r.get("metrics", r).get("groups_failed", 0)}) for r in periods],
                      value_width=230)
    owner_chart = bar_chart([(o["name"], float(o.get("completion_rate") or 0) * 100,
                              f"{float(o.get('completion_rate') or 0) * 100:.0f}%") for o in owners])
    ctx = {"periods": periods, "owners": owners, "chart": chart, "owner_chart": owner_chart, "metrics": METRICS,
           "group_by": group_by, "group_bys": GROUP_BY, "start": first.isoformat(), "end": last.isoformat(),
           "errors": errors, "delay_text": delay_text, "period_text": period_text}
    return page(request, "pages/push_report.html", ctx, block="report", status_code=422 if errors else 200)


def csv_response(rows: list[list[Any]], name: str) -> Response:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return Response(out.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@get("/sop/reports.csv", name="push_reports_csv", opt=SOP_READERS)
async def reports_csv(request: Request, services: Services, group_by: str = "day",
                      kind: str = "periods") -> Response:
    first, last, _errors = period(request, *dates_of(request), default_days=30)
    group_by = group_by if group_by in GROUP_BY else "day"
    periods, owners = await report_rows(request, services, first, last, group_by)
    if kind == "owners":
        rows = [[_("Owner"), _("Pushes"), _("Sent"), _("Failed"), _("Pending"), _("Completion rate"),
                 _("Median delay, s")]]
        rows += [[o["name"], o.get("pushes", 0), o.get("sent", 0), o.get("failed", 0), o.get("pending", 0),
                  "" if o.get("completion_rate") is None else f"{float(o['completion_rate']) * 100:.1f}%",
                  "" if o.get("median_delay_seconds") is None else round(float(o["median_delay_seconds"]))]
                 for o in owners]
        return csv_response(rows, f"push-owners-{first.isoformat()}-{last.isoformat()}.csv")
    rows = [[_(GROUP_BY[group_by]), *(_(label) for _key, label in METRICS)]]
    rows += [[period_text(r, group_by), *(r.get("metrics", r).get(k, 0) for k, _label in METRICS)] for r in periods]
    return csv_response(rows, f"push-report-{group_by}-{first.isoformat()}-{last.isoformat()}.csv")


routes = [tasks_page, task_page, push_retarget, reports_page, reports_csv]
