"""NATS handlers of the content service's events (issue 10 §2): its deadlines and cadence misses are fined
like the clients' deadlines (PAY-6), on a durable consumer of their own on the CONTENT stream
(`payroll-content`; one stream per subscription).

- `content.deadline.breached.v1` (CO-3) → a PAY-6 line priced by the rule set's `deadline_fines[<rule>]`
  (default 0 until the agency sets an amount), once per deadline, in the month of its due time.
- `content.deadline.met.v1` — with `revises_breach`, or any met arriving after a breach — and
  `content.deadline.waived.v1` void that fine in an open month, or reverse it in the next open month when
  its month is closed (PAY-8), exactly like the clients' ones (`ledger.void_fact`).
- Every deadline outcome counts in PAY-7's deadline compliance (`ledger.record_deadline_outcome`:
  waived > met > breached, whatever the order the events arrive in).
- `content.cadence.missed.v1` (CO-5) → a PAY-6 line with rule `CO-5` (`deadline_fines["CO-5"]`, default 0),
  once per deal, day and what was missed. A cadence miss is not a deadline: it does not count in PAY-7.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.clock import as_utc
from shared.consumer import Subscription
from shared.events.content import (
    CadenceMissed,
    ContentDeadlineBreached,
    ContentDeadlineMet,
    ContentDeadlineWaived,
)
from sqlalchemy.ext.asyncio import AsyncSession

from payroll import ledger
from payroll.ledger import Fact

if TYPE_CHECKING:
    from shared.service import Runtime

CONSUMER = "payroll-content"
CADENCE_RULE = "CO-5"


def deadline_handlers(rt: Runtime, met: type, breached: type, waived: type, source: str) -> dict[str, Any]:
    """PAY-6 / PAY-7 for a service's deadline events (content CO-3, engagement EN-3/EN-4): the same three
    outcomes, priced and voided exactly like the clients' deadlines. `source` names the deadline in the line."""
    from payroll.handlers import producer_trace_id

    tz = rt.settings.calendar.tz
    clock = rt.clock

    async def void(session: AsyncSession, **kw: Any) -> int:
        return await ledger.void_fact(session, trace_id=producer_trace_id(), clock=clock, **kw)

    async def on_met(evt: Any, session: AsyncSession) -> None:
        await ledger.record_deadline_outcome(session, deadline_id=evt.deadline_id, owner=evt.owner, rule=evt.rule,
                                             due_at=evt.due_at, outcome="met", event_id=evt.event_id, tz=tz)
        # A met after the timer's breach is authoritative, with or without `revises_breach`.
        if evt.revises_breach or await ledger.has_lines(session, deadline_id=evt.deadline_id, rule="PAY-6"):
            await void(session, target=f"deadline:{evt.deadline_id}", rule="PAY-6", void_event_id=evt.event_id,
                       occurred_at=evt.occurred_at, remember=False,
                       note=f"deadline {evt.rule} met at {as_utc(evt.met_at).isoformat()}: the breach is retracted")

    async def on_breached(evt: Any, session: AsyncSession) -> None:
        outcome = await ledger.record_deadline_outcome(
            session, deadline_id=evt.deadline_id, owner=evt.owner, rule=evt.rule, due_at=evt.due_at,
            outcome="breached", event_id=evt.event_id, tz=tz)
        if outcome != "breached" or not evt.owner:  # already met or waived (out of order), or nobody to fine
            return
        await ledger.record_fact(session, Fact(
            manager=evt.owner, rule="PAY-6", occurred_at=evt.due_at, event_id=evt.event_id, deal_id=evt.deal_id,
            deadline_id=evt.deadline_id, deadline_rule=evt.rule, key=f"PAY-6:{evt.deadline_id}",
            trace_id=producer_trace_id(), note=f"deadline {evt.rule} breached ({source})"), tz, clock)

    async def on_waived(evt: Any, session: AsyncSession) -> None:
        await ledger.record_deadline_outcome(session, deadline_id=evt.deadline_id, owner=evt.owner, rule=evt.rule,
                                             due_at=evt.due_at or evt.occurred_at, outcome="waived",
                                             event_id=evt.event_id, tz=tz)
        await void(session, target=f"deadline:{evt.deadline_id}", rule="PAY-6", void_event_id=evt.event_id,
                   occurred_at=evt.occurred_at, note=f"deadline {evt.rule} waived by {evt.waived_by}: {evt.reason}")

    return {met.subject: on_met, breached.subject: on_breached, waived.subject: on_waived}


def handlers(rt: Runtime) -> dict[str, Any]:
    tz = rt.settings.calendar.tz
    clock = rt.clock
    from payroll.handlers import producer_trace_id

    async def on_cadence_missed(evt: CadenceMissed, session: AsyncSession) -> None:
        if not evt.manager:
            return  # nobody to fine (a deal without a manager)
        await ledger.record_fact(session, Fact(
            manager=evt.manager, rule="PAY-6", occurred_at=evt.occurred_at, event_id=evt.event_id,
            deal_id=evt.deal_id, deadline_rule=CADENCE_RULE, trace_id=producer_trace_id(),
            key=f"PAY-6:{CADENCE_RULE}:{evt.deal_id}:{evt.day.isoformat()}:{evt.what}",
            note=f"cadence missed on {evt.day.isoformat()}: {evt.what} ({CADENCE_RULE})"), tz, clock)

    return {**deadline_handlers(rt, ContentDeadlineMet, ContentDeadlineBreached, ContentDeadlineWaived, "content plan"),
            CadenceMissed.subject: on_cadence_missed}


def subscription(rt: Runtime) -> Subscription:
    return Subscription(CONSUMER, handlers(rt))
