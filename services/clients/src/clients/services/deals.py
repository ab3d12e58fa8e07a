"""A payment creates a deal (CL-3) or renews it (CL-14); stages CL-4…CL-9; completing tasks;
the client card (CL-1)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from shared.errors import Conflict, NotFound
from shared.events.clients import (
    ClientProfileChanged,
    DealManagerAssigned,
    DealPaid,
    DealStageChanged,
)
from shared.telemetry import inject_headers
from sqlalchemy import func, select

from clients import access, rules
from clients.crypto import decrypt_credentials, encrypt_credentials
from clients.leads import search_text_of
from clients.models import (
    Attachment,
    Client,
    Deadline,
    Deal,
    Lead,
    Payment,
    StaffMember,
    Task,
)
from clients.schemas import (
    ClientIn,
    ClientPatchIn,
    Errors,
    PaymentIn,
    check_aware,
    check_currency,
    parse_money,
    validate_card,
    validate_client,
)
from clients.services.core import (
    Ctx,
    assign_least_loaded,
    change_stage,
    deal_span,
    get_deal,
    history,
    rule_values,
    settle_deal,
    timer_key,
)
from clients.services.lists import refresh_money
from clients.services.periods import open_period, renew
from clients.services.tasks import (
    create_deadline,
    create_task,
    finish_task,
    open_task,
    require_checklist_done,
    resolve_deadline,
)
from shared import messages as M
from shared import timers

# ============================================================================ CL-3: a payment creates a deal

def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


async def find_or_create_client(ctx: Ctx, data: ClientIn, at: datetime) -> Client:
    """CL-1 / issue 8 §4. Decision: a client card is the PERSON, shared by the deals of that person.

    - A returning client (same phone digits) keeps one card and gets a new deal, whoever the new deal's
      responsible manager is; the card fields of the new payment do not overwrite the card (an edit does).
    - The card is seen only through a deal: an actor sees and edits it exactly when they may see / change
      one of the client's deals (clients.access); so the managers of any of its deals (and the lead, the
      analyst read-only) see it, and a manager with no deal for that client never does — no route reads
      or writes a client by its own id, and lists show only visible deals.
    - Every edit is audited (old and new values, who) and written on the timeline of EVERY deal of the
      client (`update_client`), so each manager concerned sees who changed their client's card.
    - One card per phone: an edit may not give a card another card's phone digits (409, `update_client`),
      so matching stays unambiguous and nobody can steer a stranger's next payment onto their card."""
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
    client.search_text = search_text_of(client.full_name, client.phone, client.instagram, client.email)
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
    """CL-3 (new client) or CL-14 (renewal, `deal_id` given). Idempotent on `external_id`: the same
    payment again → the same deal (200), also when the copies race (issue 7 §4: on PostgreSQL the
    transaction first takes an advisory lock on the external id, so a racing copy waits for the first
    to commit and then finds it; SQLite has one writer). The same `external_id` with a different
    amount, currency, client or deal is a 409 naming each field that differs.

    A renewal is judged on its own time (issue 7 §1): the deal's timers due strictly before `paid_at`
    fire first (an automatic loss dated before the payment happens, and is then undone or not)."""
    amount, currency = validate_payment(data)
    if data.paid_at > ctx.now:
        raise M.error("paid_at", M.PAYMENT_IN_FUTURE)
    if ctx.session.bind.dialect.name == "postgresql":
        await ctx.session.execute(select(func.pg_advisory_xact_lock(func.hashtext("payment:" + data.external_id))))
    existing = (await ctx.session.execute(select(Payment).where(Payment.external_id == data.external_id))
                ).scalar_one_or_none()
    if existing is not None:
        deal = await get_deal(ctx.session, existing.deal_id)
        await require_same_payment(ctx, existing, deal, data, amount, currency)
        await settle_deal(ctx, deal)
        return PaymentResult(deal, created=False)
    if data.deal_id is not None:
        deal = await get_deal(ctx.session, data.deal_id)
        if deal is None:
            raise M.refusal(NotFound, "deal_id", M.DEAL_NOT_FOUND)
        await settle_deal(ctx, deal, before=data.paid_at)
        await renew(ctx, deal, data, amount, currency)
    else:
        deal = await open_deal(ctx, data, amount, currency)
    await settle_deal(ctx, deal)
    return PaymentResult(deal, created=True)


async def require_same_payment(ctx: Ctx, existing: Payment, deal: Deal, data: PaymentIn, amount: Decimal,
                               currency: str) -> None:
    """Issue 7 §4: a repeated `external_id` must be the same payment; each field that differs is named
    (amount, currency, deal_id, client — the client is the same person when the phone digits match)."""
    errors = []
    if amount != existing.amount:
        errors.append(M.item("amount", M.PAYMENT_RECORDED_AMOUNT, amount=str(existing.amount)))
    if currency != existing.currency:
        errors.append(M.item("currency", M.PAYMENT_RECORDED_CURRENCY, currency=existing.currency))
    if data.deal_id is not None and data.deal_id != existing.deal_id:
        errors.append(M.item("deal_id", M.PAYMENT_RECORDED_DEAL))
    if data.client is not None and data.client.phone:
        client = await ctx.session.get(Client, deal.client_id)
        if _digits(data.client.phone) != client.phone_digits:
            errors.append(M.item("client", M.PAYMENT_RECORDED_CLIENT))
    if errors:
        raise Conflict("this external_id was already used for a different payment: "
                       + ", ".join(e["field"] for e in errors), errors=errors)


async def open_deal(ctx: Ctx, data: PaymentIn, amount: Decimal, currency: str) -> Deal:
    paid_at = data.paid_at
    rv = await rule_values(ctx.session, paid_at)
    lead = None
    if data.lead_id is not None:
        lead = await ctx.session.get(Lead, data.lead_id)
        if lead is None:
            raise M.refusal(NotFound, "lead_id", M.LEAD_NOT_FOUND)
        if lead.deal_id is not None:
            raise M.refusal(Conflict, "lead_id", M.LEAD_ALREADY_CONVERTED)
    if data.responsible_manager:
        member = await ctx.session.get(StaffMember, data.responsible_manager)
        if member is None or member.role != "content_manager" or not member.active:
            raise M.error("responsible_manager", M.NOT_A_MANAGER_IN_ROSTER)
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
        await refresh_money(ctx.session, deal)
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
            from clients.inbox_leads import notify

            lead.stage, lead.paid_at, lead.deal_id = "paid", paid_at, deal.id
            lead.disqualified = lead.disqualified_at = None  # a payment is no spam
            await notify(ctx, lead, paid_at)
        await emit_profile(ctx, client, paid_at)
    return deal


async def emit_profile(ctx: Ctx, client: Client, at: datetime) -> None:
    """Issue 10: the client's display name and Instagram handle for the content service, through the
    outbox, once per deal of the client (the envelope's `deal_id`; `deal_ids` lists them all)."""
    deal_ids = list((await ctx.session.execute(select(Deal.id).where(Deal.client_id == client.id)
                                               .order_by(Deal.created_at, Deal.id))).scalars())
    for deal_id in deal_ids:
        ctx.emit(ClientProfileChanged(deal_id=deal_id, client_id=client.id, occurred_at=at,
                                      full_name=client.full_name, instagram=client.instagram or "",
                                      deal_ids=deal_ids))


# ============================================================================ CL-4 … CL-9: stages

async def mark_contacted(ctx: Ctx, deal: Deal, at: datetime) -> None:
    """CL-4: after the first call the stage is Contacted; the first-call task is done at that moment."""
    if not rules.can_move(deal.stage, "contacted"):
        raise M.refusal(Conflict, "stage", M.DEAL_STAGE_MOVE, from_stage=deal.stage, to_stage="contacted")
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
        raise M.refusal(Conflict, "stage", M.DEAL_LOST)
    with deal_span(deal, "questionnaire"):
        if deal.questionnaire_received_at is not None:
            deal.questionnaire = answers
            history(ctx, deal, received_at, "questionnaire", "questionnaire updated", code="questionnaire.updated")
            return
        if received_at < deal.first_payment_at:
            raise M.error("received_at", M.QUESTIONNAIRE_BEFORE_PAYMENT)
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
        raise M.refusal(Conflict, "stage", M.DEAL_STAGE_MOVE, from_stage=deal.stage, to_stage="project_launched")
    if rules.local_midnight(ctx.cal, service_start) < rules.local_midnight(
            ctx.cal, rules.local_date(ctx.cal, deal.first_payment_at)):
        raise M.error("service_start", M.SERVICE_BEFORE_PAYMENT)
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
        raise M.refusal(NotFound, None, M.NO_CREDENTIALS)
    ctx.audit("credentials.revealed", deal.id)
    creds = decrypt_credentials(ctx.settings, deal.credentials)
    return {"instagram_login": creds["login"], "instagram_password": creds["password"]}


# ============================================================================ tasks

async def complete_task(ctx: Ctx, task: Task, at: datetime) -> Deal:
    deal = await get_deal(ctx.session, task.deal_id)  # the deal's row lock, then the task as it is now
    await ctx.session.refresh(task)
    access.require_task_complete(ctx.actor, deal, task)
    await settle_deal(ctx, deal, before=at)  # judged on its own time: a call at the due time meets it
    if task.status != "open":
        raise M.refusal(Conflict, "task_id", M.TASK_STATE, status=task.status)
    if at < task.created_at:
        raise M.error("at", M.TASK_BEFORE_CREATED)
    if task.kind == "renewal_call":
        await require_recording(ctx, task)
    require_checklist_done(task)
    with deal_span(deal, f"task.{task.kind}"):
        if task.kind == "first_call" and deal.stage == "new":
            await mark_contacted(ctx, deal, at)  # CL-4: the call done means the client was contacted
        else:
            await finish_task(ctx, deal, task, at, ctx.actor.login)
    await settle_deal(ctx, deal)
    return deal


async def require_recording(ctx: Ctx, task: Task) -> None:
    """CL-11: the renewal call must be recorded and the recording attached to the deal: an audio
    attachment linked to this task, or uploaded to the deal since the task opened."""
    recordings = (await ctx.session.execute(select(Attachment).where(
        Attachment.deal_id == task.deal_id, Attachment.content_type.like("audio/%")))).scalars().all()
    if not any(a.task_id == task.id or (a.task_id is None and a.uploaded_at >= task.created_at)
               for a in recordings):
        raise M.error("attachment", M.RENEWAL_CALL_RECORDING)


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
    if "phone" in changes:
        digits = _digits(card["phone"])
        if digits and digits != client.phone_digits and (await ctx.session.execute(
                select(Client.id).where(Client.phone_digits == digits, Client.id != client.id).limit(1))
        ).scalar_one_or_none() is not None:
            # Issue 8 §4: one card per phone. Not named: the other card may be a client the actor has no deal for.
            raise M.refusal(Conflict, "phone", M.PHONE_TAKEN)
    for name, (_old, new) in changes.items():
        setattr(client, name, new)
    if "phone" in changes:
        client.phone_digits = _digits(client.phone)
    client.search_text = search_text_of(client.full_name, client.phone, client.instagram, client.email)
    fields = sorted(changes)
    ctx.audit("client.updated", client.id, changes=changes)
    for deal in (await ctx.session.execute(select(Deal).where(Deal.client_id == client.id))).scalars():
        with deal_span(deal, "client_updated"):
            history(ctx, deal, ctx.now, "client", f"client card changed: {', '.join(fields)}", code="client.updated",
                    fields=fields)
    await emit_profile(ctx, client, ctx.now)
    return fields
