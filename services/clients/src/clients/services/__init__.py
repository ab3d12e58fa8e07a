"""Domain operations of the clients service: payments, deals, stages, tasks, deadlines, periods (CL-1…CL-15).

Each operation runs inside the caller's transaction (the request's, or the timer's) and writes its
events to the outbox in that same transaction. Arithmetic lives in `rules.py`; this module decides
what happens and records it.

Time. Rules are evaluated on the facts' own timestamps (a payment's `paid_at`, a questionnaire's
`received_at`); `ctx.now` only says what is already due. Every deadline and period step is a durable
timer keyed `deal:<id>:…`; `settle_deal` fires the deal's timers that are already due inside the same
transaction (the scheduler would fire them a moment later anyway), so a backdated fact shows its
consequences in the very response that recorded it — a payment dated 45 days ago answers with a
breached first-call deadline — and an operation on a deal always sees the deal as of now (a renewal
payment first lets an overdue automatic loss happen, then decides whether it undoes it).

Traces (DESIGN 6). A deal stores the trace context of the payment that created it; every later step
runs in `deal_span`, a span continuing that trace, so the events and timers written inside carry it
and one trace runs from payment to renewal. Spans carry `zabota.deal_id` / `zabota.client_id`.
"""

from __future__ import annotations

from clients.services.attachments import *  # noqa: F403
from clients.services.core import *  # noqa: F403
from clients.services.deals import *  # noqa: F403
from clients.services.lists import *  # noqa: F403
from clients.services.periods import *  # noqa: F403
from clients.services.refunds import *  # noqa: F403
from clients.services.tasks import *  # noqa: F403
from clients.services.timer_handlers import *  # noqa: F403
