"""Service periods and their end: renewals (CL-14), the renewal task (CL-11), renewal answers and
losses (CL-12, CL-13), manager reassignment."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from shared.errors import Conflict
from shared.events.clients import (
    DealLossUndone,
    DealLost,
    DealManagerAssigned,
    DealPaid,
    DealPeriodOpened,
    DealRenewed,
)
from sqlalchemy import select

from clients import rules
from clients.models import (
    Deadline,
    Deal,
    Payment,
    StaffMember,
    Task,
)
from clients.schemas import (
    PaymentIn,
)
from clients.services.core import (
    SYSTEM,
    Ctx,
    change_stage,
    deal_span,
    history,
    manager_of,
    rule_values,
    timer_key,
)
from clients.services.lists import refresh_money
from clients.services.tasks import create_task, deadlines_of_task, finish_task, open_task, waive
from shared import messages as M
from shared import timers

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
        raise M.refusal(Conflict, "deal_id", M.RENEWAL_NOT_LAUNCHED)
    paid_at = data.paid_at
    if paid_at < deal.first_payment_at:
        raise M.error("paid_at", M.RENEWAL_BEFORE_PAYMENT)
    rv = await rule_values(ctx.session, paid_at)
    with deal_span(deal, "renewal"):
        payment = Payment(external_id=data.external_id, deal_id=deal.id, amount=amount, currency=currency,
                          paid_at=paid_at, renewal=True, created_at=ctx.now)
        ctx.session.add(payment)
        await refresh_money(ctx.session, deal)
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
        full_month = rules.after_full_month(deal.period_no, deal.period_end, paid_at,
                                            rv.renewal_task_days_before_end, ctx.cal)
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


async def lose(ctx: Ctx, deal: Deal, reason: str, at: datetime, *, after_full_month: bool | None = None) -> None:
    """CL-12 (declined) / CL-13 (unpaid) / CL-15 (refunded in full inside the 10 days). Open tasks are
    cancelled and the deadlines due after the loss waived by `system` (nobody owes work for a client
    who left) — a breach the timer made after `at` too, when the loss is recorded late (issue 7 §1);
    pending period timers are cancelled. `after_full_month` (PAY-3) is computed unless given."""
    rv = await rule_values(ctx.session, at)
    if after_full_month is None:
        after_full_month = rules.after_full_month(deal.period_no, deal.period_end, at,
                                                  rv.renewal_task_days_before_end, ctx.cal)
    evt = DealLost(deal_id=deal.id, client_id=deal.client_id, occurred_at=at, manager=manager_of(deal),
                   reason=reason, after_full_month=after_full_month)
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
    later = (await ctx.session.execute(select(Deadline).where(
        Deadline.deal_id == deal.id, Deadline.state.in_(("open", "breached")), Deadline.due_at > at)
        .order_by(Deadline.due_at, Deadline.id))).scalars().all()
    for deadline in later:
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
        raise M.refusal(Conflict, "stage", M.RENEWAL_ANSWER_STAGE, stage=deal.stage)
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
        raise M.error("manager", M.NOT_A_CONTENT_MANAGER)
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
