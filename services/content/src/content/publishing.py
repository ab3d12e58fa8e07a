"""Automatic publishing of scheduled plan items through the Instagram Content Publishing API (issue 10),
and the connection of a client's Instagram professional account.

The connection: the lead or the deal's responsible manager gives the IG user id and an access token; the
token is checked against the Graph API (`GET /{ig-user-id}?fields=id,username`), encrypted at rest, never
put on NATS nor in an answer; only the audited reveal shows it (the lead, the responsible manager).

Publishing is a durable timer, `content.publish`, keyed `publish:<item>:<step>` (a newer step — a new
schedule, a retry, the next poll — makes older timers stale). At the item's `scheduled_at`, if the deal
has a connected account:
1. the item's plan must be approved and the period's plan 1 approved by now (CO-2), the deal not lost;
2. create the container (`POST /{ig}/media`: an image for the feed, `REELS`, `STORIES`, or `CAROUSEL` of
   children for a feed item with several media) and commit its id (the next step is due at once); read
   its `status_code`: `IN_PROGRESS` → poll again
   in `INSTAGRAM_POLL_SECONDS`, at most `INSTAGRAM_POLL_MAX` times; `ERROR` / `EXPIRED` → failed;
3. `PUBLISHED` already (a publish whose answer was lost, or a crash after it) → the item is published
   (dated when the uncertain publish call was made), nothing is posted again; `FINISHED` → read
   `content_publishing_limit` and, when `quota_usage` has reached the account's `config.quota_total`,
   wait `INSTAGRAM_QUOTA_RETRY_MINUTES`; else `POST /{ig}/media_publish`;
4. a publish without a trustworthy answer (timeout, network, 5xx) is *uncertain*: the next step re-reads
   the container first (step 3), so nothing is posted twice;
5. a Graph error (expired token 190, rate limits 4, 17, 32, 613, 80002, any other) is stored on the item
   in the channel's words, status `failed`; `POST /items/{id}/retry` schedules it again.
A publication is recorded as a hand-made one is (`content.post.published.v1`, CO-3's first post).
Reads that find Graph unavailable raise: the scheduler retries the timer with a backoff.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.auth import Actor
from shared.errors import Conflict, DomainError, Forbidden, NotFound
from shared.infra import Timer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from content import access, insights, media, plans, services
from content.crypto import decrypt_token, encrypt_token
from content.graph import BadGateway, Graph, GraphConfig, GraphError, Unavailable
from content.models import Account, InstagramAccount, Period, Plan, PlanItem
from content.plans import iso
from content.services import Ctx
from shared import messages as M
from shared import timers

PUBLISH_TIMER = "content.publish"
PUBLISHER = Actor(login="instagram", role="integration")


# ============================================================================ the connection

def connection_view(conn: InstagramAccount | None) -> dict[str, Any]:
    if conn is None:
        return {"connected": False}
    return {"connected": True, "ig_user_id": conn.ig_user_id, "username": conn.username,
            "connected_by": conn.connected_by, "connected_at": iso(conn.connected_at),
            "checked_at": iso(conn.checked_at), "last_error": public_error(conn.last_error),
            "status": "error" if conn.last_error else "ok"}


def public_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """The last Graph error as the form shows it: the kind (token_expired, rate_limit, error), the code and
    Graph's message; nothing of the request (the token is never in it anyway)."""
    if not error:
        return None
    return {k: error.get(k) for k in ("kind", "code", "subcode", "message", "step", "at")}


def note_graph_error(conn: InstagramAccount | None, ctx: Ctx, exc: GraphError, step: str) -> None:
    """A Graph error on the account's token is the connection's status too (an expired token, 190, shows
    on the form until a test or a reconnect succeeds)."""
    if conn is not None:
        conn.last_error, conn.checked_at = exc.as_dict(ctx.now, step), ctx.now


async def test(ctx: Ctx, account: Account) -> dict[str, Any]:
    """"Test connection": read the account with the stored token (`GET /{ig-user-id}?fields=id,username`).
    The outcome is kept as the connection's status and answered as `{"ok", …the connection}`; a Graph
    refusal is an answer here (200, `ok: false` with the error), not a failure of the request; Graph not
    answering is a 502 and nothing is written."""
    require_connect(ctx.actor, account)
    conn = await ctx.session.get(InstagramAccount, account.deal_id)
    if conn is None:
        raise M.refusal(NotFound, "instagram", M.CONTENT_IG_NOT_CONNECTED)
    try:
        me = await Graph(GraphConfig.from_env(), decrypt_token(ctx.settings, conn.token_enc)).account(conn.ig_user_id)
    except GraphError as exc:
        note_graph_error(conn, ctx, exc, "test")
        ctx.audit("instagram.tested", account.deal_id, ig_user_id=conn.ig_user_id, ok=False, code=exc.code)
        await ctx.session.flush()
        return {"ok": False, **connection_view(conn)}
    except Unavailable as exc:
        raise M.refusal(BadGateway, "instagram", M.INSTAGRAM_UNAVAILABLE, reason=str(exc)) from None
    conn.last_error, conn.checked_at = None, ctx.now
    conn.username = str(me.get("username") or conn.username)
    ctx.audit("instagram.tested", account.deal_id, ig_user_id=conn.ig_user_id, ok=True)
    await ctx.session.flush()
    return {"ok": True, **connection_view(conn)}


def require_connect(actor: Actor, account: Account) -> None:
    """The lead, the deal's responsible manager (and integrations) connect or disconnect an account."""
    access.require_change(actor, account)


async def connect(ctx: Ctx, account: Account, ig_user_id: str | None, token: str | None) -> InstagramAccount:
    require_connect(ctx.actor, account)
    errors: list[dict[str, str]] = []
    ig_user_id, token = (ig_user_id or "").strip(), (token or "").strip()
    if not ig_user_id.isdigit():
        errors.append(M.item("ig_user_id", M.CONTENT_IG_USER_ID))
    if not token:
        errors.append(M.item("access_token", M.REQUIRED))
    if errors:
        raise DomainError("invalid Instagram connection", errors=errors)
    try:
        me = await Graph(GraphConfig.from_env(), token).account(ig_user_id)
    except GraphError as exc:
        raise DomainError(f"Instagram refused the token: {exc.message}", errors=[
            M.item("access_token", M.INSTAGRAM_REFUSED, reason=exc.message, graph_code=exc.code)]) from None
    except Unavailable as exc:
        raise M.refusal(BadGateway, "instagram", M.INSTAGRAM_UNAVAILABLE, reason=str(exc)) from None
    conn = await ctx.session.get(InstagramAccount, account.deal_id)
    if conn is None:
        conn = InstagramAccount(deal_id=account.deal_id)
        ctx.session.add(conn)
    conn.ig_user_id, conn.username = ig_user_id, str(me.get("username") or "")
    conn.token_enc = encrypt_token(ctx.settings, token)
    conn.connected_by, conn.connected_at = ctx.actor.login, ctx.now
    conn.checked_at, conn.last_error = ctx.now, None
    ctx.audit("instagram.connected", account.deal_id, ig_user_id=ig_user_id, username=conn.username)
    await ctx.session.flush()
    await insights.schedule_weekly(ctx, account.deal_id)  # CO-7: the week's figures, every Monday
    return conn


async def disconnect(ctx: Ctx, account: Account) -> None:
    require_connect(ctx.actor, account)
    conn = await ctx.session.get(InstagramAccount, account.deal_id)
    if conn is None:
        raise M.refusal(NotFound, None, M.CONTENT_IG_NOT_CONNECTED)
    await ctx.session.delete(conn)
    ctx.audit("instagram.disconnected", account.deal_id, ig_user_id=conn.ig_user_id)


async def reveal(ctx: Ctx, account: Account) -> dict[str, str]:
    """The token, to the lead and the deal's responsible manager only; every reveal is audited."""
    if not (ctx.actor.role == access.LEAD
            or (ctx.actor.role == access.CONTENT_MANAGER and account.manager == ctx.actor.login)):
        raise M.refusal(Forbidden, None, M.INSTAGRAM_TOKEN_REVEALED_TO)
    conn = await ctx.session.get(InstagramAccount, account.deal_id)
    if conn is None:
        raise M.refusal(NotFound, None, M.CONTENT_IG_NOT_CONNECTED)
    ctx.audit("instagram.token_revealed", account.deal_id, ig_user_id=conn.ig_user_id)
    return {"ig_user_id": conn.ig_user_id, "access_token": decrypt_token(ctx.settings, conn.token_enc)}


# ============================================================================ scheduling

async def schedule_step(ctx: Ctx, item: PlanItem, due_at: datetime) -> None:
    item.publish_step = (item.publish_step or 0) + 1
    await timers.schedule(ctx.session, kind=PUBLISH_TIMER, key=f"publish:{item.id}:{item.publish_step}",
                          due_at=due_at, payload={"item_id": item.id, "step": item.publish_step}, clock=ctx.clock)


async def schedule_item(ctx: Ctx, item: PlanItem) -> None:
    """An item given a `scheduled_at` is published then, if the deal has a connected account by then."""
    if item.scheduled_at is not None and item.status == "scheduled":
        item.publish_polls, item.publish_state = 0, None
        await schedule_step(ctx, item, item.scheduled_at)


async def retry(ctx: Ctx, item: PlanItem) -> PlanItem:
    """A failed item is scheduled again: now, or at its time when that is still ahead."""
    if item.status != "failed":
        raise M.refusal(Conflict, "status", M.CONTENT_RETRY_FAILED_ONLY, status=item.status)
    ctx.audit("item.publish_retried", item.id, error=item.publish_error)
    item.status, item.publish_polls, item.publish_state = "scheduled", 0, None
    item.updated_at = ctx.now
    due = max(ctx.now, item.scheduled_at) if item.scheduled_at is not None else ctx.now
    await schedule_step(ctx, item, due)
    return item


# ============================================================================ the publishing timer

def fail(ctx: Ctx, item: PlanItem, error: dict[str, Any]) -> None:
    item.status, item.publish_state, item.publish_error = "failed", None, error
    item.updated_at = ctx.now


def local_error(ctx: Ctx, code: str, message: str, step: str) -> dict[str, Any]:
    return {"kind": "blocked", "code": code, "message": message, "step": step, "at": ctx.now.isoformat()}


async def container_fields(ctx: Ctx, graph: Graph, ig: str, item: PlanItem) -> dict[str, Any]:
    refs = await media.resolve(ctx, item.deal_id, list(item.media or []))
    if not refs:
        raise M.error("media", M.CONTENT_NO_MEDIA)
    url, video = refs[0]
    source = {"video_url": url} if video else {"image_url": url}
    if item.kind == "story":
        return {"media_type": "STORIES", **source}
    if item.kind == "reel":
        if not video:
            raise M.error("media", M.CONTENT_REEL_VIDEO)
        return {"media_type": "REELS", "video_url": url, "caption": item.caption}
    if len(refs) == 1:
        if video:  # a feed video is published as a reel shared to the feed (VIDEO is deprecated)
            return {"media_type": "REELS", "video_url": url, "caption": item.caption, "share_to_feed": "true"}
        return {"image_url": url, "caption": item.caption}
    children = []
    for child_url, child_video in refs[:10]:
        child = {"is_carousel_item": "true"}
        child |= {"media_type": "VIDEO", "video_url": child_url} if child_video else {"image_url": child_url}
        children.append(await graph.create_container(ig, child))
    return {"media_type": "CAROUSEL", "children": ",".join(children), "caption": item.caption}


async def publish_step(ctx: Ctx, account: Account, plan: Plan, item: PlanItem, conn: InstagramAccount) -> None:
    cfg = GraphConfig.from_env()
    period = await ctx.session.get(Period, plan.period_id)
    plan_1 = (await ctx.session.execute(select(Plan).where(Plan.period_id == period.id, Plan.number == 1))
              ).scalar_one()
    if account.lost_at is not None:
        return fail(ctx, item, local_error(ctx, "deal_lost", "the deal is lost: its content work has stopped",
                                           "check"))
    if plan_1.first_approved_at is None or plan_1.first_approved_at > ctx.now:
        return fail(ctx, item, local_error(ctx, "CO-2", "plan 1 of the period is not approved (CO-2)", "check"))
    if plan.state != "approved":
        return fail(ctx, item, local_error(ctx, "not_approved", "the item's plan is not approved by the client",
                                           "check"))
    async with Graph(cfg, decrypt_token(ctx.settings, conn.token_enc)) as graph:
        await _run(ctx, account, plan, item, graph, cfg, conn.ig_user_id)
    if item.status == "published":
        conn.last_error, conn.checked_at = None, ctx.now
    elif item.status == "failed" and "http_status" in (item.publish_error or {}):  # Graph's own error
        conn.last_error, conn.checked_at = dict(item.publish_error), ctx.now


async def _run(ctx: Ctx, account: Account, plan: Plan, item: PlanItem, graph: Graph, cfg: GraphConfig,
               ig: str) -> None:
    step = "container"
    try:
        if item.ig_container_id is None:
            try:
                fields = await container_fields(ctx, graph, ig, item)
            except DomainError as exc:
                return fail(ctx, item, local_error(ctx, "media", exc.message, step))
            item.ig_container_id, item.publish_polls = await graph.create_container(ig, fields), 0
            # The container id is committed before anything is published: a crash after `media_publish`
            # then finds the container PUBLISHED on the next run instead of posting a second one.
            return await schedule_step(ctx, item, ctx.now)
        step = "status"
        status_code, status = await graph.container_status(item.ig_container_id)
        if status_code == "PUBLISHED":  # a publish whose answer was lost: it is out, do not post it again
            attempted = (item.publish_error or {}).get("at") if item.publish_state == "uncertain" else None
            at = datetime.fromisoformat(attempted) if attempted else ctx.now  # when the publish call was made
            return await published(ctx, account, plan, item, graph, None, at)
        if status_code == "IN_PROGRESS":
            item.publish_polls += 1
            if item.publish_polls > cfg.poll_max:
                return fail(ctx, item, local_error(ctx, "IN_PROGRESS", f"the container was not ready after "
                                                   f"{cfg.poll_max} checks", step))
            return await schedule_step(ctx, item, ctx.now + timedelta(seconds=cfg.poll_seconds))
        if status_code != "FINISHED":  # ERROR, EXPIRED: a new container on retry
            item.ig_container_id = None
            return fail(ctx, item, local_error(ctx, status_code or "unknown", status or status_code, step))
        step = "quota"
        usage, total = await graph.publishing_limit(ig)
        if total is not None and usage >= total:
            item.publish_state = "quota"
            item.publish_error = local_error(ctx, "quota", f"the account's publishing quota is used up "
                                             f"({usage} of {total} in 24 hours)", step) | {"kind": "quota"}
            return await schedule_step(ctx, item, ctx.now + timedelta(minutes=cfg.quota_retry_minutes))
        step = "publish"
        item.publish_state = "publishing"
        try:
            media_id = await graph.publish(ig, item.ig_container_id)
        except Unavailable as exc:  # uncertain: the next step re-reads the container before anything else
            item.publish_state = "uncertain"
            item.publish_error = local_error(ctx, "uncertain", str(exc), step) | {"kind": "uncertain"}
            return await schedule_step(ctx, item, ctx.now + timedelta(seconds=cfg.poll_seconds))
        await published(ctx, account, plan, item, graph, media_id)
    except GraphError as exc:
        if exc.code in (24, 100) and step == "status":
            item.ig_container_id = None  # the container is gone: a new one on retry
        fail(ctx, item, exc.as_dict(ctx.now, step))


async def published(ctx: Ctx, account: Account, plan: Plan, item: PlanItem, graph: Graph,
                    media_id: str | None, at: datetime | None = None) -> None:
    permalink = None
    if media_id is not None:
        try:
            permalink = (await graph.media(media_id)).get("permalink")
        except (GraphError, Unavailable):
            permalink = None  # the post is out; its link is a nicety
    item.ig_media_id, item.publish_state, item.publish_error = media_id, None, None
    await plans.mark_published(Ctx(ctx.session, ctx.clock, ctx.settings, PUBLISHER, ctx.handlers), account, plan,
                               item, at or ctx.now, permalink)


def timer_handlers(make_ctx: Any) -> dict[str, Any]:
    async def on_publish(session: AsyncSession, timer: Timer) -> None:
        item = await session.get(PlanItem, timer.payload["item_id"])
        if item is None:
            return
        account = await services.lock_account(session, item.deal_id)
        await session.refresh(item)
        if account is None or item.status != "scheduled" or item.publish_step != timer.payload.get("step"):
            return  # published by hand, failed, rescheduled since: this timer is stale
        conn = await session.get(InstagramAccount, item.deal_id)
        if conn is None:
            return  # no connected account: the manager publishes by hand
        plan = await session.get(Plan, item.plan_id)
        await publish_step(make_ctx(session), account, plan, item, conn)

    return {PUBLISH_TIMER: on_publish}
