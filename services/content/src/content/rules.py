"""The rules of the content service as pure functions: no HTTP, no database, no clock (DESIGN 2).

Each function cites the rule it implements. Numbers come from `RuleValues` — the agency's settings in
effect at the moment of the fact (DOMAIN: "every number is a default"), never constants here.
"""

from __future__ import annotations

import calendar as _cal
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from shared.calendar import BusinessCalendar

from shared import messages as M

KINDS = ("feed", "story", "reel")
PLAN_STATES = ("open", "in_approval", "changes_requested", "approved")
EDITABLE_STATES = ("open", "changes_requested")


class SettingError(ValueError):
    """A setting's value is refused: `code` is a shared.messages code."""

    def __init__(self, code: str) -> None:
        super().__init__(M.text(code))
        self.code = code


@dataclass(frozen=True)
class RuleValues:
    """The agency's content numbers (DOMAIN defaults), stored as `rule_settings` rows with an effective date."""

    plan_1_last_day: int = 9                # CO-1: plan 1 covers days 1–9
    plan_2_last_day: int = 18               # CO-1: plan 2 covers days 10–18, plan 3 the rest
    plan_2_after_days: int = 6              # CO-3: plan 2 due 6 days (wall clock) after the first post
    plan_3_after_days: int = 15             # CO-3: plan 3 due 15 days after the first post
    plan_submit_working_days: int = 3       # CO-3: submitted for approval within 3 working days (CAL-2)
    approval_link_days: int = 14            # CO-4: how long the client's signed link opens the plan
    publish_grace_minutes: int = 10         # a manager's "published at" may lie this far back (not a backdate)
    provisional_period_months: int = 1      # CO-1: length of a period counted before clients opens it
    feed_posts_per_day: int = 1             # CO-5: one feed post a day
    stories_every_days: int = 3             # CO-5: stories at least every 3 days
    cadence_check_time: str = "18:00"       # CO-5: when a day's missed cadence is a fact (agency local time)

    @classmethod
    def names(cls) -> dict[str, type]:
        return {f.name: type(getattr(cls(), f.name)) for f in fields(cls)}

    @classmethod
    def coerce(cls, key: str, value: object) -> object:
        """Validate one setting's value; raises SettingError with the code of what is wrong."""
        if key not in cls.names():
            raise SettingError(M.UNKNOWN_SETTING)
        if cls.names()[key] is str:
            try:
                time.fromisoformat(str(value))
            except ValueError:
                raise SettingError(M.TIME_FORMAT) from None
            return str(value)
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise SettingError(M.WHOLE)
        value = int(value)
        if value < (1 if key != "publish_grace_minutes" else 0):
            raise SettingError(M.AT_LEAST_ONE if key != "publish_grace_minutes" else M.NOT_NEGATIVE)
        return value

    def check(self) -> None:
        if not 1 <= self.plan_1_last_day < self.plan_2_last_day:
            raise ValueError("plan_1_last_day must be before plan_2_last_day")


# ----------------------------------------------------------------------------- CO-1

def local_date(cal: BusinessCalendar, ts: datetime) -> date:
    return cal.local(ts).date()


def local_midnight(cal: BusinessCalendar, d: date) -> datetime:
    return datetime.combine(d, time(0, 0), tzinfo=cal.tz).astimezone(UTC)


def period_days(cal: BusinessCalendar, starts_at: datetime, ends_at: datetime) -> tuple[date, date]:
    """CL-10 periods run [start, end): local midnight to local midnight. Their first and last local day."""
    first = local_date(cal, starts_at)
    last = local_date(cal, ends_at - timedelta(microseconds=1))
    return first, max(first, last)


def add_months(d: date, months: int) -> date:
    month0 = d.month - 1 + months
    year, month = d.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(d.day, _cal.monthrange(year, month)[1]))


def provisional_period(cal: BusinessCalendar, first_day: date, rv: RuleValues) -> tuple[datetime, datetime]:
    """CO-1 before the launch: a period counted from `first_day` for `provisional_period_months` months."""
    return local_midnight(cal, first_day), local_midnight(cal, add_months(first_day, rv.provisional_period_months))


def plan_days(first_day: date, last_day: date, rv: RuleValues) -> list[tuple[date, date]]:
    """CO-1: the three plans of a period: days 1–9, 10–18, 19–the last day, whatever the length (28, 30,
    31 days or a configured one). A period too short for a plan leaves it its last day only."""
    def day(n: int) -> date:
        return min(first_day + timedelta(days=n - 1), last_day)

    return [(first_day, day(rv.plan_1_last_day)),
            (day(rv.plan_1_last_day + 1), day(rv.plan_2_last_day)),
            (day(rv.plan_2_last_day + 1), last_day)]


def date_in_plan(d: date, first_day: date, last_day: date) -> bool:
    return first_day <= d <= last_day


# ----------------------------------------------------------------------------- CO-2, CO-3

def counts_as_post(kind: str) -> bool:
    """CO-3's "first published post": a feed post or a reel (a story is not a post of the feed)."""
    return kind in ("feed", "reel")


def plan_due(number: int, first_post_at: datetime | None, cal: BusinessCalendar, rv: RuleValues) -> datetime | None:
    """CO-3: plan 2 is due 6 days after the first published post, plan 3 15 days after (wall clock, CAL-2).
    Plan 1's due time is not counted from the first post (CO-2: when the questionnaire or materials are in)."""
    if number == 1 or first_post_at is None:
        return None
    return cal.add_days(first_post_at, rv.plan_2_after_days if number == 2 else rv.plan_3_after_days)


def submit_by(due_at: datetime, cal: BusinessCalendar, rv: RuleValues) -> datetime:
    """CO-3: submitted for approval within 3 working days (CAL-2) of becoming due."""
    return cal.add_working_days(due_at, rv.plan_submit_working_days)


def deadline_outcome(due_at: datetime, done_at: datetime) -> str:
    """CAL-3: done at or before the due instant → met; later → breached."""
    return "met" if done_at <= due_at else "breached"


def publishing_allowed(plan_1_approved_at: datetime | None, published_at: datetime) -> bool:
    """CO-2: no post of a period is published before its plan 1 was approved (judged on the post's own time)."""
    return plan_1_approved_at is not None and plan_1_approved_at <= published_at


# ----------------------------------------------------------------------------- CO-4 and the API's status

def plan_status(state: str, due_at: datetime | None, has_items: bool, now: datetime) -> str:
    """The API's status: the workflow state, or for an open plan draft (it has items), due (due by now)
    or not_due."""
    if state != "open":
        return state
    if has_items:
        return "draft"
    return "due" if due_at is not None and due_at <= now else "not_due"


def item_snapshot(item: Any) -> dict[str, Any]:
    return {"id": item.id, "date": item.date.isoformat(), "kind": item.kind, "caption": item.caption,
            "media": list(item.media or [])}


def round_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """CO-4: what changed between two rounds (by item id): added, removed, and changed fields."""
    old = {i["id"]: i for i in before}
    new = {i["id"]: i for i in after}
    changed = []
    for item_id in old.keys() & new.keys():
        diff = sorted(k for k in ("date", "kind", "caption", "media") if old[item_id].get(k) != new[item_id].get(k))
        if diff:
            changed.append({"item_id": item_id, "fields": diff})
    return {"added": sorted(new.keys() - old.keys()), "removed": sorted(old.keys() - new.keys()),
            "changed": sorted(changed, key=lambda c: c["item_id"])}


# ----------------------------------------------------------------------------- CO-5

def check_instant(cal: BusinessCalendar, day: date, rv: RuleValues) -> datetime:
    """CO-5: the moment a day's missed cadence becomes a fact (18:00 local by default)."""
    return datetime.combine(day, time.fromisoformat(rv.cadence_check_time), tzinfo=cal.tz).astimezone(UTC)


def stories_due(day: date, last_story: date | None, origin: date, rv: RuleValues) -> bool:
    """CO-5: stories are due on `day` when the last one (before `day`) is `stories_every_days` days back or
    more; with none since the cadence began at `origin`, on its 3rd day (a story within the first 3 days)."""
    reference = last_story if last_story is not None else origin - timedelta(days=1)
    return (day - reference).days >= rv.stories_every_days


def cadence_missed(feed_posts: int, due_stories: bool, stories_done: bool, checked: bool,
                   rv: RuleValues) -> list[str]:
    """CO-5: what a current client's day missed once its check time has come: the feed post(s), the stories."""
    if not checked:
        return []
    missed = []
    if feed_posts < rv.feed_posts_per_day:
        missed.append("feed")
    if due_stories and not stories_done:
        missed.append("stories")
    return missed
