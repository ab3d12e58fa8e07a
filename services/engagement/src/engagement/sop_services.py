"""The group SOP's operations (issue 13, EN-9…EN-12): SOP rules, the group calendar, attachments, the push
settings, and what owners and the lead do with pushes (mark sent, re-target). Groups and the roster are in
sop_groups.py, timers in sop_materialise.py, figures in sop_reports.py.

Choices where DOMAIN is silent: a rule edit bumps its version (its timer is replaced; tasks already made keep
their copied content); a push marked sent twice answers the same push (idempotent); only pushes failed as
`transferred` or `owner_left` may be re-targeted (the others' causes are not the owner).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from shared.auth import Actor
from shared.clock import Clock, as_utc
from shared.errors import Conflict, Forbidden, NotFound
from shared.events.engagement import PushSent
from shared.outbox import add_event
from shared.timers import cancel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import sop_materialise as mat
from engagement import sop_rules
from engagement.models import Channel
from engagement.sop_groups import settings_row
from engagement.sop_models import CalendarEntry, Group, Push, PushSettings, PushTask, SopFile, SopRule
from shared import messages as M

MAX_FILE_BYTES = 20 * 1024 * 1024
FILE_TYPES = ("image/", "video/", "application/pdf", "application/msword", "application/vnd.openxmlformats-",
              "application/vnd.ms-", "application/vnd.oasis.opendocument.", "text/plain", "text/csv")
LEAD_ROLES = ("lead", "integration")


class TargetIn(msgspec.Struct, forbid_unknown_fields=True):
    category: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    group_ids: list[str] = msgspec.field(default_factory=list)


class ContentIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str = ""
    attachments: list[dict[str, Any]] = msgspec.field(default_factory=list)


class RuleIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    target: TargetIn
    time: str
    content: ContentIn
    weekdays: list[int] = msgspec.field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])
    every_n_days: int | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    timezone: str | None = None
    mode: Literal["manual", "auto"] = "manual"


class RulePatchIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str | msgspec.UnsetType = msgspec.UNSET
    target: TargetIn | msgspec.UnsetType = msgspec.UNSET
    time: str | msgspec.UnsetType = msgspec.UNSET
    content: ContentIn | msgspec.UnsetType = msgspec.UNSET
    weekdays: list[int] | msgspec.UnsetType = msgspec.UNSET
    every_n_days: int | None | msgspec.UnsetType = msgspec.UNSET
    starts_on: date | None | msgspec.UnsetType = msgspec.UNSET
    ends_on: date | None | msgspec.UnsetType = msgspec.UNSET
    timezone: str | None | msgspec.UnsetType = msgspec.UNSET
    mode: Literal["manual", "auto"] | msgspec.UnsetType = msgspec.UNSET


class CalendarIn(msgspec.Struct, forbid_unknown_fields=True):
    at: datetime
    target: TargetIn
    content: ContentIn
    mode: Literal["manual", "auto"] = "manual"
    title: str = ""


class SettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    monthly_quota: int = 4
    expire_after_hours: int = 24
    reminder_channel_id: str | None = None
    default_owner: str | None = None


# ------------------------------------------------------------------ validation

def _target(data: TargetIn) -> dict[str, Any]:
    target = {"category": (data.category or "").strip() or None, "tags": sorted({t.strip() for t in data.tags
                                                                                 if t.strip()}),
              "group_ids": list(dict.fromkeys(data.group_ids))}
    if not target["category"] and not target["tags"] and not target["group_ids"]:
        raise M.error("target", M.SOP_TARGET)
    return target


async def _content(session: AsyncSession, data: ContentIn) -> dict[str, Any]:
    if len(data.text) > 4096:
        raise M.error("content.text", M.SOP_TEXT_LONG)
    attachments = []
    for i, item in enumerate(data.attachments):
        field = f"content.attachments.{i}"
        kind = item.get("kind")
        if kind == "link":
            url = str(item.get("url") or "")
            if not url.startswith(("https://", "http://")):
                raise M.error(f"{field}.url", M.SOP_LINK)
            attachments.append({"kind": "link", "url": url, "title": str(item.get("title") or "")[:300]})
        elif kind in ("image", "video", "file"):
            row = await session.get(SopFile, str(item.get("file_id") or ""))
            if row is None:
                raise M.error(f"{field}.file_id", M.SOP_NO_FILE)
            attachments.append({"kind": kind, "file_id": row.id, "name": row.name, "content_type": row.content_type,
                                "size": row.size})
        else:
            raise M.error(f"{field}.kind", M.SOP_ATTACHMENT_KIND)
    if not data.text.strip() and not attachments:
        raise M.error("content.text", M.SOP_EMPTY)
    return {"text": data.text, "attachments": attachments}


def _zone(name: str | None, agency_tz: ZoneInfo) -> str:
    if not name:
        return agency_tz.key
    try:
        return ZoneInfo(name).key
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise M.error("timezone", M.CALENDAR_TZ) from exc


def _check_schedule(rule: SopRule) -> None:
    try:
        time.fromisoformat(rule.time)
        if len(rule.time) != 5:
            raise ValueError
    except ValueError as exc:
        raise M.error("time", M.TIME_FORMAT) from exc
    if any(d not in range(1, 8) for d in rule.weekdays):
        raise M.error("weekdays", M.SOP_WEEKDAYS)
    if rule.every_n_days is not None and not 1 <= rule.every_n_days <= 366:
        raise M.error("every_n_days", M.SOP_EVERY_N)
    if rule.every_n_days is None and not rule.weekdays:
        raise M.error("weekdays", M.SOP_SCHEDULE)
    if rule.starts_on and rule.ends_on and rule.ends_on < rule.starts_on:
        raise M.error("ends_on", M.END_BEFORE_START)


def _name(value: str, field: str = "name") -> str:
    value = value.strip()
    if not value or len(value) > 200:
        raise M.error(field, M.SOP_NAME)
    return value


# ------------------------------------------------------------------ rules (EN-9)

def rule_out(rule: SopRule, next_due: datetime | None = None) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "target": rule.target, "time": rule.time, "weekdays": rule.weekdays,
            "every_n_days": rule.every_n_days, "starts_on": rule.starts_on, "ends_on": rule.ends_on,
            "timezone": rule.timezone, "content": rule.content, "mode": rule.mode, "paused": rule.paused,
            "created_at": rule.created_at, "created_by": rule.created_by, "updated_at": rule.updated_at,
            "next_due_at": next_due}


def next_due(rule: SopRule, agency_tz: ZoneInfo, clock: Clock) -> datetime | None:
    return None if rule.paused else sop_rules.next_occurrence(mat.schedule_of(rule, agency_tz), clock.now())


async def create_rule(session: AsyncSession, actor: Actor, data: RuleIn, agency_tz: ZoneInfo,
                      clock: Clock) -> SopRule:
    now = clock.now()
    rule = SopRule(name=_name(data.name), target=_target(data.target), time=data.time,
                   weekdays=sorted(set(data.weekdays)), every_n_days=data.every_n_days, starts_on=data.starts_on,
                   ends_on=data.ends_on, timezone=_zone(data.timezone, agency_tz),
                   content=await _content(session, data.content), mode=data.mode, paused=False, version=1,
                   created_at=now, created_by=actor.login, updated_at=now)
    _check_schedule(rule)
    session.add(rule)
    await session.flush()
    await mat.schedule_rule(session, rule, now, agency_tz, clock)
    return rule


async def get_rule(session: AsyncSession, rule_id: str) -> SopRule:
    rule = await session.get(SopRule, rule_id)
    if rule is None:
        raise M.refusal(NotFound, None, M.SOP_RULE_NOT_FOUND)
    return rule


async def patch_rule(session: AsyncSession, rule: SopRule, data: RulePatchIn, agency_tz: ZoneInfo,
                     clock: Clock) -> SopRule:
    if data.name is not msgspec.UNSET:
        rule.name = _name(data.name)
    if data.target is not msgspec.UNSET:
        rule.target = _target(data.target)
    if data.content is not msgspec.UNSET:
        rule.content = await _content(session, data.content)
    if data.timezone is not msgspec.UNSET:
        rule.timezone = _zone(data.timezone, agency_tz)
    if data.weekdays is not msgspec.UNSET:
        rule.weekdays = sorted(set(data.weekdays))
    for name in ("time", "every_n_days", "starts_on", "ends_on", "mode"):
        value = getattr(data, name)
        if value is not msgspec.UNSET:
            setattr(rule, name, value)
    _check_schedule(rule)
    await replan(session, rule, agency_tz, clock)
    return rule


async def replan(session: AsyncSession, rule: SopRule, agency_tz: ZoneInfo, clock: Clock) -> None:
    """A new version of the rule: its pending timer is replaced by the next occurrence from now."""
    rule.version += 1
    rule.updated_at = clock.now()
    await mat.cancel_rule_timers(session, rule.id, clock)
    await session.flush()
    await mat.schedule_rule(session, rule, clock.now(), agency_tz, clock)


async def preview(session: AsyncSession, rule: SopRule, days: int, agency_tz: ZoneInfo,
                  clock: Clock) -> list[dict[str, Any]]:
    """Who gets what when in the next `days` (today's groups; no side effects)."""
    if not 1 <= days <= 62:
        raise M.error("days", M.SOP_PREVIEW_DAYS)
    now = clock.now()
    dues = sop_rules.occurrences_between(mat.schedule_of(rule, agency_tz), now, now + timedelta(days=days))
    groups = [{"group_id": g.id, "title": g.title, "owner": g.owner, "category": g.category}
              for g in await mat.target_groups(session, rule.target) if g.active]
    return [{"due_at": due, "groups": groups} for due in dues]


# ------------------------------------------------------------------ calendar (EN-10)

def entry_out(entry: CalendarEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at, "title": entry.title, "target": entry.target, "content": entry.content,
            "mode": entry.mode, "created_at": entry.created_at, "created_by": entry.created_by}


async def create_entry(session: AsyncSession, actor: Actor, data: CalendarIn, clock: Clock) -> CalendarEntry:
    if data.at.tzinfo is None:
        raise M.error("at", M.DATETIME)
    at = as_utc(data.at).replace(second=0, microsecond=0)
    if at <= clock.now():
        raise M.error("at", M.SOP_IN_FUTURE)
    entry = CalendarEntry(at=at, title=data.title.strip()[:200], target=_target(data.target),
                          content=await _content(session, data.content), mode=data.mode, deleted=False,
                          created_at=clock.now(), created_by=actor.login)
    session.add(entry)
    await session.flush()
    await mat.schedule_entry(session, entry, clock)
    return entry


async def month_entries(session: AsyncSession, month: str, agency_tz: ZoneInfo) -> list[CalendarEntry]:
    try:
        first, following = mat.month_of(month)
    except ValueError as exc:
        raise M.error("month", M.MONTH_FORMAT) from exc
    start = datetime.combine(first, time(), agency_tz)
    end = datetime.combine(following, time(), agency_tz)
    return list((await session.execute(select(CalendarEntry).where(
        CalendarEntry.deleted.is_(False), CalendarEntry.at >= as_utc(start), CalendarEntry.at < as_utc(end))
        .order_by(CalendarEntry.at))).scalars())


async def delete_entry(session: AsyncSession, entry_id: str, clock: Clock) -> None:
    entry = await session.get(CalendarEntry, entry_id)
    if entry is None or entry.deleted:
        raise M.refusal(NotFound, None, M.SOP_ENTRY_NOT_FOUND)
    if as_utc(entry.at) <= clock.now():
        raise M.refusal(Conflict, None, M.SOP_ENTRY_DUE)
    entry.deleted = True
    await cancel(session, f"sop:cal:{entry.id}", clock)


# ------------------------------------------------------------------ files

def file_out(row: SopFile) -> dict[str, Any]:
    return {"file_id": row.id, "name": row.name, "content_type": row.content_type, "size": row.size}


async def add_file(session: AsyncSession, actor: Actor, name: str, content_type: str, data: bytes,
                   clock: Clock) -> SopFile:
    if not data:
        raise M.error("file", M.UPLOAD_EMPTY)
    if len(data) > MAX_FILE_BYTES:
        raise M.error("file", M.UPLOAD_TOO_LARGE, limit_mb=MAX_FILE_BYTES // (1024 * 1024))
    if not content_type.startswith(FILE_TYPES):
        raise M.error("file", M.SOP_FILE_KIND)
    row = SopFile(name=name[:300] or "file", content_type=content_type, size=len(data), data=data,
                  created_at=clock.now(), created_by=actor.login)
    session.add(row)
    await session.flush()
    return row


# ------------------------------------------------------------------ settings

def settings_out(row: PushSettings) -> dict[str, Any]:
    return {"monthly_quota": row.monthly_quota, "expire_after_hours": row.expire_after_hours,
            "reminder_channel_id": row.reminder_channel_id, "default_owner": row.default_owner,
            "updated_at": row.updated_at, "updated_by": row.updated_by}


async def put_settings(session: AsyncSession, actor: Actor, data: SettingsIn, clock: Clock) -> PushSettings:
    if not 0 <= data.monthly_quota <= 1000:
        raise M.error("monthly_quota", M.SOP_QUOTA)
    if not 1 <= data.expire_after_hours <= 24 * 31:
        raise M.error("expire_after_hours", M.SOP_EXPIRY)
    if data.reminder_channel_id:
        channel = await session.get(Channel, data.reminder_channel_id)
        if channel is None or channel.kind != "telegram":
            raise M.error("reminder_channel_id", M.SOP_REMINDER_CHANNEL)
    row = await settings_row(session, clock)
    row.monthly_quota, row.expire_after_hours = data.monthly_quota, data.expire_after_hours
    row.reminder_channel_id, row.default_owner = data.reminder_channel_id or None, data.default_owner or None
    row.updated_at, row.updated_by = clock.now(), actor.login
    return row


# ------------------------------------------------------------------ pushes (EN-11, EN-12)

async def get_push(session: AsyncSession, push_id: str) -> Push:
    push = await session.get(Push, push_id)
    if push is None:
        raise M.refusal(NotFound, None, M.SOP_PUSH_NOT_FOUND)
    return push


def record_sent(session: AsyncSession, push: Push, group: Group | None, at: datetime, clock: Clock,
                external_id: str | None = None) -> None:
    push.status, push.sent_at, push.external_id = "sent", at, external_id
    push.next_attempt_at = push.lease_until = None
    add_event(session, PushSent(push_id=push.id, task_id=push.task_id, group_id=push.group_id,
                                channel_kind=group.channel_kind if group else "manual", owner=push.owner,
                                mode=push.mode, due_at=push.due_at, sent_at=at), clock=clock)


async def mark_sent(session: AsyncSession, actor: Actor, push_id: str, clock: Clock) -> Push:
    push = await get_push(session, push_id)
    if actor.role not in LEAD_ROLES and actor.login != push.owner:
        raise M.refusal(Forbidden, None, M.MARK_SENT_OWNER)
    if push.status == "failed":
        raise M.refusal(Conflict, None, M.SOP_PUSH_FAILED, reason=push.reason)
    if push.status == "pending":
        record_sent(session, push, await session.get(Group, push.group_id), clock.now(), clock)
    return push


async def retarget(session: AsyncSession, push_id: str, clock: Clock) -> Push:
    """The lead sends a transferred (or orphaned) push to the group's current owner: pending again."""
    push = await get_push(session, push_id)
    if push.status != "failed" or push.reason not in ("transferred", "owner_left"):
        raise M.refusal(Conflict, None, M.SOP_RETARGET_ONLY)
    group = await session.get(Group, push.group_id)
    if group is None or not group.owner:
        raise M.refusal(Conflict, None, M.SOP_NO_OWNER)
    task = await session.get(PushTask, push.task_id)
    push.owner, push.status, push.reason, push.detail, push.failed_at = group.owner, "pending", None, None, None
    if push.mode == "auto" and task is not None:
        push.next_attempt_at = clock.now()
        session.info[mat.PUSH_FLAG] = True
    return push
