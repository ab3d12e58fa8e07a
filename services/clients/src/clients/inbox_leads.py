"""Leads from the inbox (issue 15, CL-16 × EN-1): a conversation on one of the agency's own sales accounts
becomes a lead in the `dialog` stage; the lead is matched, never duplicated; the funnel counts it per
administrator (the agent who answered first), per channel and per period.

- `engagement.conversation.sales_dialog_started.v1` → `on_dialog_started`: the person is matched to an existing
  lead by phone, e-mail or Instagram username (normalised: `phone_key`, `email_key`, `instagram_key`), or by the
  same handle on the same kind of channel; otherwise a lead is registered (name as the channel shows it, the
  contacts it gave, `channel` = the channel kind, `owner` = whoever answers first). The conversation is linked
  (`lead_conversations`). Contacts the lead lacks are filled from the message; none it has are overwritten.
- `engagement.conversation.answered.v1` (`sales`: true) → `on_answered`: the first answer of the conversation;
  the lead's first answerer becomes its owner — the administrator of the funnel — if it has none yet.
- Every change of an inbox lead (registered, linked, stage, paid, spam / wrong number) publishes
  `clients.lead.stage_changed.v1` with the lead's conversations, which the inbox records.

Who may (choice where the issue is silent): care agents and senior agents answer the sales accounts, so they
see and work the leads that came from the inbox (not the ones entered by hand); the lead and integrations all;
a content manager their own (as before).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from shared.auth import Actor
from shared.consumer import Subscription
from shared.errors import Conflict, Forbidden, NotFound
from shared.events.clients import LeadStageChanged
from shared.events.engagement import ConversationAnswered, SalesDialogStarted
from shared.service import Runtime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clients import access
from clients.models import Lead, LeadConversation
from shared import messages as M

SALES_AGENTS = ("care_agent", "senior_agent")
DISQUALIFY_REASONS = ("spam", "wrong_number")
PayerType = Literal["individual", "legal"]


# ---------------------------------------------------------------- contact keys

def phone_key(phone: str) -> str:
    """Digits, Kazakhstan/Russia numbers folded to one form: `8 701 …` and `+7 701 …` and `701 …` → `7701…`."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    elif len(digits) == 10:
        digits = "7" + digits
    return digits if len(digits) >= 7 else ""


def email_key(email: str) -> str:
    value = (email or "").strip().lower()
    return value if "@" in value else ""


def instagram_key(value: str) -> str:
    """The username of `@name`, `name`, `instagram.com/name`, `https://www.instagram.com/name/?igsh=…`."""
    v = (value or "").strip().lower()
    v = re.sub(r"^https?://", "", v)
    v = re.sub(r"^(www\.)?instagram\.com/", "", v)
    v = v.split("?")[0].split("#")[0].strip("/").lstrip("@")
    return v if re.fullmatch(r"[a-z0-9._]{1,30}", v) else ""


def set_keys(lead: Lead) -> None:
    from clients.leads import search_text_of

    lead.phone_key, lead.email_key = phone_key(lead.phone), email_key(lead.email)
    lead.instagram_key = instagram_key(lead.instagram)
    lead.search_text = search_text_of(lead.full_name, lead.phone, lead.instagram, lead.email)


# ---------------------------------------------------------------- who may

def is_inbox_lead(lead: Lead) -> bool:
    return bool(lead.channel)


def can_see(actor: Actor, lead: Lead) -> bool:
    from clients.leads import can_see_lead

    return can_see_lead(actor, lead)


def require_change(actor: Actor, lead: Lead | None) -> Lead:
    if lead is None or not can_see(actor, lead):
        raise M.refusal(NotFound, None, M.LEAD_NOT_FOUND)
    if actor.role == access.ANALYST:
        raise M.refusal(Forbidden, None, M.ANALYST_READS_ONLY)
    return lead


# ---------------------------------------------------------------- the inbox follows the lead

async def conversations_of(session: AsyncSession, lead_id: str) -> list[LeadConversation]:
    return list((await session.execute(select(LeadConversation).where(LeadConversation.lead_id == lead_id)
                                       .order_by(LeadConversation.first_message_at,
                                                 LeadConversation.conversation_id))).scalars())


async def notify(ctx: Any, lead: Lead, at: datetime | None = None) -> None:
    """Tell the inbox where the lead stands (only a lead with conversations)."""
    ids = [c.conversation_id for c in await conversations_of(ctx.session, lead.id)]
    if not ids:
        return
    ctx.emit(LeadStageChanged(lead_id=lead.id, stage=lead.stage, at=at or ctx.now, occurred_at=ctx.now,
                              conversation_ids=ids, owner=lead.owner, disqualified=lead.disqualified,
                              deal_id=lead.deal_id))


def conversation_view(c: LeadConversation) -> dict[str, Any]:
    from clients.views import iso

    return {"conversation_id": c.conversation_id, "channel_id": c.channel_id, "channel_kind": c.channel_kind,
            "customer_name": c.customer_name, "customer_handle": c.customer_handle,
            "first_message_at": iso(c.first_message_at), "answered_by": c.answered_by,
            "answered_at": iso(c.answered_at)}


async def lead_detail(session: AsyncSession, lead: Lead) -> dict[str, Any]:
    from clients.views import lead_view

    return lead_view(lead) | {"conversations": [conversation_view(c) for c in
                                                await conversations_of(session, lead.id)]}


# ---------------------------------------------------------------- consumers

async def match_lead(session: AsyncSession, event: SalesDialogStarted) -> Lead | None:
    keys = [(Lead.phone_key, phone_key(event.phone)), (Lead.email_key, email_key(event.email)),
            (Lead.instagram_key, instagram_key(event.instagram))]
    for column, key in keys:
        if key:
            found = (await session.execute(select(Lead).where(column == key)
                                           .order_by(Lead.created_at, Lead.id).limit(1))).scalar_one_or_none()
            if found is not None:
                return found
    if event.customer_handle:
        lead_id = (await session.execute(select(LeadConversation.lead_id).where(
            LeadConversation.channel_kind == event.channel_kind,
            LeadConversation.customer_handle == event.customer_handle,
            LeadConversation.lead_id.is_not(None)).limit(1))).scalar_one_or_none()
        if lead_id is not None:
            return await session.get(Lead, lead_id)
    return None


async def on_dialog_started(ctx: Any, event: SalesDialogStarted) -> Lead:
    session = ctx.session
    link = await session.get(LeadConversation, event.conversation_id)
    if link is not None and link.lead_id is not None:
        return await session.get(Lead, link.lead_id)  # already registered
    lead = await match_lead(session, event)
    instagram = f"https://instagram.com/{instagram_key(event.instagram)}" if instagram_key(event.instagram) else ""
    if lead is None:
        name = event.customer_name.strip() or event.customer_handle.strip() or event.channel_kind
        lead = Lead(full_name=name[:300], phone=event.phone[:50], instagram=instagram, email=event.email[:300],
                    product="", payer_type="individual", notes="", source=event.channel_kind,
                    channel=event.channel_kind, owner="", stage="dialog", created_at=event.first_message_at)
        session.add(lead)
    else:
        lead.phone = lead.phone or event.phone[:50]
        lead.email = lead.email or event.email[:300]
        lead.instagram = lead.instagram or instagram
    set_keys(lead)
    await session.flush()
    if link is None:
        link = LeadConversation(conversation_id=event.conversation_id, created_at=ctx.now)
        session.add(link)
    link.lead_id, link.channel_id, link.channel_kind = lead.id, event.channel_id, event.channel_kind
    link.customer_name, link.customer_handle = event.customer_name[:300], event.customer_handle[:300]
    link.first_message_at = event.first_message_at
    if not lead.owner and link.answered_by:
        lead.owner = link.answered_by
    await session.flush()
    await notify(ctx, lead, event.first_message_at)
    return lead


async def on_answered(ctx: Any, event: ConversationAnswered) -> None:
    session = ctx.session
    link = await session.get(LeadConversation, event.conversation_id)
    if link is None:  # the answer was consumed before the dialog: keep it for the lead to come
        link = LeadConversation(conversation_id=event.conversation_id, channel_id=event.channel_id,
                                channel_kind=event.channel_kind, customer_name="", customer_handle="",
                                first_message_at=event.first_message_at, created_at=ctx.now)
        session.add(link)
    if link.answered_by is None:
        link.answered_by, link.answered_at = event.agent, event.answered_at
    if link.lead_id is not None:
        lead = await session.get(Lead, link.lead_id)
        if lead is not None and not lead.owner:
            lead.owner = event.agent
            await session.flush()
            await notify(ctx, lead)
    await session.flush()


def subscriptions(runtime: Runtime) -> list[Subscription]:
    from clients import services

    def ctx(session: AsyncSession) -> Any:
        return services.Ctx(session, runtime.clock, runtime.settings, services.SYSTEM, runtime.scheduler.handlers)

    async def dialog(event: SalesDialogStarted, session: AsyncSession) -> None:
        await on_dialog_started(ctx(session), event)

    async def answered(event: ConversationAnswered, session: AsyncSession) -> None:
        if event.sales:
            await on_answered(ctx(session), event)

    return [Subscription("clients-engagement", {SalesDialogStarted.subject: dialog,
                                                ConversationAnswered.subject: answered})]


# ---------------------------------------------------------------- API

class LeadPatchIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """CL-1 fields from the conversation; a field left out stays."""

    full_name: str | None = None
    phone: str | None = None
    instagram: str | None = None
    email: str | None = None
    product: str | None = None
    payer_type: PayerType | None = None
    company_name: str | None = None
    bin: str | None = None
    notes: str | None = None


class DisqualifyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Literal["spam", "wrong_number"] | None  # None: back into the funnel


async def patch_lead(ctx: Any, lead: Lead, data: LeadPatchIn) -> Lead:
    from clients.schemas import Errors, check_instagram

    errors = Errors()
    if data.full_name is not None and not data.full_name.strip():
        errors.add("full_name", M.REQUIRED)
    if data.email is not None and data.email.strip() and not email_key(data.email):
        errors.add("email", M.EMAIL)
    if data.phone is not None and data.phone.strip() and not phone_key(data.phone):
        errors.add("phone", M.PHONE)
    instagram = check_instagram(errors, "instagram", data.instagram)
    payer = data.payer_type or lead.payer_type
    bin_ = data.bin if data.bin is not None else lead.bin
    if payer == "legal" and bin_ and len(bin_.strip()) != 12:
        errors.add("bin", M.BIN_LENGTH)
    errors.raise_if_any()
    for name in ("full_name", "phone", "email", "product", "company_name", "bin", "notes"):
        value = getattr(data, name)
        if value is not None:
            setattr(lead, name, value.strip())
    if instagram is not None:
        lead.instagram = instagram
    if data.payer_type is not None:
        lead.payer_type = data.payer_type
    set_keys(lead)
    await ctx.session.flush()
    return lead


async def disqualify(ctx: Any, lead: Lead, reason: str | None) -> Lead:
    """Spam / wrong number: the lead leaves the funnel (a converted lead cannot)."""
    if reason is not None and lead.deal_id is not None:
        raise M.refusal(Conflict, "reason", M.LEAD_PAID_NOT_SPAM)
    lead.disqualified = reason
    lead.disqualified_at = ctx.now if reason else None
    await ctx.session.flush()
    await notify(ctx, lead)
    return lead


def _ctx(session: AsyncSession, runtime: Runtime, actor: Actor) -> Any:
    from clients import services

    return services.Ctx(session, runtime.clock, runtime.settings, actor, runtime.scheduler.handlers)


@get("/leads/by-conversation/{conversation_id:str}")
async def get_lead_of_conversation(conversation_id: str, session: NamedDependency[AsyncSession],
                                   actor: NamedDependency[Actor]) -> dict[str, Any]:
    """The lead an inbox conversation belongs to (404 if none — a client account's conversation, or not yet
    registered)."""
    access.require_reader(actor)
    link = await session.get(LeadConversation, conversation_id)
    lead = await session.get(Lead, link.lead_id) if link is not None and link.lead_id else None
    if lead is None or not can_see(actor, lead):
        raise M.refusal(NotFound, None, M.LEAD_NO_CONVERSATION)
    return await lead_detail(session, lead)


@patch("/leads/{lead_id:str}")
async def patch_lead_route(lead_id: str, data: JSONBody[LeadPatchIn], session: NamedDependency[AsyncSession],
                           runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.CONTENT_MANAGER, *SALES_AGENTS)
    lead = require_change(actor, await session.get(Lead, lead_id))
    await patch_lead(_ctx(session, runtime, actor), lead, data)
    return await lead_detail(session, lead)


@post("/leads/{lead_id:str}/disqualify", status_code=200)
async def post_disqualify(lead_id: str, data: JSONBody[DisqualifyIn], session: NamedDependency[AsyncSession],
                          runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.CONTENT_MANAGER, *SALES_AGENTS)
    lead = require_change(actor, await session.get(Lead, lead_id))
    await disqualify(_ctx(session, runtime, actor), lead, data.reason)
    return await lead_detail(session, lead)


routes = [get_lead_of_conversation, patch_lead_route, post_disqualify]
