"""Agency settings (issue 9), the project lead's one settings area: the business calendar (CAL-1) with the
Kazakhstan holidays preset, the deadline and period numbers of DOMAIN.md, the requisites CL-12 documents
print, and the default language. The money values (PAY-1…PAY-7, fines per deadline rule) are the pay rules
(`/payroll/rules`, versioned per month by the payroll service); this page links there.

Everything is stored by the clients service (`PUT /settings`: effective-dated rows, each change audited
with who and when); this page shows the history. Deadline numbers take effect from the date the lead
chooses (a fact is judged by the numbers in force at its own time); the calendar, requisites and language
from the moment they are saved. After a save the gateway re-reads them at once (gateway/agency.py); the
services get the calendar through `clients.agency.calendar_changed.v1`.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from shared.agency import kz_holidays

from gateway import agency
from gateway.i18n import LANGUAGES, N_, _
from gateway.rendering import is_htmx, page, redirect
from gateway.roles import LEAD, allow
from gateway.service_client import ServiceClient, ServiceError
from gateway.ui import form_errors
from shared import agency_calendar

Services = NamedDependency[ServiceClient]

WEEKDAYS = [("1", N_("Mon")), ("2", N_("Tue")), ("3", N_("Wed")), ("4", N_("Thu")), ("5", N_("Fri")),
            ("6", N_("Sat")), ("7", N_("Sun"))]
# The deadline and period numbers of DOMAIN.md the clients service reads at each fact's time.
DEADLINES: list[tuple[str, str, str]] = [   # key, label, input type
    ("first_call_within_hours", N_("CL-3 · first call within, hours"), "number"),
    ("first_call_morning", N_("CL-3 · first call after hours: by this time next morning"), "time"),
    ("first_call_next_morning_working_day", N_("CL-3 · “next morning” is the next working day"), "checkbox"),
    ("concept_within_hours", N_("CL-6 · concept within, hours"), "number"),
    ("first_post_within_working_days", N_("CL-9 · first post within, working days"), "number"),
    ("period_months", N_("CL-10 · service period, months"), "number"),
    ("renewal_task_days_before_end", N_("CL-11 · renewal call, days before the period ends"), "number"),
    ("loss_after_days", N_("CL-13 · client lost when unpaid, days after the period"), "number"),
    ("money_back_days", N_("CL-15 · money-back window, days"), "number"),
]
REQUISITES: list[tuple[str, str]] = [
    ("agency_name", N_("Legal name")), ("agency_bin", N_("BIN")), ("agency_bank", N_("Bank")),
    ("agency_bik", N_("BIK")), ("agency_iban", N_("IBAN")), ("agency_address", N_("Legal address")),
    ("agency_signer", N_("Signer (position, full name)")), ("agency_email", N_("E-mail for questions")),
]
SETTING_NAMES: dict[str, str] = {
    **{k: label for k, label, _t in DEADLINES}, **dict(REQUISITES),
    "calendar_timezone": N_("Time zone"), "calendar_hours": N_("Working hours"),
    "calendar_workdays": N_("Working days"), "calendar_holidays": N_("Holidays"),
    "default_language": N_("Default language"),
}
REQUIRED_REQUISITES = ("agency_name", "agency_bin", "agency_bank", "agency_bik", "agency_iban", "agency_address",
                       "agency_signer")


def missing_requisites(values: dict[str, Any]) -> list[str]:
    """CL-12: the requisites documents need that are not entered (the lead's dashboard says so too)."""
    return [key for key in REQUIRED_REQUISITES if not values.get(key)]


def _now(request: Request) -> datetime:
    return request.app.state.runtime.clock.now()


def calendar_form(request: Request, values: dict[str, Any]) -> dict[str, Any]:
    """The calendar in force as form values: the lead's, else the process's environment."""
    base = agency_calendar.base_calendar(request.app.state.settings)
    hours = values.get("calendar_hours") or f"{base.work_start:%H:%M}-{base.work_end:%H:%M}"
    start, _sep, end = hours.partition("-")
    if values.get("calendar_workdays"):
        workdays = set(agency_calendar._parse_workdays(values["calendar_workdays"]))
    else:
        workdays = set(base.workdays)
    holidays = values.get("calendar_holidays") or ",".join(d.isoformat() for d in sorted(base.holidays))
    return {"timezone": values.get("calendar_timezone") or base.tz.key, "work_start": start.strip(),
            "work_end": end.strip(), "workdays": [str(d + 1) for d in sorted(workdays)],
            "holidays": "\n".join(h for h in holidays.split(",") if h.strip())}


def _effective_day(request: Request) -> str:
    return request.app.state.settings.calendar.local(_now(request)).date().isoformat()


async def settings_context(request: Request, services: ServiceClient, *, errors: dict[str, str] | None = None,
                           forms: dict[str, dict[str, Any]] | None = None, notice: str = "",
                           section: str = "") -> dict[str, Any]:
    current = await services.get("clients", "/settings")
    values = current.get("values") or {}
    forms = forms or {}
    history = list(reversed(current.get("history") or []))[:30]
    deadlines = {k: values.get(k) for k, _label, _t in DEADLINES}
    deadlines["effective_from"] = _effective_day(request)
    return {
        "values": values, "errors": errors or {}, "notice": notice, "section": section,
        "calendar": forms.get("calendar") or calendar_form(request, values),
        "deadlines": forms.get("deadlines") or deadlines,
        "requisites": forms.get("requisites") or {k: values.get(k) or "" for k, _label in REQUISITES},
        "language": (forms.get("language") or {}).get("default_language") or values.get("default_language") or "ru",
        "missing": missing_requisites(values), "history": history, "weekdays": WEEKDAYS,
        "deadline_fields": DEADLINES, "requisite_fields": REQUISITES, "setting_names": SETTING_NAMES,
        "languages": LANGUAGES, "kz_years": _kz_years(request),
    }


def _kz_years(request: Request) -> list[int]:
    year = request.app.state.settings.calendar.local(_now(request)).year
    return [year, year + 1]


async def _save(request: Request, services: Services, section: str, values: dict[str, Any],
                form: dict[str, Any], effective_from: str | None = None,
                errors: dict[str, str] | None = None) -> Response:
    """PUT the values to the clients service; the section re-rendered with its errors, or the page."""
    errors = dict(errors or {})
    if not errors:
        body: dict[str, Any] = {"values": values}
        if effective_from:
            body["effective_from"] = effective_from
        try:
            await services.put("clients", "/settings", json=body)
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = {k.removeprefix("values."): v for k, v in form_errors(exc).items()}
    if not errors:
        await agency.refresh(request.app.state.runtime)
        if not is_htmx(request):
            return redirect(request, "/settings")
    ctx = await settings_context(request, services, errors=errors, forms={section: form} if errors else None,
                                 notice="" if errors else _("Settings saved."), section=section)
    return page(request, "pages/settings.html", ctx, block="settings", status_code=422 if errors else 200)


def _form(raw: Any) -> dict[str, str]:
    return {k: str(v) for k, v in raw.items() if k != "_csrf"}


@get("/settings", name="settings", opt=allow(LEAD))
async def settings_page(request: Request, services: Services) -> Response:
    return page(request, "pages/settings.html", await settings_context(request, services), block="settings")


@post("/settings/calendar", name="settings_calendar", opt=allow(LEAD))
async def settings_calendar(request: Request, services: Services) -> Response:
    raw = await request.form()
    form = {"timezone": "", "work_start": "", "work_end": "", "holidays": "", **_form(raw)}
    form["workdays"] = [str(v) for v in raw.getall("workdays")] if "workdays" in raw else []
    errors: dict[str, str] = {}
    holidays: list[str] = []
    for line in form.get("holidays", "").replace(",", "\n").splitlines():
        item = line.strip()
        if not item:
            continue
        try:
            holidays.append(date.fromisoformat(item).isoformat())
        except ValueError:
            errors["calendar_holidays"] = _("“%(value)s” is not a date like 2026-03-08.") % {"value": item}
            break
    if form.get("preset") == "kz":   # fill the list in, the lead checks it and saves
        years = _kz_years(request)
        holidays = sorted(set(holidays) | {d.isoformat() for y in years for d in kz_holidays(y)})
        form["holidays"] = "\n".join(holidays)
        ctx = await settings_context(request, services, forms={"calendar": form}, section="calendar",
                                     notice=_("Kazakhstan's public holidays for %(years)s are in the list: check "
                                              "them and save.") % {"years": ", ".join(map(str, years))})
        return page(request, "pages/settings.html", ctx, block="settings")
    start, end = form.get("work_start", "").strip(), form.get("work_end", "").strip()
    try:
        if time.fromisoformat(start) >= time.fromisoformat(end):
            raise ValueError
    except ValueError:
        errors["calendar_hours"] = _("Working hours start before they end, like 10:00–20:00.")
    if not form["workdays"]:
        errors["calendar_workdays"] = _("Choose at least one working day.")
    if not form.get("timezone", "").strip():
        errors["calendar_timezone"] = _("Required.")
    values = {"calendar_timezone": form.get("timezone", "").strip(), "calendar_hours": f"{start}-{end}",
              "calendar_workdays": ",".join(sorted(form["workdays"])), "calendar_holidays": ",".join(sorted(set(holidays)))}
    return await _save(request, services, "calendar", values, form, errors=errors)


@post("/settings/deadlines", name="settings_deadlines", opt=allow(LEAD))
async def settings_deadlines(request: Request, services: Services) -> Response:
    form = _form(await request.form())
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for key, _label, kind in DEADLINES:
        if kind == "checkbox":
            values[key] = form.get(key) == "on"
            form[key] = values[key]
            continue
        raw = form.get(key, "").strip()
        if not raw:
            errors[key] = _("Required.")
            continue
        values[key] = raw if kind == "time" else raw.replace(",", ".")
    effective = None
    try:
        day = date.fromisoformat(form.get("effective_from", "").strip())
        effective = datetime.combine(day, time(0), tzinfo=request.app.state.settings.calendar.tz).isoformat()
    except ValueError:
        errors["effective_from"] = _("Choose a date.")
    # Numbers go as numbers (the service refuses text where it wants a number, naming the field).
    for key, _label, kind in DEADLINES:
        if kind == "number" and key in values:
            try:
                number = float(values[key])
                values[key] = int(number) if number.is_integer() else number
            except ValueError:
                errors[key] = _("Enter a number.")
    return await _save(request, services, "deadlines", values, form, effective, errors)


@post("/settings/requisites", name="settings_requisites", opt=allow(LEAD))
async def settings_requisites(request: Request, services: Services) -> Response:
    form = {key: "" for key, _label in REQUISITES} | _form(await request.form())
    values = {key: form.get(key, "").strip() for key, _label in REQUISITES}
    return await _save(request, services, "requisites", values, form)


@post("/settings/language", name="settings_language", opt=allow(LEAD))
async def settings_language(request: Request, services: Services) -> Response:
    form = _form(await request.form())
    language = form.get("default_language", "")
    errors = {} if language in LANGUAGES else {"default_language": _("Choose one of the four languages.")}
    return await _save(request, services, "language", {"default_language": language}, form, errors=errors)


routes = [settings_page, settings_calendar, settings_deadlines, settings_requisites, settings_language]
