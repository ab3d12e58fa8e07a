"""CO-7 from the Instagram Insights API for connected accounts (CHANNELS.md §2.3): a week's daily figures,
stored like a CSV import's (`stat_days`, a day again replaces the figures it brings; figures entered by
hand for the week still take precedence).

Per local day of the week (agency time zone): `GET /{ig}/insights?metric=likes,comments,saves,reach
&metric_type=total_value&period=day&since=<day 00:00>&until=<next day 00:00>` (`total_value.value`); and
once for the week `metric=follower_count&period=day` (a value per day, dated by its `end_time`; not
available below 100 followers — then left empty). A metric Instagram does not return stays empty.

`POST /deals/{deal_id}/stats/fetch {"week_start"?}` fetches a week on demand (default: the last full
week); a durable weekly timer (`content.insights`, Mondays at 09:00 local) fetches the week just ended
for every connected account, and schedules the next Monday's.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from shared.errors import Conflict
from shared.infra import Timer
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from content import rules, stats_rules
from content.crypto import decrypt_token
from content.graph import BadGateway, Graph, GraphConfig, GraphError, Unavailable
from content.models import Account, InstagramAccount
from content.services import Ctx
from shared import messages as M
from shared import timers

INSIGHTS_TIMER = "content.insights"
DAILY = ("likes", "comments", "saves", "reach")
FETCH_AT = time(9, 0)


def _value(metric: dict[str, Any]) -> int | None:
    total = metric.get("total_value")
    if isinstance(total, dict) and isinstance(total.get("value"), int):
        return total["value"]
    values = metric.get("values") or []
    if values and isinstance(values[-1].get("value"), int):
        return values[-1]["value"]
    return None


async def fetch_week(ctx: Ctx, account: Account, week: date) -> dict[str, Any]:
    if week != stats_rules.week_start(week):
        raise M.error("week_start", M.STATS_WEEK_MONDAY)
    today = ctx.now.astimezone(ctx.cal.tz).date()
    if week > today:
        raise M.error("week_start", M.STATS_WEEK_NOT_STARTED)
    conn = await ctx.session.get(InstagramAccount, account.deal_id)
    if conn is None:
        raise M.refusal(Conflict, "instagram", M.CONTENT_IG_NOT_CONNECTED)
    days: dict[date, dict[str, int | None]] = {}
    last = min(week + timedelta(days=6), today)
    try:
        async with Graph(GraphConfig.from_env(), decrypt_token(ctx.settings, conn.token_enc)) as graph:
            followers = await _read(ctx, graph, conn.ig_user_id, week, last, days)
    except GraphError as exc:
        raise BadGateway(f"Instagram: {exc.message}", errors=[
            M.item("instagram", M.INSTAGRAM_REFUSED, reason=exc.message, graph_code=exc.code)]) from None
    except Unavailable as exc:
        raise M.refusal(BadGateway, "instagram", M.INSTAGRAM_UNAVAILABLE, reason=str(exc)) from None
    for metric in followers:
        if metric.get("name") != "follower_count":
            continue
        for point in metric.get("values") or []:
            try:
                end = datetime.fromisoformat(str(point["end_time"]).replace("+0000", "+00:00"))
            except (KeyError, ValueError):
                continue
            local_day = (end - timedelta(seconds=1)).astimezone(ctx.cal.tz).date()
            if local_day in days and isinstance(point.get("value"), int):
                days[local_day]["followers"] = point["value"]
    await store_days(ctx, account.deal_id, days)
    ctx.audit("stats.fetched", account.deal_id, week_start=week.isoformat(), days=len(days),
              ig_user_id=conn.ig_user_id)
    return {"week_start": week.isoformat(), "days": len(days),
            "figures": stats_rules.week_totals(days)}


async def _read(ctx: Ctx, graph: Graph, ig: str, week: date, last: date,
                days: dict[date, dict[str, int | None]]) -> list[dict[str, Any]]:
    day = week
    while day <= last:
        data = await graph.insights(ig, list(DAILY), rules.local_midnight(ctx.cal, day),
                                    rules.local_midnight(ctx.cal, day + timedelta(days=1)), "total_value")
        figures = {m["name"]: _value(m) for m in data if m.get("name") in DAILY}
        days[day] = {m: figures.get(m) for m in DAILY}
        day += timedelta(days=1)
    return await graph.insights(ig, ["follower_count"], rules.local_midnight(ctx.cal, week),
                                rules.local_midnight(ctx.cal, last + timedelta(days=1)))


async def store_days(ctx: Ctx, deal_id: str, days: dict[date, dict[str, int | None]]) -> None:
    """Upsert the days; a figure Instagram did not give keeps what an import had stored for that day."""
    insert_fn = pg_insert if ctx.session.bind.dialect.name == "postgresql" else sqlite_insert
    for day, values in sorted(days.items()):
        present = {m: v for m, v in values.items() if v is not None}
        stmt = insert_fn(stats_rules_table()).values(deal_id=deal_id, day=day, import_id=None, updated_at=ctx.now,
                                                     **{m: values.get(m) for m in stats_rules.METRICS})
        update = {m: getattr(stmt.excluded, m) for m in present} | {"updated_at": stmt.excluded.updated_at}
        await ctx.session.execute(stmt.on_conflict_do_update(index_elements=["deal_id", "day"], set_=update))


def stats_rules_table():
    from content.models import StatDay

    return StatDay.__table__


# ============================================================================ the weekly timer

def next_fetch(ctx: Ctx, after: datetime) -> datetime:
    local = after.astimezone(ctx.cal.tz)
    monday = stats_rules.week_start(local.date())
    at = datetime.combine(monday, FETCH_AT, tzinfo=ctx.cal.tz)
    while at <= local:
        at += timedelta(days=7)
    return at.astimezone(after.tzinfo)


async def schedule_weekly(ctx: Ctx, deal_id: str) -> None:
    due = next_fetch(ctx, ctx.now)
    await timers.schedule(ctx.session, kind=INSIGHTS_TIMER, key=f"insights:{deal_id}:{due.date().isoformat()}",
                          due_at=due, payload={"deal_id": deal_id}, clock=ctx.clock)


def timer_handlers(make_ctx: Any) -> dict[str, Any]:
    async def on_insights(session: AsyncSession, timer: Timer) -> None:
        from content import services

        ctx = make_ctx(session)
        account = await services.lock_account(session, timer.payload["deal_id"])
        if account is None or await session.get(InstagramAccount, account.deal_id) is None:
            return  # disconnected: the weekly fetch stops (a new connection starts it again)
        if account.lost_at is None:
            week = stats_rules.week_start(ctx.now.astimezone(ctx.cal.tz).date()) - timedelta(days=7)
            try:
                await fetch_week(ctx, account, week)
            except BadGateway as exc:
                ctx.audit("stats.fetch_failed", account.deal_id, week_start=week.isoformat(), error=exc.message)
        await schedule_weekly(ctx, account.deal_id)

    return {INSIGHTS_TIMER: on_insights}
