"""SQLAlchemy models of the `engagement` service only: the care inbox (issue 11, EN-1, EN-2, EN-6, EN-7).

- `Channel`: a channel account (Instagram, Telegram bot, VK community…) of a client account; its secrets are
  encrypted (`secrets`), its webhook secret also kept as a digest for the inbound check.
- `Delivery`: one raw inbound webhook delivery, stored before we answer; it is the state of its processing
  (`processed_at`), and its `dedupe_key` makes a redelivery a no-op.
- `Conversation` / `Message` / `ConversationTag`: the inbox. A message is unique per channel and external id,
  so one customer message is stored once whatever the channel re-sends.
- `Message` rows with direction `out` are also the send queue: `delivery` pending → sent | failed.
- `StaffAccount`: which client accounts a care agent serves (EN-6).

Ids of conversations and messages are UUID strings; timestamps are UTC (`UTCDateTime`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.db import UTCDateTime, make_base
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

Base = make_base()
BigId = BigInteger().with_variant(Integer(), "sqlite")

AGENCY_ACCOUNT = "agency"  # the agency's own brand accounts (a channel created without a deal)


def new_id() -> str:
    return str(uuid.uuid4())


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))  # instagram | telegram | vk | email | webform
    name: Mapped[str] = mapped_column(String(200))
    deal_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    account: Mapped[str] = mapped_column(String(36), index=True)  # deal_id, or "agency"
    external_id: Mapped[str] = mapped_column(String(100), default="", index=True)  # ig_user_id / group_id / address
    config: Mapped[dict] = mapped_column(JSON, default=dict)  # the non-secret keys only
    secrets: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet(JSON of the secret keys)
    webhook_secret_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Issue 15: one of the agency's own sales accounts (its Instagram, Telegram, site form…): a new conversation
    # here is a dialog of the CL-16 funnel; a client account served by care (False) never makes a lead.
    sales: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class StaffAccount(Base):
    """EN-6: a care agent serves these client accounts (sees their conversations)."""

    __tablename__ = "staff_accounts"

    login: Mapped[str] = mapped_column(String(100), primary_key=True)
    account: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class Delivery(Base):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    channel_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # None: Meta's app-level endpoint
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (Index("ix_deliveries_pending", "processed_at", "next_attempt_at"),)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id"))
    kind: Mapped[str] = mapped_column(String(20))  # the channel kind
    thread_kind: Mapped[str] = mapped_column(String(20))  # ig_comments | ig_direct | tg_chat | vk_dialog | vk_wall
    thread_key: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(36), index=True)
    deal_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | waiting_client | resolved
    assignee: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    customer_name: Mapped[str] = mapped_column(String(300), default="")
    customer_handle: Mapped[str] = mapped_column(String(300), default="")
    reply_target: Mapped[dict] = mapped_column(JSON, default=dict)  # what a reply needs (chat id, comment id…)
    unreachable: Mapped[str | None] = mapped_column(String(500), nullable=True)  # the channel's words
    last_text: Mapped[str] = mapped_column(Text, default="")
    last_direction: Mapped[str] = mapped_column(String(3), default="in")
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # first unanswered inbound
    first_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)  # waited for the client before the 1st answer
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # EN-3 (issue 12), recomputed from the timeline by `quality.refresh`: the latest cycle's first response.
    first_response_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_response_business_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sla: Mapped[str | None] = mapped_column(String(10), nullable=True)  # running | met | breached | paused | waived
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    clock_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # a running clock
    seen_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # EN-4 "mark seen"
    # Issue 15: where the dialog stands in the CL-16 funnel, as the clients service reports it
    # (`clients.lead.stage_changed.v1`): the lead, its stage, the deal a payment made, spam / wrong number.
    lead_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    lead_stage: Mapped[str | None] = mapped_column(String(20), nullable=True)
    lead_deal_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lead_disqualified: Mapped[str | None] = mapped_column(String(20), nullable=True)
    lead_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # EN-2 / EN-5: the category (a free word the team agrees on, e.g. "delivery"; templates are per category)
    # and the priority (low | normal | high | urgent), both set by hand (migration 0003).
    category: Mapped[str | None] = mapped_column(String(50), nullable=True, index=True)
    priority: Mapped[str] = mapped_column(String(10), default="normal", server_default="normal")

    __table_args__ = (
        UniqueConstraint("channel_id", "thread_key", name="uq_conversations_thread"),
        Index("ix_conversations_activity", "last_activity_at", "id"),
        # one per list filter, each giving the list's order (migration 0003_inbox_scale); on PostgreSQL also a
        # trigram GIN index on search_text (made by the migration only)
        Index("ix_conversations_status_activity", "status", "last_activity_at", "id"),
        Index("ix_conversations_assignee_activity", "assignee", "last_activity_at", "id"),
        Index("ix_conversations_kind_activity", "kind", "last_activity_at", "id"),
        Index("ix_conversations_channel_activity", "channel_id", "last_activity_at", "id"),
        Index("ix_conversations_account_activity", "account", "last_activity_at", "id"),
    )


class ConversationTag(Base):
    __tablename__ = "conversation_tags"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    channel_id: Mapped[str] = mapped_column(String(36))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    seq: Mapped[int] = mapped_column(Integer, default=0)  # order within the conversation (ties of `at`)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    author: Mapped[str] = mapped_column(String(300), default="")
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    raw: Mapped[dict] = mapped_column(JSON, default=dict)  # the inbound item as the channel sent it
    # Outgoing only: the send queue.
    delivery: Mapped[str | None] = mapped_column(String(10), nullable=True)  # pending | sent | failed
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    target: Mapped[dict] = mapped_column(JSON, default=dict)  # the conversation's reply target when written
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("channel_id", "direction", "external_id", name="uq_messages_external"),
        Index("ix_messages_outgoing", "delivery", "next_attempt_at"),
        Index("ix_messages_conversation_at", "conversation_id", "at"),
    )


class Agent(Base):
    """A care agent's availability for automatic assignment (issue 11 §assignment): on shift or not, their cap
    of open conversations (None: the default), and when they were last given one (the round-robin order).
    `team` (EN-6): the care team the agent belongs to, named by the agency; a senior agent with a team reads
    that team's report."""

    __tablename__ = "agents"

    login: Mapped[str] = mapped_column(String(100), primary_key=True)
    on_shift: Mapped[bool] = mapped_column(Boolean, default=False)
    cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    team: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))


class TagRule(Base):
    """EN-7: tag a conversation automatically when a customer's message matches — a keyword in the text, the
    channel kind, the client account, or the source campaign (an ad referral, a Telegram /start parameter, a VK
    `ref`)."""

    __tablename__ = "tag_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))  # keyword | channel | account | campaign
    value: Mapped[str] = mapped_column(String(200))
    tag: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class ClientQuestion(Base):
    """EN-5 "ask the client": an agent's question to the client account's contact person, answered on a signed
    link page. While it is open the conversation waits for the client and its response clock is paused."""

    __tablename__ = "client_questions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    question: Mapped[str] = mapped_column(Text)
    asked_by: Mapped[str] = mapped_column(String(100))
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The notice to the contact person (e-mail or Telegram, client_notices.py): sent by the reply sender's loop.
    notice_via: Mapped[str | None] = mapped_column(String(10), nullable=True)     # email | telegram
    notice_to: Mapped[str | None] = mapped_column(String(200), nullable=True)
    notice_state: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)  # pending|sent|failed
    notice_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    notice_attempts: Mapped[int] = mapped_column(Integer, default=0)
    notice_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# ---------------------------------------------------------------- monitoring (issue 11: mentions)

class MonitoringSource(Base):
    """An RSS/Atom feed (a forum, a review site, news) watched for a client account's keywords. Polled every
    `interval_seconds` with its ETag / Last-Modified; a failing feed keeps its `error` and is retried with
    back-off (`failures` in a row). `channel_id` is the `monitoring` channel its converted mentions belong to.
    Deleting a source only deactivates it: its mentions stay."""

    __tablename__ = "monitoring_sources"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    deal_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    account: Mapped[str] = mapped_column(String(36), index=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id"))
    interval_seconds: Mapped[int] = mapped_column(Integer, default=900)
    etag: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(100), nullable=True)
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_monitoring_sources_due", "active", "next_poll_at"),)


class KeywordRule(Base):
    """A client account's keywords (any of them makes a mention) and exclusions (any of them vetoes it):
    case-insensitive, whole words, Cyrillic included (engagement.monitoring.matches)."""

    __tablename__ = "keyword_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    account: Mapped[str] = mapped_column(String(36), index=True)
    keywords: Mapped[list] = mapped_column(JSON, default=list)
    exclusions: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class Mention(Base):
    """A mention of a client account found in a feed (or entered by hand), waiting for triage: `new` →
    `converted` (into a conversation of kind `monitoring`) or `dismissed` (with a reason). One per feed entry:
    `(source_key, entry_key)` is unique — the source id (or `manual:<id>`) and the entry's id or link."""

    __tablename__ = "mentions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    source_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    source_key: Mapped[str] = mapped_column(String(60))
    entry_key: Mapped[str] = mapped_column(String(500))
    source_name: Mapped[str] = mapped_column(String(200))
    deal_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    account: Mapped[str] = mapped_column(String(36), index=True)
    url: Mapped[str] = mapped_column(String(2000), default="")
    title: Mapped[str] = mapped_column(String(1000), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(300), default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    matched: Mapped[list] = mapped_column(JSON, default=list)
    raw: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="new")  # new | converted | dismissed
    dismiss_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    dismiss_note: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    triaged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (
        UniqueConstraint("source_key", "entry_key", name="uq_mentions_entry"),
        Index("ix_mentions_status_created", "status", "created_at"),
    )


class MailboxState(Base):
    """Where the IMAP poller of an e-mail channel stands (issue 11 §e-mail): the mailbox's UIDVALIDITY and the
    highest UID already stored, whether the server offers IDLE, and the last error (shown on the channel)."""

    __tablename__ = "mailbox_states"

    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id"), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    idle: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class ReplyTemplate(Base):
    """EN-5: a reply template or a script of a category, with variables `{client_name}`, `{customer_name}`,
    `{agent_name}` filled when an agent inserts it. Kept by the lead and senior agents."""

    __tablename__ = "reply_templates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10), default="template")  # template | script
    category: Mapped[str] = mapped_column(String(50), default="", index=True)  # "" = any category
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))


class Note(Base):
    """A private note on a conversation (never sent to the customer); `@login` mentions reach those staff."""

    __tablename__ = "notes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    author: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    mentions: Mapped[list] = mapped_column(JSON, default=list)


class NoteMention(Base):
    """One staff member mentioned in a note; unread until they open the conversation (their nav count)."""

    __tablename__ = "note_mentions"

    note_id: Mapped[str] = mapped_column(ForeignKey("notes.id"), primary_key=True)
    login: Mapped[str] = mapped_column(String(100), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_note_mentions_login_unread", "login", "read_at"),)


class Change(Base):
    """The inbox's change feed: one row per write that touched a conversation (a message in or out, a delivery
    state, status, assignment, tags, notes…), written in the same transaction by a flush hook
    (engagement.changes). Its id is the monotonic cursor the gateway follows for live updates."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
