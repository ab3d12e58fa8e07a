"""Plans and their items, the client's approval rounds on a signed link (CO-4), and publishing by hand
(CO-2's gate, CO-3's first post, `content.post.published.v1`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from shared.errors import Conflict, DomainError, NotFound
from shared.events.content import PlanApproved, PlanChangesRequested, PlanSubmitted, PostPublished
from shared.signing import BadToken, ExpiredToken, make_token, read_token
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from content import access, rules, services
from content.models import Account, ApprovalRound, ClientProfile, Period, Plan, PlanComment, PlanItem
from content.schemas import DecisionIn, Errors, ItemIn, ItemPatchIn
from content.services import Ctx
from shared import messages as M

APPROVAL_PURPOSE = "content-approval"


class Gone(DomainError):
    status_code = 410


def iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


# ============================================================================ reading

async def items_of(session: AsyncSession, plan_ids: list[str]) -> dict[str, list[PlanItem]]:
    out: dict[str, list[PlanItem]] = {pid: [] for pid in plan_ids}
    if plan_ids:
        for item in (await session.execute(select(PlanItem).where(PlanItem.plan_id.in_(plan_ids))
                                           .order_by(PlanItem.date, PlanItem.created_at, PlanItem.id))).scalars():
            out[item.plan_id].append(item)
    return out


async def comments_of(session: AsyncSession, plan_ids: list[str]) -> dict[str, list[PlanComment]]:
    out: dict[str, list[PlanComment]] = {pid: [] for pid in plan_ids}
    if plan_ids:
        for c in (await session.execute(select(PlanComment).where(PlanComment.plan_id.in_(plan_ids))
                                        .order_by(PlanComment.round, PlanComment.created_at, PlanComment.position))).scalars():
            out[c.plan_id].append(c)
    return out


def item_view(item: PlanItem) -> dict[str, Any]:
    return {"id": item.id, "plan_id": item.plan_id, "date": item.date.isoformat(), "kind": item.kind,
            "caption": item.caption, "media": list(item.media or []), "scheduled_at": iso(item.scheduled_at),
            "status": item.status, "published_at": iso(item.published_at), "permalink": item.permalink,
            "publish_error": item.publish_error, "publish_state": item.publish_state}


def comment_view(c: PlanComment) -> dict[str, Any]:
    return {"id": c.id, "item_id": c.item_id, "text": c.text, "round": c.round, "resolved": c.resolved,
            "reply": c.reply, "author": c.author, "created_at": iso(c.created_at)}


def plan_view(plan: Plan, items: list[PlanItem], comments: list[PlanComment], now: datetime) -> dict[str, Any]:
    return {"id": plan.id, "deal_id": plan.deal_id, "period_no": plan.period_no, "number": plan.number,
            "first_day": plan.first_day.isoformat(), "last_day": plan.last_day.isoformat(),
            "status": rules.plan_status(plan.state, plan.due_at, bool(items), now),
            "due_at": iso(plan.due_at), "submit_by": iso(plan.submit_by), "round": plan.round,
            "approved_at": iso(plan.first_approved_at),
            "items": [item_view(i) for i in items], "comments": [comment_view(c) for c in comments]}


async def deal_plans(ctx: Ctx, deal_id: str) -> list[dict[str, Any]]:
    """`GET /deals/{id}/plans`: every plan of the deal, in period then number order."""
    plans = list((await ctx.session.execute(select(Plan).where(Plan.deal_id == deal_id)
                                            .order_by(Plan.period_no, Plan.number))).scalars())
    ids = [p.id for p in plans]
    items, comments = await items_of(ctx.session, ids), await comments_of(ctx.session, ids)
    views = [plan_view(p, items[p.id], comments[p.id], ctx.now) for p in plans]
    return await with_thumbnails(ctx, views)


async def with_thumbnails(ctx: Ctx, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plans' items with their media thumbnails (signed, expiring tokens; media.add_thumbnails)."""
    from content.media import add_thumbnails  # media imports this module

    await add_thumbnails(ctx, [item for view in views for item in view["items"]])
    return views


async def one_plan_view(ctx: Ctx, plan: Plan) -> dict[str, Any]:
    """A plan as in the list, with its approval rounds (CO-4) and the revision count."""
    items, comments = await items_of(ctx.session, [plan.id]), await comments_of(ctx.session, [plan.id])
    view = plan_view(plan, items[plan.id], comments[plan.id], ctx.now) | {
        "rounds": await rounds_view(ctx.session, plan), "revision_rounds": max(plan.round - 1, 0)}
    return (await with_thumbnails(ctx, [view]))[0]


async def load_plan(ctx: Ctx, plan_id: str, *, change: bool) -> tuple[Account, Plan]:
    """The plan and its deal's account (row-locked), as the actor may see (404) or change (403) it."""
    plan = await ctx.session.get(Plan, plan_id)
    account = await services.lock_account(ctx.session, plan.deal_id) if plan is not None else None
    (access.require_change if change else access.require_visible)(ctx.actor, account, M.CONTENT_PLAN_NOT_FOUND)
    assert plan is not None and account is not None
    await ctx.session.refresh(plan)  # as it is now that the deal is locked (a concurrent writer has finished)
    return account, plan


async def load_item(ctx: Ctx, item_id: str) -> tuple[Account, Plan, PlanItem]:
    item = await ctx.session.get(PlanItem, item_id)
    if item is None:
        raise M.refusal(NotFound, None, M.CONTENT_ITEM_NOT_FOUND)
    account, plan = await load_plan(ctx, item.plan_id, change=True)
    await ctx.session.refresh(item)
    return account, plan, item


# ============================================================================ items

def _check_item(errors: Errors, plan: Plan, day: date | None, kind: str | None, caption: str | None,
                scheduled_at: datetime | None, media: list[str] | None, *, partial: bool) -> None:
    if not partial:
        errors.require("date", day)
        errors.require("kind", kind)
    if day is not None and not rules.date_in_plan(day, plan.first_day, plan.last_day):
        errors.add("date", M.CONTENT_ITEM_OUTSIDE_PLAN, first=plan.first_day.isoformat(), last=plan.last_day.isoformat())
    if kind is not None and kind not in rules.KINDS:
        errors.add("kind", M.CONTENT_ITEM_KIND, kinds=", ".join(rules.KINDS))
    if caption is not None and len(caption) > 2200:
        errors.add("caption", M.CONTENT_CAPTION_TOO_LONG)
    errors.aware("scheduled_at", scheduled_at)
    if media is not None and any(not isinstance(m, str) or not m.strip() for m in media):
        errors.add("media", M.CONTENT_MEDIA_LIST)


def _require_editable(account: Account, plan: Plan) -> None:
    if account.lost_at is not None:
        raise M.refusal(Conflict, "deal", M.CONTENT_DEAL_LOST)
    if plan.state not in rules.EDITABLE_STATES:
        raise M.refusal(Conflict, "status", M.CONTENT_PLAN_LOCKED, state=plan.state)


async def add_item(ctx: Ctx, account: Account, plan: Plan, data: ItemIn) -> PlanItem:
    errors = Errors()
    _check_item(errors, plan, data.date, data.kind, data.caption, data.scheduled_at, data.media, partial=False)
    errors.raise_if_any()
    _require_editable(account, plan)
    item = PlanItem(plan_id=plan.id, deal_id=plan.deal_id, date=data.date, kind=data.kind,
                    caption=(data.caption or "").strip(), media=list(data.media or []),
                    scheduled_at=data.scheduled_at, status="scheduled" if data.scheduled_at else "planned",
                    created_at=ctx.now, updated_at=ctx.now)
    ctx.session.add(item)
    await ctx.session.flush()
    await _schedule(ctx, item)
    return item


async def _schedule(ctx: Ctx, item: PlanItem) -> None:
    from content import publishing  # automatic publishing at `scheduled_at` (a durable timer)

    await publishing.schedule_item(ctx, item)


async def patch_item(ctx: Ctx, account: Account, plan: Plan, item: PlanItem, data: ItemPatchIn) -> PlanItem:
    errors = Errors()
    _check_item(errors, plan, data.date, data.kind, data.caption, data.scheduled_at, data.media, partial=True)
    errors.raise_if_any()
    _require_editable(account, plan)
    if item.status == "published":
        raise M.refusal(Conflict, "status", M.CONTENT_ITEM_PUBLISHED)
    for name in ("date", "kind", "scheduled_at", "media"):
        value = getattr(data, name)
        if value is not None:
            setattr(item, name, value)
    if data.caption is not None:
        item.caption = data.caption.strip()
    if data.scheduled_at is not None:
        item.status = "scheduled"
        await _schedule(ctx, item)
    item.updated_at = ctx.now
    return item


# ============================================================================ CO-4: submission and the client's answer

def approval_token(ctx: Ctx, plan: Plan, expires_at: datetime) -> str:
    return make_token({"plan_id": plan.id, "round": plan.round}, secret_key=ctx.settings.secret_key,
                      purpose=APPROVAL_PURPOSE, expires_at=expires_at)


def approval_url(ctx: Ctx, token: str) -> str:
    """The client's page on the gateway (the one public entry, DESIGN): `<GATEWAY_URL>/approve/<token>`."""
    return f"{ctx.settings.service_urls.get('gateway', '').rstrip('/')}/approve/{token}"


async def submit(ctx: Ctx, account: Account, plan: Plan, at: datetime) -> dict[str, Any]:
    """CO-4: send the plan to the client (a new round, its items kept as they are now) and mint the
    signed link. Every comment of earlier rounds must be addressed first (422 listing them). CO-3: the
    first submission meets the plan's deadline, judged on its own time."""
    if account.lost_at is not None:
        raise M.refusal(Conflict, "deal", M.CONTENT_DEAL_LOST)
    if plan.state == "in_approval":
        raise M.refusal(Conflict, "status", M.CONTENT_PLAN_IN_APPROVAL)
    if plan.state == "approved":
        raise M.refusal(Conflict, "status", M.CONTENT_PLAN_APPROVED)
    items = (await items_of(ctx.session, [plan.id]))[plan.id]
    if not items:
        raise M.error("items", M.CONTENT_PLAN_EMPTY)
    open_comments = [c for c in (await comments_of(ctx.session, [plan.id]))[plan.id] if not c.resolved]
    if open_comments:
        raise DomainError(M.text(M.CONTENT_PLAN_OPEN_COMMENTS, count=len(open_comments)),
                          errors=[{**M.item(f"comments.{c.id}", M.CONTENT_COMMENT_OPEN, text=c.text), "comment_id": c.id,
                                   "item_id": c.item_id, "round": c.round} for c in open_comments])
    rv = await services.rule_values(ctx.session, at)
    await services.settle(ctx, account.deal_id, before=at)
    plan.round += 1
    plan.state = "in_approval"
    expires_at = ctx.now + timedelta(days=rv.approval_link_days)
    ctx.session.add(ApprovalRound(plan_id=plan.id, round=plan.round, submitted_at=at, submitted_by=ctx.actor.login,
                                  items=[rules.item_snapshot(i) for i in items], expires_at=expires_at))
    if plan.first_submitted_at is None:
        plan.first_submitted_at = at
        deadline = await services.plan_deadline(ctx.session, plan)
        if deadline is not None:
            await services.resolve_deadline(ctx, account, deadline, at)
    ctx.emit(PlanSubmitted(deal_id=plan.deal_id, client_id=account.client_id, occurred_at=at, plan_id=plan.id,
                           period_no=plan.period_no, number=plan.number, round=plan.round,
                           manager=account.manager or ""))
    token = approval_token(ctx, plan, expires_at)
    return {"status": "in_approval", "round": plan.round, "approval_url": approval_url(ctx, token),
            "token": token, "expires_at": iso(expires_at)}


def read_approval_token(ctx: Ctx, token: str) -> dict[str, Any]:
    """An expired link is 410 (it was real: the client asks for a new one); a forged or garbled one 404."""
    try:
        data = read_token(token, secret_key=ctx.settings.secret_key, purpose=APPROVAL_PURPOSE, now=ctx.now)
        return {"plan_id": str(data["plan_id"]), "round": int(data["round"])}
    except ExpiredToken:
        raise M.refusal(Gone, "token", M.CONTENT_LINK_EXPIRED) from None
    except (BadToken, KeyError, TypeError, ValueError):
        raise M.refusal(NotFound, None, M.LINK_INVALID) from None


async def rounds_of(session: AsyncSession, plan: Plan) -> list[ApprovalRound]:
    return list((await session.execute(select(ApprovalRound).where(ApprovalRound.plan_id == plan.id)
                                       .order_by(ApprovalRound.round))).scalars())


async def rounds_view(session: AsyncSession, plan: Plan) -> list[dict[str, Any]]:
    """CO-4: every round as sent, the client's answer, and what changed since the round before."""
    rounds, previous = [], []
    for r in await rounds_of(session, plan):
        rounds.append({"round": r.round, "submitted_at": iso(r.submitted_at), "submitted_by": r.submitted_by,
                       "decision": r.decision, "decided_at": iso(r.decided_at), "items": r.items,
                       "changes": rules.round_changes(previous, r.items) if r.round > 1 else None})
        previous = r.items
    return rounds


async def fresh_link(ctx: Ctx, plan: Plan) -> dict[str, Any]:
    """A new signed link to the round waiting for the client (the first one was lost or has expired)."""
    if plan.state != "in_approval":
        raise M.refusal(Conflict, "status", M.CONTENT_PLAN_NOT_WAITING)
    rv = await services.rule_values(ctx.session, ctx.now)
    expires_at = ctx.now + timedelta(days=rv.approval_link_days)
    token = approval_token(ctx, plan, expires_at)
    return {"status": plan.state, "round": plan.round, "approval_url": approval_url(ctx, token), "token": token,
            "expires_at": iso(expires_at)}


async def public_plan(ctx: Ctx, token: str) -> dict[str, Any]:
    """What the client's page shows: the plan (dates, format, caption, media), every round with what
    changed since the one before, every comment with the manager's reply, and whether it can answer."""
    ref = read_approval_token(ctx, token)
    plan = await ctx.session.get(Plan, ref["plan_id"])
    if plan is None:
        raise M.refusal(NotFound, None, M.LINK_INVALID)
    account = await ctx.session.get(Account, plan.deal_id)
    profile = await ctx.session.get(ClientProfile, account.client_id) if account and account.client_id else None
    items = (await items_of(ctx.session, [plan.id]))[plan.id]
    comments = (await comments_of(ctx.session, [plan.id]))[plan.id]
    rounds = await rounds_view(ctx.session, plan)
    return {"plan_id": plan.id, "client_name": profile.full_name if profile else "",
            "period_no": plan.period_no, "number": plan.number, "first_day": plan.first_day.isoformat(),
            "last_day": plan.last_day.isoformat(), "status": rules.plan_status(plan.state, plan.due_at, bool(items),
                                                                              ctx.now),
            "round": plan.round, "link_round": ref["round"], "revision_rounds": max(plan.round - 1, 0),
            "can_answer": plan.state == "in_approval" and ref["round"] == plan.round,
            "items": await _public_items(ctx, items),
            "comments": [comment_view(c) for c in comments], "rounds": rounds,
            "requests": [{"id": r.id, "text": r.text, "date": r.day.isoformat() if r.day else None,
                          "status": r.status, "reason": r.reason} for r in await _requests(ctx, plan.deal_id)]}


async def _public_items(ctx: Ctx, items: list[PlanItem]) -> list[dict[str, Any]]:
    """The items as the client sees them: `media` as signed, expiring URLs and `thumbnails` (with tokens
    the gateway serves at `/media/{token}`); never the item's internal publishing state."""
    from content.media import add_thumbnails, public_urls

    views = [{k: v for k, v in item_view(i).items() if k not in ("permalink", "publish_error", "publish_state")}
             for i in items]
    await add_thumbnails(ctx, views)
    for view, item in zip(views, items, strict=True):
        view["media"] = public_urls(ctx, list(item.media or []))
    return views


async def _requests(ctx: Ctx, deal_id: str) -> list[Any]:
    from content.client_requests import requests_of  # CO-6: the client sees the answers on the same link

    return await requests_of(ctx.session, deal_id)


async def decide(ctx: Ctx, token: str, data: DecisionIn) -> dict[str, Any]:
    """CO-4: the client approves the plan or asks for changes, with comments on the plan or on items."""
    ref = read_approval_token(ctx, token)
    errors = Errors()
    if data.decision not in ("approve", "changes"):
        errors.add("decision", M.CONTENT_DECISION_APPROVAL)
    plan = await ctx.session.get(Plan, ref["plan_id"])
    if plan is None:
        raise M.refusal(NotFound, None, M.LINK_INVALID)
    item_ids = {i.id for i in (await items_of(ctx.session, [plan.id]))[plan.id]}
    for n, comment in enumerate(data.comments):
        if not (comment.text or "").strip():
            errors.add(f"comments[{n}].text", M.REQUIRED)
        if comment.item_id is not None and comment.item_id not in item_ids:
            errors.add(f"comments[{n}].item_id", M.CONTENT_NOT_AN_ITEM)
    if data.decision == "changes" and not data.comments:
        errors.add("comments", M.CONTENT_SAY_WHAT)
    errors.raise_if_any()
    account = await services.lock_account(ctx.session, plan.deal_id)
    await ctx.session.refresh(plan)
    if plan.state != "in_approval" or ref["round"] != plan.round:
        raise M.refusal(Conflict, "round", M.CONTENT_ROUND_ANSWERED)
    current = (await ctx.session.execute(select(ApprovalRound).where(
        ApprovalRound.plan_id == plan.id, ApprovalRound.round == plan.round))).scalar_one()
    current.decision, current.decided_at = data.decision, ctx.now
    for position, comment in enumerate(data.comments):
        ctx.session.add(PlanComment(plan_id=plan.id, item_id=comment.item_id, round=plan.round, position=position,
                                    text=comment.text.strip(), author="client", created_at=ctx.now,
                                    resolved=data.decision == "approve"))
    common = {"deal_id": plan.deal_id, "client_id": account.client_id if account else None, "occurred_at": ctx.now,
              "plan_id": plan.id, "period_no": plan.period_no, "number": plan.number, "round": plan.round,
              "manager": (account.manager if account else None) or ""}
    if data.decision == "approve":
        plan.state = "approved"
        plan.first_approved_at = plan.first_approved_at or ctx.now
        ctx.emit(PlanApproved(**common))
    else:
        plan.state = "changes_requested"
        ctx.emit(PlanChangesRequested(**common, comments=len(data.comments)))
    await ctx.session.flush()
    return {"status": plan.state, "round": plan.round}


async def resolve_comment(ctx: Ctx, plan: Plan, comment_id: str, reply: str | None) -> PlanComment:
    """CO-4: the manager addresses a comment: an answer, or simply done."""
    comment = await ctx.session.get(PlanComment, comment_id)
    if comment is None or comment.plan_id != plan.id:
        raise M.refusal(NotFound, None, M.CONTENT_COMMENT_NOT_FOUND)
    if reply is not None and not reply.strip():
        raise M.error("reply", M.CONTENT_EMPTY_REPLY)
    comment.resolved, comment.resolved_at, comment.resolved_by = True, ctx.now, ctx.actor.login
    if reply is not None:
        comment.reply = reply.strip()
    return comment


# ============================================================================ publishing by hand

async def mark_published(ctx: Ctx, account: Account, plan: Plan, item: PlanItem, published_at: datetime,
                         permalink: str | None) -> PlanItem:
    """The manager (or the lead, or an integration) says an item went out at `published_at`. CO-2: the
    period's plan 1 must have been approved by then (409 naming CO-2). The post goes out as
    `content.post.published.v1` (CL-9 in clients); a feed post or reel may be the period's first (CO-3)."""
    if permalink is not None and not permalink.startswith(("https://", "http://")):
        raise M.error("permalink", M.CONTENT_PERMALINK)
    if item.status == "published":
        if item.published_at == published_at:
            return item  # the same report again: nothing new
        raise M.refusal(Conflict, "published_at", M.CONTENT_ALREADY_PUBLISHED, at=iso(item.published_at))
    if account.lost_at is not None and published_at >= account.lost_at:
        raise M.refusal(Conflict, "deal", M.CONTENT_DEAL_LOST)
    period = await ctx.session.get(Period, plan.period_id)
    plan_1 = (await ctx.session.execute(select(Plan).where(Plan.period_id == period.id, Plan.number == 1))
              ).scalar_one()
    if not rules.publishing_allowed(plan_1.first_approved_at, published_at):
        raise Conflict(f"CO-2: plan 1 of period {period.period_no} must be approved by the client before any "
                       "post of the period is published", errors=[{
                           **M.item("published_at", M.CONTENT_PLAN_1_NOT_APPROVED), "rule": "CO-2",
                           "plan_id": plan_1.id}])
    await services.settle(ctx, account.deal_id, before=published_at)
    item.status, item.published_at, item.published_by = "published", published_at, ctx.actor.login
    item.permalink = permalink
    item.updated_at = ctx.now
    ctx.emit(PostPublished(deal_id=account.deal_id, client_id=account.client_id, occurred_at=published_at,
                           post_id=item.id, published_at=published_at, kind=item.kind))
    if rules.counts_as_post(item.kind):
        await services.first_post(ctx, account, period, published_at)
    return item
