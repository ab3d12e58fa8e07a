"""NATS handlers: each money-carrying clients event becomes a ledger line (PAY-2…PAY-6) or undoes one.

`handlers(runtime)` returns subject → `async def on_x(event, session)`; they close over the runtime for
the agency calendar (month boundaries) and the clock. The durable consumer `payroll-clients` runs them
once per event (processed_events); the ledger's unique key (source event, rule, manager) makes even a
replay without processed_events harmless, which `rebuild` relies on.

Which time decides the month (the fact's own time, agency time zone):
PAY-2 renewal: `occurred_at` of DealRenewed (= the renewal payment's time); PAY-3 loss: `occurred_at` of
DealLost; PAY-4 refund: `refunded_at`; PAY-5: `occurred_at` of MoneyBackWindowEnded (= the end of the 10
days); PAY-6: the deadline's `due_at`.

Late facts retract what they contradict (issue 7 §1): a DeadlineMet for a deadline fined as breached voids
the PAY-6 line (or reverses it in the next open month when its month is closed); a within-window refund
after MoneyBackWindowEnded(refunded=False) does the same to the deal's PAY-5 line. Whatever the order the
events come in, the ledger ends the same (rebuild relies on it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from shared.clock import as_utc
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

from payroll import ledger, roster
from payroll import services as svc
from payroll.ledger import Fact

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
        await ledger.record_fact(session, Fact(trace_id=producer_trace_id(), **kw), tz, clock)

    async def void(session: AsyncSession, **kw: Any) -> int:
        return await ledger.void_fact(session, trace_id=producer_trace_id(), clock=clock, **kw)

    async def on_deal_paid(evt: DealPaid, session: AsyncSession) -> None:
        await roster.enroll(session, evt.manager, evt.paid_at, tz, clock)
        await ledger.track_deal(session, evt.deal_id, evt.manager, evt.paid_at)

    async def on_manager_assigned(evt: DealManagerAssigned, session: AsyncSession) -> None:
        await roster.enroll(session, evt.manager, evt.occurred_at, tz, clock)
        await ledger.track_deal(session, evt.deal_id, evt.manager, evt.occurred_at)

    async def on_deal_renewed(evt: DealRenewed, session: AsyncSession) -> None:
        await roster.enroll(session, evt.manager, evt.occurred_at, tz, clock)
        await ledger.track_deal(session, evt.deal_id, evt.manager, evt.occurred_at)
        await ledger.deal_reopened(session, evt.deal_id)
        period_start = as_utc(evt.period_start)
        await ledger.record_period(session, evt.deal_id, period_start, evt.event_id)
        if evt.after_full_month:  # PAY-2, once per deal and period
            await fact(session, manager=evt.manager, rule="PAY-2", occurred_at=evt.occurred_at,
                       event_id=evt.event_id, deal_id=evt.deal_id,
                       key=f"PAY-2:{evt.deal_id}:{period_start.isoformat()}" if evt.deal_id else None,
                       note=f"renewal after a month of service (payment {evt.payment_id})")

    async def on_deal_lost(evt: DealLost, session: AsyncSession) -> None:
        await roster.enroll(session, evt.manager, evt.occurred_at, tz, clock)
        await ledger.deal_lost(session, evt.deal_id, evt.manager, evt.occurred_at)
        # PAY-3, either reason, once per deal and period. A full refund inside the 10 days ("refunded") is
        # never after a month of service: that client counts under PAY-4 only.
        if evt.after_full_month and evt.reason != "refunded":
            key = None
            if evt.deal_id:
                key = f"PAY-3:{evt.deal_id}:{await ledger.period_key(session, evt.deal_id, evt.occurred_at)}"
            await fact(session, manager=evt.manager, rule="PAY-3", occurred_at=evt.occurred_at,
                       event_id=evt.event_id, deal_id=evt.deal_id, key=key,
                       note=f"client lost after a month of service ({evt.reason})")

    async def on_loss_undone(evt: DealLossUndone, session: AsyncSession) -> None:
        # CL-13: a payment dated before the automatic loss undoes it, and its PAY-3 line with it.
        await ledger.deal_reopened(session, evt.deal_id)
        await void(session, target=f"event:{evt.lost_event_id}", rule="PAY-3", void_event_id=evt.event_id,
                   occurred_at=evt.occurred_at, note=f"loss undone by payment {evt.payment_id}")

    async def on_refund(evt: RefundRecorded, session: AsyncSession) -> None:
        await ledger.track_deal(session, evt.deal_id, evt.manager, evt.refunded_at)
        if not evt.within_window:
            return
        # PAY-4: one refunded client, however many refunds inside the window.
        await fact(session, manager=evt.manager, rule="PAY-4", occurred_at=evt.refunded_at,
                   event_id=evt.event_id, deal_id=evt.deal_id, key=f"PAY-4:{evt.deal_id}" if evt.deal_id else None,
                   note=f"refund {evt.refund_id} within 10 days of the first payment")
        if evt.deal_id:  # a refund dated inside the window, recorded after it ended: the client was refunded
            await void(session, target=f"PAY-5:{evt.deal_id}", rule="PAY-5", void_event_id=evt.event_id,
                       occurred_at=evt.refunded_at,
                       note=f"refund {evt.refund_id} dated inside the 10 days, recorded after they ended")

    async def on_window_ended(evt: MoneyBackWindowEnded, session: AsyncSession) -> None:
        if not evt.refunded:  # PAY-5, once per deal
            await fact(session, manager=evt.manager, rule="PAY-5", occurred_at=evt.occurred_at,
                       event_id=evt.event_id, deal_id=evt.deal_id, key=f"PAY-5:{evt.deal_id}" if evt.deal_id else None,
                       note="not refunded within 10 days of the first payment")

    async def on_deadline_met(evt: DeadlineMet, session: AsyncSession) -> None:
        await ledger.record_deadline_outcome(session, deadline_id=evt.deadline_id, owner=evt.owner, rule=evt.rule,
                                             due_at=evt.due_at, outcome="met", event_id=evt.event_id, tz=tz)
        # A met recorded after the timer's breach (a fact dated before the due time, recorded late) is
        # authoritative, with or without `revises_breach_event_id`: the breach's fine is retracted.
        if await ledger.has_lines(session, deadline_id=evt.deadline_id, rule="PAY-6"):
            await void(session, target=f"deadline:{evt.deadline_id}", rule="PAY-6", void_event_id=evt.event_id,
                       occurred_at=evt.occurred_at, remember=False,
                       note=f"deadline {evt.rule} met at {as_utc(evt.met_at).isoformat()}: the breach is retracted")

    async def on_deadline_breached(evt: DeadlineBreached, session: AsyncSession) -> None:
        outcome = await ledger.record_deadline_outcome(
            session, deadline_id=evt.deadline_id, owner=evt.owner, rule=evt.rule, due_at=evt.due_at,
            outcome="breached", event_id=evt.event_id, tz=tz)
        if outcome != "breached":  # already met or waived (events out of order): no fine
            return
        await fact(session, manager=evt.owner, rule="PAY-6", occurred_at=evt.due_at, event_id=evt.event_id,
                   deal_id=evt.deal_id, deadline_id=evt.deadline_id, deadline_rule=evt.rule,
                   key=f"PAY-6:{evt.deadline_id}",  # one fine per deadline
                   note=f"deadline {evt.rule} breached" + (f" ({evt.task_kind})" if evt.task_kind else ""))

    async def on_deadline_waived(evt: DeadlineWaived, session: AsyncSession) -> None:
        await ledger.record_deadline_outcome(session, deadline_id=evt.deadline_id, owner=evt.owner, rule=evt.rule,
                                             due_at=evt.occurred_at, outcome="waived", event_id=evt.event_id, tz=tz)
        await void(session, target=f"deadline:{evt.deadline_id}", rule="PAY-6", void_event_id=evt.event_id,
                   occurred_at=evt.occurred_at, note=f"deadline {evt.rule} waived by {evt.waived_by}: {evt.reason}")

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
    from payroll import care_handlers, content_handlers  # content (issue 10 §2), care deadlines (issue 12)

    return [Subscription(CONSUMER, handlers(rt)), content_handlers.subscription(rt), care_handlers.subscription(rt)]


async def rebuild(rt: Runtime, batch: int = 500) -> dict[str, int]:
    """Rebuild the ledger of the open months from the CLIENTS and CONTENT streams, from their first message.

    An ephemeral pull consumer per stream (DeliverPolicy.ALL, no acks) reads up to the stream's last
    sequence at the start; the lines of open months, the voids and the deadline outcomes are dropped and
    rebuilt in one transaction, under the exclusive ledger lock (live facts wait, then find their lines
    present). Closed months are not touched: a replayed fact of a closed month finds its line (or its
    adjustment).
    """
    from payroll import care_handlers, content_handlers

    assert rt.bus is not None and rt.bus.js is not None, "NATS is not connected"
    js = rt.bus.js
    applied, last = 0, 0
    async with rt.db.transaction() as session:
        removed = await svc.clear_open_months(session)
        for stream, table in (("CLIENTS", handlers(rt)), ("CONTENT", content_handlers.handlers(rt)),
                              ("ENGAGEMENT", care_handlers.handlers(rt))):
            n, stream_last = await _replay(js, stream, table, session, batch)
            applied += n
            if stream == "CLIENTS":
                last = stream_last
    return {"removed": removed, "applied": applied, "stream_last_seq": last}


async def _replay(js: Any, stream: str, table: dict[str, Handler], session: AsyncSession,
                  batch: int) -> tuple[int, int]:
    info = await js.stream_info(stream)
    last = info.state.last_seq
    applied = 0
    if not info.state.messages:
        return 0, last
    config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
                            filter_subjects=sorted(table), inactive_threshold=60.0)
    psub = await js.pull_subscribe("", stream=stream, config=config)
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
            await js.delete_consumer(stream, name)
    return applied, last
