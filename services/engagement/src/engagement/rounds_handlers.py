"""NATS handlers: EN-4's client accounts read model from clients events only (no HTTP between services).
A durable consumer `engagement-clients` applies each event once (processed_events, DESIGN 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.consumer import Subscription
from shared.events.clients import (
    ClientProfileChanged,
    DealLossUndone,
    DealLost,
    DealManagerAssigned,
    DealPeriodOpened,
    DealRenewed,
    DealStageChanged,
)
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import rounds
from engagement.quality_models import ClientAccount

if TYPE_CHECKING:
    from shared.service import Runtime

CONSUMER = "engagement-clients"


async def _account(session: AsyncSession, deal_id: str, at: Any) -> ClientAccount:
    row = await session.get(ClientAccount, deal_id)
    if row is None:
        row = ClientAccount(deal_id=deal_id, manager="", client_name="", current=False, updated_at=at)
        session.add(row)
    row.updated_at = at
    return row


def handlers(rt: Runtime) -> dict[str, Any]:
    clock = rt.clock

    def on_deal(apply: Any) -> Any:
        async def handle(evt: Any, session: AsyncSession) -> None:
            if evt.deal_id:
                await apply(await _account(session, evt.deal_id, evt.occurred_at), evt, session)
        return handle

    async def current(row: ClientAccount, evt: Any, session: AsyncSession) -> None:
        row.current = True
        row.manager = getattr(evt, "manager", "") or row.manager

    async def manager(row: ClientAccount, evt: Any, session: AsyncSession) -> None:
        row.manager = evt.manager or row.manager

    async def stage(row: ClientAccount, evt: DealStageChanged, session: AsyncSession) -> None:
        row.manager = evt.manager or row.manager
        if evt.to_stage == "lost":
            await lost(row, evt, session)

    async def lost(row: ClientAccount, evt: Any, session: AsyncSession) -> None:
        row.current = False
        await rounds.waive_open_rounds(session, row.deal_id, "the client was lost", clock)

    async def profile(evt: ClientProfileChanged, session: AsyncSession) -> None:
        for deal_id in {*evt.deal_ids, *([evt.deal_id] if evt.deal_id else [])}:
            (await _account(session, deal_id, evt.occurred_at)).client_name = evt.full_name

    return {
        DealPeriodOpened.subject: on_deal(current),
        DealRenewed.subject: on_deal(current),
        DealLossUndone.subject: on_deal(current),
        DealManagerAssigned.subject: on_deal(manager),
        DealStageChanged.subject: on_deal(stage),
        DealLost.subject: on_deal(lost),
        ClientProfileChanged.subject: profile,
    }


def subscriptions(rt: Runtime) -> list[Subscription]:
    """One durable consumer of the CLIENTS stream: EN-4's read model and the leads' stages (issue 15)."""
    from engagement import sales

    return [Subscription(CONSUMER, {**handlers(rt), **sales.handlers(rt)})]
