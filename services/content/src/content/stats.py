"""CO-7 weekly statistics per client: figures from an insights CSV upload or entered by hand, weeks with
engagement rate and week-over-week change. Parsing and arithmetic are in `stats_rules.py`."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Any

from shared.errors import DomainError, NotFound
from shared.signing import BadToken, ExpiredToken, make_token, read_token
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from content import rules, stats_rules
from content.models import Account, ClientProfile, StatDay, StatImport, StatWeek
from content.services import Ctx
from shared import messages as M

MAX_WEEKS = 104
MAX_FILE_BYTES = 5 * 1024 * 1024


def import_view(job: StatImport, repeated: bool = False) -> dict[str, Any]:
    return {"id": job.id, "deal_id": job.deal_id, "filename": job.filename, "columns": job.columns,
            "ignored_columns": job.ignored, "rows_total": job.rows_total, "rows_ok": job.rows_ok,
            "rows_failed": job.rows_total - job.rows_ok, "errors": job.errors, "repeated": repeated,
            "created_at": job.created_at.isoformat()}


async def import_csv(ctx: Ctx, account: Account, filename: str, content: bytes) -> tuple[StatImport, bool]:
    """CO-7: read the file's daily figures by header name; good rows are stored (a day again replaces it),
    bad rows come back with their row number, field and reason. The same file again → the same import."""
    if not content.strip():
        raise M.error("file", M.UPLOAD_EMPTY)
    if len(content) > MAX_FILE_BYTES:
        raise M.error("file", M.UPLOAD_AT_MOST, limit_mb=MAX_FILE_BYTES // (1024 * 1024))
    digest = hashlib.sha256(content).hexdigest()
    existing = (await ctx.session.execute(select(StatImport).where(
        StatImport.deal_id == account.deal_id, StatImport.sha256 == digest))).scalar_one_or_none()
    if existing is not None:
        return existing, True
    parsed = stats_rules.parse_csv(content)
    if parsed.errors and parsed.errors[0]["row"] == 1 and not parsed.days:
        raise DomainError(parsed.errors[0]["message"], errors=[{**e, "field": "file"} for e in parsed.errors])
    job = StatImport(deal_id=account.deal_id, sha256=digest, filename=filename[:300], columns=parsed.columns,
                     ignored=parsed.ignored, rows_total=parsed.rows, rows_ok=len(parsed.days),
                     errors=parsed.errors[:1000], created_by=ctx.actor.login, created_at=ctx.now)
    ctx.session.add(job)
    await ctx.session.flush()
    insert_fn = pg_insert if ctx.session.bind.dialect.name == "postgresql" else sqlite_insert
    rows = [{"deal_id": account.deal_id, "day": day, "import_id": job.id, "updated_at": ctx.now,
             **{m: values.get(m) for m in stats_rules.METRICS}} for day, values in sorted(parsed.days.items())]
    for start in range(0, len(rows), 500):
        stmt = insert_fn(StatDay.__table__).values(rows[start:start + 500])
        update = {m: getattr(stmt.excluded, m) for m in stats_rules.METRICS if m in parsed.columns}
        update |= {"import_id": stmt.excluded.import_id, "updated_at": stmt.excluded.updated_at}
        await ctx.session.execute(stmt.on_conflict_do_update(index_elements=["deal_id", "day"], set_=update))
    ctx.audit("stats.imported", account.deal_id, import_id=job.id, rows=parsed.rows, ok=len(parsed.days))
    return job, False


async def enter_week(ctx: Ctx, account: Account, week: date, figures: dict[str, Any]) -> StatWeek:
    """CO-7 manual entry: a week's figures (any subset, whole numbers ≥ 0), Monday-based."""
    errors = []
    if week != stats_rules.week_start(week):
        errors.append(M.item("week_start", M.STATS_WEEK_MONDAY))
    for metric, value in figures.items():
        if metric not in stats_rules.METRICS:
            errors.append(M.item(metric, M.STATS_UNKNOWN_FIGURE))
        elif value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            errors.append(M.item(metric, M.STATS_WHOLE))
    if not figures:
        errors.append(M.item("likes", M.STATS_AT_LEAST_ONE))
    if errors:
        raise DomainError("invalid figures", errors=errors)
    row = (await ctx.session.execute(select(StatWeek).where(
        StatWeek.deal_id == account.deal_id, StatWeek.week_start == week))).scalar_one_or_none()
    if row is None:
        row = StatWeek(deal_id=account.deal_id, week_start=week, entered_by=ctx.actor.login, updated_at=ctx.now)
        ctx.session.add(row)
    for metric, value in figures.items():
        setattr(row, metric, value)
    row.entered_by, row.updated_at = ctx.actor.login, ctx.now
    ctx.audit("stats.entered", account.deal_id, week_start=week.isoformat(), figures=figures)
    return row


async def weeks(ctx: Ctx, account: Account, count: int, until: date | None = None) -> list[dict[str, Any]]:
    """The last `count` weeks up to the current one (local), oldest first: figures (null where there is no
    data), engagement rate and the change from the week before."""
    if not 1 <= count <= MAX_WEEKS:
        raise M.error("weeks", M.STATS_WEEKS_RANGE, max=MAX_WEEKS)
    last = stats_rules.week_start(until or rules.local_date(ctx.cal, ctx.now))
    first = last - timedelta(weeks=count)  # one more week, for the first week's change
    days: dict[date, dict[date, dict[str, int | None]]] = {}
    for row in (await ctx.session.execute(select(StatDay).where(
            StatDay.deal_id == account.deal_id, StatDay.day >= first, StatDay.day < last + timedelta(days=7)))
            ).scalars():
        days.setdefault(stats_rules.week_start(row.day), {})[row.day] = {m: getattr(row, m)
                                                                         for m in stats_rules.METRICS}
    manual = {row.week_start: row for row in (await ctx.session.execute(select(StatWeek).where(
        StatWeek.deal_id == account.deal_id, StatWeek.week_start >= first, StatWeek.week_start <= last))).scalars()}
    out, previous = [], None
    for n in range(count + 1):
        week = first + timedelta(weeks=n)
        figures = stats_rules.week_totals(days.get(week, {}))
        if week in manual:
            figures |= {m: getattr(manual[week], m) for m in stats_rules.METRICS if getattr(manual[week], m) is not None}
        figures["engagement_rate"] = stats_rules.engagement_rate(figures)
        if n:
            out.append({"week_start": week.isoformat(), **figures,
                        "source": "manual" if week in manual else ("import" if week in days else None),
                        "change": stats_rules.change(figures, previous)})
        previous = figures
    return out


REPORT_PURPOSE = "content-report"


def report_link(ctx: Ctx, account: Account, count: int, until: date | None) -> dict[str, Any]:
    """CO-7: the weekly report the manager shares with the client: a signed link (14 days by default)
    to these weeks, on the gateway (`/report/<token>`), printable."""
    if not 1 <= count <= MAX_WEEKS:
        raise M.error("weeks", M.STATS_WEEKS_RANGE, max=MAX_WEEKS)
    until = until or rules.local_date(ctx.cal, ctx.now)
    expires_at = ctx.now + timedelta(days=14)
    token = make_token({"deal_id": account.deal_id, "weeks": count, "until": until.isoformat()},
                       secret_key=ctx.settings.secret_key, purpose=REPORT_PURPOSE, expires_at=expires_at)
    base = ctx.settings.service_urls.get("gateway", "").rstrip("/")
    return {"url": f"{base}/report/{token}", "token": token, "expires_at": expires_at.isoformat()}


async def public_report(ctx: Ctx, token: str) -> dict[str, Any]:
    from content.plans import Gone

    try:
        data = read_token(token, secret_key=ctx.settings.secret_key, purpose=REPORT_PURPOSE, now=ctx.now)
        deal_id, count, until = str(data["deal_id"]), int(data["weeks"]), date.fromisoformat(data["until"])
    except ExpiredToken:
        raise M.refusal(Gone, "token", M.LINK_EXPIRED) from None
    except (BadToken, KeyError, TypeError, ValueError):
        raise M.refusal(NotFound, None, M.LINK_INVALID) from None
    account = await ctx.session.get(Account, deal_id)
    if account is None:
        raise M.refusal(NotFound, None, M.LINK_INVALID)
    profile = await ctx.session.get(ClientProfile, account.client_id) if account.client_id else None
    return {"client_name": profile.full_name if profile else "", "instagram": profile.instagram if profile else "",
            "weeks": await weeks(ctx, account, count, until)}
