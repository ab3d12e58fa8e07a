"""SQLAlchemy models of the `clients` service only (CL-1…CL-16, CAL-3).

Ids are UUID strings (they travel in events and URLs). Every timestamp is UTC (`UTCDateTime`); money is
`Numeric(14, 2)` with its currency (PAY-9). Fact timestamps (`paid_at`, `received_at`, …) are the
moments things happened — they may lie in the past (imports, late webhooks) — and are what the rules
are evaluated on; `created_at` columns say when we learned of them.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from shared.db import UTCDateTime, make_base
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

Base = make_base()
BigId = BigInteger().with_variant(Integer(), "sqlite")


def new_id() -> str:
    return str(uuid.uuid4())


class StaffMember(Base):
    """The roster of assignable staff (CL-3, CL-6, CL-11). See services.assign_least_loaded for why
    the clients service keeps its own copy instead of asking the gateway."""

    __tablename__ = "staff"

    login: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(30))  # content_manager | ad_manager | growth
    full_name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RuleSetting(Base):
    """One agency setting (DOMAIN: every number is a default) with the date it takes effect from."""

    __tablename__ = "rule_settings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100))
    value: Mapped[object] = mapped_column(JSON)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_rule_settings_key_from", "key", "effective_from"),)


class Client(Base):
    """CL-1: the client card."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    full_name: Mapped[str] = mapped_column(String(300))
    phone: Mapped[str] = mapped_column(String(50))
    phone_digits: Mapped[str] = mapped_column(String(50), index=True)  # a returning person is matched on this
    instagram: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str] = mapped_column(String(300), default="")
    payer_type: Mapped[str] = mapped_column(String(20))  # individual | legal
    company_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    bin: Mapped[str | None] = mapped_column(String(20), nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the board and the Clients page search (leads.search_text_of: name and contacts, lower-cased).
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")


class Lead(Base):
    """CL-16: a person before paying: dialog → warm_lead → application → paid."""

    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    full_name: Mapped[str] = mapped_column(String(300))
    phone: Mapped[str] = mapped_column(String(50), default="")
    instagram: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str] = mapped_column(String(300), default="")
    product: Mapped[str] = mapped_column(String(300), default="")
    payer_type: Mapped[str] = mapped_column(String(20), default="individual")
    company_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    bin: Mapped[str | None] = mapped_column(String(20), nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(100), default="")
    owner: Mapped[str] = mapped_column(String(100), index=True)  # the admin/manager who runs the dialog
    stage: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # when the dialog started
    warm_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    application_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deal_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # The name and contacts lower-cased in Python (SQLite's lower() knows ASCII only), for the list's
    # `q` search on both databases (leads.search_text_of).
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Issue 15 (CL-16 × EN-1): the channel the dialog started on ("" for a lead entered by hand), the person's
    # contacts normalised for matching (inbox_leads.phone_key / email_key / instagram_key), and spam / wrong
    # number (such a lead leaves the funnel).
    channel: Mapped[str] = mapped_column(String(20), default="", server_default="")
    phone_key: Mapped[str] = mapped_column(String(30), default="", server_default="", index=True)
    email_key: Mapped[str] = mapped_column(String(300), default="", server_default="", index=True)
    instagram_key: Mapped[str] = mapped_column(String(100), default="", server_default="", index=True)
    disqualified: Mapped[str | None] = mapped_column(String(20), nullable=True)
    disqualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LeadConversation(Base):
    """Issue 15: an inbox conversation of a lead (on one of the agency's sales accounts), with who answered it
    first. A row may exist before its lead (`lead_id` None) when the answer's event is consumed first."""

    __tablename__ = "lead_conversations"

    conversation_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    channel_id: Mapped[str] = mapped_column(String(36), default="")
    channel_kind: Mapped[str] = mapped_column(String(20), default="")
    customer_name: Mapped[str] = mapped_column(String(300), default="")
    customer_handle: Mapped[str] = mapped_column(String(300), default="")
    first_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Deal(Base):
    __tablename__ = "deals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    lead_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    service_kind: Mapped[str] = mapped_column(String(30))
    stage: Mapped[str] = mapped_column(String(30), index=True)
    responsible_manager: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    growth_specialist: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ad_manager: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_payment_at: Mapped[datetime] = mapped_column(UTCDateTime)
    contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    questionnaire: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    questionnaire_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_post_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # CL-8 / CL-14: the service start date (agency-local calendar date) of the current period.
    service_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    period_no: Mapped[int] = mapped_column(Integer, default=0)  # 0 = not launched yet
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # CL-8: Instagram login and password, Fernet-encrypted together (crypto.py).
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    notification_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lost_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    lost_event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # DESIGN 6: the W3C trace context of the payment that created the deal; every later step continues it.
    trace_headers: Mapped[dict] = mapped_column(JSON, default=dict)
    # What lists sum and sort by without reading payments (issue 9; services.refresh_money keeps them, after
    # every payment and refund): rules.net_paid of the deal's payments and refunds, its currency (that of
    # the first payment) and the time of its latest payment.
    paid_total: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0.00"), server_default="0")
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    last_paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # The board reads each column's newest deals by stage (issue 9, migration 0006).
    __table_args__ = (Index("ix_deals_stage_first_payment_at", "stage", "first_payment_at", "id"),
                      Index("ix_deals_stage_lost_at", "stage", "lost_at", "id"))


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewal: Mapped[bool] = mapped_column(Boolean, default=False)
    undid_loss: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Refund(Base):
    """CL-15: money back against a deal and its payment."""

    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), index=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    refunded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    within_window: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    rule: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(300))
    script: Mapped[str | None] = mapped_column(String(50), nullable=True)
    checklist: Mapped[list] = mapped_column(JSON, default=list)
    assignee: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    period_no: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | done | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the fact time that created it
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    __table_args__ = (UniqueConstraint("deal_id", "kind", "period_no", name="uq_tasks_deal_kind_period"),)


class Deadline(Base):
    """CAL-3: who owes what, by when, under which rule, and whether it was met, breached or waived."""

    __tablename__ = "deadlines"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), index=True)
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id"), nullable=True, index=True)
    rule: Mapped[str] = mapped_column(String(10))
    what: Mapped[str] = mapped_column(String(300))  # English, for API users
    # A stable code for `what` that a UI translates: the task kind, or "first_post" (CL-9).
    what_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(20), default="open")  # open | met | breached | waived
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    waived_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The `DeadlineBreached` event of a breach, so a later-recorded fact in time retracts exactly it
    # (`DeadlineMet.revises_breach_event_id`, issue 7 §1).
    breach_event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Document(Base):
    """CL-12: the rendered "payment details" (individual) or "invoice" (legal entity)."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # payment_details | invoice
    number: Mapped[str] = mapped_column(String(50), unique=True)
    html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DocumentCounter(Base):
    """CL-12: the last document number given in a year (agency time zone); documents.next_number
    increments it atomically, so two documents never share a number (gaps are allowed)."""

    __tablename__ = "document_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(Integer, default=0)


class DealHistory(Base):
    """The deal's timeline: every fact in the order it happened (fact time, not arrival time)."""

    __tablename__ = "deal_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deals.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(50))
    # A stable code a UI translates with `data` as its parameters ("deadline.met", …; services.history);
    # `summary` is the same in English for API users.
    code: Mapped[str | None] = mapped_column(String(50), nullable=True)
    summary: Mapped[str] = mapped_column(String(500))
    by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class AuditEntry(Base):
    """DESIGN 8: an audit row for every sensitive read or change (who, when, what)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Import(Base):
    """An amoCRM CSV import processed in the background, row by row (imports.py)."""

    __tablename__ = "imports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    filename: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))  # queued | running | done
    rows: Mapped[list] = mapped_column(JSON)  # the parsed rows, so a restart resumes where it stopped
    total: Mapped[int] = mapped_column(Integer)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
