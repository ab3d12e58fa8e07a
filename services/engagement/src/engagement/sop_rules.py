"""The group SOP's rules as plain functions (issue 13, EN-9…EN-13): when a rule fires, which groups it targets,
whether a push fails at once and why, and the execution metrics. No database, no clock: callers pass times.

Choices where DOMAIN is silent:
- A local time that does not exist (the spring-forward gap) fires at the first minute after the gap (02:30 in a
  02:00→03:00 gap fires at 03:00); an ambiguous one (autumn) fires once, at its first occurrence (fold 0).
- `every_n_days` counts from `starts_on` (or the rule's creation day) and ignores `weekdays`.
- A target's tags match a group carrying ANY of them; category and tags together must both match;
  `group_ids` (when given) is the whole target.
- The monthly quota counts a group's pushes that are sent or pending, by their due time's calendar month in the
  agency's time zone; failed ones do not count (they never reached the group).
- Metrics: an owner has "executed" when none of their pushes of the task is pending and at least one is sent;
  "not executed" when at least one is pending. An owner whose pushes all failed is in neither.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

REASONS = ("owner_left", "transferred", "quota", "channel_error", "expired", "group_inactive")
METRICS = ("owners_pending", "owners_done", "failed_tasks", "groups_pending", "groups_sent", "groups_failed")


@dataclass(frozen=True)
class Schedule:
    """When a rule fires: local `at` on ISO `weekdays` (1 = Monday) or every `every_n_days` from `anchor`,
    between `starts_on` and `ends_on` (inclusive, local dates) in `tz`."""

    at: time
    tz: ZoneInfo
    weekdays: frozenset[int] = frozenset(range(1, 8))
    every_n_days: int | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    anchor: date | None = None


def _exists(local: datetime) -> bool:
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`at` on `day` in `tz` as a UTC instant: a time in a DST gap moves to the gap's end, an ambiguous one is
    its first occurrence."""
    local = datetime.combine(day, at, tzinfo=tz)  # fold 0: the first of two
    step = local
    for _ in range(24 * 60):  # gaps are at most a few hours; walk minutes to the first that exists
        if _exists(step):
            return step.astimezone(UTC)
        step = (step.replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)).replace(tzinfo=tz)
    raise ValueError(f"{day} {at} does not exist in {tz.key}")


def _fires_on(schedule: Schedule, day: date) -> bool:
    if schedule.starts_on and day < schedule.starts_on:
        return False
    if schedule.ends_on and day > schedule.ends_on:
        return False
    if schedule.every_n_days:
        anchor = schedule.starts_on or schedule.anchor or day
        return (day - anchor).days % schedule.every_n_days == 0 and day >= anchor
    return day.isoweekday() in schedule.weekdays


def occurrences(schedule: Schedule, after: datetime, horizon_days: int = 400) -> Iterator[datetime]:
    """The rule's due instants (UTC) strictly after `after`, in order; ends after `ends_on` or the horizon
    (a schedule that can never fire must not loop forever)."""
    day = after.astimezone(schedule.tz).date() - timedelta(days=1)  # the day before: a gap may shift across
    if schedule.starts_on and day < schedule.starts_on:
        day = schedule.starts_on
    last = day + timedelta(days=horizon_days)
    if schedule.ends_on and schedule.ends_on < last:
        last = schedule.ends_on
    while day <= last:
        if _fires_on(schedule, day):
            at = local_instant(day, schedule.at, schedule.tz)
            if at > after:
                yield at
        day += timedelta(days=1)


def next_occurrence(schedule: Schedule, after: datetime) -> datetime | None:
    return next(occurrences(schedule, after), None)


def occurrences_between(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    found = []
    days = (end - start).days + 2
    for at in occurrences(schedule, start - timedelta(microseconds=1), horizon_days=days):
        if at >= end:
            break
        found.append(at)
    return found


# ------------------------------------------------------------------ targets

def matches(target: dict[str, Any], group_id: str, category: str, tags: Iterable[str]) -> bool:
    """Whether a group is in a rule's or a calendar entry's target."""
    ids = target.get("group_ids") or []
    if ids:
        return group_id in ids
    wanted_category = target.get("category") or None
    wanted_tags = set(target.get("tags") or [])
    if wanted_category is None and not wanted_tags:
        return False  # an empty target targets nobody, never everybody
    if wanted_category is not None and category != wanted_category:
        return False
    return not wanted_tags or bool(wanted_tags & set(tags or []))


# ------------------------------------------------------------------ quota and failure reasons

def month_bounds(at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar month of `at` in `tz` as [start, end) UTC instants."""
    local = at.astimezone(tz)
    first = local.date().replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return (datetime.combine(first, time(), tz).astimezone(UTC),
            datetime.combine(following, time(), tz).astimezone(UTC))


def over_quota(counted_this_month: int, quota: int) -> bool:
    """The month's pushes already made (sent or pending) reach the quota: the next one fails."""
    return counted_this_month >= quota


def failure_at_materialisation(*, group_active: bool, owner_active: bool, counted_this_month: int,
                               quota: int) -> str | None:
    """The reason a push fails the moment it is made, or None (pending). The order is what the lead can act on
    first: a dead group, then a departed owner, then the quota (a push failed for another reason does not use
    the group's quota)."""
    if not group_active:
        return "group_inactive"
    if not owner_active:
        return "owner_left"
    if over_quota(counted_this_month, quota):
        return "quota"
    return None


# ------------------------------------------------------------------ metrics (EN-13)

@dataclass
class OwnerLine:
    owner: str
    pending: int = 0
    sent: int = 0
    failed: int = 0
    delays: list[float] = field(default_factory=list)

    @property
    def pushes(self) -> int:
        return self.pending + self.sent + self.failed


def task_metrics(pushes: Iterable[tuple[str, str]]) -> dict[str, int]:
    """The 6 numbers of one task from its pushes' (owner, status)."""
    lines = owner_lines((owner, status, None) for owner, status in pushes)
    groups = {s: sum(getattr(line, s) for line in lines) for s in ("pending", "sent", "failed")}
    return {"owners_pending": sum(1 for line in lines if line.pending),
            "owners_done": sum(1 for line in lines if not line.pending and line.sent),
            "failed_tasks": 1 if groups["failed"] else 0,
            "groups_pending": groups["pending"], "groups_sent": groups["sent"], "groups_failed": groups["failed"]}


def owner_lines(pushes: Iterable[tuple[str, str, float | None]]) -> list[OwnerLine]:
    """Metric 7: per owner of (owner, status, delay seconds of a sent push)."""
    lines: dict[str, OwnerLine] = {}
    for owner, status, delay in pushes:
        line = lines.setdefault(owner, OwnerLine(owner))
        setattr(line, status, getattr(line, status) + 1)
        if status == "sent" and delay is not None:
            line.delays.append(delay)
    return [lines[k] for k in sorted(lines)]


def sum_metrics(tasks: Iterable[dict[str, int]]) -> dict[str, int]:
    total = dict.fromkeys(METRICS, 0)
    for metrics in tasks:
        for key in METRICS:
            total[key] += metrics[key]
    return total


def completion_rate(line: OwnerLine) -> float | None:
    """Sent out of all the owner's pushes (failed ones included: a failure is not a completion)."""
    return round(line.sent / line.pushes, 4) if line.pushes else None


def median_delay(delays: list[float]) -> float | None:
    return float(statistics.median(delays)) if delays else None


def delay_seconds(due_at: datetime, sent_at: datetime | None) -> float | None:
    """Seconds from due to sent; a push marked sent before its due time (it cannot be, but clocks drift) is 0."""
    return None if sent_at is None else max(0.0, (sent_at - due_at).total_seconds())
