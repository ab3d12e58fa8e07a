"""The agency's own sales accounts (issue 15, CL-16 × EN-1).

A channel account marked `sales` is one of the agency's own accounts (its Instagram, Telegram bot, site
form…), as opposed to a client account served by care. The first customer message of a new conversation on
such an account publishes `engagement.conversation.sales_dialog_started.v1` with what the channel knows; the
clients service registers (or matches) a lead in the `dialog` stage from it. Its answer,
`clients.lead.stage_changed.v1`, is recorded on the conversations of the lead, so the inbox shows where each
dialog stands (warm, application, "paid — deal …", spam / wrong number).

Choices where the issue is silent: only the *first* message of a conversation starts a dialog (a later message
that gives a phone is for the agent to copy into the lead from the panel); a phone is found in a Telegram shared
contact or written in the text (10–12 digits, `+7 701 …`, `8 (701) …`), an e-mail in the text; the Instagram
username is known for comments only (Direct webhooks carry the Instagram-scoped id, which is the handle then).
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, patch
from litestar.params import FromPath
from shared.auth import Actor
from shared.clock import Clock
from shared.errors import NotFound
from shared.events.clients import LeadStageChanged
from shared.events.engagement import SalesDialogStarted
from shared.outbox import add_event
from shared.service import Runtime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access
from engagement.channels import Inbound
from engagement.models import Channel, Conversation, Message
from engagement.schemas import ChannelPatchIn
from shared import messages as M

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,}")
PHONE = re.compile(r"(?<![\w@])\+?\d[\d\s\-().]{8,18}\d")


def find_phone(text: str) -> str:
    for match in PHONE.finditer(text or ""):
        digits = re.sub(r"\D", "", match.group(0))
        if 10 <= len(digits) <= 12:
            return match.group(0).strip()
    return ""


def find_email(text: str) -> str:
    match = EMAIL.search(text or "")
    return match.group(0) if match else ""


def contacts_of(item: Inbound) -> dict[str, str]:
    """What a first message tells of the person: the Instagram username (comments), a phone (a Telegram shared
    contact, or in the text), an e-mail (in the text)."""
    raw = item.raw or {}
    contact = ((raw.get("message") or {}).get("contact") or {}) if isinstance(raw, dict) else {}
    phone = str(contact.get("phone_number") or "") or find_phone(item.text)
    instagram = ""
    if item.thread_kind == "ig_comments" and item.customer_handle.startswith("@"):
        instagram = item.customer_handle[1:]
    return {"instagram": instagram, "phone": phone, "email": find_email(item.text)}


def dialog_started(session: AsyncSession, channel: Channel, conversation: Conversation, message: Message,
                   item: Inbound, clock: Clock) -> None:
    """Publish the start of a sales dialog (called for the first message of a new conversation)."""
    if not channel.sales:
        return
    add_event(session, SalesDialogStarted(
        conversation_id=conversation.id, channel_id=channel.id, channel_kind=channel.kind,
        thread_kind=conversation.thread_kind, account=channel.account, message_id=message.id,
        first_message_at=item.at, occurred_at=item.at, customer_name=item.customer_name,
        customer_handle=item.customer_handle, text=item.text[:1000], **contacts_of(item)), clock=clock)


async def is_sales_channel(session: AsyncSession, channel_id: str) -> bool:
    return bool((await session.execute(select(Channel.sales).where(Channel.id == channel_id))).scalar_one_or_none())


def lead_out(c: Conversation) -> dict[str, Any] | None:
    if c.lead_id is None:
        return None
    return {"id": c.lead_id, "stage": c.lead_stage, "deal_id": c.lead_deal_id, "disqualified": c.lead_disqualified}


# ---------------------------------------------------------------- PATCH /channels/{id}

async def patch_channel(session: AsyncSession, actor: Actor, channel_id: str, body: ChannelPatchIn) -> Channel:
    """The lead (only the lead, as for creating one) renames a channel account, marks it as a sales account (or
    not), or (de)activates it."""
    access.require_roles(actor, access.LEAD)
    channel = await session.get(Channel, channel_id)
    if channel is None:
        raise M.refusal(NotFound, None, M.CHANNEL_NOT_FOUND)
    if body.name is not None:
        if not body.name.strip():
            raise M.error("name", M.REQUIRED)
        channel.name = body.name.strip()
    if body.sales is not None:
        channel.sales = body.sales
    if body.active is not None:
        channel.active = body.active
    await session.flush()
    return channel


@patch("/channels/{channel_id:str}")
async def patch_channel_route(request: Request, session: AsyncSession, actor: Actor, channel_id: FromPath[str],
                              data: ChannelPatchIn) -> dict[str, Any]:
    from engagement.services import channel_out

    channel = await patch_channel(session, actor, channel_id, data)
    return channel_out(channel, request.app.state.channels.public_url)


routes = [patch_channel_route]


# ---------------------------------------------------------------- clients → the inbox

def handlers(runtime: Runtime) -> dict[str, Any]:
    """Handlers of clients events for the `engagement-clients` consumer (one durable per stream: the EN-4
    handlers of `rounds_handlers` share it)."""

    async def on_lead_stage(event: LeadStageChanged, session: AsyncSession) -> None:
        """Record where the lead of these conversations stands; an older event never overwrites a newer one."""
        if not event.conversation_ids:
            return
        rows = (await session.execute(select(Conversation).where(
            Conversation.id.in_(event.conversation_ids)))).scalars()
        for c in rows:
            if c.lead_updated_at is not None and c.lead_updated_at > event.occurred_at:
                continue
            c.lead_id, c.lead_stage, c.lead_disqualified = event.lead_id, event.stage, event.disqualified
            c.lead_deal_id = event.deal_id
            c.lead_updated_at = event.occurred_at

    return {LeadStageChanged.subject: on_lead_stage}
