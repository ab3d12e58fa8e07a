"""What the group SOP shows (issue 13, EN-11, EN-13): the owners' pushes and counter, the push tasks with their
8 metrics, and the reports per period and per owner (JSON or CSV). Read only; the counting is in sop_rules.

Counts are aggregated in the database (one GROUP BY per page), never by loading every push of a range.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.clock import as_utc
from shared.errors import NotFound
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import sop_rules
from engagement.sop_models import Group, Push, PushTask
from shared import messages as M

MAX_DAYS = 366


def day_range(start: str | None, end: str | None, today: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[from, to] local dates (inclusive; default: this month so far) as [start, end) UTC instants."""
    def parse(value: str | None, name: str, default: date) -> date:
        if not value:
            return default
        try:
            return date.fromisoformat(value[:10])
        except ValueError as exc:
            raise M.error(name, M.DATE_FORMAT) from exc

    first, last = parse(start, "from", today.replace(day=1)), parse(end, "to", today)
    if last < first:
        raise M.error("to", M.END_BEFORE_START)
    if (last - first).days >= MAX_DAYS:
        raise M.error("to", M.PERIOD_TOO_LONG, days=MAX_DAYS)
    return (as_utc(datetime.combine(first, time(), tz)),
            as_utc(datetime.combine(last + timedelta(days=1), time(), tz)))


async def _counts(session: AsyncSession, task_ids: list[str], owner: str | None) -> dict[str, list[tuple]]:
    """(owner, status, n) per task, in one grouped query."""
    out: dict[str, list[tuple]] = defaultdict(list)
    if not task_ids:
        return out
    query = select(Push.task_id, Push.owner, Push.status, func.count()).where(Push.task_id.in_(task_ids))
    if owner:
        query = query.where(Push.owner == owner)
    for task_id, push_owner, status, n in (await session.execute(
            query.group_by(Push.task_id, Push.owner, Push.status))).all():
        out[task_id].append((push_owner, status, n))
    return out


def _metrics(counts: list[tuple]) -> dict[str, int]:
    return sop_rules.task_metrics((o, s) for o, s, n in counts for _ in range(n))


def task_out(task: PushTask, counts: list[tuple]) -> dict[str, Any]:
    return {"id": task.id, "source": task.source, "source_id": task.source_id, "name": task.name,
            "due_at": task.due_at, "mode": task.mode, "metrics": _metrics(counts)}


async def list_tasks(session: AsyncSession, start: datetime, end: datetime, owner: str | None) -> list[dict]:
    query = select(PushTask).where(PushTask.due_at >= start, PushTask.due_at < end)
    if owner:
        query = query.where(PushTask.id.in_(select(Push.task_id).where(Push.owner == owner)))
    tasks = list((await session.execute(query.order_by(PushTask.due_at.desc(), PushTask.id))).scalars())
    counts = await _counts(session, [t.id for t in tasks], owner)
    return [task_out(t, counts[t.id]) for t in tasks]


def push_out(push: Push, title: str = "") -> dict[str, Any]:
    return {"id": push.id, "task_id": push.task_id, "group_id": push.group_id, "group_title": title,
            "owner": push.owner, "mode": push.mode, "status": push.status, "reason": push.reason,
            "detail": push.detail, "due_at": push.due_at, "sent_at": push.sent_at,
            "delay_seconds": sop_rules.delay_seconds(as_utc(push.due_at), push.sent_at and as_utc(push.sent_at))}


async def task_detail(session: AsyncSession, task_id: str, owner: str | None = None) -> dict[str, Any]:
    task = await session.get(PushTask, task_id)
    if task is None:
        raise M.refusal(NotFound, None, M.SOP_PUSH_TASK_NOT_FOUND)
    query = select(Push, Group.title).join(Group, Group.id == Push.group_id).where(Push.task_id == task_id)
    if owner:
        query = query.where(Push.owner == owner)
    rows = (await session.execute(query.order_by(Push.owner, Group.title, Push.id))).all()
    pushes = [push_out(p, title) for p, title in rows]
    counts = [(p["owner"], p["status"], 1) for p in pushes]
    lines = sop_rules.owner_lines((p["owner"], p["status"], p["delay_seconds"]) for p in pushes)
    return {**task_out(task, counts), "content": task.content, "pushes": pushes,
            "owners": [{"owner": line.owner, "pending": line.pending, "sent": line.sent, "failed": line.failed}
                       for line in lines]}


async def owner_pushes(session: AsyncSession, owner: str, status: str | None, page: int,
                       per_page: int) -> dict[str, Any]:
    """My pushes: the owner's pushes with the task's content, newest due first."""
    query = select(Push, Group, PushTask).join(Group, Group.id == Push.group_id).join(
        PushTask, PushTask.id == Push.task_id).where(Push.owner == owner)
    total_q = select(func.count()).select_from(Push).where(Push.owner == owner)
    if status:
        query, total_q = query.where(Push.status == status), total_q.where(Push.status == status)
    rows = (await session.execute(query.order_by(Push.due_at.desc(), Group.title, Push.id)
                                  .offset((page - 1) * per_page).limit(per_page))).all()
    items = [{**push_out(p, g.title), "channel_kind": g.channel_kind, "external_id": g.external_id,
              "task_name": t.name, "content": t.content} for p, g, t in rows]
    return {"items": items, "total": (await session.execute(total_q)).scalar_one()}


async def pending_count(session: AsyncSession, owner: str) -> int:
    return (await session.execute(select(func.count()).select_from(Push).where(
        Push.owner == owner, Push.status == "pending"))).scalar_one()


def _period(day: date, group_by: str) -> str:
    if group_by == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    if group_by == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


async def period_report(session: AsyncSession, start: datetime, end: datetime, group_by: str,
                        tz: ZoneInfo) -> list[dict[str, Any]]:
    """Per day / week (from Monday) / month of the tasks' due time in the agency zone: the summed 6 metrics."""
    if group_by not in ("day", "week", "month"):
        raise M.error("group_by", M.SOP_GROUP_BY)
    tasks = list((await session.execute(select(PushTask).where(PushTask.due_at >= start, PushTask.due_at < end)))
                 .scalars())
    counts = await _counts(session, [t.id for t in tasks], None)
    periods: dict[str, list[dict[str, int]]] = defaultdict(list)
    for task in tasks:
        periods[_period(as_utc(task.due_at).astimezone(tz).date(), group_by)].append(_metrics(counts[task.id]))
    return [{"period": key, "tasks": len(periods[key]), **sop_rules.sum_metrics(periods[key])}
            for key in sorted(periods)]


async def owners_report(session: AsyncSession, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per owner over pushes due in the range: completion rate and median delay between due and sent."""
    rows = (await session.execute(select(Push.owner, Push.status, Push.due_at, Push.sent_at).where(
        Push.due_at >= start, Push.due_at < end))).all()
    lines = sop_rules.owner_lines((owner, status, sop_rules.delay_seconds(
        as_utc(due), sent and as_utc(sent))) for owner, status, due, sent in rows)
    return [{"owner": line.owner, "pushes": line.pushes, "sent": line.sent, "failed": line.failed,
             "pending": line.pending, "completion_rate": sop_rules.completion_rate(line),
             "median_delay_seconds": sop_rules.median_delay(line.delays)} for line in lines]


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return out.getvalue()
