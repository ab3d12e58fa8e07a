"""Models of care quality (issue 12, EN-3): the status log that response clocks replay, each client account's
care settings, the response facts and the per-agent-per-day figures reports read.

- `StatusChange`: wait / unwait / resolve / reopen of a conversation, with when and who; together with the
  messages and the ask-the-client questions it is the whole timeline a clock needs, so clocks are recomputed
  from facts (never incremented), and a replay changes nothing.
- `CareSettings`: per client account (a deal id, or "agency"): the first-response target, the care calendar,
  and the mode (brand care with live clocks, or agency check rounds — EN-4).
- `ResponseFact`: one measured response (first or next) or resolution, unique per conversation and start.
- `AgentDay`: the pre-aggregated figures of one agent, account and channel kind on one local day.
"""

from __future__ import annotations

from datetime import date, datetime

from shared.db import UTCDateTime
from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engagement.models import Base, BigId


class StatusChange(Base):
    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # wait | unwait | resolve | reopen
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100), default="")


class CareSettings(Base):
    __tablename__ = "care_settings"

    account: Mapped[str] = mapped_column(String(36), primary_key=True)
    target_s: Mapped[int] = mapped_column(Integer, default=420)
    tz: Mapped[str] = mapped_column(String(64), default="")      # "" → the agency's time zone
    hours: Mapped[str] = mapped_column(String(200), default="")  # "" → all day
    days: Mapped[str] = mapped_column(String(20), default="1-7")
    holidays: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[str] = mapped_column(String(10), default="brand")  # brand | rounds (EN-4)
    # EN-5: the client account's contact person, told of a question by e-mail or Telegram (the chat id of a
    # private chat with the agency's bot).
    contact_email: Mapped[str] = mapped_column(String(200), default="")
    contact_telegram: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))


class ResponseFact(Base):
    __tablename__ = "response_facts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    kind: Mapped[str] = mapped_column(String(10))  # first | next | resolution
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    day: Mapped[date] = mapped_column(Date)  # the local day of `ended_at` in the account's care calendar
    agent: Mapped[str] = mapped_column(String(100), default="")
    account: Mapped[str] = mapped_column(String(36))
    channel_kind: Mapped[str] = mapped_column(String(20))
    wall_s: Mapped[int] = mapped_column(Integer)
    business_s: Mapped[int] = mapped_column(Integer)
    within_target: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (
        UniqueConstraint("conversation_id", "kind", "started_at", name="uq_response_facts"),
        Index("ix_response_facts_day_agent", "day", "agent"),
    )


class AgentDay(Base):
    __tablename__ = "agent_days"

    agent: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    account: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel_kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    answered: Mapped[int] = mapped_column(Integer, default=0)         # first responses given
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    messages_sent: Mapped[int] = mapped_column(Integer, default=0)
    first_count: Mapped[int] = mapped_column(Integer, default=0)
    first_wall_sum: Mapped[int] = mapped_column(BigId, default=0)
    first_business_sum: Mapped[int] = mapped_column(BigId, default=0)
    within_target: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_agent_days_day", "day"),)


class CareDeadline(Base):
    """A stored deadline fact (CAL-3) of EN-3 — a cycle's first response within the target — or EN-4 — a check
    round. One row per conversation and cycle start (or per round); `state` open → met | breached | waived, and
    a breach may later become met when an earlier-dated fact says so (the event then revises it)."""

    __tablename__ = "care_deadlines"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rule: Mapped[str] = mapped_column(String(10))  # EN-3 | EN-4
    key: Mapped[str] = mapped_column(String(200), unique=True)  # en3:<conversation>:<cycle start iso>
    conversation_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    account: Mapped[str] = mapped_column(String(36))
    owner: Mapped[str] = mapped_column(String(100), default="")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String(10), default="open")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    breach_event_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class ClientAccount(Base):
    """EN-4's read model of the agency's clients, from clients events only: who is current (a period open, not
    lost) and which content manager answers for the account's check rounds."""

    __tablename__ = "client_accounts"

    deal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    manager: Mapped[str] = mapped_column(String(100), default="")
    client_name: Mapped[str] = mapped_column(String(300), default="")
    current: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CheckRound(Base):
    """EN-4: one check round of one client account (11:00 or 19:00 local, settings): a task for its content
    manager, `done` when nothing of the account older than `round_at` is left unanswered or unmarked, `missed`
    when still open at `due_at` (a stored deadline fact with an EN-4 event)."""

    __tablename__ = "check_rounds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deal_id: Mapped[str] = mapped_column(String(36))
    day: Mapped[date] = mapped_column(Date)
    slot: Mapped[str] = mapped_column(String(5))  # "11:00"
    round_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    manager: Mapped[str] = mapped_column(String(100), default="")
    state: Mapped[str] = mapped_column(String(10), default="open")  # open | done | missed
    left: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("deal_id", "day", "slot", name="uq_check_rounds"),
        Index("ix_check_rounds_deal_state", "deal_id", "state"),
        Index("ix_check_rounds_day", "day"),
    )


class QualityMark(Base):
    """EN-6: a senior agent's mark on one conversation (score 1–5 + note), averaged per agent in the report.
    One mark per conversation and senior agent: marking again replaces it."""

    __tablename__ = "quality_marks"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    marked_by: Mapped[str] = mapped_column(String(100), primary_key=True)
    agent: Mapped[str] = mapped_column(String(100), index=True)  # who answered the conversation first
    day: Mapped[date] = mapped_column(Date, index=True)          # the local day of that first answer
    score: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)
