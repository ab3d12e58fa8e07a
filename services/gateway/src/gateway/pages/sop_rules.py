"""SOP rules (issue 13, EN-9) and the push settings: the list, the create / edit form (target, time, weekdays or
every N days, date range, text with attachments, manual or bot mode), pause / resume, and the preview of who
gets what when over the next 14 days (the service computes it without side effects).

The push settings (monthly quota per group, expiry hours, the Telegram channel that reminds owners) sit on the
rules page: the lead changes them where the rules that use them are.
"""

from __future__ import annotations

import re
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
    can_edit,
    channel_list,
    content_of,
    form_values,
    owner_choices,
    parse_date,
    sop_errors,
    target_of,
)
from gateway.people import person
from gateway.rendering import page, redirect
from gateway.roles import LEAD, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.ui import form_errors

Services = NamedDependency[ServiceClient]
HHMM = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d$")
PREVIEW_DAYS = 14
UPLOAD_LIMIT = 5 * 20 * 1024 * 1024 + 1024 * 1024   # a few 20 MB files in one form


def is_paused(rule: dict[str, Any]) -> bool:
    return bool(rule.get("paused")) or rule.get("status") == "paused" or rule.get("active") is False


def target_words(target: dict[str, Any], titles: dict[str, str]) -> str:
    """A rule's target as the reader says it: "category A · tags vip · 3 groups"."""
    parts = []
    if target.get("category"):
        parts.append(_("category %(c)s") % {"c": target["category"]})
    if target.get("tags"):
        parts.append(_("tags %(t)s") % {"t": ", ".join(target["tags"])})
    if target.get("group_ids"):
        parts.append(", ".join(titles.get(g, g) for g in target["group_ids"]))
    return " · ".join(parts) or "—"


def schedule_words(rule: dict[str, Any]) -> str:
    if rule.get("every_n_days"):
        when = _("every %(n)s days") % {"n": rule["every_n_days"]}
    elif sorted(rule.get("weekdays") or []) == list(range(1, 8)):
        when = _("every day")
    else:
        names = dict(WEEKDAYS)
        when = ", ".join(_(names[d]) for d in sorted(rule.get("weekdays") or []) if d in names)
    return f"{rule.get('time', '')} · {when}"


async def group_titles(services: ServiceClient) -> list[tuple[str, str]]:
    """(id, title) of the active groups, for the target picker."""
    try:
        answer = await services.get("engagement", "/groups", params={"active": "true", "per_page": 500, "page": 1})
    except (ServiceError, ServiceUnavailable):
        return []
    return [(g["id"], g["title"]) for g in answer.get("items", [])]


# ------------------------------------------------------------------ the list and the settings

async def rules_context(request: Request, services: ServiceClient, **extra: Any) -> dict[str, Any]:
    rules = await services.get("engagement", "/sop-rules")
    titles = dict(await group_titles(services))
    for r in rules:
        r["target_text"] = target_words(r.get("target") or {}, titles)
        r["schedule_text"] = schedule_words(r)
        r["is_paused"] = is_paused(r)
    try:
        settings = await services.get("engagement", "/push-settings")
    except ServiceError:
        settings = None
    is_lead = request.state.web.staff.role == LEAD
    return {"rules": sorted(rules, key=lambda r: (r["is_paused"], r.get("time", ""), r.get("name", ""))),
            "settings": settings, "is_lead": is_lead, "can_edit": can_edit(request),
            "bots": [c for c in await channel_list(services) if c.get("kind") == "telegram"] if is_lead else [],
            "owners": await owner_choices(request) if is_lead else [],
            "notice": "", "errors": {}, "form": None, "modes": dict(MODES), **extra}


@get("/sop/rules", name="sop_rules", opt=SOP_EDITORS)
async def rules_page(request: Request, services: Services) -> Response:
    return page(request, "pages/sop_rules.html", await rules_context(request, services), block="rules")


def settings_body(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    body: dict[str, Any] = {}
    for key, low, high, message in (
            ("monthly_quota", 0, 1000, _("Enter a whole number of pushes from 0 to 1000.")),
            ("expire_after_hours", 1, 24 * 31, _("Enter whole hours from 1 to 744."))):
        raw = str(form.get(key) or "").strip()
        if not raw.isdigit() or not low <= int(raw) <= high:
            errors[key] = message
        else:
            body[key] = int(raw)
    body["reminder_channel_id"] = str(form.get("reminder_channel_id") or "").strip() or None
    body["default_owner"] = str(form.get("default_owner") or "").strip() or None
    return body, errors


@post("/sop/settings", name="sop_settings_save", opt=allow(LEAD))
async def settings_save(request: Request, services: Services) -> Response:
    form = await request.form()
    body, errors = settings_body(form)
    if not errors:
        try:
            await services.put("engagement", "/push-settings", json=body)
        except ServiceError as exc:
            if exc.status_code not in (400, 404, 409, 422):
                raise
            errors = form_errors(exc, "monthly_quota")
    ctx = await rules_context(request, services, errors=errors, notice="" if errors else _("Push settings saved."))
    if errors:
        ctx["settings"] = {**(ctx["settings"] or {}), **{k: str(form.get(k) or "") for k in
                                                        ("monthly_quota", "expire_after_hours", "reminder_channel_id",
                                                         "default_owner")}}
    return page(request, "pages/sop_rules.html", ctx, block="rules", status_code=422 if errors else 200)


async def _toggle(request: Request, services: ServiceClient, rule_id: str, action: str) -> Response:
    await services.post("engagement", f"/sop-rules/{rule_id}/{action}")
    if request.headers.get("hx-request") != "true":
        return redirect(request, "/sop/rules")
    notice = _("The rule is paused: no pushes are made until it is resumed.") if action == "pause" else \
        _("The rule is running again.")
    return page(request, "pages/sop_rules.html", await rules_context(request, services, notice=notice), block="rules")


@post("/sop/rules/{rule_id:str}/pause", name="sop_rule_pause", opt=SOP_EDITORS)
async def rule_pause(request: Request, services: Services, rule_id: FromPath[str]) -> Response:
    return await _toggle(request, services, rule_id, "pause")


@post("/sop/rules/{rule_id:str}/resume", name="sop_rule_resume", opt=SOP_EDITORS)
async def rule_resume(request: Request, services: Services, rule_id: FromPath[str]) -> Response:
    return await _toggle(request, services, rule_id, "resume")


# ------------------------------------------------------------------ one rule: form and preview

async def rule_body(form: Any, services: ServiceClient) -> tuple[dict[str, Any], dict[str, str]]:
    """The form as the service's body, and the reasons a field is refused; files are uploaded on the way."""
    errors: dict[str, str] = {}
    name = str(form.get("name") or "").strip()
    if not name:
        errors["name"] = _("Name the rule, like “A groups: morning knowledge card”.")
    at = str(form.get("time") or "").strip()
    if not HHMM.match(at):
        errors["time"] = _("Enter a time like 09:00.")
    body: dict[str, Any] = {"name": name, "target": target_of(form, errors), "time": at.zfill(5),
                            "mode": str(form.get("mode") or "manual")}
    if body["mode"] not in dict(MODES):
        errors["mode"] = _("Choose who sends the push.")
    if str(form.get("repeat") or "weekdays") == "every":
        raw = str(form.get("every_n_days") or "").strip()
        if not raw.isdigit() or not 1 <= int(raw) <= 365:
            errors["every_n_days"] = _("Enter a whole number of days from 1 to 365.")
        body.update(weekdays=list(range(1, 8)), every_n_days=int(raw) if raw.isdigit() else None)
    else:
        days = sorted({int(d) for d in form.getall("weekdays", []) if str(d).isdigit() and 1 <= int(d) <= 7})
        if not days:
            errors["weekdays"] = _("Choose at least one day.")
        body.update(weekdays=days, every_n_days=None)
    for key in ("starts_on", "ends_on"):
        raw = str(form.get(key) or "").strip()
        if raw and parse_date(raw) is None:
            errors[key] = _("Enter a date.")
        body[key] = raw or None
    if body["starts_on"] and body["ends_on"] and not errors.get("ends_on") and body["ends_on"] < body["starts_on"]:
        errors["ends_on"] = _("The end is before the start.")
    body["content"] = await content_of(form, services, errors)
    return body, errors


def rule_values(rule: dict[str, Any]) -> dict[str, Any]:
    """A stored rule as the form's values."""
    target, content = rule.get("target") or {}, rule.get("content") or {}
    links = [a["url"] for a in content.get("attachments", []) if a.get("kind") == "link"]
    return {"name": rule.get("name", ""), "time": rule.get("time", ""), "mode": rule.get("mode", "manual"),
            "repeat": "every" if rule.get("every_n_days") else "weekdays",
            "every_n_days": str(rule.get("every_n_days") or ""), "weekdays": rule.get("weekdays") or [],
            "starts_on": rule.get("starts_on") or "", "ends_on": rule.get("ends_on") or "",
            "category": target.get("category", ""), "tags": ", ".join(target.get("tags") or []),
            "group_ids": target.get("group_ids") or [], "text": content.get("text", ""), "links": "\n".join(links),
            "attachments": [a for a in content.get("attachments", []) if a.get("kind") != "link"]}


async def rule_context(request: Request, services: ServiceClient, rule_id: str | None, *,
                       values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                       notice: str = "") -> dict[str, Any]:
    rule = await services.get("engagement", f"/sop-rules/{rule_id}") if rule_id else None
    preview: list[dict[str, Any]] = []
    if rule:
        preview = await services.get("engagement", f"/sop-rules/{rule_id}/preview", params={"days": PREVIEW_DAYS})
        for occurrence in preview:
            for g in occurrence.get("groups", []):
                g["owner_name"] = person(g.get("owner")) if g.get("owner") else _("No owner yet")
    v = values or (rule_values(rule) if rule else {"weekdays": list(range(1, 6)), "mode": "manual",
                                                    "repeat": "weekdays", "group_ids": [], "attachments": []})
    return {"rule": rule, "v": v, "errors": errors or {}, "notice": notice, "preview": preview,
            "preview_days": PREVIEW_DAYS, "groups": await group_titles(services), "weekdays": WEEKDAYS,
            "modes": MODES, "attachments": attachments_json(v.get("attachments") or []),
            "paused": is_paused(rule) if rule else False}


@get("/sop/rules/new", name="sop_rule_new", opt=SOP_EDITORS)
async def rule_new(request: Request, services: Services) -> Response:
    return page(request, "pages/sop_rule.html", await rule_context(request, services, None), block="rule")


@get("/sop/rules/{rule_id:str}", name="sop_rule", opt=SOP_EDITORS)
async def rule_page(request: Request, services: Services, rule_id: FromPath[str]) -> Response:
    notice = _("Rule saved.") if request.query_params.get("saved") else ""
    return page(request, "pages/sop_rule.html", await rule_context(request, services, rule_id, notice=notice),
                block="rule")


async def _save_rule(request: Request, services: ServiceClient, rule_id: str | None) -> Response:
    form = await request.form()
    body, errors = await rule_body(form, services)
    saved: dict[str, Any] | None = None
    if not errors:
        try:
            if rule_id:
                saved = await services.patch("engagement", f"/sop-rules/{rule_id}", json=body)
            else:
                saved = await services.post("engagement", "/sop-rules", json=body)
        except ServiceError as exc:
            if exc.status_code not in (400, 404, 409, 422):
                raise
            errors = sop_errors(exc, "name")
    if errors:
        ctx = await rule_context(request, services, rule_id, values=form_values(form, body["content"]), errors=errors)
        return page(request, "pages/sop_rule.html", ctx, block="rule", status_code=422)
    target = f"/sop/rules/{(saved or {}).get('id') or rule_id}"
    return redirect(request, target + "?saved=1")


@post("/sop/rules", name="sop_rule_create", opt=SOP_EDITORS, request_max_body_size=UPLOAD_LIMIT)
async def rule_create(request: Request, services: Services) -> Response:
    return await _save_rule(request, services, None)


@post("/sop/rules/{rule_id:str}", name="sop_rule_update", opt=SOP_EDITORS, request_max_body_size=UPLOAD_LIMIT)
async def rule_update(request: Request, services: Services, rule_id: FromPath[str]) -> Response:
    return await _save_rule(request, services, rule_id)


routes = [rules_page, settings_save, rule_pause, rule_resume, rule_new, rule_page, rule_create, rule_update]
