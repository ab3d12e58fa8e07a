"""Domain operations of the clients service: payments, deals, stages, tasks, deadlines, periods (CL-1…CL-15).

Each operation runs inside the caller's transaction (the request's, or the timer's) and writes its
events to the outbox in that same transaction. Arithmetic lives in `rules.py`; this module decides
what happens and records it.

Time (issue 7 §1, DESIGN 5, CAL-3). Rules are evaluated on the facts' own timestamps (a payment's
`paid_at`, a questionnaire's `received_at`); `ctx.now` only says what is already due. Every deadline
and period step is a durable timer keyed `deal:<id>:…`. Before a fact dated `t` is applied,
`settle_deal(ctx, deal, before=t)` fires only the deal's timers due strictly before `t`; the fact is
applied; then `settle_deal(ctx, deal)` fires the rest that is due by now — so a backdated fact shows
its consequences in the very response that recorded it, a fact at exactly the due time meets its
deadline, and a renewal payment dated after an overdue automatic loss first lets the loss happen.
A timer-made outcome that a later-recorded, earlier-dated fact contradicts is revised: a breached
deadline becomes met (`DeadlineMet.revises_breach_event_id`); a refund is within the money-back window
by its own date, whenever the window's end was announced.

Locks (issue 7 §2). Every writer of a deal holds its row lock (`get_deal`: SELECT … FOR UPDATE) before
reading it, and `settle_deal` waits for a timer of the deal that the scheduler is running. Timer
handlers lock the deal without waiting (`get_deal_for_timer`, `timers.Busy`): the scheduler holds the
timer rows it claimed, so it must never wait for a deal a request holds. Lock order: (payment
external id) → deal → its timer rows.

Modules, by aggregate: `core` (Ctx, settings, roster, timeline, settle), `tasks` (tasks, deadlines,
checklists), `deals` (payments, stages, completing tasks, the client card), `periods` (renewals,
renewal task, losses), `refunds`, `lists`, `attachments`, `timer_handlers`. This package re-exports
them all (`services.record_payment`, …).

Traces (DESIGN 6). A deal stores the trace context of the payment that created it; every later step
runs in `deal_span`, a span continuing that trace, so the events and timers written inside carry it
and one trace runs from payment to renewal. Spans carry `zabota.deal_id` / `zabota.client_id`.
"""

from __future__ import annotations

from clients.services.attachments import *  # noqa: F403
from clients.services.client_cards import *  # noqa: F403
from clients.services.core import *  # noqa: F403
from clients.services.deals import *  # noqa: F403
from clients.services.lists import *  # noqa: F403
from clients.services.periods import *  # noqa: F403
from clients.services.refunds import *  # noqa: F403
from clients.services.tasks import *  # noqa: F403
from clients.services.timer_handlers import *  # noqa: F403
