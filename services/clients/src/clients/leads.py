"""CL-16: leads and the funnel report.

A lead is registered with the CL-1 fields, a source and the admin/manager who runs the dialog
(`owner`), and moves dialog → warm_lead → application → paid; a payment with `lead_id` converts it
(services.open_deal). Stages only move forward; a backdated move keeps each step's own timestamp.

Funnel (choice where DOMAIN is silent): a cohort report. The leads whose dialog started in the month
(agency time zone), optionally of one owner, are counted at every step they reached — whenever they
reached it — and the deals they became are counted as launched, renewed (at least one renewal
payment) or lost. A payment without a lead is not in the funnel (it has no dialog to count).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from shared.errors import Conflict, NotFound
from sqlalchemy import false, func, select, true

from clients import access, rules
from clients.inbox_leads import notify, set_keys
from clients.models import Deal, Lead, Payment
from clients.schemas import EMAIL, Errors, LeadIn, Page, check_aware, check_instagram
from shared import messages as M

MANUAL = "manual"  # the funnel's channel of the leads entered by hand
STAGE_FIELDS = {"warm_lead": "warm_at", "application": "application_at", "paid": "paid_at"}


def validate_lead(data: LeadIn) -> None:
    errors = Errors()
    errors.require("full_name", data.full_name)
    if not (data.phone or data.instagram or data.email):
        errors.add("phone", M.LEAD_CONTACT_NEEDED)
    if data.email and not EMAIL.fullmatch(data.email.strip()):
        errors.add("email", M.EMAIL)   # issue 9: as on the client card (CL-1)
    if data.payer_type == "legal" and data.bin and len(data.bin) != 12:
        errors.add("bin", M.BIN_LENGTH)
    data.instagram = check_instagram(errors, "instagram", data.instagram)   # issue 8 item 5
    check_aware(errors, "at", data.at)
    errors.raise_if_any()


async def create_lead(ctx, data: LeadIn) -> Lead:
    from clients.services import fact_time

    validate_lead(data)
    at = fact_time(ctx, data.at)
    owner = data.owner or ctx.actor.login
    if ctx.actor.role == access.CONTENT_MANAGER and owner != ctx.actor.login:
        raise M.error("owner", M.LEAD_OWN)
    lead = Lead(full_name=data.full_name.strip(), phone=data.phone or "", instagram=data.instagram or "",
                email=data.email or "", product=data.product or "", payer_type=data.payer_type,
                company_name=data.company_name, bin=data.bin, notes=data.notes or "", source=data.source or "",
                owner=owner, stage="dialog", created_at=at)
    set_keys(lead)
    ctx.session.add(lead)
    await ctx.session.flush()
    return lead


SALES_AGENTS = ("care_agent", "senior_agent")  # they answer the sales accounts: the leads from the inbox (issue 15)


def can_see_lead(actor, lead: Lead) -> bool:
    if actor.role in (access.LEAD, access.INTEGRATION, access.ANALYST):
        return True
    if actor.role in SALES_AGENTS:
        return bool(lead.channel)
    return actor.role == access.CONTENT_MANAGER and lead.owner == actor.login


def visible_leads(actor) -> Any:
    """`can_see_lead` as a SQL condition, so the list filters, counts and pages in the database."""
    if actor.role in (access.LEAD, access.INTEGRATION, access.ANALYST):
        return true()
    if actor.role == access.CONTENT_MANAGER:
        return Lead.owner == actor.login
    if actor.role in SALES_AGENTS:
        return Lead.channel != ""
    return false()


def search_text_of(*values: str | None) -> str:
    """What `q` searches: name and contacts, lower-cased here (SQLite's lower() knows ASCII only, and
    the names are Cyrillic), plus the phone's digits so "7010" finds "+7 701 0…"."""
    text = " ".join(v.strip().lower() for v in values if v)
    digits = "".join(ch for ch in text if ch.isdigit())
    return f"{text} {digits}".strip()


LEAD_SORTS = ("created_at", "full_name", "stage", "owner", "warm_at", "application_at", "paid_at")
LEAD_DEFAULT_SORT = "-created_at"


async def list_leads(session, actor, page: Page, *, stage: str | None = None, owner: str | None = None,
                     q: str | None = None) -> tuple[list[Lead], int]:
    """One page of the leads `actor` may see, and how many there are in all. `q` matches a part of
    the name, phone, Instagram or e-mail, in any case. Stages sort in funnel order; ties by id."""
    from clients.services import ordered, stage_order

    where = [visible_leads(actor)]
    if stage:
        where.append(Lead.stage == stage)
    if owner:
        where.append(Lead.owner == owner)
    if q and q.strip():
        where.append(Lead.search_text.contains(q.strip().lower(), autoescape=True))
    total = (await session.execute(select(func.count()).select_from(Lead).where(*where))).scalar_one()
    columns = {"created_at": Lead.created_at, "full_name": Lead.full_name, "owner": Lead.owner,
               "stage": stage_order(Lead.stage, rules.LEAD_STAGES), "warm_at": Lead.warm_at,
               "application_at": Lead.application_at, "paid_at": Lead.paid_at}
    nullable = page.sort in ("warm_at", "application_at", "paid_at")
    query = (select(Lead).where(*where).order_by(*ordered(columns[page.sort], page.descending, nullable=nullable),
                                                  Lead.id).limit(page.limit).offset(page.offset))
    return list((await session.execute(query)).scalars()), total


async def get_lead(session, actor, lead_id: str) -> Lead:
    """One lead, under the list's rules: a lead the actor may not see answers 404, as if absent."""
    lead = await session.get(Lead, lead_id)
    if lead is None or not can_see_lead(actor, lead):
        raise M.refusal(NotFound, None, M.LEAD_NOT_FOUND)
    return lead


async def move_lead(ctx, lead: Lead, stage: str, at: datetime) -> None:
    """CL-16: forward only; `paid` comes from a payment (it needs a deal), not from this call."""
    if stage == "paid":
        raise M.error("stage", M.LEAD_PAID_BY_PAYMENT)
    order = rules.LEAD_STAGES
    if order.index(stage) <= order.index(lead.stage):
        raise M.refusal(Conflict, "stage", M.LEAD_AT_STAGE, stage=lead.stage)
    if at < lead.created_at:
        raise M.error("at", M.LEAD_BEFORE_DIALOG)
    if lead.disqualified:
        raise M.refusal(Conflict, "stage", M.LEAD_DISQUALIFIED, reason=lead.disqualified)
    for step in order[order.index(lead.stage) + 1: order.index(stage) + 1]:
        if step in STAGE_FIELDS and getattr(lead, STAGE_FIELDS[step]) is None:
            setattr(lead, STAGE_FIELDS[step], at)  # skipped steps count as reached at the same moment
    lead.stage = stage
    await notify(ctx, lead, at)


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def funnel_of(leads: list[Lead], deals: dict[str, Deal], renewed_ids: set[str]) -> dict[str, Any]:
    """The funnel of one group of leads: the count at every step (reached whenever), the conversion from
    the step before, and the median time (seconds) from the first message to warm / application / paid."""
    mine = [deals[lead.deal_id] for lead in leads if lead.deal_id in deals]
    counts = {
        "dialogs": len(leads),
        "warm_leads": sum(1 for lead in leads if lead.warm_at is not None),
        "applications": sum(1 for lead in leads if lead.application_at is not None),
        "paid": sum(1 for lead in leads if lead.paid_at is not None),
        "launched": sum(1 for deal in mine if deal.launched_at is not None),
        "renewed": sum(1 for deal in mine if deal.id in renewed_ids),
        "lost": sum(1 for deal in mine if deal.stage == "lost"),
    }
    steps = rules.funnel(counts)
    fields = {"warm_leads": "warm_at", "applications": "application_at", "paid": "paid_at"}
    for step in steps:
        field = fields.get(step["step"])
        step["median_seconds_from_first_message"] = None if field is None else _median(
            [(getattr(lead, field) - lead.created_at).total_seconds() for lead in leads
             if getattr(lead, field) is not None])
    return {"steps": steps}


async def funnel_report(ctx, month: str | None, manager: str | None, *, channel: str | None = None,
                        date_from: str | None = None, date_to: str | None = None) -> dict:
    """CL-16 × issue 15: the cohort of leads whose dialog started in the period (a month `YYYY-MM`, or
    `from`…`to` inclusive, agency time zone), optionally of one administrator (`manager`: the lead's owner —
    for an inbox lead the agent who answered first) and one channel (`manual` for the leads entered by hand).
    Spam and wrong numbers are left out. Besides the totals: the same funnel per administrator and per channel."""
    errors = Errors()
    first = last = None
    if date_from or date_to:
        try:
            first = date.fromisoformat(date_from or "")
        except ValueError:
            errors.add("from", M.FUNNEL_DATE)
        try:
            last = date.fromisoformat(date_to or "")
        except ValueError:
            errors.add("to", M.FUNNEL_DATE)
        if first and last and last < first:
            errors.add("to", M.FUNNEL_TO_BEFORE_FROM)
    elif month:
        try:
            first = date.fromisoformat(month + "-01")
            last = rules.add_months(first, 1) - timedelta(days=1)
        except ValueError:
            raise M.error("month", M.MONTH_FORMAT) from None
    else:
        errors.add("month", M.FUNNEL_MONTH)
    errors.raise_if_any()
    start = rules.local_midnight(ctx.cal, first)
    end = rules.local_midnight(ctx.cal, last + timedelta(days=1))
    query = select(Lead).where(Lead.created_at >= start, Lead.created_at < end, Lead.disqualified.is_(None))
    if manager:
        query = query.where(Lead.owner == manager)
    if channel:
        query = query.where(Lead.channel == ("" if channel == MANUAL else channel))
    leads = list((await ctx.session.execute(query.order_by(Lead.created_at, Lead.id))).scalars())
    deal_ids = [lead.deal_id for lead in leads if lead.deal_id]
    deals = {d.id: d for d in (await ctx.session.execute(select(Deal).where(Deal.id.in_(deal_ids)))).scalars()} \
        if deal_ids else {}
    renewed_ids: set[str] = set()
    if deal_ids:
        renewed_ids = set((await ctx.session.execute(select(Payment.deal_id).where(
            Payment.deal_id.in_(deal_ids), Payment.renewal.is_(True)).group_by(Payment.deal_id))).scalars())
    by_owner: dict[str, list[Lead]] = {}
    by_channel: dict[str, list[Lead]] = {}
    for lead in leads:
        by_owner.setdefault(lead.owner, []).append(lead)
        by_channel.setdefault(lead.channel or MANUAL, []).append(lead)
    return {"month": month if not (date_from or date_to) else None, "from": first.isoformat(),
            "to": last.isoformat(), "manager": manager, "channel": channel,
            "cohort": "leads whose dialog started in the period", **funnel_of(leads, deals, renewed_ids),
            "by_administrator": [{"administrator": owner, **funnel_of(group, deals, renewed_ids)}
                                 for owner, group in sorted(by_owner.items())],
            "by_channel": [{"channel": name, **funnel_of(group, deals, renewed_ids)}
                           for name, group in sorted(by_channel.items())]}


async def count_leads(session) -> int:
    return (await session.execute(select(func.count()).select_from(Lead))).scalar_one()
