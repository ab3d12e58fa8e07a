"""Events published by the `clients` service (deals, payments, deadlines) — DOMAIN.md CL-*.

Money is a Decimal (encoded as a string) with its currency (PAY-9). Every event carries `deal_id` and
`client_id` in the envelope where they apply; `manager` is the deal's responsible manager at the
moment of the fact (PAY-2, PAY-3 go to that manager).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from shared.events import Event, event

ServiceKind = Literal["account_management", "complex_promotion"]
Stage = Literal["new", "contacted", "questionnaire_received", "project_launched", "notification_sent", "lost"]


@event("clients.deal.paid.v1")
class DealPaid(Event, frozen=True, kw_only=True):
    """A payment was recorded on a deal: the first one (CL-3) or a renewal (CL-14)."""

    payment_id: str
    external_id: str
    amount: Decimal
    currency: str
    paid_at: datetime
    service_kind: ServiceKind
    manager: str
    renewal: bool = False
    first_payment_at: datetime | None = None


@event("clients.deal.stage_changed.v1")
class DealStageChanged(Event, frozen=True, kw_only=True):
    from_stage: Stage | None
    to_stage: Stage
    manager: str
    by: str | None = None


@event("clients.deal.manager_assigned.v1")
class DealManagerAssigned(Event, frozen=True, kw_only=True):
    """CL-3: a responsible content manager was assigned (or reassigned)."""

    manager: str
    previous_manager: str | None = None


@event("clients.deal.renewed.v1")
class DealRenewed(Event, frozen=True, kw_only=True):
    """CL-14: a renewal payment opened the next service period. PAY-2 after a month of service."""

    manager: str
    payment_id: str
    period_start: datetime
    period_end: datetime
    after_full_month: bool = True


@event("clients.deal.lost.v1")
class DealLost(Event, frozen=True, kw_only=True):
    """CL-12 (declined), CL-13 (unpaid 7 days after the period end) or CL-15 (refunded in full inside
    the money-back window; never `after_full_month`). PAY-3 after a month of service."""

    manager: str
    reason: Literal["declined", "unpaid", "refunded"]
    after_full_month: bool = True


@event("clients.deal.loss_undone.v1")
class DealLossUndone(Event, frozen=True, kw_only=True):
    """CL-13: a payment dated before an automatic loss undoes it and everything that followed from it."""

    manager: str
    lost_event_id: str
    payment_id: str


@event("clients.refund.recorded.v1")
class RefundRecorded(Event, frozen=True, kw_only=True):
    """CL-15: a refund against a deal's payment; `within_window` = inside the first 10 days (PAY-4)."""

    manager: str
    refund_id: str
    payment_id: str
    amount: Decimal
    currency: str
    refunded_at: datetime
    first_payment_at: datetime
    within_window: bool


@event("clients.deal.money_back_window_ended.v1")
class MoneyBackWindowEnded(Event, frozen=True, kw_only=True):
    """CL-15 / PAY-5: the 10 days after the first payment ended; `refunded` tells whether money went back."""

    manager: str
    first_payment_at: datetime
    refunded: bool


@event("clients.deadline.met.v1")
class DeadlineMet(Event, frozen=True, kw_only=True):
    """CAL-3: a deadline was met in time. `revises_breach_event_id` set: the deadline had been
    breached by its timer and a fact recorded later, dated in time, retracts that breach — the event
    id of the `DeadlineBreached` it retracts (payroll voids its PAY-6 line)."""

    deadline_id: str
    rule: str
    owner: str
    due_at: datetime
    met_at: datetime
    revises_breach_event_id: str | None = None


@event("clients.deadline.breached.v1")
class DeadlineBreached(Event, frozen=True, kw_only=True):
    """CAL-3: a deadline passed unmet. Payroll fines it per rule (PAY-6)."""

    deadline_id: str
    rule: str
    owner: str
    due_at: datetime
    task_kind: str | None = None


@event("clients.deadline.waived.v1")
class DeadlineWaived(Event, frozen=True, kw_only=True):
    """CAL-3: a deadline was waived (who and why); a fine for its breach, if any, is undone."""

    deadline_id: str
    rule: str
    owner: str
    waived_by: str
    reason: str


@event("clients.task.assigned.v1")
class TaskAssigned(Event, frozen=True, kw_only=True):
    """A task was created for someone (CL-3 "notifies them", CL-6, CL-7, CL-11): the gateway and chat
    bots turn it into a notification. `due_at` is None for tasks without a deadline."""

    task_id: str
    kind: str
    rule: str
    assignee: str | None
    title: str
    due_at: datetime | None = None
    script: str | None = None


@event("clients.deal.period_opened.v1")
class DealPeriodOpened(Event, frozen=True, kw_only=True):
    """CL-8 / CL-10 / CL-14: a service period started (launch or renewal). Content plans its month
    (CO-1) and engagement knows the account is current from this."""

    manager: str
    service_kind: ServiceKind
    period_no: int
    period_start: datetime
    period_end: datetime


@event("clients.client.profile_changed.v1")
class ClientProfileChanged(Event, frozen=True, kw_only=True):
    """CL-1: a client's display name or Instagram handle, on client creation and every card edit. The
    content service keeps them for its plans and cadence board (no HTTP between services). `client_id`
    is in the envelope; `deal_ids` are the client's deals (the envelope's `deal_id` is one of them)."""

    full_name: str
    instagram: str = ""
    deal_ids: list[str] = []


@event("clients.lead.stage_changed.v1")
class LeadStageChanged(Event, frozen=True, kw_only=True):
    """CL-16 × EN-1 (issue 15): a lead registered from a conversation, linked to another one, moved to a stage,
    converted by a payment (`stage` paid, the envelope's `deal_id`) or marked spam / wrong number
    (`disqualified`). `conversation_ids` are the inbox conversations of the lead, so the care inbox shows
    where each dialog stands ("paid — deal …")."""

    lead_id: str
    stage: Literal["dialog", "warm_lead", "application", "paid"]
    at: datetime
    conversation_ids: list[str] = []
    owner: str = ""
    disqualified: str | None = None


@event("clients.agency.calendar_changed.v1")
class AgencyCalendarChanged(Event, frozen=True, kw_only=True):
    """CAL-1: the lead changed the agency's business calendar in Settings. Carries the whole calendar (each
    part empty = the process's AGENCY_* environment value), so the newest message alone is the state:
    every service applies it at once and reads the stream's last one when it starts
    (shared/agency_calendar.py). `version` grows with every change."""

    version: int
    timezone: str = ""
    working_hours: str = ""
    workdays: str = ""
    holidays: str = ""
    changed_by: str = ""
