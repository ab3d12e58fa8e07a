"""Events published by the `engagement` service (issue 11: the care inbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from shared.events import Event, event


@event("engagement.message.received.v1")
class MessageReceived(Event, frozen=True, kw_only=True):
    """A customer's message arrived in the care inbox (EN-1), once per message whatever the channel re-sends.
    `deal_id` is the client account's deal (None for the agency's own brand accounts)."""

    message_id: str
    conversation_id: str
    channel_id: str
    channel_kind: Literal["instagram", "telegram", "vk", "email", "webform", "mention"]
    thread_kind: str
    account: str
    received_at: datetime
    text: str = ""
    customer_handle: str = ""
    reopened: bool = False


@event("engagement.conversation.answered.v1")
class ConversationAnswered(Event, frozen=True, kw_only=True):
    """The first answer of a conversation (EN-3): `response_seconds` from the first unanswered customer message
    to the agent's answer."""

    conversation_id: str
    channel_id: str
    channel_kind: str
    account: str
    agent: str
    message_id: str
    first_message_at: datetime
    answered_at: datetime
    response_seconds: int
    # Issue 15: whether the conversation is on one of the agency's own sales accounts (the funnel's administrator).
    sales: bool = False


@event("engagement.conversation.sales_dialog_started.v1")
class SalesDialogStarted(Event, frozen=True, kw_only=True):
    """Issue 15 (CL-16 × EN-1): the first customer message of a new conversation on one of the agency's own
    sales accounts (a channel with `sales: true`) — a dialog the clients service registers as a lead. It carries
    what the channel knows: the customer's name and handle as the channel shows them (`@username`, a Telegram
    `@username` or id, an Instagram-scoped id for Direct), the Instagram username where the channel gives one,
    and a phone / e-mail found in the message (a Telegram shared contact, or written in the text)."""

    conversation_id: str
    channel_id: str
    channel_kind: Literal["instagram", "telegram", "vk", "email", "webform", "mention"]
    thread_kind: str
    account: str
    message_id: str
    first_message_at: datetime
    customer_name: str = ""
    customer_handle: str = ""
    instagram: str = ""
    phone: str = ""
    email: str = ""
    text: str = ""
