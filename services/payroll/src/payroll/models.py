"""SQLAlchemy models of the `payroll` service only.

- `LedgerLine`: one money fact (PAY-1…PAY-7) of one manager in one month, pointing to its cause (PAY-8).
- `Void`: a fact undone (a loss undone by a late payment, a waived deadline): its line leaves the statement.
- `DeadlineOutcome`: met / breached / waived per deadline, for the compliance figure of PAY-7.
- `Employee`: the roster of content managers with employment periods (PAY-1).
- `RuleSet`: versions of the pay rules with the month they take effect from.
- `MonthRun`: a month's state; a closed month is frozen with the rule set it was closed with.
- `DealManager`, `DealPeriod`: which manager has which deal, and the deal's renewal periods (PAY-3 once
  per period, PAY-7 candidates).
- `BestManagerPick`: the lead's choice in a full PAY-7 tie; `AuditEntry`: who changed what (DESIGN 8).
"""

from __future__ import annotations

from datetime import date, datetime

from shared.db import UTCDateTime, make_base
from shared.infra import BigId
from sqlalchemy import JSON, BigInteger, Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

Base = make_base()


class LedgerLine(Base):
    """One line of a manager's statement. `month` is "YYYY-MM" in the agency's time zone.

    A fact of a closed month lands in the next open month with `adjusts_month` = the month it belongs
    to; a reversal of a frozen line also points at it with `corrects_line_id`. A line undone while its
    month is open is kept for the record with `voided_by_event_id` and leaves the statement.
    """

    __tablename__ = "ledger_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    manager: Mapped[str] = mapped_column(String(100))
    month: Mapped[str] = mapped_column(String(7))
    rule: Mapped[str] = mapped_column(String(10))
    # PAY-9: exact money as integer minor units (1/100 of the currency), shown as decimal strings.
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    source_event_id: Mapped[str] = mapped_column(String(64))
    deal_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    deadline_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    deadline_rule: Mapped[str | None] = mapped_column(String(20), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    trace_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    adjusts_month: Mapped[str | None] = mapped_column(String(7), nullable=True)
    corrects_line_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    voided_by_event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # What the line counts once, whatever event says it: "PAY-4:<deal>" (one refunded client, however many
    # refunds), "PAY-5:<deal>", "PAY-2:<deal>:<period start>", "PAY-3:<deal>:<period>", "PAY-6:<deadline>".
    # NULL for the rest (PAY-1/PAY-7 frozen at close, reversals); a voided line gives its key back.
    fact_key: Mapped[str | None] = mapped_column(String(160), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("source_event_id", "rule", "manager", name="uq_ledger_lines_source"),
        UniqueConstraint("fact_key", name="uq_ledger_lines_fact_key"),
        # The month overview is one GROUP BY over this index (index-only scan on PostgreSQL).
        Index("ix_ledger_lines_month_manager", "month", "manager", "rule"),
        Index("ix_ledger_lines_deadline", "deadline_id"),
    )


class Void(Base):
    """A fact undone: `target` is "event:<id>" (a loss), "deadline:<id>" (a waived deadline) or
    "PAY-5:<deal>" (a client refunded inside the window after the window ended)."""

    __tablename__ = "voids"

    target: Mapped[str] = mapped_column(String(80), primary_key=True)
    void_event_id: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeadlineOutcome(Base):
    """The outcome of one deadline (CAL-3) in the month of its due time, for PAY-7's compliance."""

    __tablename__ = "deadline_outcomes"

    deadline_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    rule: Mapped[str] = mapped_column(String(20))
    month: Mapped[str] = mapped_column(String(7))
    outcome: Mapped[str] = mapped_column(String(10))  # met | breached | waived (waived > met > breached)
    event_id: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_deadline_outcomes_month", "month", "owner"),)


class Employee(Base):
    """A content manager's employment period (PAY-1); months are whole: any day employed = the month's base."""

    __tablename__ = "employees"

    login: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(40), default="content_manager")
    employed_from: Mapped[date] = mapped_column(Date)
    employed_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    auto_enrolled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RuleSet(Base):
    """A version of the pay rules, in force from `effective_from` ("YYYY-MM") until a later version."""

    __tablename__ = "rule_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    effective_from: Mapped[str] = mapped_column(String(7))
    currency: Mapped[str] = mapped_column(String(3))
    amounts: Mapped[dict] = mapped_column(JSON)          # {"PAY-1": "150000", ...} decimal strings
    deadline_fines: Mapped[dict] = mapped_column(JSON)   # {"CL-9": "-5000"}; other rules: default_fine
    default_fine: Mapped[str] = mapped_column(String(20), default="0")
    best_manager_rule: Mapped[list] = mapped_column(JSON)  # ordered criteria, e.g. ["renewals", "lost", "compliance"]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_rule_sets_effective", "effective_from", "id"),)


class MonthRun(Base):
    """A month that was closed (a month without a row is open)."""

    __tablename__ = "month_runs"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    state: Mapped[str] = mapped_column(String(10), default="closed")
    rule_set_id: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_by: Mapped[str] = mapped_column(String(100))
    best_manager: Mapped[str | None] = mapped_column(String(100), nullable=True)
    best_manager_why: Mapped[dict] = mapped_column(JSON, default=dict)


class DealManager(Base):
    """The deal's responsible manager as the events tell it, and whether the deal is lost (PAY-7 candidates:
    a manager with a deal during the month is one, even without facts)."""

    __tablename__ = "deal_managers"

    deal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    manager: Mapped[str] = mapped_column(String(100))
    since: Mapped[datetime] = mapped_column(UTCDateTime)        # first fact of the deal seen
    manager_at: Mapped[datetime] = mapped_column(UTCDateTime)   # time of the fact that named the manager
    lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_deal_managers_manager", "manager"),)


class DealPeriod(Base):
    """A renewal period of a deal (`clients.deal.renewed.v1`): PAY-3 counts once per deal and period."""

    __tablename__ = "deal_periods"

    deal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64))


class BestManagerPick(Base):
    """PAY-7: the lead's pick among managers tied on every criterion; valid while the tie is the same."""

    __tablename__ = "best_manager_picks"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    manager: Mapped[str] = mapped_column(String(100))
    tied: Mapped[list] = mapped_column(JSON)
    picked_by: Mapped[str] = mapped_column(String(100))
    picked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """DESIGN 8: who changed what in payroll, when (the PAY-7 pick)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
