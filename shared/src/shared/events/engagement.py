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
    channel_kind: Literal["instagram", "telegram", "vk", "email", "webform", "mention", "monitoring"]
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


@event("engagement.deadline.met.v1")
class EngagementDeadlineMet(Event, frozen=True, kw_only=True):
    """CAL-3 / EN-3: a conversation's first response came within its account's target (business time), or
    EN-4: a check round was done in time. `revises_breach` is true when a fact dated earlier turns a breach of
    this deadline into met (payroll undoes the fine, as for a waiver)."""

    deadline_id: str
    rule: str
    owner: str
    due_at: datetime
    met_at: datetime
    conversation_id: str | None = None
    revises_breach: bool = False


@event("engagement.deadline.breached.v1")
class EngagementDeadlineBreached(Event, frozen=True, kw_only=True):
    """CAL-3 / EN-3: a first response passed its target; EN-4: a check round was missed. `owner` is the agent
    the conversation was assigned to when it breached ("" when nobody was). Payroll fines it per rule (PAY-6,
    0 until the agency sets an amount)."""

    deadline_id: str
    rule: str
    owner: str
    due_at: datetime
    conversation_id: str | None = None


@event("engagement.deadline.waived.v1")
class EngagementDeadlineWaived(Event, frozen=True, kw_only=True):
    """CAL-3: a care deadline was waived (a conversation resolved before its target without needing an answer,
    or by a senior agent with a reason); a fine for its breach, if any, is undone."""

    deadline_id: str
    rule: str
    owner: str
    waived_by: str
    reason: str
    due_at: datetime | None = None
    conversation_id: str | None = None


@event("engagement.mention.received.v1")
class MentionReceived(Event, frozen=True, kw_only=True):
    """A mention of a client account was accepted into the monitoring triage queue: found in a watched
    RSS/Atom feed by the account's keyword rules (`matched`), or entered by hand (`manual`). Once per feed
    entry whatever the feed re-serves. `account` is the deal id, or "agency" for the agency's own brand."""

    mention_id: str
    account: str
    source_id: str | None = None
    source_name: str
    url: str = ""
    title: str = ""
    text: str = ""
    author: str = ""
    published_at: datetime | None = None
    matched: list[str] = []
    manual: bool = False


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


@event("engagement.push.sent.v1")
class PushSent(Event, frozen=True, kw_only=True):
    """Issue 13 (EN-11): a group SOP push reached its group — marked sent by its owner (manual mode) or sent by
    the bot (auto mode). `channel_kind` is the group's (telegram, vk, or manual for a hand-entered group)."""

    push_id: str
    task_id: str
    group_id: str
    channel_kind: str
    owner: str
    mode: Literal["manual", "auto"]
    due_at: datetime
    sent_at: datetime


@event("engagement.push.failed.v1")
class PushFailed(Event, frozen=True, kw_only=True):
    """Issue 13 (EN-12): a group SOP push failed. `reason`: owner_left | transferred | quota | channel_error |
    expired | group_inactive; `detail` keeps the channel's own words for channel_error."""

    push_id: str
    task_id: str
    group_id: str
    owner: str
    reason: str
    detail: str = ""
    due_at: datetime
    failed_at: datetime
