"""NATS event handlers of the clients service (idempotent consumers, DESIGN 4)."""

from __future__ import annotations

from shared.consumer import Subscription
from shared.events.content import PostPublished
from sqlalchemy.ext.asyncio import AsyncSession

from clients import services


def subscriptions(runtime) -> list[Subscription]:
    async def on_post_published(event: PostPublished, session: AsyncSession) -> None:
        """CL-9: the first published feed post of a deal meets its questionnaire → first post deadline."""
        if not event.deal_id or event.kind != "feed":
            return
        deal = await services.get_deal(session, event.deal_id)
        if deal is None:
            return  # a deal of another installation, or not ours: nothing to do
        ctx = services.Ctx(session, runtime.clock, runtime.settings, services.SYSTEM, runtime.scheduler.handlers)
        await services.settle_deal(ctx, deal)
        await services.record_first_post(ctx, deal, min(event.published_at, ctx.now))
        await services.settle_deal(ctx, deal)

    return [Subscription("clients-content", {PostPublished.subject: on_post_published})]
