"""Care quality pages (issue 12, EN-3/EN-4/EN-6): the agents' report with a chart and CSV, and the day's check
rounds. Thin: the engagement service computes every figure; this module only asks and renders.

Who reads what: the lead, analysts and senior agents every agent; a care agent only their own line (the service
enforces it too). Check rounds: a content manager sees their own rounds; the lead, analysts and senior agents all.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from gateway.i18n import N_, _
from gateway.pages.deals import Services, staff_of
from gateway.people import person
from gateway.rendering import page
from gateway.roles import AD_MANAGER, ANALYST, CARE_AGENT, CONTENT_MANAGER, GROWTH, LEAD, SENIOR_AGENT, allow
from gateway.service_client import ServiceError
from gateway.ui import bar_chart, form_errors

REPORT_READERS = allow(LEAD, ANALYST, SENIOR_AGENT, CARE_AGENT)
ROUND_READERS = allow(LEAD, ANALYST, SENIOR_AGENT, CONTENT_MANAGER, AD_MANAGER, GROWTH)
DAILY_GOAL = (80, 100)  # seed 004: requests an agent handles a day


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _period(request: Request, start: str, end: str) -> tuple[date, date, dict[str, str]]:
    today = request.app.state.runtime.clock.now().astimezone(request.app.state.settings.calendar.tz).date()
    errors: dict[str, str] = {}
    first, last = _date(start), _date(end)
    if start and first is None:
        errors["from"] = _("Enter a date.")
    if end and last is None:
        errors["to"] = _("Enter a date.")
    first, last = first or today.replace(day=1), last or today
    if last < first:
        errors["to"] = _("The end is before the start.")
        last = first
    if (last - first).days > 365:
        errors["to"] = _("A report covers at most a year.")
        last = first + timedelta(days=365)
    return first, last, errors


def _minutes(seconds: Any) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


CHANNELS = {"instagram": "Instagram", "telegram": "Telegram", "vk": N_("VK"), "email": N_("E-mail"),
            "webform": N_("Website form"), "monitoring": N_("Mentions")}


async def _report(services: Services, first: date, last: date, account: str,
                  channel: str = "", team: str = "") -> list[dict[str, Any]]:
    params = {"from": first.isoformat(), "to": last.isoformat(), **({"account": account} if account else {}),
              **({"channel": channel} if channel in CHANNELS else {}), **({"team": team} if team else {})}
    rows = await services.get("engagement", "/reports/agents", params=params)
    days = (last - first).days + 1
    for row in rows:
        row["per_day"] = round(row["answered"] / days, 1)
        row["name"] = person(row["agent"])
    return sorted(rows, key=lambda r: (-r["answered"], r["name"]))


@get("/care/reports", name="care_report", opt=REPORT_READERS)
async def care_report(request: Request, services: Services, start: str = "", end: str = "",
                      account: str = "", channel: str = "", team: str = "") -> Response:
    first, last, errors = _period(request, start, end)
    try:
        rows = await _report(services, first, last, account, channel, team)
        unavailable = False
    except ServiceError:
        rows, unavailable = [], True
    try:   # the accounts to choose from (names as the inbox knows them); analysts and seniors read them
        accounts = [(a["account"], a["name"]) for a in await services.get("engagement", "/care-settings")]
    except ServiceError:
        accounts = []
    teams: list[str] = []
    if staff_of(request).role != CARE_AGENT:   # the teams to narrow to (a senior agent is held to theirs anyway)
        try:
            teams = sorted({a["team"] for a in await services.get("engagement", "/agents") if a.get("team")})
        except ServiceError:
            teams = []
    chart = bar_chart([(r["name"], float(r["per_day"]), _("%(n)s a day") % {"n": r["per_day"]}) for r in rows])
    ctx = {"rows": rows, "chart": chart, "start": first.isoformat(), "end": last.isoformat(), "account": account,
           "channel": channel, "channels": CHANNELS, "accounts": accounts, "teams": teams, "team": team,
           "errors": errors, "unavailable": unavailable, "goal": DAILY_GOAL, "minutes": _minutes,
           "own_only": staff_of(request).role == CARE_AGENT}
    return page(request, "pages/care_report.html", ctx, block="report", status_code=422 if errors else 200)


@get("/care/reports.csv", name="care_report_csv", opt=REPORT_READERS)
async def care_report_csv(request: Request, services: Services, start: str = "", end: str = "",
                          account: str = "", channel: str = "", team: str = "") -> Response:
    first, last, _errors = _period(request, start, end)
    rows = await _report(services, first, last, account, channel, team)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("Agent"), _("Team"), _("Answered"), _("A day"), _("Resolved"), _("Messages sent"),
                     _("First response, average (working time, s)"), _("First response, p90 (working time, s)"),
                     _("First response, average (s)"), _("First response, p90 (s)"), _("Within target"),
                     _("Quality")])
    for r in rows:
        writer.writerow([r["name"], r.get("team") or "", r["answered"], r["per_day"], r["resolved"], r["messages_sent"],
                         r["first_response_business_avg_s"] or "", r.get("first_response_business_p90_s") or "",
                         r["first_response_avg_s"] or "", r["first_response_p90_s"] or "",
                         "" if r["within_target_share"] is None else f"{r['within_target_share'] * 100:.1f}%",
                         r["quality_avg"] or ""])
    name = f"care-report-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(out.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@get("/care/rounds", name="check_rounds", opt=ROUND_READERS)
async def check_rounds(request: Request, services: Services, day: str = "") -> Response:
    today = request.app.state.runtime.clock.now().astimezone(request.app.state.settings.calendar.tz).date()
    chosen = _date(day) or today
    error = _("Enter a date.") if day and _date(day) is None else ""
    try:
        rounds = await services.get("engagement", "/check-rounds", params={"date": chosen.isoformat()})
        unavailable = False
    except ServiceError:
        rounds, unavailable = [], True
    for r in rounds:
        r["manager_name"] = person(r["manager"]) if r["manager"] else ""
    summary = {state: sum(1 for r in rounds if r["state"] == state) for state in ("open", "done", "missed")}
    ctx = {"rounds": rounds, "day": chosen.isoformat(), "error": error, "unavailable": unavailable,
           "summary": summary, "previous": (chosen - timedelta(days=1)).isoformat(),
           "next": (chosen + timedelta(days=1)).isoformat()}
    return page(request, "pages/check_rounds.html", ctx, block="rounds", status_code=422 if error else 200)


# ------------------------------------------------------------------ care settings per account (EN-3 / EN-4)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HOURS = re.compile(r"^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*(,\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*)*$")
WEEKDAYS = ((1, N_("Mon")), (2, N_("Tue")), (3, N_("Wed")), (4, N_("Thu")), (5, N_("Fri")), (6, N_("Sat")),
            (7, N_("Sun")))


def parse_settings_form(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The form as the service's body, and the reasons a field is refused (in the user's language)."""
    errors: dict[str, str] = {}
    raw_target = str(form.get("target_minutes", "")).strip().replace(",", ".")
    try:
        target_s = round(float(raw_target) * 60)
        if not 1 <= target_s / 60 <= 7 * 24 * 60:
            raise ValueError
    except ValueError:
        errors["target_minutes"] = _("Enter the minutes: a number from 1 to 10080.")
        target_s = 420
    hours = str(form.get("hours", "")).strip()
    if hours and not HOURS.match(hours):
        errors["hours"] = _("Write the working intervals like 09:00-13:00, 14:00-21:00 (empty: all day).")
    days = sorted({int(d) for d in form.getall("days", []) if str(d).isdigit() and 1 <= int(d) <= 7})
    if not days:
        errors["days"] = _("Choose at least one day.")
    holidays = []
    for line in str(form.get("holidays", "")).replace(",", "\n").splitlines():
        if line.strip():
            day = _date(line.strip())
            if day is None:
                errors["holidays"] = _("Write each holiday as a date, YYYY-MM-DD, one per line.")
            else:
                holidays.append(day.isoformat())
    mode = str(form.get("mode", "brand"))
    if mode not in ("brand", "rounds"):
        errors["mode"] = _("Choose how the account is checked.")
    contact_email = str(form.get("contact_email", "")).strip()
    if contact_email and not EMAIL.match(contact_email):
        errors["contact_email"] = _("Enter an e-mail address like name@example.kz.")
    contact_telegram = str(form.get("contact_telegram", "")).strip()
    if contact_telegram and not contact_telegram.lstrip("-").isdigit():
        errors["contact_telegram"] = _("A Telegram chat id is a number, like 123456789.")
    body = {"target_s": target_s, "hours": hours, "days": ",".join(str(d) for d in days) or "1-7",
            "holidays": holidays, "mode": mode, "tz": str(form.get("tz", "")).strip(),
            "contact_email": contact_email, "contact_telegram": contact_telegram}
    return body, errors


async def _settings_ctx(services: Services, request: Request) -> dict[str, Any]:
    try:
        accounts = await services.get("engagement", "/care-settings")
        unavailable = False
    except ServiceError:
        accounts, unavailable = [], True
    for a in accounts:
        a["target_minutes"] = f"{a['target_s'] / 60:g}"
        a["day_set"] = _day_set(a["days"])
    return {"accounts": accounts, "unavailable": unavailable, "weekdays": WEEKDAYS, "errors": {}, "saved": "",
            "can_edit": staff_of(request).role == LEAD}


def _day_set(days: str) -> set[int]:
    out: set[int] = set()
    for part in (days or "").split(","):
        lo, _sep, hi = part.partition("-")
        if lo.strip().isdigit():
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


@get("/care/settings", name="care_settings", opt=allow(LEAD, SENIOR_AGENT, ANALYST))
async def care_settings(request: Request, services: Services) -> Response:
    return page(request, "pages/care_settings.html", await _settings_ctx(services, request))


@post("/care/settings/{account:str}", name="care_settings_save", opt=allow(LEAD))
async def care_settings_save(request: Request, services: Services, account: FromPath[str]) -> Response:
    form = await request.form()
    body, errors = parse_settings_form(form)
    if not errors:
        try:
            await services.put("engagement", f"/care-settings/{account}", json=body)
        except ServiceError as exc:
            if exc.status_code >= 500:
                raise
            errors = {k: _("Check this value.") for k in form_errors(exc)}
    ctx = await _settings_ctx(services, request)
    ctx.update(errors={account: errors} if errors else {}, saved="" if errors else account)
    if errors:   # show what was typed, with the reasons
        for a in ctx["accounts"]:
            if a["account"] == account:
                a.update(target_minutes=form.get("target_minutes", ""), hours=body["hours"], mode=body["mode"],
                         holidays=body["holidays"], day_set=_day_set(body["days"]),
                         contact_email=body["contact_email"], contact_telegram=body["contact_telegram"])
    return page(request, "pages/care_settings.html", ctx, block="accounts", status_code=422 if errors else 200)


routes = [care_report, care_report_csv, check_rounds, care_settings, care_settings_save]
