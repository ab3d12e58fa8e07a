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

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from opentelemetry import trace
from shared.auth import Actor
from shared.calendar import BusinessCalendar
from shared.clock import Clock
from shared.errors import Conflict, DomainError, NotFound
from shared.events import Event
from shared.events.clients import (
    DeadlineBreached,
    DeadlineMet,
    DeadlineWaived,
    DealLossUndone,
    DealLost,
    DealManagerAssigned,
    DealPaid,
    DealPeriodOpened,
    DealRenewed,
    DealStageChanged,
    MoneyBackWindowEnded,
    RefundRecorded,
    TaskAssigned,
)
from shared.infra import Timer
from shared.outbox import add_event
from shared.settings import Settings, var_dir
from shared.telemetry import continue_trace, inject_headers
from sqlalchemy import case, event, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from clients import access, rules
from clients.crypto import decrypt_credentials, encrypt_credentials
from clients.models import (
    Attachment,
    AuditEntry,
    Client,
    Deadline,
    Deal,
    DealHistory,
    Lead,
    Payment,
    Refund,
    RuleSetting,
    StaffMember,
    Task,
)
from clients.rules import RuleValues
from clients.schemas import (
    ClientIn,
    ClientPatchIn,
    Errors,
    Page,
    PaymentIn,
    check_aware,
    check_currency,
    parse_money,
    validate_card,
    validate_client,
)
from shared import timers

SYSTEM = Actor(login="system", role="integration")
OPEN_STAGES = ("new", "contacted", "questionnaire_received", "project_launched", "notification_sent")


@dataclass
class Ctx:
    """What every operation needs: the transaction, the clock, the agency settings and who acts."""

    session: AsyncSession
    clock: Clock
    settings: Settings
    actor: Actor
    handlers: dict[str, Any] = field(default_factory=dict)  # timer kind → handler, for settle_deal

    @property
    def cal(self) -> BusinessCalendar:
        return self.settings.calendar

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def emit(self, evt: Event) -> Event:
        add_event(self.session, evt, self.clock)
        return evt

    def audit(self, action: str, target: str | None = None, **detail: Any) -> None:
        self.session.add(AuditEntry(at=self.now, actor=self.actor.login, role=self.actor.role, action=action,
                                    target=target, detail=detail))


# ============================================================================ settings, roster, helpers

async def rule_values(session: AsyncSession, at: datetime) -> RuleValues:
    """The agency's numbers in effect at `at` (the fact's own time): for each key the newest row
    with `effective_from <= at`, else the DOMAIN default."""
    rows = (await session.execute(
        select(RuleSetting).where(RuleSetting.effective_from <= at)
        .order_by(RuleSetting.effective_from, RuleSetting.id))).scalars().all()
    values: dict[str, Any] = {}
    for row in rows:
        values[row.key] = row.value
    known = RuleValues.names()
    return RuleValues(**{k: v for k, v in values.items() if k in known})


async def put_settings(ctx: Ctx, values: dict[str, Any], effective_from: datetime) -> None:
    errors = Errors()
    coerced: dict[str, Any] = {}
    for key, value in values.items():
        try:
            coerced[key] = RuleValues.coerce(key, value)
        except ValueError as exc:
            errors.add(f"values.{key}", str(exc))
    errors.raise_if_any("invalid settings")
    for key, value in coerced.items():
        ctx.session.add(RuleSetting(key=key, value=value, effective_from=effective_from, created_at=ctx.now,
                                    created_by=ctx.actor.login))
    ctx.audit("settings.changed", None, values=coerced, effective_from=effective_from.isoformat())


async def put_staff(ctx: Ctx, login: str, role: str, full_name: str, active: bool) -> StaffMember:
    member = await ctx.session.get(StaffMember, login)
    if member is None:
        member = StaffMember(login=login, role=role, full_name=full_name, active=active, updated_at=ctx.now)
        ctx.session.add(member)
    else:
        member.role, member.full_name, member.active, member.updated_at = role, full_name, active, ctx.now
    ctx.audit("staff.put", login, role=role, active=active)
    return member


async def open_deal_counts(session: AsyncSession, column: Any) -> dict[str, int]:
    rows = await session.execute(select(column, func.count()).where(Deal.stage.in_(OPEN_STAGES))
                                 .group_by(column))
    return {login: n for login, n in rows.all() if login}


async def assign_least_loaded(session: AsyncSession, role: str, column: Any) -> str | None:
    """CL-3 (and CL-6, CL-7 by analogy): the active staff member of `role` with the fewest OPEN deals;
    ties by login.

    Choice: staff accounts live in the gateway, but assignment must work when the gateway is down and
    be reproducible in tests, so the clients service keeps its own roster of assignable staff
    (`PUT /api/clients/staff/{login}`: login, role content_manager | ad_manager | growth, active).
    An empty roster leaves the deal unassigned (the payment is still recorded; the lead assigns by
    hand with `POST /deals/{id}/manager`)."""
    candidates = list((await session.execute(
        select(StaffMember.login).where(StaffMember.role == role, StaffMember.active.is_(True)))).scalars())
    return rules.pick_least_loaded(candidates, await open_deal_counts(session, column))


async def get_deal(session: AsyncSession, deal_id: str) -> Deal | None:
    return await session.get(Deal, deal_id)


def history(ctx: Ctx, deal: Deal, at: datetime, kind: str, summary: str, *, code: str, **data: Any) -> None:
    """A timeline entry: `kind` groups it, `code` (e.g. "deadline.met") and `data` (its parameters)
    let a UI say it in its own language; `summary` says it in English for API users."""
    ctx.session.add(DealHistory(deal_id=deal.id, at=at, kind=kind, code=code, summary=summary, by=ctx.actor.login,
                                data=data))


@contextmanager
def deal_span(deal: Deal, step: str) -> Iterator[trace.Span]:
    """A step of the deal's journey, continuing the trace of the payment that created it (DESIGN 6)."""
    with continue_trace(deal.trace_headers, f"clients.{step}", kind=trace.SpanKind.INTERNAL,
                        attributes={"zabota.deal_id": deal.id, "zabota.client_id": deal.client_id}) as span:
        yield span


def manager_of(deal: Deal) -> str:
    return deal.responsible_manager or ""


def timer_key(deal: Deal, *parts: object) -> str:
    return ":".join(["deal", deal.id, *map(str, parts)])


def change_stage(ctx: Ctx, deal: Deal, to_stage: str, at: datetime) -> None:
    from_stage = deal.stage
    deal.stage = to_stage
    ctx.emit(DealStageChanged(deal_id=deal.id, client_id=deal.client_id, occurred_at=at, from_stage=from_stage,
                              to_stage=to_stage, manager=manager_of(deal), by=ctx.actor.login))
    history(ctx, deal, at, "stage", f"{from_stage or '—'} → {to_stage}", code="stage.changed", from_stage=from_stage,
            to_stage=to_stage)


def fact_time(ctx: Ctx, at: datetime | None, field_name: str = "at") -> datetime:
    """The moment a reported fact happened: `at` if given (never in the future, and only from those
    who may backdate — access.may_backdate), else now."""
    if at is None:
        return ctx.now
    errors = Errors()
    check_aware(errors, field_name, at)
    errors.raise_if_any()
    if at > ctx.now:
        raise DomainError("a fact cannot be dated in the future", field=field_name)
    if not access.may_backdate(ctx.actor) and at != ctx.now:
        raise DomainError("only the project lead or an integration may backdate a fact", field=field_name)
    return at


# ============================================================================ tasks and deadlines (CAL-3)

TASK_TITLES = {
    "first_call": "First call (script #3)",
    "concept": "Concept, 3 reference accounts, call with the client, request materials",
    "growth_start": "Start follower growth (credentials attached to the deal)",
    "account_setup": "Account setup checklist",
    "renewal_call": "Renewal call (script #4), recorded, recording attached",
    "ask_ad_manager": "Ask the ad manager whether the client continues",
}
CHECKLISTS = {
    "concept": ["preliminary account concept", "3 reference accounts", "call with the client",
                "request materials (high resolution, by e-mail)"],
    "account_setup": ["avatar", "contact buttons", "WhatsApp link", "USP in bio", "call to action", "contacts"],
}


async def create_task(ctx: Ctx, deal: Deal, *, kind: str, rule: str, assignee: str | None, at: datetime,
                      due_at: datetime | None, script: str | None = None, period_no: int = 0) -> Task:
    """A task for someone, with its deadline (CAL-3) when it has a due time. Once per deal, kind and
    period: replaying a rule never duplicates a task."""
    existing = (await ctx.session.execute(select(Task).where(
        Task.deal_id == deal.id, Task.kind == kind, Task.period_no == period_no))).scalar_one_or_none()
    if existing is not None:
        return existing
    task = Task(deal_id=deal.id, kind=kind, rule=rule, title=TASK_TITLES[kind], script=script,
                checklist=[{"item": item, "done": False} for item in CHECKLISTS.get(kind, [])],
                assignee=assignee, period_no=period_no, due_at=due_at, status="open", created_at=at)
    ctx.session.add(task)
    await ctx.session.flush()
    if due_at is not None:
        await create_deadline(ctx, deal, rule=rule, what=task.title, what_code=kind, owner=assignee, due_at=due_at,
                              at=at, task=task)
    ctx.emit(TaskAssigned(deal_id=deal.id, client_id=deal.client_id, occurred_at=at, task_id=task.id, kind=kind,
                          rule=rule, assignee=assignee, title=task.title, due_at=due_at, script=script))
    history(ctx, deal, at, "task", f"task {kind} → {assignee or 'unassigned'}", code="task.assigned", task_id=task.id,
            rule=rule, task_kind=kind, assignee=assignee)
    return task


async def create_deadline(ctx: Ctx, deal: Deal, *, rule: str, what: str, what_code: str, owner: str | None,
                          due_at: datetime, at: datetime, task: Task | None = None) -> Deadline:
    """CAL-3: a stored deadline and a timer at its due time that breaches it if still open. `what` is
    English; `what_code` names it for translation (the task kind, or "first_post")."""
    deadline = Deadline(deal_id=deal.id, task_id=task.id if task else None, rule=rule, what=what,
                        what_code=what_code, owner=owner, due_at=due_at, state="open", created_at=at)
    ctx.session.add(deadline)
    await ctx.session.flush()
    await timers.schedule(ctx.session, kind="clients.deadline", key=timer_key(deal, "deadline", deadline.id),
                          due_at=due_at, payload={"deal_id": deal.id, "deadline_id": deadline.id}, clock=ctx.clock)
    return deadline


def resolve_deadline(ctx: Ctx, deal: Deal, deadline: Deadline, done_at: datetime, task_kind: str | None) -> None:
    """CAL-3: the work was done at `done_at`. In time → met; late and not yet breached → breached (a
    backdated report of late work); already breached or waived → stays as it is."""
    if deadline.state != "open":
        return
    if rules.deadline_outcome(deadline.due_at, done_at) == "met":
        deadline.state, deadline.resolved_at = "met", done_at
        ctx.emit(DeadlineMet(deal_id=deal.id, client_id=deal.client_id, occurred_at=done_at, deadline_id=deadline.id,
                             rule=deadline.rule, owner=deadline.owner or "", due_at=deadline.due_at, met_at=done_at))
        history(ctx, deal, done_at, "deadline", f"{deadline.rule} met", code="deadline.met", deadline_id=deadline.id,
                rule=deadline.rule, what_code=deadline.what_code)
    else:
        breach(ctx, deal, deadline, task_kind)


def breach(ctx: Ctx, deal: Deal, deadline: Deadline, task_kind: str | None) -> None:
    """CAL-3 / PAY-6: the deadline passed unmet; the event is dated at the due time (the fact)."""
    deadline.state, deadline.resolved_at = "breached", deadline.due_at
    ctx.emit(DeadlineBreached(deal_id=deal.id, client_id=deal.client_id, occurred_at=deadline.due_at,
                              deadline_id=deadline.id, rule=deadline.rule, owner=deadline.owner or "",
                              due_at=deadline.due_at, task_kind=task_kind))
    history(ctx, deal, deadline.due_at, "deadline", f"{deadline.rule} breached", code="deadline.breached",
            deadline_id=deadline.id, rule=deadline.rule, what_code=deadline.what_code)


def waive(ctx: Ctx, deal: Deal, deadline: Deadline, reason: str) -> None:
    """CAL-3: waived, with who and why. A breached deadline may be waived too (payroll undoes its fine)."""
    if deadline.state in ("met", "waived"):
        raise Conflict(f"deadline is already {deadline.state}", field="deadline_id")
    deadline.state, deadline.waived_by, deadline.reason, deadline.resolved_at = (
        "waived", ctx.actor.login, reason, ctx.now)
    ctx.emit(DeadlineWaived(deal_id=deal.id, client_id=deal.client_id, occurred_at=ctx.now, deadline_id=deadline.id,
                            rule=deadline.rule, owner=deadline.owner or "", waived_by=ctx.actor.login, reason=reason))
    history(ctx, deal, ctx.now, "deadline", f"{deadline.rule} waived: {reason}", code="deadline.waived",
            deadline_id=deadline.id, rule=deadline.rule, what_code=deadline.what_code, reason=reason)
    ctx.audit("deadline.waived", deal.id, deadline_id=deadline.id, reason=reason)


async def deadlines_of_task(session: AsyncSession, task: Task) -> list[Deadline]:
    return list((await session.execute(select(Deadline).where(Deadline.task_id == task.id))).scalars())


async def finish_task(ctx: Ctx, deal: Deal, task: Task, done_at: datetime, by: str) -> None:
    if task.status != "open":
        return
    task.status, task.completed_at, task.completed_by = "done", done_at, by
    for deadline in await deadlines_of_task(ctx.session, task):
        resolve_deadline(ctx, deal, deadline, done_at, task.kind)
    history(ctx, deal, done_at, "task", f"task {task.kind} done", code="task.done", task_id=task.id,
            task_kind=task.kind)


async def open_task(session: AsyncSession, deal: Deal, kind: str) -> Task | None:
    return (await session.execute(select(Task).where(Task.deal_id == deal.id, Task.kind == kind,
                                                     Task.status == "open")
                                  .order_by(Task.period_no.desc()))).scalars().first()


# ============================================================================ settle: what is already due

async def settle_deal(ctx: Ctx, deal: Deal) -> int:
    """Fire this deal's timers that are due by now, in due order, inside the current transaction.
    Handlers may schedule further already-due timers (launch 40 days ago → renewal task → its
    deadline breached → automatic loss); loop until nothing is due. Handlers are idempotent, so a
    race with the background scheduler (which claims rows with SKIP LOCKED) cannot double an effect."""
    fired = 0
    while True:
        query = (select(Timer).where(Timer.key.like(f"deal:{deal.id}:%"), Timer.fired_at.is_(None),
                                     Timer.cancelled_at.is_(None), Timer.due_at <= ctx.now)
                 .order_by(Timer.due_at, Timer.id).limit(50))
        if ctx.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        due = (await ctx.session.execute(query)).scalars().all()
        if not due:
            return fired
        for timer in due:
            with continue_trace(timer.headers, f"timer {timer.kind}", attributes={"zabota.timer": timer.key}):
                await ctx.handlers[timer.kind](ctx.session, timer)
            timer.fired_at = ctx.now
            fired += 1


async def load_deal(ctx: Ctx, deal_id: str, *, settle: bool = True) -> Deal:
    deal = await get_deal(ctx.session, deal_id)
    access.require_visible(ctx.actor, deal)
    assert deal is not None
    if settle:
        await settle_deal(ctx, deal)
    return deal


# ============================================================================ CL-3: a payment creates a deal

def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


async def find_or_create_client(ctx: Ctx, data: ClientIn, at: datetime) -> Client:
    """CL-1. Choice: a returning person (same phone digits) keeps one client card and gets a new deal."""
    digits = _digits(data.phone or "")
    if digits:
        existing = (await ctx.session.execute(select(Client).where(Client.phone_digits == digits)
                                              .order_by(Client.created_at))).scalars().first()
        if existing is not None:
            return existing
    client = Client(full_name=data.full_name.strip(), phone=data.phone.strip(), phone_digits=digits,
                    instagram=data.instagram or "",
                    email=data.email or "", payer_type=data.payer_type, company_name=data.company_name,
                    bin=data.bin, notes=data.notes or "", created_at=at)
    ctx.session.add(client)
    await ctx.session.flush()
    return client


@dataclass
class PaymentResult:
    deal: Deal
    created: bool


def validate_payment(data: PaymentIn) -> tuple[Decimal, str]:
    errors = Errors()
    for name in ("external_id", "paid_at", "amount", "currency"):
        errors.require(name, getattr(data, name))
    if data.deal_id is None:
        errors.require("service_kind", data.service_kind)
        validate_client(errors, data.client)
    check_aware(errors, "paid_at", data.paid_at)
    amount = parse_money(errors, "amount", data.amount)
    currency = check_currency(errors, "currency", data.currency)
    errors.raise_if_any()
    assert amount is not None and currency is not None
    return amount, currency


async def record_payment(ctx: Ctx, data: PaymentIn) -> PaymentResult:
    """CL-3 (new client) or CL-14 (renewal, `deal_id` given). Idempotent on `external_id`."""
    amount, currency = validate_payment(data)
    if data.paid_at > ctx.now:
        raise DomainError("a payment cannot be dated in the future", field="paid_at")
    existing = (await ctx.session.execute(select(Payment).where(Payment.external_id == data.external_id))
                ).scalar_one_or_none()
    if existing is not None:
        deal = await get_deal(ctx.session, existing.deal_id)
        await settle_deal(ctx, deal)
        return PaymentResult(deal, created=False)
    if data.deal_id is not None:
        deal = await get_deal(ctx.session, data.deal_id)
        if deal is None:
            raise NotFound("deal not found", field="deal_id")
        await settle_deal(ctx, deal)
        await renew(ctx, deal, data, amount, currency)
    else:
        deal = await open_deal(ctx, data, amount, currency)
    await settle_deal(ctx, deal)
    return PaymentResult(deal, created=True)


async def open_deal(ctx: Ctx, data: PaymentIn, amount: Decimal, currency: str) -> Deal:
    paid_at = data.paid_at
    rv = await rule_values(ctx.session, paid_at)
    lead = None
    if data.lead_id is not None:
        lead = await ctx.session.get(Lead, data.lead_id)
        if lead is None:
            raise NotFound("lead not found", field="lead_id")
        if lead.deal_id is not None:
            raise Conflict("lead already converted", field="lead_id")
    if data.responsible_manager:
        member = await ctx.session.get(StaffMember, data.responsible_manager)
        if member is None or member.role != "content_manager" or not member.active:
            raise DomainError("not an active content manager in the roster", field="responsible_manager")
        manager = data.responsible_manager
    else:
        manager = await assign_least_loaded(ctx.session, "content_manager", Deal.responsible_manager)
    ad_manager = None
    if data.service_kind == "complex_promotion":
        ad_manager = await assign_least_loaded(ctx.session, "ad_manager", Deal.ad_manager)

    client = await find_or_create_client(ctx, data.client, paid_at)
    with trace.get_tracer("zabota").start_as_current_span("clients.payment", kind=trace.SpanKind.INTERNAL) as span:
        deal = Deal(client_id=client.id, lead_id=lead.id if lead else None, service_kind=data.service_kind,
                    stage="new", responsible_manager=manager, ad_manager=ad_manager, created_at=ctx.now,
                    first_payment_at=paid_at, period_no=0)
        ctx.session.add(deal)
        await ctx.session.flush()
        span.set_attribute("zabota.deal_id", deal.id)
        span.set_attribute("zabota.client_id", client.id)
        deal.trace_headers = inject_headers()  # DESIGN 6: every later step of this deal continues this trace
        payment = Payment(external_id=data.external_id, deal_id=deal.id, amount=amount, currency=currency,
                          paid_at=paid_at, renewal=False, created_at=ctx.now)
        ctx.session.add(payment)
        await ctx.session.flush()
        history(ctx, deal, paid_at, "payment", f"paid {amount} {currency}", code="payment.received",
                payment_id=payment.id, amount=str(amount), currency=currency)
        ctx.emit(DealPaid(deal_id=deal.id, client_id=client.id, occurred_at=paid_at, payment_id=payment.id,
                          external_id=payment.external_id, amount=amount, currency=currency, paid_at=paid_at,
                          service_kind=deal.service_kind, manager=manager or "", renewal=False,
                          first_payment_at=paid_at))
        ctx.emit(DealStageChanged(deal_id=deal.id, client_id=client.id, occurred_at=paid_at, from_stage=None,
                                  to_stage="new", manager=manager or "", by=ctx.actor.login))
        history(ctx, deal, paid_at, "stage", "— → new", code="stage.changed", from_stage=None, to_stage="new")
        if manager:
            ctx.emit(DealManagerAssigned(deal_id=deal.id, client_id=client.id, occurred_at=paid_at, manager=manager))
        # CL-3: the responsible manager is notified (TaskAssigned) and owes the first call.
        await create_task(ctx, deal, kind="first_call", rule="CL-3", assignee=manager, at=paid_at,
                          due_at=rules.first_call_due(ctx.cal, paid_at, rv), script="#3")
        # CL-15 / PAY-5: when the money-back window ends, say whether the money went back.
        await timers.schedule(ctx.session, kind="clients.money_back", key=timer_key(deal, "money_back"),
                              due_at=rules.money_back_window_end(paid_at, rv, ctx.cal),
                              payload={"deal_id": deal.id}, clock=ctx.clock)
        if lead is not None:
            lead.stage, lead.paid_at, lead.deal_id = "paid", paid_at, deal.id
    return deal


# ============================================================================ CL-14 / CL-13: renewals

async def renew(ctx: Ctx, deal: Deal, data: PaymentIn, amount: Decimal, currency: str) -> None:
    """CL-14: a renewal payment sets the service start to the payment date and opens the next period;
    the deal is (or returns to) `project_launched`.

    CL-13: if the deal was lost automatically and the payment is dated before that loss, the loss is
    undone (`DealLossUndone` naming the loss event, so payroll reverses its PAY-3 line) and the
    renewal applies as if the loss had never happened. Choice where DOMAIN is silent: a payment on a
    deal lost *after* the payment date, or lost because the client declined, reopens the deal as a
    renewal (the client came back) without undoing the loss."""
    if deal.period_no == 0:
        raise Conflict("the deal has not been launched yet: a renewal needs a service period", field="deal_id")
    paid_at = data.paid_at
    if paid_at < deal.first_payment_at:
        raise DomainError("a renewal cannot be dated before the deal's first payment", field="paid_at")
    rv = await rule_values(ctx.session, paid_at)
    with deal_span(deal, "renewal"):
        payment = Payment(external_id=data.external_id, deal_id=deal.id, amount=amount, currency=currency,
                          paid_at=paid_at, renewal=True, created_at=ctx.now)
        ctx.session.add(payment)
        await ctx.session.flush()
        history(ctx, deal, paid_at, "payment", f"renewal paid {amount} {currency}", code="payment.renewal",
                payment_id=payment.id, amount=str(amount), currency=currency)
        ctx.emit(DealPaid(deal_id=deal.id, client_id=deal.client_id, occurred_at=paid_at, payment_id=payment.id,
                          external_id=payment.external_id, amount=amount, currency=currency, paid_at=paid_at,
                          service_kind=deal.service_kind, manager=manager_of(deal), renewal=True,
                          first_payment_at=deal.first_payment_at))
        if deal.stage == "lost":
            if deal.lost_reason == "unpaid" and deal.lost_at is not None and paid_at < deal.lost_at:
                payment.undid_loss = True
                ctx.emit(DealLossUndone(deal_id=deal.id, client_id=deal.client_id, occurred_at=paid_at,
                                        manager=manager_of(deal), lost_event_id=deal.lost_event_id or "",
                                        payment_id=payment.id))
                history(ctx, deal, paid_at, "loss_undone", "automatic loss undone by a payment dated before it",
                        code="loss.undone", lost_event_id=deal.lost_event_id)
            deal.lost_at = deal.lost_reason = deal.lost_event_id = None
        full_month = rules.after_full_month(deal.period_end, paid_at, rv.renewal_task_days_before_end, ctx.cal)
        await close_period(ctx, deal, paid_at)
        await open_period(ctx, deal, rules.local_date(ctx.cal, paid_at), paid_at)
        if deal.stage != "project_launched":
            change_stage(ctx, deal, "project_launched", paid_at)
        ctx.emit(DealRenewed(deal_id=deal.id, client_id=deal.client_id, occurred_at=paid_at,
                             manager=manager_of(deal), payment_id=payment.id, period_start=deal.period_start,
                             period_end=deal.period_end, after_full_month=full_month))


async def close_period(ctx: Ctx, deal: Deal, paid_at: datetime) -> None:
    """The current period's pending steps are moot once the next one is paid: cancel its timers; an
    open renewal task is done by the payment (its purpose — the renewal — is achieved), so its
    deadline is met if still open. A breached one stays breached."""
    await timers.cancel(ctx.session, timer_key(deal, "renewal_task", deal.period_no), clock=ctx.clock)
    await timers.cancel(ctx.session, timer_key(deal, "auto_loss", deal.period_no), clock=ctx.clock)
    for kind in ("renewal_call", "ask_ad_manager"):
        task = await open_task(ctx.session, deal, kind)
        if task is not None:
            await finish_task(ctx, deal, task, max(paid_at, task.created_at), "payment")


async def current_period(ctx: Ctx, deal: Deal) -> rules.Period:
    """The deal's current period with the settings in effect at its start (CL-10, CL-11, CL-13)."""
    start = rules.local_midnight(ctx.cal, deal.service_start)
    return rules.service_period(ctx.cal, deal.service_start, await rule_values(ctx.session, start))


async def open_period(ctx: Ctx, deal: Deal, service_start: date, at: datetime) -> None:
    """CL-10: the period; CL-11 and CL-13 timers for its end."""
    deal.service_start = service_start
    period = await current_period(ctx, deal)
    deal.period_no += 1
    deal.period_start, deal.period_end = period.start, period.end
    ctx.emit(DealPeriodOpened(deal_id=deal.id, client_id=deal.client_id, occurred_at=at, manager=manager_of(deal),
                              service_kind=deal.service_kind, period_no=deal.period_no,
                              period_start=period.start, period_end=period.end))
    end_date = rules.local_date(ctx.cal, period.end).isoformat()
    history(ctx, deal, at, "period", f"period {deal.period_no}: {service_start.isoformat()} → {end_date}",
            code="period.opened", period_no=deal.period_no, service_start=service_start.isoformat(), end=end_date)
    payload = {"deal_id": deal.id, "period_no": deal.period_no}
    await timers.schedule(ctx.session, kind="clients.renewal_task",
                          key=timer_key(deal, "renewal_task", deal.period_no), due_at=period.renewal_task_at,
                          payload=payload, clock=ctx.clock)
    await timers.schedule(ctx.session, kind="clients.auto_loss", key=timer_key(deal, "auto_loss", deal.period_no),
                          due_at=period.loss_at, payload=payload, clock=ctx.clock)


# ============================================================================ CL-4 … CL-9: stages

async def mark_contacted(ctx: Ctx, deal: Deal, at: datetime) -> None:
    """CL-4: after the first call the stage is Contacted; the first-call task is done at that moment."""
    if not rules.can_move(deal.stage, "contacted"):
        raise Conflict(f"cannot move from {deal.stage} to contacted", field="stage")
    with deal_span(deal, "contacted"):
        deal.contacted_at = at
        change_stage(ctx, deal, "contacted", at)
        task = await open_task(ctx.session, deal, "first_call")
        if task is not None:
            await finish_task(ctx, deal, task, at, ctx.actor.login)


async def receive_questionnaire(ctx: Ctx, deal: Deal, answers: dict[str, Any], received_at: datetime) -> None:
    """CL-5: the questionnaire moves the deal to Questionnaire received; CL-6 tasks (concept within
    24 h; for account_management the growth specialist's task with access to the credentials);
    CL-7 account setup (content manager, or the ad manager for complex_promotion); CL-9 deadline
    for the first post (3 working days). A second submission updates the answers only."""
    if deal.stage == "lost":
        raise Conflict("the deal is lost", field="stage")
    with deal_span(deal, "questionnaire"):
        if deal.questionnaire_received_at is not None:
            deal.questionnaire = answers
            history(ctx, deal, received_at, "questionnaire", "questionnaire updated", code="questionnaire.updated")
            return
        if received_at < deal.first_payment_at:
            raise DomainError("the questionnaire cannot precede the payment", field="received_at")
        rv = await rule_values(ctx.session, received_at)
        deal.questionnaire, deal.questionnaire_received_at = answers, received_at
        history(ctx, deal, received_at, "questionnaire", "questionnaire received", code="questionnaire.received")
        if rules.can_move(deal.stage, "questionnaire_received"):
            change_stage(ctx, deal, "questionnaire_received", received_at)
        manager = deal.responsible_manager
        await create_task(ctx, deal, kind="concept", rule="CL-6", assignee=manager, at=received_at,
                          due_at=rules.concept_due(ctx.cal, received_at, rv))
        if deal.service_kind == "account_management":
            growth = await assign_least_loaded(ctx.session, "growth", Deal.growth_specialist)
            deal.growth_specialist = growth
            await create_task(ctx, deal, kind="growth_start", rule="CL-6", assignee=growth, at=received_at,
                              due_at=None)
            setup_owner = manager
        else:
            setup_owner = deal.ad_manager
        await create_task(ctx, deal, kind="account_setup", rule="CL-7", assignee=setup_owner, at=received_at,
                          due_at=None)
        first_post = await create_deadline(ctx, deal, rule="CL-9", what="First published post", what_code="first_post",
                                           owner=manager, due_at=rules.first_post_due(ctx.cal, received_at, rv),
                                           at=received_at)
        if deal.first_post_at is not None:
            resolve_deadline(ctx, deal, first_post, deal.first_post_at, None)


async def record_first_post(ctx: Ctx, deal: Deal, published_at: datetime) -> None:
    """CL-9: the first published post meets (or, late, breaches) the questionnaire → first post deadline.
    Fed by `content.post.published.v1` or by hand; only the first post counts."""
    if deal.first_post_at is not None and deal.first_post_at <= published_at:
        return
    with deal_span(deal, "first_post"):
        deal.first_post_at = published_at
        history(ctx, deal, published_at, "first_post", "first post published", code="first_post.published")
        deadlines = (await ctx.session.execute(select(Deadline).where(
            Deadline.deal_id == deal.id, Deadline.rule == "CL-9"))).scalars().all()
        for deadline in deadlines:
            resolve_deadline(ctx, deal, deadline, published_at, None)


def validate_launch(service_start: date | None, login: str | None, password: str | None) -> None:
    errors = Errors()
    errors.require("service_start", service_start)
    errors.require("instagram_login", login)
    errors.require("instagram_password", password)
    errors.raise_if_any("project_launched requires service_start, instagram_login and instagram_password (CL-8)")


async def launch(ctx: Ctx, deal: Deal, at: datetime, service_start: date | None, login: str | None,
                 password: str | None) -> None:
    """CL-8: Project launched needs the Instagram credentials (encrypted at rest) and the service start
    date, which opens the first period (CL-10) and its renewal/loss timers (CL-11, CL-13)."""
    validate_launch(service_start, login, password)
    if not rules.can_move(deal.stage, "project_launched"):
        raise Conflict(f"cannot move from {deal.stage} to project_launched", field="stage")
    if rules.local_midnight(ctx.cal, service_start) < rules.local_midnight(
            ctx.cal, rules.local_date(ctx.cal, deal.first_payment_at)):
        raise DomainError("the service cannot start before the first payment", field="service_start")
    with deal_span(deal, "launch"):
        deal.credentials = encrypt_credentials(ctx.settings, login.strip(), password)
        ctx.audit("credentials.set", deal.id)
        deal.launched_at = at
        change_stage(ctx, deal, "project_launched", at)
        await open_period(ctx, deal, service_start, at)


def reveal_credentials(ctx: Ctx, deal: Deal) -> dict[str, str]:
    """CL-8: every reveal is audited (who, when, which deal)."""
    access.require_reveal(ctx.actor, deal)
    if deal.credentials is None:
        raise NotFound("no credentials stored for this deal (set at launch, CL-8)")
    ctx.audit("credentials.revealed", deal.id)
    creds = decrypt_credentials(ctx.settings, deal.credentials)
    return {"instagram_login": creds["login"], "instagram_password": creds["password"]}


# ============================================================================ CL-11, CL-12, CL-13

async def create_renewal_task(ctx: Ctx, deal: Deal, period_no: int) -> None:
    """CL-11: 3 days before the period ends. account_management → "renewal call (script #4)" for the
    responsible manager, completed only with a recording attached; complex_promotion → "ask the ad
    manager whether the client continues", for the ad manager. Due at the period end."""
    if deal.period_no != period_no or deal.stage == "lost":
        return
    at = (await current_period(ctx, deal)).renewal_task_at
    if deal.service_kind == "account_management":
        await create_task(ctx, deal, kind="renewal_call", rule="CL-11", assignee=deal.responsible_manager, at=at,
                          due_at=deal.period_end, script="#4", period_no=period_no)
    else:
        await create_task(ctx, deal, kind="ask_ad_manager", rule="CL-11", assignee=deal.ad_manager, at=at,
                          due_at=deal.period_end, period_no=period_no)


async def lose(ctx: Ctx, deal: Deal, reason: str, at: datetime) -> None:
    """CL-12 (declined) / CL-13 (unpaid). Open tasks are cancelled and their open deadlines waived by
    `system` (nobody owes work for a client who left); pending period timers are cancelled."""
    rv = await rule_values(ctx.session, at)
    full_month = rules.after_full_month(deal.period_end, at, rv.renewal_task_days_before_end, ctx.cal)
    evt = DealLost(deal_id=deal.id, client_id=deal.client_id, occurred_at=at, manager=manager_of(deal),
                   reason=reason, after_full_month=full_month)
    deal.lost_at, deal.lost_reason, deal.lost_event_id = at, reason, evt.event_id
    change_stage(ctx, deal, "lost", at)
    ctx.emit(evt)
    history(ctx, deal, at, "lost", f"client lost ({reason})", code="deal.lost", lost_event_id=evt.event_id,
            reason=reason)
    await timers.cancel(ctx.session, timer_key(deal, "renewal_task", deal.period_no), clock=ctx.clock)
    await timers.cancel(ctx.session, timer_key(deal, "auto_loss", deal.period_no), clock=ctx.clock)
    open_tasks = (await ctx.session.execute(select(Task).where(Task.deal_id == deal.id, Task.status == "open"))
                  ).scalars().all()
    system = Ctx(ctx.session, ctx.clock, ctx.settings, SYSTEM, ctx.handlers)
    for task in open_tasks:
        task.status = "cancelled"
    open_deadlines = (await ctx.session.execute(select(Deadline).where(
        Deadline.deal_id == deal.id, Deadline.state == "open", Deadline.due_at > at))).scalars().all()
    for deadline in open_deadlines:
        waive(system, deal, deadline, f"deal lost ({reason})")


async def auto_loss(ctx: Ctx, deal: Deal, period_no: int) -> None:
    """CL-13: not paid `loss_after_days` after the period end → lost, dated at that moment (not when
    the timer happened to fire)."""
    if deal.period_no != period_no or deal.stage == "lost":
        return
    with deal_span(deal, "auto_loss"):
        await lose(ctx, deal, "unpaid", (await current_period(ctx, deal)).loss_at)


async def renewal_answer(ctx: Ctx, deal: Deal, continues: bool, at: datetime) -> None:
    """CL-12: continues → payment details / invoice rendered and stage Notification sent;
    declines → Client lost. An open "ask the ad manager" task is answered by this."""
    from clients.documents import render_document

    if deal.stage != "project_launched":
        raise Conflict(f"a renewal answer needs a launched deal, not {deal.stage}", field="stage")
    with deal_span(deal, "renewal_answer"):
        history(ctx, deal, at, "renewal_answer", "client continues" if continues else "client declines",
                code="renewal_answer.continues" if continues else "renewal_answer.declines")
        task = await open_task(ctx.session, deal, "ask_ad_manager")
        if task is not None:
            await finish_task(ctx, deal, task, at, ctx.actor.login)
        if continues:
            document = await render_document(ctx, deal, at)
            deal.notification_sent_at = at
            change_stage(ctx, deal, "notification_sent", at)
            history(ctx, deal, at, "document", f"{document.kind} {document.number} sent", code="document.sent",
                    document_id=document.id, document_kind=document.kind, number=document.number)
        else:
            await lose(ctx, deal, "declined", at)


async def reassign_manager(ctx: Ctx, deal: Deal, manager: str) -> None:
    member = await ctx.session.get(StaffMember, manager)
    if member is None or member.role != "content_manager":
        raise DomainError("not a content manager in the roster", field="manager")
    previous = deal.responsible_manager
    if previous == manager:
        return
    with deal_span(deal, "reassign"):
        deal.responsible_manager = manager
        ctx.emit(DealManagerAssigned(deal_id=deal.id, client_id=deal.client_id, occurred_at=ctx.now, manager=manager,
                                     previous_manager=previous))
        history(ctx, deal, ctx.now, "manager", f"responsible manager {previous or '—'} → {manager}",
                code="manager.changed", previous=previous, manager=manager)
        ctx.audit("deal.manager_assigned", deal.id, manager=manager, previous=previous)
        # Open work moves with the deal; met/breached deadlines keep their owner (the facts stay).
        for task in (await ctx.session.execute(select(Task).where(
                Task.deal_id == deal.id, Task.status == "open", Task.kind.in_(
                    ("first_call", "concept", "renewal_call"))))).scalars():
            task.assignee = manager
            for deadline in await deadlines_of_task(ctx.session, task):
                if deadline.state == "open":
                    deadline.owner = manager
        for deadline in (await ctx.session.execute(select(Deadline).where(
                Deadline.deal_id == deal.id, Deadline.rule == "CL-9", Deadline.state == "open"))).scalars():
            deadline.owner = manager


# ============================================================================ lists: deals and tasks with what list pages show

DEAL_SORTS = ("first_payment_at", "created_at", "stage", "client_name", "responsible_manager", "service_kind",
              "period_end", "lost_at")
DEAL_DEFAULT_SORT = "-first_payment_at"


@dataclass
class DealRow:
    """A deal with what a list shows next to it: the client's name and the money (rules.net_paid)."""

    deal: Deal
    client_name: str
    paid_total: Decimal
    currency: str | None


def ordered(column: Any, descending: bool, *, nullable: bool = False) -> list[Any]:
    """ORDER BY terms for one column; empty values last in both directions (portable NULLS LAST)."""
    terms = [case((column.is_(None), 1), else_=0)] if nullable else []
    return [*terms, column.desc() if descending else column.asc()]


def stage_order(column: Any, stages: tuple[str, ...]) -> Any:
    """Stages sort in pipeline order, not alphabetically."""
    return case({stage: i for i, stage in enumerate(stages)}, value=column, else_=len(stages))


async def money_of_deals(session: AsyncSession, deal_ids: list[str]) -> dict[str, tuple[Decimal, str | None]]:
    """paid_total and currency of many deals in two aggregate queries (not one per deal)."""
    if not deal_ids:
        return {}
    payments: dict[str, list[tuple[str, Decimal, datetime]]] = {}
    for deal_id, currency, amount, first_at in await session.execute(
            select(Payment.deal_id, Payment.currency, func.sum(Payment.amount), func.min(Payment.paid_at))
            .where(Payment.deal_id.in_(deal_ids)).group_by(Payment.deal_id, Payment.currency)):
        payments.setdefault(deal_id, []).append((currency, Decimal(amount), first_at))
    refunds: dict[str, list[tuple[str, Decimal]]] = {}
    for deal_id, currency, amount in await session.execute(
            select(Refund.deal_id, Refund.currency, func.sum(Refund.amount))
            .where(Refund.deal_id.in_(deal_ids)).group_by(Refund.deal_id, Refund.currency)):
        refunds.setdefault(deal_id, []).append((currency, Decimal(amount)))
    return {deal_id: rules.net_paid(payments.get(deal_id, []), refunds.get(deal_id, [])) for deal_id in deal_ids}


async def list_deals(session: AsyncSession, actor: Actor, page: Page, *, stage: str | None = None,
                     manager: str | None = None, service_kind: str | None = None) -> tuple[list[DealRow], int]:
    """The deals `actor` may see (filtered, counted and paged in the database), one page of them with
    their client's name and money, and how many there are in all. Ties are broken by id, so pages
    do not overlap."""
    where = [access.visible_deals(actor)]
    for column, value in ((Deal.stage, stage), (Deal.responsible_manager, manager),
                          (Deal.service_kind, service_kind)):
        if value:
            where.append(column == value)
    total = (await session.execute(select(func.count()).select_from(Deal).where(*where))).scalar_one()
    columns = {"first_payment_at": Deal.first_payment_at, "created_at": Deal.created_at,
               "stage": stage_order(Deal.stage, rules.STAGES), "client_name": Client.full_name,
               "responsible_manager": Deal.responsible_manager, "service_kind": Deal.service_kind,
               "period_end": Deal.period_end, "lost_at": Deal.lost_at}
    nullable = page.sort in ("responsible_manager", "period_end", "lost_at")
    query = (select(Deal, Client.full_name).join(Client, Client.id == Deal.client_id).where(*where)
             .order_by(*ordered(columns[page.sort], page.descending, nullable=nullable), Deal.id)
             .limit(page.limit).offset(page.offset))
    rows = (await session.execute(query)).all()
    money = await money_of_deals(session, [deal.id for deal, _name in rows])
    return [DealRow(deal, name, *money[deal.id]) for deal, name in rows], total


async def list_tasks(session: AsyncSession, actor: Actor, *, assignee: str | None,
                     status: str | None) -> list[tuple[Task, Deal, str]]:
    """Tasks of the deals `actor` may see, plus their own tasks, each with its deal and client name
    (one query)."""
    query = (select(Task, Deal, Client.full_name).join(Deal, Deal.id == Task.deal_id)
             .join(Client, Client.id == Deal.client_id)
             .where(or_(access.visible_deals(actor), Task.assignee == actor.login))
             .order_by(*ordered(Task.due_at, False, nullable=True), Task.created_at, Task.id))
    if assignee:
        query = query.where(Task.assignee == assignee)
    if status:
        query = query.where(Task.status == status)
    return [(task, deal, name) for task, deal, name in (await session.execute(query)).all()]


# ============================================================================ tasks

async def complete_task(ctx: Ctx, task: Task, at: datetime) -> Deal:
    deal = await get_deal(ctx.session, task.deal_id)
    access.require_task_complete(ctx.actor, deal, task)
    await settle_deal(ctx, deal)
    if task.status != "open":
        raise Conflict(f"task is {task.status}", field="task_id")
    if at < task.created_at:
        raise DomainError("a task cannot be done before it existed", field="at")
    if task.kind == "renewal_call":
        await require_recording(ctx, task)
    require_checklist_done(task)
    with deal_span(deal, f"task.{task.kind}"):
        if task.kind == "first_call" and deal.stage == "new":
            await mark_contacted(ctx, deal, at)  # CL-4: the call done means the client was contacted
        else:
            await finish_task(ctx, deal, task, at, ctx.actor.login)
    return deal


async def require_recording(ctx: Ctx, task: Task) -> None:
    """CL-11: the renewal call must be recorded and the recording attached to the deal: an audio
    attachment linked to this task, or uploaded to the deal since the task opened."""
    recordings = (await ctx.session.execute(select(Attachment).where(
        Attachment.deal_id == task.deal_id, Attachment.content_type.like("audio/%")))).scalars().all()
    if not any(a.task_id == task.id or (a.task_id is None and a.uploaded_at >= task.created_at)
               for a in recordings):
        raise DomainError("attach the call recording to the deal before completing the renewal call (CL-11)",
                          field="attachment")


# ============================================================================ CL-1: the client card

CARD_FIELDS = ("full_name", "phone", "instagram", "email", "payer_type", "company_name", "bin", "notes")


async def update_client(ctx: Ctx, client: Client, patch: ClientPatchIn) -> list[str]:
    """CL-1: change the client card. The card as it would be is validated whole (one 422 naming every
    bad field); what changed is audited (old and new values) and written on the timeline of every deal
    of the client. Returns the changed fields (none: nothing is written)."""
    card = {name: getattr(client, name) for name in CARD_FIELDS}
    for name in CARD_FIELDS:
        value = getattr(patch, name)
        if value is None:
            continue
        value = value.strip() if name != "notes" else value
        card[name] = value or (None if name in ("company_name", "bin") else "")
    errors = Errors()
    validate_card(errors, card)
    errors.raise_if_any("invalid client card")
    changes = {name: [getattr(client, name), card[name]] for name in CARD_FIELDS
               if card[name] != getattr(client, name)}
    if not changes:
        return []
    for name, (_old, new) in changes.items():
        setattr(client, name, new)
    if "phone" in changes:
        client.phone_digits = _digits(client.phone)
    fields = sorted(changes)
    ctx.audit("client.updated", client.id, changes=changes)
    for deal in (await ctx.session.execute(select(Deal).where(Deal.client_id == client.id))).scalars():
        with deal_span(deal, "client_updated"):
            history(ctx, deal, ctx.now, "client", f"client card changed: {', '.join(fields)}", code="client.updated",
                    fields=fields)
    return fields


# ============================================================================ CL-7: checklists

CHECKLIST_REQUIRED = ("account_setup",)  # CL-7: the setup task is done when its checklist is


async def tick_checklist(ctx: Ctx, task: Task, item: str, done: bool) -> Deal:
    """CL-7: tick (or untick) one checklist item of an open task: its assignee or the lead (and
    integrations). An item the task does not have is a 422 naming `item`."""
    deal = await get_deal(ctx.session, task.deal_id)
    access.require_checklist_tick(ctx.actor, deal, task)
    if task.status != "open":
        raise Conflict(f"task is {task.status}", field="task_id")
    items = [dict(entry) for entry in task.checklist or []]
    entry = next((e for e in items if e["item"] == item), None)
    if entry is None:
        raise DomainError(f"not an item of this checklist: {', '.join(e['item'] for e in items) or 'none'}",
                          field="item")
    if entry["done"] == done:
        return deal
    entry["done"] = done
    task.checklist = items  # a new list: the JSON column notices the change
    with deal_span(deal, "checklist"):
        history(ctx, deal, ctx.now, "checklist", f"{item}: {'done' if done else 'not done'}", code="checklist.ticked",
                task_id=task.id, task_kind=task.kind, item=item, done=done)
    return deal


def require_checklist_done(task: Task) -> None:
    """CL-7: the setup task is completed only with every item ticked; the 422 lists the missing ones."""
    if task.kind not in CHECKLIST_REQUIRED:
        return
    missing = [e["item"] for e in task.checklist or [] if not e.get("done")]
    if missing:
        raise DomainError(f"tick every checklist item first (CL-7); missing: {', '.join(missing)}",
                          errors=[{"field": "checklist", "message": item} for item in missing])


# ============================================================================ attachments (CL-11, DESIGN 9)

STAGED_FILES = "clients.staged_files"


async def add_attachment(ctx: Ctx, deal: Deal, task_id: str | None, filename: str, content_type: str,
                         content: bytes) -> Attachment:
    """CL-11: a call recording attached to the deal (optionally to one of its tasks).

    DESIGN 9 (never a half-written record): the file is written under a temporary name beside its
    final place and renamed only when the transaction commits; a rollback (a 4xx raised later in the
    request, a failed commit) removes it. So a file exists exactly when its row does."""
    if task_id is not None:
        task = await ctx.session.get(Task, task_id)
        if task is None or task.deal_id != deal.id:
            raise DomainError("no such task on this deal", field="task_id")
    attachment = Attachment(deal_id=deal.id, task_id=task_id, filename=filename, content_type=content_type,
                            size=len(content), sha256=hashlib.sha256(content).hexdigest(), path="",
                            uploaded_by=ctx.actor.login, uploaded_at=ctx.now)
    ctx.session.add(attachment)
    await ctx.session.flush()
    target = var_dir() / "attachments" / deal.id / attachment.id
    stage_file(ctx.session, target, content)
    attachment.path = str(target.relative_to(var_dir()))
    with deal_span(deal, "attachment"):
        history(ctx, deal, ctx.now, "attachment", f"attached {attachment.filename}", code="attachment.added",
                attachment_id=attachment.id, filename=attachment.filename)
    return attachment


def stage_file(session: AsyncSession, target: Path, content: bytes) -> Path:
    """Write `content` to a temporary file beside `target`; it becomes `target` when the session's
    transaction commits and is deleted when it (or the savepoint it was written in) rolls back."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    temp.write_bytes(content)
    sync = session.sync_session
    sync.info.setdefault(STAGED_FILES, []).append((sync.get_nested_transaction() or sync.get_transaction(), temp,
                                                   target))
    return temp


@event.listens_for(Session, "after_commit")
def _publish_staged_files(session: Session) -> None:
    for _transaction, temp, target in session.info.pop(STAGED_FILES, []):
        os.replace(temp, target)


@event.listens_for(Session, "after_soft_rollback")
def _drop_staged_files(session: Session, rolled_back: Any) -> None:
    # Called for every rollback, the outermost one (a failed commit, an error) and a savepoint's
    # (after_rollback would fire for both without saying which).
    staged = session.info.get(STAGED_FILES)
    if not staged:
        return
    kept = []
    for transaction, temp, target in staged:
        inside = transaction
        while inside is not None and inside is not rolled_back:
            inside = inside.parent
        if inside is None:
            kept.append((transaction, temp, target))
        else:
            temp.unlink(missing_ok=True)
    session.info[STAGED_FILES] = kept


# ============================================================================ CL-15: refunds

async def record_refund(ctx: Ctx, deal: Deal, external_id: str, amount: Decimal, currency: str,
                        refunded_at: datetime) -> tuple[Refund, bool]:
    """CL-15: recorded against the deal and the payment it returns (the latest payment made before
    the refund); `within_window` = within 10 days of the FIRST payment (PAY-4). Idempotent."""
    existing = (await ctx.session.execute(select(Refund).where(Refund.external_id == external_id))
                ).scalar_one_or_none()
    if existing is not None:
        if existing.deal_id != deal.id:
            raise Conflict("this external_id was used for another deal's refund", field="external_id")
        return existing, False
    payment = (await ctx.session.execute(select(Payment).where(
        Payment.deal_id == deal.id, Payment.paid_at <= refunded_at).order_by(Payment.paid_at.desc()))
               ).scalars().first()
    if payment is None:
        raise DomainError("no payment on this deal before the refund date", field="refunded_at")
    if currency != payment.currency:
        raise DomainError(f"the payment was in {payment.currency}", field="currency")
    refunded = (await ctx.session.execute(select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.payment_id == payment.id))).scalar_one()
    if Decimal(refunded) + amount > payment.amount:
        raise DomainError(f"more than the payment's {payment.amount} {payment.currency}", field="amount")
    rv = await rule_values(ctx.session, deal.first_payment_at)
    within = rules.refund_within_window(refunded_at, deal.first_payment_at, rv, ctx.cal)
    with deal_span(deal, "refund"):
        refund = Refund(external_id=external_id, deal_id=deal.id, payment_id=payment.id, amount=amount,
                        currency=currency, refunded_at=refunded_at, within_window=within, created_at=ctx.now)
        ctx.session.add(refund)
        await ctx.session.flush()
        ctx.emit(RefundRecorded(deal_id=deal.id, client_id=deal.client_id, occurred_at=refunded_at,
                                manager=manager_of(deal), refund_id=refund.id, payment_id=payment.id, amount=amount,
                                currency=currency, refunded_at=refunded_at, first_payment_at=deal.first_payment_at,
                                within_window=within))
        history(ctx, deal, refunded_at, "refund", f"refunded {amount} {currency}", code="refund.recorded",
                refund_id=refund.id, within_window=within, amount=str(amount), currency=currency)
        ctx.audit("refund.recorded", deal.id, refund_id=refund.id, amount=str(amount))
    return refund, True


async def money_back_window_ended(ctx: Ctx, deal: Deal) -> None:
    """CL-15 / PAY-5: the 10 days ended; `refunded` = a refund inside the window exists."""
    rv = await rule_values(ctx.session, deal.first_payment_at)
    due_at = rules.money_back_window_end(deal.first_payment_at, rv, ctx.cal)
    refunded = (await ctx.session.execute(select(func.count()).select_from(Refund).where(
        Refund.deal_id == deal.id, Refund.within_window.is_(True)))).scalar_one() > 0
    with deal_span(deal, "money_back_window_ended"):
        ctx.emit(MoneyBackWindowEnded(deal_id=deal.id, client_id=deal.client_id, occurred_at=due_at,
                                      manager=manager_of(deal), first_payment_at=deal.first_payment_at,
                                      refunded=refunded))
        history(ctx, deal, due_at, "money_back", "money-back window ended" + (" (refunded)" if refunded else ""),
                code="money_back.ended", refunded=refunded)


# ============================================================================ timers

def timer_handlers(make_ctx: Any) -> dict[str, Any]:
    """Timer kind → handler. `make_ctx(session)` builds a system Ctx; each handler re-reads the deal
    and does nothing if the moment has passed it by (idempotent: a replay changes nothing)."""

    async def on_deadline(session: AsyncSession, timer: Timer) -> None:
        ctx = make_ctx(session)
        deadline = await session.get(Deadline, timer.payload["deadline_id"])
        if deadline is None or deadline.state != "open":
            return
        deal = await get_deal(session, deadline.deal_id)
        task = await session.get(Task, deadline.task_id) if deadline.task_id else None
        with deal_span(deal, "deadline_due"):
            breach(ctx, deal, deadline, task.kind if task else None)

    async def on_renewal_task(session: AsyncSession, timer: Timer) -> None:
        deal = await get_deal(session, timer.payload["deal_id"])
        with deal_span(deal, "renewal_task"):
            await create_renewal_task(make_ctx(session), deal, timer.payload["period_no"])

    async def on_auto_loss(session: AsyncSession, timer: Timer) -> None:
        deal = await get_deal(session, timer.payload["deal_id"])
        await auto_loss(make_ctx(session), deal, timer.payload["period_no"])

    async def on_money_back(session: AsyncSession, timer: Timer) -> None:
        deal = await get_deal(session, timer.payload["deal_id"])
        await money_back_window_ended(make_ctx(session), deal)

    return {"clients.deadline": on_deadline, "clients.renewal_task": on_renewal_task,
            "clients.auto_loss": on_auto_loss, "clients.money_back": on_money_back}
