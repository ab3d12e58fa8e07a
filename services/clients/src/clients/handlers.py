"""NATS event handlers of the clients service (idempotent consumers, DESIGN 4)."""

from __future__ import annotations

from shared.consumer import Subscription
from shared.events.content import PostPublished
from sqlalchemy.ext.asyncio import AsyncSession

from clients import inbox_leads, services


def subscriptions(runtime) -> list[Subscription]:
    async def on_post_published(event: PostPublished, session: AsyncSession) -> None:
        """CL-9: the first published post of a deal (of any kind: feed, story, reel, …) meets its
        questionnaire → first post deadline. Judged on the post's own time (issue 7 §1): only the
        timers due strictly before it fire first, so a post published before the due time meets the
        deadline even when its event is consumed after it — and a breach already made by the timer is
        retracted (`DeadlineMet.revises_breach_event_id`)."""
        if not event.deal_id:
            return
        deal = await services.get_deal(session, event.deal_id)  # the deal's row lock (issue 7 §2)
        if deal is None:
            return  # a deal of another installation, or not ours: nothing to do
        ctx = services.Ctx(session, runtime.clock, runtime.settings, services.SYSTEM, runtime.scheduler.handlers)
        published_at = min(event.published_at, ctx.now)
        await services.settle_deal(ctx, deal, before=published_at)
        await services.record_first_post(ctx, deal, published_at)
        await services.settle_deal(ctx, deal)

    return [Subscription("clients-content", {PostPublished.subject: on_post_published}),
            *inbox_leads.subscriptions(runtime)]
