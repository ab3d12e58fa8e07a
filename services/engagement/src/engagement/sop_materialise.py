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

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.clock import Clock, as_utc
from shared.db import UTCDateTime
from shared.events.engagement import PushFailed
from shared.infra import Timer
from shared.outbox import add_event
from shared.timers import schedule
from sqlalchemy import String, and_, case, cast, exists, false, func, insert, literal, null, select, update
from sqlalchemy.dialects.postgresql import JSONB, array
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


async def target_groups(session: AsyncSession, target: dict[str, Any], *, light: bool = False) -> list[Any]:
    """The groups of a target (active or not: an inactive one fails with its reason). `light` rows carry only what
    materialisation needs (10,000 groups: tags are read only when the target names tags)."""
    columns = [Group.id, Group.owner, Group.active, Group.channel_id, Group.category]
    if not light:
        columns += [Group.title, Group.channel_kind]
    if target.get("tags") and not target.get("group_ids"):
        columns.append(Group.tags)
    query = select(*columns)
    if target.get("group_ids"):
        query = query.where(Group.id.in_(target["group_ids"]))
    elif target.get("category"):
        query = query.where(Group.category == target["category"])
    elif not target.get("tags"):
        return []
    rows = (await session.execute(query.order_by(Group.id) if light else query.order_by(Group.title, Group.id))).all()
    if target.get("group_ids"):
        return rows
    return [r for r in rows if sop_rules.matches(target, r.id, r.category, getattr(r, "tags", None) or [])]


def target_filter(target: dict[str, Any], dialect: str) -> Any:
    """The target as a WHERE clause on sop_groups (the same meaning as sop_rules.matches)."""
    g = Group.__table__.c
    if target.get("group_ids"):
        return g.id.in_(target["group_ids"])
    clauses = []
    if target.get("category"):
        clauses.append(g.category == target["category"])
    tags = list(target.get("tags") or [])
    if tags:
        if dialect == "postgresql":
            clauses.append(cast(g.tags, JSONB).op("?|")(array(tags)))
        else:
            each = func.json_each(g.tags).table_valued("value")
            clauses.append(exists(select(literal(1)).select_from(each).where(each.c.value.in_(tags))))
    return and_(*clauses) if clauses else false()


def _new_ids(dialect: str) -> Any:
    if dialect == "postgresql":
        return cast(func.gen_random_uuid(), String)
    return func.lower(func.hex(func.randomblob(16)))


async def materialise(session: AsyncSession, *, source: str, source_id: str, name: str, due_at: datetime,
                      target: dict[str, Any], content: dict[str, Any], mode: str, agency_tz: ZoneInfo,
                      clock: Clock) -> str | None:
    """One push task with one push per target group; returns the task id (None when it was made already).

    The pushes are one INSERT … SELECT over the target's groups (10,000 groups in a fraction of a second: no row
    goes through Python), their failure decided in the same statement by the rules of
    sop_rules.failure_at_materialisation (group inactive, then owner left, then the month's quota)."""
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
    dialect = (await session.connection()).dialect.name
    g, p = Group.__table__.c, Push.__table__.c
    start, end = sop_rules.month_bounds(due_at, agency_tz)
    # the month's count per group once (a correlated count would rescan the pushes this very INSERT is adding)
    counted = (select(p.group_id, func.count().label("n")).where(
        p.status.in_(("pending", "sent")), p.due_at >= start, p.due_at < end).group_by(p.group_id).subquery())
    left = select(OwnerRoster.login).where(OwnerRoster.active.is_(False))
    reason = case((g.active.is_(False), "group_inactive"), (func.coalesce(g.owner, "").in_(left), "owner_left"),
                  (func.coalesce(counted.c.n, 0) >= settings.monthly_quota, "quota"), else_=null())
    # the reason once per group (a subquery), then the push's columns from it
    decided = (select(g.id, g.owner, g.channel_id, reason.label("reason"))
               .select_from(Group.__table__.outerjoin(counted, counted.c.group_id == g.id))
               .where(target_filter(target, dialect)).subquery())
    d = decided.c
    auto = and_(literal(mode == "auto"), d.channel_id.is_not(None))
    when = literal(due_at, UTCDateTime())
    columns = {"id": _new_ids(dialect), "task_id": literal(task.id), "group_id": d.id,
               "owner": func.coalesce(d.owner, ""), "mode": case((auto, "auto"), else_="manual"), "due_at": when,
               "status": case((d.reason.is_(None), "pending"), else_="failed"), "reason": d.reason,
               "failed_at": case((d.reason.is_(None), null()), else_=literal(now, UTCDateTime())),
               "attempts": literal(0), "next_attempt_at": case((and_(auto, d.reason.is_(None)), when), else_=null())}
    query = select(*[expr.label(col) for col, expr in columns.items()])
    await session.execute(insert(Push.__table__).from_select(list(columns), query))
    failed = (await session.execute(select(Push.id, Push.group_id, Push.owner, Push.reason).where(
        Push.task_id == task.id, Push.status == "failed"))).all()
    for push_id, group_id, owner, why in failed:
        add_event(session, PushFailed(push_id=push_id, task_id=task.id, group_id=group_id, owner=owner,
                                      reason=why, due_at=due_at, failed_at=now), clock=clock)
    if settings.reminder_channel_id:
        await _queue_reminders(session, task.id, now)
    await schedule(session, kind=EXPIRE_TIMER, key=f"sop:expire:{task.id}",
                   due_at=due_at + timedelta(hours=settings.expire_after_hours), payload={"task": task.id},
                   clock=clock)
    if mode == "auto":
        session.info[PUSH_FLAG] = True
    return task.id


async def _queue_reminders(session: AsyncSession, task_id: str, now: datetime) -> None:
    """One Telegram reminder per owner with pending manual pushes of the task and a linked chat."""
    r = OwnerRoster.__table__.c
    query = (select(literal(task_id).label("task_id"), Push.owner, r.telegram_chat_id, func.count(),
                    literal("pending"), literal(now, UTCDateTime()))
             .join(OwnerRoster.__table__, r.login == Push.owner)
             .where(Push.task_id == task_id, Push.status == "pending", Push.mode == "manual", r.active.is_(True),
                    r.telegram_chat_id.is_not(None))
             .group_by(Push.owner, r.telegram_chat_id))
    result = await session.execute(insert(PushReminder.__table__).from_select(
        ["task_id", "owner", "chat_id", "pushes", "status", "created_at"], query))
    if result.rowcount:
        session.info[PUSH_FLAG] = True


async def on_expire_timer(session: AsyncSession, payload: dict[str, Any], clock: Clock) -> int:
    """Fail the task's still pending pushes with `expired` (judged at the window's end, not when it fired)."""
    from engagement.sop_groups import fail

    task = await session.get(PushTask, payload["task"])
    if task is None:
        return 0
    now = clock.now()
    in_flight = and_(Push.lease_until.is_not(None), Push.lease_until > now)   # the bot is sending it right now
    pending = (await session.execute(select(Push).where(Push.task_id == task.id, Push.status == "pending",
                                                        ~in_flight).with_for_update())).scalars().all()
    settings = await settings_row(session, clock)
    at = min(as_utc(task.due_at) + timedelta(hours=settings.expire_after_hours), clock.now())
    for push in pending:
        fail(session, push, "expired", f"not sent within {settings.expire_after_hours} hours", at, clock)
    return len(pending)


def month_of(value: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{value}-01")
    return first, (first + timedelta(days=32)).replace(day=1)
