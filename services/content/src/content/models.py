"""SQLAlchemy models of the `content` service only (CO-1…CO-4, CAL-3).

The read model of client accounts (`accounts`, `client_profiles`, `periods`) is built from clients
events only (no HTTP between services). Plans, items, approval rounds, comments and deadlines are this
service's own facts. Ids are UUID strings; every timestamp is UTC (`UTCDateTime`); plan and item days
are local dates of the agency's time zone (CAL-1).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

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
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

Base = make_base()
BigId = BigInteger().with_variant(Integer(), "sqlite")


def new_id() -> str:
    return str(uuid.uuid4())


class RuleSetting(Base):
    """One agency setting of the content rules (DOMAIN: every number is a default), with its effective date."""

    __tablename__ = "rule_settings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100))
    value: Mapped[object] = mapped_column(JSON)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_rule_settings_key_from", "key", "effective_from"),)


class ClientProfile(Base):
    """`clients.client.profile_changed.v1`: the client's display name and Instagram handle."""

    __tablename__ = "client_profiles"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(300), default="")
    instagram: Mapped[str] = mapped_column(String(300), default="")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Account(Base):
    """A deal as the content service knows it (from clients events): who manages it, its stage, whether
    it is lost, when plan 1 became due (questionnaire or materials, CO-2)."""

    __tablename__ = "accounts"

    deal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    manager: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    service_kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    stage: Mapped[str | None] = mapped_column(String(40), nullable=True)
    period_no: Mapped[int] = mapped_column(Integer, default=0)  # the newest period opened by clients (0: none yet)
    materials_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # CO-2 trigger
    lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Period(Base):
    """A service period (CL-10) and its local days. `provisional`: plan 1 became due before clients opened
    the period (the questionnaire comes before the launch), so its days are counted from that day until
    `clients.deal.period_opened.v1` brings the real ones."""

    __tablename__ = "periods"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(ForeignKey("accounts.deal_id"), index=True)
    period_no: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    first_post_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # CO-3's origin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("deal_id", "period_no", name="uq_periods_deal_period"),)


class Plan(Base):
    """CO-1: one of a period's three plans. `state` is the workflow (open | in_approval |
    changes_requested | approved); the API's status derives not_due / due / draft from an open plan."""

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(ForeignKey("accounts.deal_id"), index=True)
    period_id: Mapped[str] = mapped_column(ForeignKey("periods.id"), index=True)
    period_no: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, 3
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(30), default="open")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    submit_by: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    round: Mapped[int] = mapped_column(Integer, default=0)  # approval rounds sent so far
    first_submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # CO-3 is judged on it
    first_approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # CO-2 is judged on it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("deal_id", "period_no", "number", name="uq_plans_deal_period_number"),)


class PlanItem(Base):
    """A post or story of a plan: its day, kind, caption, optional schedule, and what became of it."""

    __tablename__ = "plan_items"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    deal_id: Mapped[str] = mapped_column(String(64), index=True)
    date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20))  # feed | story | reel
    caption: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list] = mapped_column(JSON, default=list)  # media URLs (thumbnails on the approval page)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="planned")  # planned | scheduled | published | failed
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    published_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    permalink: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Automatic publishing (Instagram Content Publishing API): the container, the published media, the
    # current timer step (a newer step makes older timers stale), status polls, the last Graph error.
    ig_container_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ig_media_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    publish_step: Mapped[int] = mapped_column(Integer, default=0)
    publish_polls: Mapped[int] = mapped_column(Integer, default=0)
    publish_state: Mapped[str | None] = mapped_column(String(20), nullable=True)  # None | uncertain | quota
    publish_error: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class ApprovalRound(Base):
    """CO-4: every round is kept: what was sent (a snapshot of the items), when, and the client's answer."""

    __tablename__ = "approval_rounds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_by: Mapped[str] = mapped_column(String(100))
    items: Mapped[list] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)  # approve | changes
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (UniqueConstraint("plan_id", "round", name="uq_approval_rounds_plan_round"),)


class PlanComment(Base):
    """CO-4: the client's comment on a plan (item_id null) or on one item, in a round; the manager
    addresses it (a reply, or simply done) before resubmitting."""

    __tablename__ = "plan_comments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    item_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    round: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)  # order within the client's answer
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100), default="client")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reply: Mapped[str | None] = mapped_column(Text, nullable=True)


class Deadline(Base):
    """CAL-3 (CO-3): who owes which plan's submission, by when, and whether it was met, breached or waived."""

    __tablename__ = "deadlines"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(String(64), index=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    rule: Mapped[str] = mapped_column(String(10))
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(20), default="open")  # open | met | breached | waived
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    waived_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped when the due time moves (a new timer key)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClientRequest(Base):
    """CO-6: the client asks, on their signed link, to publish something of their own; the manager
    approves or declines it with a reason, and the client sees the answer on the same link."""

    __tablename__ = "client_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(String(64), index=True)
    plan_id: Mapped[str] = mapped_column(String(36))  # the plan whose link the client used
    number: Mapped[int] = mapped_column(Integer, default=1)  # the deal's 1st, 2nd… request
    text: Mapped[str] = mapped_column(Text)
    day: Mapped[date | None] = mapped_column(Date, nullable=True)  # when the client wants it out
    media: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="requested")  # requested | approved | declined
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CadenceMiss(Base):
    """CO-5: a missed-cadence fact of a current client's day, recorded once by the daily check."""

    __tablename__ = "cadence_misses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(String(64), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    what: Mapped[str] = mapped_column(String(20))  # feed | stories
    manager: Mapped[str | None] = mapped_column(String(100), nullable=True)
    event_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("deal_id", "day", "what", name="uq_cadence_misses_deal_day_what"),)


class StatImport(Base):
    """CO-7: one uploaded insights CSV: who, when, how many rows, the per-row errors. The same file again
    (same SHA-256 for the same deal) is the same import: nothing is written twice."""

    __tablename__ = "stat_imports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(String(64), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(300))
    columns: Mapped[dict] = mapped_column(JSON, default=dict)
    ignored: Mapped[list] = mapped_column(JSON, default=list)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_ok: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("deal_id", "sha256", name="uq_stat_imports_deal_sha"),)


class StatDay(Base):
    """CO-7: one day's figures of a client's account (from a CSV import or the Insights API); a figure the
    source did not have stays null. Re-importing a day replaces it."""

    __tablename__ = "stat_days"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    likes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comments: Mapped[int | None] = mapped_column(Integer, nullable=True)
    saves: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reach: Mapped[int | None] = mapped_column(Integer, nullable=True)
    followers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    import_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("deal_id", "day", name="uq_stat_days_deal_day"),)


class StatWeek(Base):
    """CO-7: a week's figures entered by hand; they take precedence over the week's imported days."""

    __tablename__ = "stat_weeks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(String(64))
    week_start: Mapped[date] = mapped_column(Date)
    likes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comments: Mapped[int | None] = mapped_column(Integer, nullable=True)
    saves: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reach: Mapped[int | None] = mapped_column(Integer, nullable=True)
    followers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    entered_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("deal_id", "week_start", name="uq_stat_weeks_deal_week"),)


class InstagramAccount(Base):
    """The client's Instagram professional account connected for publishing and insights: the IG user id
    and its access token, encrypted at rest (Fernet; never on NATS, never in an answer but the audited
    reveal)."""

    __tablename__ = "instagram_accounts"

    deal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ig_user_id: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(100), default="")
    token_enc: Mapped[bytes] = mapped_column(LargeBinary)
    connected_by: Mapped[str] = mapped_column(String(100))
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The connection's status: when the token was last checked against Graph ("test connection", a
    # publication, an Insights fetch) and the last Graph error in the channel's words (None when the last
    # call succeeded); shown on the connection form with a retry.
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class MediaFile(Base):
    """A media file uploaded for a plan item; the Graph API fetches it from a signed, expiring URL."""

    __tablename__ = "media_files"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigId)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
