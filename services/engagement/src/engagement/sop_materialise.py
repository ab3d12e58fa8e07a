"""Materialisation of the group SOP (issue 13, EN-11) by durable timers (DESIGN 5), as rounds.py does for EN-4:

- each active rule keeps ONE timer for its next occurrence (`RULE_TIMER`, key sop:rule:<id>:v<version>:<due>);
  firing it makes the push task and its pushes in the timer's transaction and schedules the next occurrence.
  Editing, pausing or resuming a rule cancels its timer and schedules the next one of the new version, so a
  stale timer finds a different version and does nothing;
- a calendar entry has one timer (`CALENDAR_TIMER`);
- each task has an expiry timer (`EXPIRE_TIMER`) at due + expire_after_hours that fails its still pending
  pushes with `expired`.

A task is unique per (source, source_id, due_at): a timer fired twice makes it once. The pushes are written with
one multi-row INSERT (10,000 groups in well under a second), their failures decided at the same moment
(group inactive, owner left, monthly quota), and owners with a linked Telegram chat get one reminder per task.
A timer that fires late (the service was down) makes the task of its own due time: a fact judged on its time.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.clock import Clock, as_utc
from shared.events.engagement import PushFailed
from shared.infra import Timer
from shared.outbox import add_event
from shared.timers import schedule
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import sop_rules
from engagement.models import new_id
from engagement.sop_groups import settings_row
from engagement.sop_models import CalendarEntry, Group, OwnerRoster, Push, PushReminder, PushTask, SopRule

RULE_TIMER = "engagement.sop.rule"
CALENDAR_TIMER = "engagement.sop.calendar"
EXPIRE_TIMER = "engagement.sop.expire"
PUSH_FLAG = "engagement.pushes"  # session.info flag: the commit wakes the auto-send loop


def schedule_of(rule: SopRule, agency_tz: ZoneInfo) -> sop_rules.Schedule:
    return sop_rules.Schedule(at=time.fromisoformat(rule.time), tz=ZoneInfo(rule.timezone) if rule.timezone
                              else agency_tz, weekdays=frozenset(rule.weekdays or []),
                              every_n_days=rule.every_n_days, starts_on=rule.starts_on, ends_on=rule.ends_on,
                              anchor=as_utc(rule.created_at).astimezone(agency_tz).date())


def _rule_key(rule: SopRule, due_at: datetime) -> str:
    return f"sop:rule:{rule.id}:v{rule.version}:{as_utc(due_at).isoformat()}"


async def cancel_rule_timers(session: AsyncSession, rule_id: str, clock: Clock) -> None:
    await session.execute(update(Timer).where(Timer.key.like(f"sop:rule:{rule_id}:%"), Timer.fired_at.is_(None),
                                              Timer.cancelled_at.is_(None)).values(cancelled_at=clock.now()))


async def schedule_rule(session: AsyncSession, rule: SopRule, after: datetime, agency_tz: ZoneInfo,
                        clock: Clock) -> datetime | None:
    """Keep the rule's one timer: at its next occurrence strictly after `after` (none when paused or ended)."""
    if rule.paused:
        return None
    due = sop_rules.next_occurrence(schedule_of(rule, agency_tz), after)
    if due is not None:
        await schedule(session, kind=RULE_TIMER, key=_rule_key(rule, due), due_at=due,
                       payload={"rule": rule.id, "version": rule.version, "due_at": due.isoformat()}, clock=clock)
    return due


async def on_rule_timer(session: AsyncSession, payload: dict[str, Any], agency_tz: ZoneInfo, clock: Clock) -> None:
    rule = await session.get(SopRule, payload["rule"])
    if rule is None or rule.paused or rule.version != payload["version"]:
        return  # an edit or a pause replaced this timer
    due = datetime.fromisoformat(payload["due_at"])
    await materialise(session, source="rule", source_id=rule.id, name=rule.name, due_at=due, target=rule.target,
                      content=rule.content, mode=rule.mode, agency_tz=agency_tz, clock=clock)
    await schedule_rule(session, rule, due, agency_tz, clock)


async def schedule_entry(session: AsyncSession, entry: CalendarEntry, clock: Clock) -> None:
    await schedule(session, kind=CALENDAR_TIMER, key=f"sop:cal:{entry.id}", due_at=entry.at,
                   payload={"entry": entry.id}, clock=clock)


async def on_calendar_timer(session: AsyncSession, payload: dict[str, Any], agency_tz: ZoneInfo,
                            clock: Clock) -> None:
    entry = await session.get(CalendarEntry, payload["entry"])
    if entry is None or entry.deleted:
        return
    await materialise(session, source="calendar", source_id=entry.id, name=entry.title, due_at=entry.at,
                      target=entry.target, content=entry.content, mode=entry.mode, agency_tz=agency_tz, clock=clock)


async def target_groups(session: AsyncSession, target: dict[str, Any]) -> list[Any]:
    """The groups of a target (active or not: an inactive one fails with its reason), as light rows."""
    query = select(Group.id, Group.title, Group.owner, Group.category, Group.tags, Group.active,
                   Group.channel_id, Group.channel_kind)
    if target.get("group_ids"):
        query = query.where(Group.id.in_(target["group_ids"]))
    elif target.get("category"):
        query = query.where(Group.category == target["category"])
    rows = (await session.execute(query.order_by(Group.title, Group.id))).all()
    return [r for r in rows if sop_rules.matches(target, r.id, r.category, r.tags or [])]


async def materialise(session: AsyncSession, *, source: str, source_id: str, name: str, due_at: datetime,
                      target: dict[str, Any], content: dict[str, Any], mode: str, agency_tz: ZoneInfo,
                      clock: Clock) -> str | None:
    """One push task with one push per target group; returns the task id (None when it was made already)."""
    due_at = as_utc(due_at)
    made = (await session.execute(select(PushTask.id).where(PushTask.source == source,
                                                            PushTask.source_id == source_id,
                                                            PushTask.due_at == due_at))).first()
    if made:
        return None
    now = clock.now()
    settings = await settings_row(session, clock)
    task = PushTask(id=new_id(), source=source, source_id=source_id, due_at=due_at, name=name, mode=mode,
                    content=dict(content), created_at=now)
    session.add(task)
    await session.flush()
    groups = await target_groups(session, target)
    left = set((await session.execute(select(OwnerRoster.login).where(OwnerRoster.active.is_(False)))).scalars())
    start, end = sop_rules.month_bounds(due_at, agency_tz)
    counted = Counter(dict((await session.execute(select(Push.group_id, func.count()).where(
        Push.status.in_(("pending", "sent")), Push.due_at >= start, Push.due_at < end)
        .group_by(Push.group_id))).all()))
    rows, failed = [], []
    for group in groups:
        reason = sop_rules.failure_at_materialisation(
            group_active=group.active, owner_active=(group.owner or "") not in left,
            counted_this_month=counted[group.id], quota=settings.monthly_quota)
        auto = mode == "auto" and group.channel_id is not None
        row = {"id": new_id(), "task_id": task.id, "group_id": group.id, "owner": group.owner or "",
               "mode": "auto" if auto else "manual", "due_at": due_at, "status": "failed" if reason else "pending",
               "reason": reason, "detail": None, "sent_at": None, "failed_at": now if reason else None,
               "attempts": 0, "next_attempt_at": due_at if auto and not reason else None, "lease_until": None,
               "external_id": None}
        rows.append(row)
        if reason:
            failed.append(row)
    if rows:
        await session.execute(insert(Push), rows)
    for row in failed:
        add_event(session, PushFailed(push_id=row["id"], task_id=task.id, group_id=row["group_id"],
                                      owner=row["owner"], reason=row["reason"], due_at=due_at, failed_at=now),
                  clock=clock)
    await _queue_reminders(session, task.id, rows, settings.reminder_channel_id, now)
    await schedule(session, kind=EXPIRE_TIMER, key=f"sop:expire:{task.id}",
                   due_at=due_at + timedelta(hours=settings.expire_after_hours), payload={"task": task.id},
                   clock=clock)
    if any(r["mode"] == "auto" and r["status"] == "pending" for r in rows):
        session.info[PUSH_FLAG] = True
    return task.id


async def _queue_reminders(session: AsyncSession, task_id: str, rows: list[dict[str, Any]],
                           channel_id: str | None, now: datetime) -> None:
    """One Telegram reminder per owner with pending manual pushes and a linked chat (when a channel is set)."""
    if not channel_id:
        return
    pending = Counter(r["owner"] for r in rows if r["status"] == "pending" and r["mode"] == "manual" and r["owner"])
    if not pending:
        return
    chats = dict((await session.execute(select(OwnerRoster.login, OwnerRoster.telegram_chat_id).where(
        OwnerRoster.active.is_(True), OwnerRoster.telegram_chat_id.is_not(None)))).all())
    reminders = [{"task_id": task_id, "owner": owner, "chat_id": chats[owner], "pushes": n, "status": "pending",
                  "detail": None, "created_at": now, "sent_at": None}
                 for owner, n in sorted(pending.items()) if chats.get(owner)]
    if reminders:
        await session.execute(insert(PushReminder), reminders)
        session.info[PUSH_FLAG] = True


async def on_expire_timer(session: AsyncSession, payload: dict[str, Any], clock: Clock) -> int:
    """Fail the task's still pending pushes with `expired` (judged at the window's end, not when it fired)."""
    from engagement.sop_groups import fail

    task = await session.get(PushTask, payload["task"])
    if task is None:
        return 0
    pending = (await session.execute(select(Push).where(Push.task_id == task.id, Push.status == "pending")
                                     .with_for_update())).scalars().all()
    settings = await settings_row(session, clock)
    at = min(as_utc(task.due_at) + timedelta(hours=settings.expire_after_hours), clock.now())
    for push in pending:
        fail(session, push, "expired", f"not sent within {settings.expire_after_hours} hours", at, clock)
    return len(pending)


def month_of(value: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{value}-01")
    return first, (first + timedelta(days=32)).replace(day=1)
