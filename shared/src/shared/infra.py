"""Infrastructure tables every service database carries: outbox, processed events, timers, dead letters.

A change here needs a new function in `shared.infra_migrations` and a revision calling it in every service.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, make_base

InfraBase = make_base()
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a busy outbox.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class OutboxRow(InfraBase):
    """An event written in the same transaction as the change it describes (DESIGN 3)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    subject: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # W3C trace context captured when the row is written, not when it is relayed.
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)


class ProcessedEvent(InfraBase):
    """An event a consumer has applied; written in the same transaction as the effect (DESIGN 4)."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # Retention prunes by age (issue 7 §7).
    __table_args__ = (Index("ix_processed_events_processed_at", "processed_at"),)


class Timer(InfraBase):
    """A durable timer (DESIGN 5): a row with a due time, fired by the scheduler loop."""

    __tablename__ = "timers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100))
    # The same key never schedules twice: re-running a rule or replaying an event is harmless.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    # The scheduler's query (pending, due, oldest first) reads only pending rows: fired and cancelled timers
    # are left out of the index (a partial index, issue 7 §7). Retention finds settled timers by age.
    __table_args__ = (
        Index("ix_timers_pending", "due_at", "id", postgresql_where=text("fired_at IS NULL AND cancelled_at IS NULL"),
              sqlite_where=text("fired_at IS NULL AND cancelled_at IS NULL")),
        Index("ix_timers_fired_at", "fired_at"),
        Index("ix_timers_cancelled_at", "cancelled_at"),
    )


class DeadLetter(InfraBase):
    """A message a consumer gave up on after N deliveries, kept for operators with the reason."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    deliveries: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # One row per message a consumer gave up on, however often it failed (issue 7 §3).
    __table_args__ = (UniqueConstraint("consumer", "event_id", name="uq_dead_letters_consumer_event_id"),)
