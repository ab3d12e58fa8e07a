"""Timer kind → handler for the clients service's durable timers.

Each handler first takes its deal's row lock without waiting (`get_deal_for_timer`: another writer
holding the deal makes the scheduler leave the timer for it, issue 7 §2), then re-reads what it
decides on and does nothing if the moment has passed it by (idempotent: a replay changes nothing)."""

from __future__ import annotations

from typing import Any

from shared.infra import Timer
from sqlalchemy.ext.asyncio import AsyncSession

from clients.models import Deadline, Task
from clients.services.core import deal_span, get_deal_for_timer
from clients.services.periods import auto_loss, create_renewal_task
from clients.services.refunds import money_back_window_ended
from clients.services.tasks import breach


def timer_handlers(make_ctx: Any) -> dict[str, Any]:
    """Timer kind → handler. `make_ctx(session)` builds a system Ctx."""

    async def on_deadline(session: AsyncSession, timer: Timer) -> None:
        deal = await get_deal_for_timer(session, timer.payload["deal_id"])
        deadline = await session.get(Deadline, timer.payload["deadline_id"], populate_existing=True)
        if deal is None or deadline is None or deadline.state != "open":
            return
        task = await session.get(Task, deadline.task_id) if deadline.task_id else None
        with deal_span(deal, "deadline_due"):
            breach(make_ctx(session), deal, deadline, task.kind if task else None)

    async def on_renewal_task(session: AsyncSession, timer: Timer) -> None:
        deal = await get_deal_for_timer(session, timer.payload["deal_id"])
        if deal is None:
            return
        with deal_span(deal, "renewal_task"):
            await create_renewal_task(make_ctx(session), deal, timer.payload["period_no"])

    async def on_auto_loss(session: AsyncSession, timer: Timer) -> None:
        deal = await get_deal_for_timer(session, timer.payload["deal_id"])
        if deal is None:
            return
        await auto_loss(make_ctx(session), deal, timer.payload["period_no"])

    async def on_money_back(session: AsyncSession, timer: Timer) -> None:
        deal = await get_deal_for_timer(session, timer.payload["deal_id"])
        if deal is None:
            return
        await money_back_window_ended(make_ctx(session), deal)

    return {"clients.deadline": on_deadline, "clients.renewal_task": on_renewal_task,
            "clients.auto_loss": on_auto_loss, "clients.money_back": on_money_back}
