"""NATS handlers: each money-carrying clients event becomes a ledger line (PAY-2…PAY-6) or undoes one.

`handlers(runtime)` returns subject → `async def on_x(event, session)`; they close over the runtime for
the agency calendar (month boundaries) and the clock. The durable consumer `payroll-clients` runs them
once per event (processed_events); the ledger's unique key (source event, rule, manager) makes even a
replay without processed_events harmless, which `rebuild` relies on.

Which time decides the month (the fact's own time, agency time zone):
PAY-2 renewal: `occurred_at` of DealRenewed (= the renewal payment's time); PAY-3 loss: `occurred_at` of
DealLost; PAY-4 refund: `refunded_at`; PAY-5: `occurred_at` of MoneyBackWindowEnded (= the end of the 10
days); PAY-6: the deadline's `due_at`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from shared.consumer import Subscription
from shared.events import Event, decode
from shared.events.clients import (
    DeadlineBreached,
    DeadlineMet,
    DeadlineWaived,
    DealLossUndone,
    DealLost,
    DealManagerAssigned,
    DealPaid,
    DealRenewed,
    MoneyBackWindowEnded,
    RefundRecorded,
)
from shared.telemetry import continue_trace, current_trace_id
from sqlalchemy.ext.asyncio import AsyncSession

from payroll import services as svc
from payroll.services import Fact

if TYPE_CHECKING:
    from shared.service import Runtime

log = logging.getLogger(__name__)
Handler = Callable[[Any, AsyncSession], Awaitable[None]]
CONSUMER = "payroll-clients"


def producer_trace_id() -> str | None:
    """The trace of the event's producer: the consumer span continues it when the message carried one."""
    span = trace.get_current_span()
    parent = getattr(span, "parent", None)
    if parent is None or not parent.is_remote:
        return None
    return current_trace_id()


def handlers(rt: Runtime) -> dict[str, Handler]:
    tz = rt.settings.calendar.tz
    clock = rt.clock

    async def fact(session: AsyncSession, **kw: Any) -> None:
        await svc.record_fact(session, Fact(trace_id=producer_trace_id(), **kw), tz, clock)

    async def on_deal_paid(evt: DealPaid, session: AsyncSession) -> None:
        await svc.enroll(session, evt.manager, evt.paid_at, tz, clock)

    async def on_manager_assigned(evt: DealManagerAssigned, session: AsyncSession) -> None:
        await svc.enroll(session, evt.manager, evt.occurred_at, tz, clock)

    async def on_deal_renewed(evt: DealRenewed, session: AsyncSession) -> None:
        await svc.enroll(session, evt.manager, evt.occurred_at, tz, clock)
        if evt.after_full_month:  # PAY-2
            await fact(session, manager=evt.manager, rule="PAY-2", occurred_at=evt.occurred_at,
                       event_id=evt.event_id, deal_id=evt.deal_id,
                       note=f"renewal after a month of service (payment {evt.payment_id})")

    async def on_deal_lost(evt: DealLost, session: AsyncSession) -> None:
        await svc.enroll(session, evt.manager, evt.occurred_at, tz, clock)
        if evt.after_full_month:  # PAY-3, either reason
            await fact(session, manager=evt.manager, rule="PAY-3", occurred_at=evt.occurred_at,
                       event_id=evt.event_id, deal_id=evt.deal_id,
                       note=f"client lost after a month of service ({evt.reason})")

    async def on_loss_undone(evt: DealLossUndone, session: AsyncSession) -> None:
        # CL-13: a payment dated before the automatic loss undoes it, and its PAY-3 line with it.
        await svc.void_fact(session, target=f"event:{evt.lost_event_id}", rule="PAY-3", void_event_id=evt.event_id,
                            occurred_at=evt.occurred_at, trace_id=producer_trace_id(), clock=clock,
                            note=f"loss undone by payment {evt.payment_id}")

    async def on_refund(evt: RefundRecorded, session: AsyncSession) -> None:
        if evt.within_window:  # PAY-4
            await fact(session, manager=evt.manager, rule="PAY-4", occurred_at=evt.refunded_at,
                       event_id=evt.event_id, deal_id=evt.deal_id,
                       note=f"refund {evt.refund_id} within 10 days of the first payment")

    async def on_window_ended(evt: MoneyBackWindowEnded, session: AsyncSession) -> None:
        if not evt.refunded:  # PAY-5
            await fact(session, manager=evt.manager, rule="PAY-5", occurred_at=evt.occurred_at,
                       event_id=evt.event_id, deal_id=evt.deal_id,
                       note="not refunded within 10 days of the first payment")

    async def on_deadline_met(evt: DeadlineMet, session: AsyncSession) -> None:
        await svc.record_deadline_outcome(session, deadline_id=evt.deadline_id, owner=evt.owner, rule=evt.rule,
                                          due_at=evt.due_at, outcome="met", event_id=evt.event_id, tz=tz)

    async def on_deadline_breached(evt: DeadlineBreached, session: AsyncSession) -> None:
        await svc.record_deadline_outcome(session, deadline_id=evt.deadline_id, owner=evt.owner, rule=evt.rule,
                                          due_at=evt.due_at, outcome="breached", event_id=evt.event_id, tz=tz)
        await fact(session, manager=evt.owner, rule="PAY-6", occurred_at=evt.due_at, event_id=evt.event_id,
                   deal_id=evt.deal_id, deadline_id=evt.deadline_id, deadline_rule=evt.rule,
                   note=f"deadline {evt.rule} breached" + (f" ({evt.task_kind})" if evt.task_kind else ""))

    async def on_deadline_waived(evt: DeadlineWaived, session: AsyncSession) -> None:
        await svc.record_deadline_outcome(session, deadline_id=evt.deadline_id, owner=evt.owner, rule=evt.rule,
                                          due_at=evt.occurred_at, outcome="waived", event_id=evt.event_id, tz=tz)
        await svc.void_fact(session, target=f"deadline:{evt.deadline_id}", rule="PAY-6",
                            void_event_id=evt.event_id, occurred_at=evt.occurred_at, trace_id=producer_trace_id(),
                            clock=clock, note=f"deadline {evt.rule} waived by {evt.waived_by}: {evt.reason}")

    return {
        DealPaid.subject: on_deal_paid,
        DealManagerAssigned.subject: on_manager_assigned,
        DealRenewed.subject: on_deal_renewed,
        DealLost.subject: on_deal_lost,
        DealLossUndone.subject: on_loss_undone,
        RefundRecorded.subject: on_refund,
        MoneyBackWindowEnded.subject: on_window_ended,
        DeadlineMet.subject: on_deadline_met,
        DeadlineBreached.subject: on_deadline_breached,
        DeadlineWaived.subject: on_deadline_waived,
    }


def subscriptions(rt: Runtime) -> list[Subscription]:
    return [Subscription(CONSUMER, handlers(rt))]


async def rebuild(rt: Runtime, batch: int = 500) -> dict[str, int]:
    """Rebuild the ledger of the open months from the CLIENTS stream, from its first message.

    An ephemeral pull consumer (DeliverPolicy.ALL, no acks) reads up to the stream's last sequence at the
    start; the lines of open months, the voids and the deadline outcomes are dropped and rebuilt in one
    transaction, under the exclusive ledger lock (live facts wait, then find their lines present).
    Closed months are not touched: a replayed fact of a closed month finds its line (or its adjustment).
    """
    assert rt.bus is not None and rt.bus.js is not None, "NATS is not connected"
    js = rt.bus.js
    table = handlers(rt)
    info = await js.stream_info("CLIENTS")
    last = info.state.last_seq
    applied = 0
    async with rt.db.transaction() as session:
        removed = await svc.clear_open_months(session)
        if info.state.messages:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
                                    filter_subjects=sorted(table), inactive_threshold=60.0)
            psub = await js.pull_subscribe("", stream="CLIENTS", config=config)
            try:
                done = False
                while not done:
                    try:
                        msgs = await psub.fetch(batch, timeout=2.0)
                    except (TimeoutError, NatsTimeoutError):
                        break  # nothing more in the filter
                    for msg in msgs:
                        meta = msg.metadata
                        if meta.sequence.stream > last:
                            done = True
                            break
                        evt: Event = decode(msg.subject, msg.data)
                        with continue_trace(msg.headers, f"payroll rebuild {msg.subject}"):
                            await table[msg.subject](evt, session)
                        applied += 1
                        if meta.sequence.stream >= last or meta.num_pending == 0:
                            done = True
                            break
            finally:
                with suppress(Exception):
                    name = (await psub.consumer_info()).name
                    await psub.unsubscribe()
                    await js.delete_consumer("CLIENTS", name)
    return {"removed": removed, "applied": applied, "stream_last_seq": last}
