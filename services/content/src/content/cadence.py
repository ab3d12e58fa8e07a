"""CO-5 cadence: one feed post a day and stories every 3 days for every current client; the "Today"
board (`GET /cadence?date=`) and the daily missed-cadence check at the configured local time.

A client is current on a day when a service period opened by clients covers it and the deal was not
lost before the day ended. Everything is computed from the facts (published items, by their own
publication time), in a handful of set-based queries, so the board for thousands of clients is one
request. The daily check records each miss once (`cadence_misses`, unique per deal, day and what) and
publishes `content.cadence.missed.v1`; it runs as a durable timer that schedules the next day's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shared.auth import Actor
from shared.db import UTCDateTime
from shared.errors import Forbidden
from shared.events.content import CadenceMissed
from shared.infra import Timer
from sqlalchemy import and_, case, func, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from content import access, rules, services
from content.models import Account, CadenceMiss, ClientProfile, Period, PlanItem
from shared import messages as M
from shared import timers

CHECK_TIMER = "content.cadence_check"
POST_KINDS = ("feed", "reel")


@dataclass
class Row:
    deal_id: str
    client_name: str
    manager: str | None
    feed_posts: int
    feed_done: bool
    stories_due: bool
    stories_done: bool
    missed: list[str]

    def view(self) -> dict[str, Any]:
        return {"deal_id": self.deal_id, "client_name": self.client_name, "manager": self.manager,
                "feed_done": self.feed_done, "feed_posts": self.feed_posts,
                "stories_due": self.stories_due, "stories_done": self.stories_done, "missed": self.missed}


async def day_rows(ctx: services.Ctx, day: date, actor: Actor | None = None) -> list[Row]:
    """Every current client's cadence on `day` (the ones `actor` may see), ordered by client name."""
    rv = await services.rule_values(ctx.session, rules.local_midnight(ctx.cal, day))
    start = rules.local_midnight(ctx.cal, day)
    end = rules.local_midnight(ctx.cal, day + timedelta(days=1))
    query = (select(Account.deal_id, Account.manager, ClientProfile.full_name)
             .join(Period, Period.deal_id == Account.deal_id)
             .outerjoin(ClientProfile, ClientProfile.client_id == Account.client_id)
             .where(Period.provisional.is_(False), Period.first_day <= day, Period.last_day >= day,
                    or_(Account.lost_at.is_(None), Account.lost_at >= end)))
    if actor is not None and actor.role == access.CONTENT_MANAGER:
        query = query.where(Account.manager == actor.login)
    accounts = (await ctx.session.execute(query)).all()
    if not accounts:
        return []
    origins = dict((await ctx.session.execute(
        select(Period.deal_id, func.min(Period.first_day)).where(Period.provisional.is_(False))
        .group_by(Period.deal_id))).all())
    window_start = rules.local_midnight(ctx.cal, day - timedelta(days=rv.stories_every_days - 1))
    # One grouped row per deal: today's feed posts and stories, and the last story of the window before today.
    is_post = PlanItem.kind.in_(POST_KINDS)
    is_story = PlanItem.kind == "story"
    today = PlanItem.published_at >= start
    published = (select(PlanItem.deal_id,
                        func.sum(case((and_(today, is_post), 1), else_=0)),
                        func.sum(case((and_(today, is_story), 1), else_=0)),
                        type_coerce(func.max(case((and_(~today, is_story), PlanItem.published_at))), UTCDateTime))
                 .where(PlanItem.status == "published", PlanItem.published_at >= min(window_start, start),
                        PlanItem.published_at < end)
                 .group_by(PlanItem.deal_id))
    feed: dict[str, int] = {}
    stories_today: set[str] = set()
    last_story: dict[str, date] = {}
    for deal_id, posts, stories, last in (await ctx.session.execute(published)).all():
        feed[deal_id] = int(posts or 0)
        if stories:
            stories_today.add(deal_id)
        if last is not None:
            last_story[deal_id] = rules.local_date(ctx.cal, last)
    checked = ctx.now >= rules.check_instant(ctx.cal, day, rv)
    rows = []
    for deal_id, manager, name in accounts:
        due = rules.stories_due(day, last_story.get(deal_id), origins.get(deal_id, day), rv)
        done = deal_id in stories_today
        posts = feed.get(deal_id, 0)
        rows.append(Row(deal_id, name or "", manager, posts, posts >= rv.feed_posts_per_day, due, done,
                        rules.cadence_missed(feed.get(deal_id, 0), due, done, checked, rv)))
    return sorted(rows, key=lambda r: (r.client_name.casefold(), r.deal_id))


async def board(ctx: services.Ctx, day: date) -> list[dict[str, Any]]:
    if ctx.actor.role == "webhook":   # issue 8 matrix: a payment provider's signature reads nothing (access.py)
        raise M.refusal(Forbidden, None, M.WEBHOOK_NO_CADENCE)
    if ctx.actor.role not in (access.LEAD, access.INTEGRATION, access.ANALYST, access.CONTENT_MANAGER):
        return []
    return [row.view() for row in await day_rows(ctx, day, ctx.actor)]


async def check_day(ctx: services.Ctx, day: date) -> int:
    """CO-5: record and publish each current client's misses of `day`, once. Returns how many are new."""
    rows = [r for r in await day_rows(ctx, day) if r.missed]
    if not rows:
        return 0
    misses = [(r, what) for r in rows for what in r.missed]
    rv = await services.rule_values(ctx.session, rules.local_midnight(ctx.cal, day))
    checked_at = rules.check_instant(ctx.cal, day, rv)
    insert_fn = pg_insert if ctx.session.bind.dialect.name == "postgresql" else sqlite_insert
    events = {}
    values = []
    for row, what in misses:
        evt = CadenceMissed(deal_id=row.deal_id, occurred_at=checked_at,
                            day=day, what=what, manager=row.manager or "")
        events[(row.deal_id, what)] = evt
        values.append({"deal_id": row.deal_id, "day": day, "what": what, "manager": row.manager,
                       "event_id": evt.event_id, "created_at": ctx.now})
    fresh = 0
    for chunk in range(0, len(values), 500):
        stmt = (insert_fn(CadenceMiss.__table__).values(values[chunk:chunk + 500]).on_conflict_do_nothing()
                .returning(CadenceMiss.__table__.c.deal_id, CadenceMiss.__table__.c.what))
        for deal_id, what in (await ctx.session.execute(stmt)).all():
            ctx.emit(events[(deal_id, what)])
            fresh += 1
    return fresh


async def schedule_check(session: AsyncSession, ctx: services.Ctx, day: date) -> None:
    rv = await services.rule_values(session, rules.local_midnight(ctx.cal, day))
    await timers.schedule(session, kind=CHECK_TIMER, key=f"cadence:{day.isoformat()}",
                          due_at=rules.check_instant(ctx.cal, day, rv), payload={"day": day.isoformat()},
                          clock=ctx.clock)


def timer_handlers(make_ctx: Any) -> dict[str, Any]:
    async def on_check(session: AsyncSession, timer: Timer) -> None:
        ctx = make_ctx(session)
        day = date.fromisoformat(timer.payload["day"])
        await check_day(ctx, day)
        await schedule_check(session, ctx, day + timedelta(days=1))

    return {CHECK_TIMER: on_check}


async def start_daily_check(ctx: services.Ctx) -> None:
    """At start: today's check is scheduled (once per day key; a past one fires at once)."""
    await schedule_check(ctx.session, ctx, rules.local_date(ctx.cal, ctx.now))


def parse_day(raw: str | None, now: datetime, ctx: services.Ctx, field: str = "date") -> date:

    if raw is None:
        return rules.local_date(ctx.cal, now)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise M.error(field, M.DATE_FORMAT) from None
