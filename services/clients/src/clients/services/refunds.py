"""CL-15 refunds and the money-back window (PAY-4, PAY-5)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from shared.errors import Conflict
from shared.events.clients import (
    MoneyBackWindowEnded,
    RefundRecorded,
)
from sqlalchemy import func, select

from clients import access, rules
from clients.models import (
    Deal,
    Payment,
    Refund,
)
from clients.services.core import Ctx, deal_span, get_deal, history, manager_of, rule_values
from clients.services.lists import refresh_money
from clients.services.periods import lose
from shared import messages as M

# ============================================================================ CL-15: refunds

async def load_deal_for_refund(ctx: Ctx, deal_id: str) -> Deal:
    """The deal a refund is posted against, under its row lock, not yet settled: a signed webhook may
    address any deal by id (it cannot read it); anyone else must see it (access.require_refund_target)."""
    return access.require_refund_target(ctx.actor, await get_deal(ctx.session, deal_id))


async def record_refund(ctx: Ctx, deal: Deal, external_id: str, amount: Decimal, currency: str,
                        refunded_at: datetime) -> tuple[Refund, bool]:
    """CL-15: recorded against the deal and the payment it returns (the latest payment made before
    the refund); `within_window` = within 10 days of the FIRST payment (PAY-4), judged on the refund's
    own time (a refund dated inside the window but recorded after its end is still within: payroll
    then voids the PAY-5 line). Idempotent. The payment refunded in full inside the window ends the
    deal: lost, reason `refunded`."""
    existing = (await ctx.session.execute(select(Refund).where(Refund.external_id == external_id))
                ).scalar_one_or_none()
    if existing is not None:
        # Issue 8 §11: a redelivery is the same refund (one effect); the same external_id with another body
        # is a conflict naming each differing field.
        errors = []
        if existing.deal_id != deal.id:
            errors.append(M.item("deal_id", M.REFUND_RECORDED_DEAL))
        if Decimal(existing.amount) != amount:
            errors.append(M.item("amount", M.REFUND_RECORDED_AMOUNT, amount=str(existing.amount)))
        if existing.currency != currency:
            errors.append(M.item("currency", M.REFUND_RECORDED_CURRENCY, currency=existing.currency))
        if not _same_instant(existing.refunded_at, refunded_at):
            errors.append(M.item("refunded_at", M.REFUND_RECORDED_AT))
        if errors:
            raise Conflict("this external_id was already used for a different refund: "
                           + ", ".join(e["field"] for e in errors), errors=errors)
        return existing, False
    payment = (await ctx.session.execute(select(Payment).where(
        Payment.deal_id == deal.id, Payment.paid_at <= refunded_at).order_by(Payment.paid_at.desc()))
               ).scalars().first()
    if payment is None:
        raise M.error("refunded_at", M.REFUND_NO_PAYMENT)
    if currency != payment.currency:
        raise M.error("currency", M.REFUND_CURRENCY, currency=payment.currency)
    refunded = (await ctx.session.execute(select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.payment_id == payment.id))).scalar_one()
    if Decimal(refunded) + amount > payment.amount:
        raise M.error("amount", M.REFUND_TOO_MUCH, amount=str(payment.amount), currency=payment.currency)
    rv = await rule_values(ctx.session, deal.first_payment_at)
    within = rules.refund_within_window(refunded_at, deal.first_payment_at, rv, ctx.cal)
    with deal_span(deal, "refund"):
        refund = Refund(external_id=external_id, deal_id=deal.id, payment_id=payment.id, amount=amount,
                        currency=currency, refunded_at=refunded_at, within_window=within, created_at=ctx.now)
        ctx.session.add(refund)
        await refresh_money(ctx.session, deal)
        ctx.emit(RefundRecorded(deal_id=deal.id, client_id=deal.client_id, occurred_at=refunded_at,
                                manager=manager_of(deal), refund_id=refund.id, payment_id=payment.id, amount=amount,
                                currency=currency, refunded_at=refunded_at, first_payment_at=deal.first_payment_at,
                                within_window=within))
        history(ctx, deal, refunded_at, "refund", f"refunded {amount} {currency}", code="refund.recorded",
                refund_id=refund.id, within_window=within, amount=str(amount), currency=currency)
        ctx.audit("refund.recorded", deal.id, refund_id=refund.id, amount=str(amount))
        # CL-15 / issue 7 §6: the whole payment returned inside the 10 days ends the deal (never
        # "after a month of service": no PAY-3; PAY-4 comes from the refund, once per deal).
        if within and Decimal(refunded) + amount >= payment.amount and deal.stage != "lost":
            await lose(ctx, deal, "refunded", refunded_at, after_full_month=False)
    return refund, True


def _same_instant(a: datetime, b: datetime) -> bool:
    """Two instants equal (a stored naive value is UTC, as UTCDateTime writes it)."""
    if a.tzinfo is None:
        a = a.replace(tzinfo=UTC)
    if b.tzinfo is None:
        b = b.replace(tzinfo=UTC)
    return a == b


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
