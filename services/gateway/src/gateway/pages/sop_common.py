"""What the group SOP pages (issue 13, EN-8…EN-13) share: who may do what, the owners to choose from, the
channel accounts, the failure reasons in the user's language, a rule's or calendar entry's target and content
read from a form (attachments uploaded to the engagement service on the way), and a period of local dates.

The engagement service decides everything (materialisation, quotas, failures, metrics); these pages only ask,
show people by name and times in the agency's time zone.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import httpx
from litestar import Request
from litestar.datastructures import UploadFile

from gateway.i18n import N_, _
from gateway.roles import AD_MANAGER, ANALYST, CARE_AGENT, CONTENT_MANAGER, GROWTH, LEAD, SENIOR_AGENT, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.ui import form_errors

# Who edits groups, rules and the calendar; who reads the metrics; who can own a group (and so has pushes).
EDIT_ROLES = (LEAD, SENIOR_AGENT)
SOP_EDITORS = allow(*EDIT_ROLES)
SOP_READERS = allow(LEAD, SENIOR_AGENT, ANALYST)
OWNER_ROLES = (CARE_AGENT, SENIOR_AGENT, CONTENT_MANAGER, AD_MANAGER, GROWTH)
PUSH_OWNERS = allow(*OWNER_ROLES, LEAD)
MAX_FILE = 20 * 1024 * 1024   # SOP_API: POST /sop-files takes at most 20 MB

WEEKDAYS = ((1, N_("Mon")), (2, N_("Tue")), (3, N_("Wed")), (4, N_("Thu")), (5, N_("Fri")), (6, N_("Sat")),
            (7, N_("Sun")))
MODES = (("manual", N_("The owner sends by hand")), ("auto", N_("The bot sends by itself")))
# EN-12's failure reasons, as the service codes them.
REASONS = {
    "owner_left": N_("The owner has left"),
    "transferred": N_("The group was transferred to another owner"),
    "quota": N_("The group has had its monthly quota of pushes"),
    "channel_error": N_("The channel refused the message"),
    "expired": N_("Not sent in time"),
    "group_inactive": N_("The group is no longer active"),
}
STATUSES = {"pending": N_("Pending"), "sent": N_("Sent"), "failed": N_("Failed")}
CHANNEL_KINDS = {"telegram": "Telegram", "vk": N_("VK"), "manual": N_("By hand")}


def channel_label(kind: str | None) -> str:
    """A group's channel kind as the reader says it ("manual": a hand-entered group where no bot posts)."""
    return _(CHANNEL_KINDS.get(kind or "manual", CHANNEL_KINDS["manual"]))


def reason_text(push: dict[str, Any]) -> str:
    """A failed push's reason in the user's language; a channel error adds the channel's own words."""
    reason = push.get("reason") or ""
    text = _(REASONS[reason]) if reason in REASONS else reason
    detail = push.get("detail")
    return f"{text}: «{detail}»" if detail and reason == "channel_error" else text


def can_edit(request: Request) -> bool:
    return request.state.web.staff.role in EDIT_ROLES


async def owner_choices(request: Request) -> list[tuple[str, str]]:
    """(login, name) of the active staff who can own a group."""
    from sqlalchemy import select

    from gateway.models import Staff

    async with request.app.state.runtime.db.engine.connect() as conn:
        rows = await conn.execute(select(Staff.login, Staff.display_name).where(
            Staff.active.is_(True), Staff.role.in_(OWNER_ROLES)).order_by(Staff.display_name))
        return [(login, name) for login, name in rows]


async def channel_list(services: ServiceClient) -> list[dict[str, Any]]:
    """The Telegram and VK channel accounts groups live on; a help for pickers, so an error gives none."""
    try:
        channels = await services.get("engagement", "/channels")
    except (ServiceError, ServiceUnavailable):
        return []
    return [c for c in channels or [] if c.get("kind") in ("telegram", "vk")]


def tags_of(raw: str) -> list[str]:
    """"vip, 新客 ,vip" -> ["vip", "新客"]: commas (any width) or new lines, duplicates once."""
    out: list[str] = []
    for part in raw.replace("，", ",").replace("\n", ",").split(","):
        tag = part.strip()
        if tag and tag not in out:
            out.append(tag)
    return out


def sop_errors(exc: ServiceError, default_field: str) -> dict[str, str]:
    """A service refusal as {form field: message}; the API's nested names map onto the form's flat ones."""
    errors: dict[str, str] = {}
    for field, message in form_errors(exc, default_field).items():
        key = field.split(".")[-1] if field.startswith(("target.", "content.")) else field
        errors[key] = f"{errors[key]} {message}" if key in errors else message
    return errors


# ------------------------------------------------------------------ target and content of a rule / calendar entry

def target_of(form: Any, errors: dict[str, str]) -> dict[str, Any]:
    target: dict[str, Any] = {}
    category = str(form.get("category") or "").strip()
    if category:
        target["category"] = category
    tags = tags_of(str(form.get("tags") or ""))
    if tags:
        target["tags"] = tags
    group_ids = [str(g) for g in form.getall("group_ids", []) if str(g).strip()]
    if group_ids:
        target["group_ids"] = group_ids
    if not target:
        errors["target"] = _("Choose the groups: a category, tags or listed groups.")
    return target


def kept_attachments(form: Any) -> list[dict[str, Any]]:
    """Attachments uploaded earlier (hidden fields, JSON), kept across a form shown again with errors."""
    out = []
    for raw in form.getall("attachment", []):
        try:
            item = json.loads(str(raw))
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("kind") in ("image", "video", "file") and item.get("file_id"):
            out.append({k: item[k] for k in ("kind", "file_id", "name", "content_type", "size") if k in item})
    return out


def links_of(raw: str, errors: dict[str, str]) -> list[dict[str, Any]]:
    links = []
    for line in raw.splitlines():
        url = line.strip()
        if not url:
            continue
        if not url.startswith(("https://", "http://")):
            errors["links"] = _("Write each link as a full address starting with https://, one per line.")
            continue
        links.append({"kind": "link", "url": url})
    return links


def kind_of(content_type: str) -> str:
    return "image" if content_type.startswith("image/") else "video" if content_type.startswith("video/") else "file"


async def upload_files(form: Any, services: ServiceClient, errors: dict[str, str]) -> list[dict[str, Any]]:
    """The files chosen in the form, stored by the engagement service (`POST /sop-files`) as attachments."""
    stored = []
    for upload in form.getall("files", []):
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        data = await upload.read()
        if not data:
            errors["files"] = _("The file %(name)s is empty.") % {"name": upload.filename}
            continue
        if len(data) > MAX_FILE:
            errors["files"] = _("The file %(name)s is larger than 20 MB.") % {"name": upload.filename}
            continue
        content_type = upload.content_type or "application/octet-stream"
        built = httpx.Request("POST", "http://x", files={"file": (upload.filename, data, content_type)})
        try:
            answer = await services.raw("POST", "engagement", "/sop-files", content=built.read(),
                                        content_type=built.headers["content-type"], accept="application/json")
        except ServiceError as exc:
            if exc.status_code not in (400, 413, 415, 422):
                raise
            errors["files"] = _("%(name)s was not accepted: images, video, PDF and office documents up to 20 MB.") % {
                "name": upload.filename}
            continue
        info = answer.json()
        stored.append({"kind": kind_of(str(info.get("content_type") or content_type)), "file_id": info["file_id"],
                       "name": info.get("name") or upload.filename,
                       "content_type": info.get("content_type") or content_type, "size": info.get("size") or len(data)})
    return stored


async def content_of(form: Any, services: ServiceClient, errors: dict[str, str]) -> dict[str, Any]:
    text = str(form.get("text") or "").strip()
    attachments = kept_attachments(form)
    attachments += await upload_files(form, services, errors)
    attachments += links_of(str(form.get("links") or ""), errors)
    if not text and not attachments and "files" not in errors:
        errors["text"] = _("Write the text of the push.")
    elif len(text) > 4096:   # one Telegram message
        errors["text"] = _("At most 4096 characters: a Telegram message.")
    return {"text": text, "attachments": attachments}


def form_values(form: Any, content: dict[str, Any] | None = None) -> dict[str, Any]:
    """What was typed, to show the form again with its errors (uploaded files kept as attachments)."""
    values = {k: str(v) for k, v in form.items() if k not in ("_csrf", "files", "attachment", "group_ids", "weekdays")}
    values["group_ids"] = [str(g) for g in form.getall("group_ids", [])]
    values["weekdays"] = [int(d) for d in form.getall("weekdays", []) if str(d).isdigit()]
    values["attachments"] = [a for a in (content or {}).get("attachments", []) if a.get("kind") != "link"]
    return values


def attachments_json(attachments: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    return [(a, json.dumps(a, ensure_ascii=False)) for a in attachments]


# ------------------------------------------------------------------ dates

def parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def today(request: Request) -> date:
    return request.app.state.runtime.clock.now().astimezone(request.app.state.settings.calendar.tz).date()


def period(request: Request, start: str, end: str, default_days: int = 7) -> tuple[date, date, dict[str, str]]:
    """The chosen local dates (default: the last `default_days` days) and the reasons a date is refused."""
    errors: dict[str, str] = {}
    first, last = parse_date(start), parse_date(end)
    if start and first is None:
        errors["from"] = _("Enter a date.")
    if end and last is None:
        errors["to"] = _("Enter a date.")
    now = today(request)
    last = last or now
    first = first or last - timedelta(days=default_days - 1)
    if last < first:
        errors["to"] = _("The end is before the start.")
        last = first
    if (last - first).days > 365:
        errors["to"] = _("A report covers at most a year.")
        last = first + timedelta(days=365)
    return first, last, errors


def bounds(first: date, last: date) -> dict[str, str]:
    """Local dates as the service's `from` / `to` (both inclusive, in the agency's time zone)."""
    return {"from": first.isoformat(), "to": last.isoformat()}
