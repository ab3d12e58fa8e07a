"""NATS handlers: the accounts read model from clients events only (no HTTP between services).

`handlers(runtime)` returns subject → `async def on_x(event, session)`; the durable consumer
`content-clients` runs each once per event (processed_events, DESIGN 4). Every handler first settles the
deal's timers due before the event's own time, applies it, then settles the rest (DESIGN 5).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from shared.consumer import Subscription
from shared.events import Event
from shared.events.clients import (
    ClientProfileChanged,
    DealLost,
    DealManagerAssigned,
    DealPeriodOpened,
    DealRenewed,
    DealStageChanged,
)
from sqlalchemy.ext.asyncio import AsyncSession

from content import services
from content.models import Account

if TYPE_CHECKING:
    from shared.service import Runtime

CONSUMER = "content-clients"
Handler = Callable[[Any, AsyncSession], Awaitable[None]]


def handlers(rt: Runtime) -> dict[str, Handler]:
    def ctx_of(session: AsyncSession) -> services.Ctx:
        return services.Ctx(session, rt.clock, rt.settings, services.SYSTEM, rt.scheduler.handlers)

    def on_deal(apply: Callable[[services.Ctx, Account, Any], Awaitable[None]]) -> Handler:
        async def handle(evt: Event, session: AsyncSession) -> None:
            if not evt.deal_id:
                return
            ctx = ctx_of(session)
            account = await services.account_for(ctx, evt.deal_id, evt.client_id, evt.occurred_at)
            await services.settle(ctx, account.deal_id, before=evt.occurred_at)
            await apply(ctx, account, evt)
            await services.settle(ctx, account.deal_id)

        return handle

    async def period_opened(ctx: services.Ctx, account: Account, evt: DealPeriodOpened) -> None:
        """CO-1: the period's three plans (a renewal opens the next period's)."""
        await services.set_manager(ctx, account, evt.manager)
        account.service_kind = evt.service_kind
        services.reopen(account, evt.occurred_at)
        await services.open_period(ctx, account, evt.period_no, evt.period_start, evt.period_end, evt.occurred_at)

    async def stage_changed(ctx: services.Ctx, account: Account, evt: DealStageChanged) -> None:
        await services.set_manager(ctx, account, evt.manager)
        account.stage = evt.to_stage
        if evt.to_stage != "lost":
            services.reopen(account, evt.occurred_at)
        if evt.to_stage == "questionnaire_received":  # CO-2: plan 1 becomes due
            await services.materials_received(ctx, account, evt.occurred_at)

    async def manager_assigned(ctx: services.Ctx, account: Account, evt: DealManagerAssigned) -> None:
        await services.set_manager(ctx, account, evt.manager)

    async def lost(ctx: services.Ctx, account: Account, evt: DealLost) -> None:
        await services.lose(ctx, account, evt.occurred_at, evt.reason)

    async def renewed(ctx: services.Ctx, account: Account, evt: DealRenewed) -> None:
        await services.set_manager(ctx, account, evt.manager)
        services.reopen(account, evt.occurred_at)

    async def profile_changed(evt: ClientProfileChanged, session: AsyncSession) -> None:
        ctx = ctx_of(session)
        if evt.client_id:
            await services.profile_changed(ctx, evt.client_id, evt.full_name, evt.instagram, evt.occurred_at)
        for deal_id in {*evt.deal_ids, *([evt.deal_id] if evt.deal_id else [])}:
            await services.account_for(ctx, deal_id, evt.client_id, evt.occurred_at)

    return {
        DealPeriodOpened.subject: on_deal(period_opened),
        DealStageChanged.subject: on_deal(stage_changed),
        DealManagerAssigned.subject: on_deal(manager_assigned),
        DealLost.subject: on_deal(lost),
        DealRenewed.subject: on_deal(renewed),
        ClientProfileChanged.subject: profile_changed,
    }


def subscriptions(rt: Runtime) -> list[Subscription]:
    return [Subscription(CONSUMER, handlers(rt))]
