"""Events published by the `payroll` service."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from shared.events import Event, event


class ManagerTotal(msgspec.Struct, frozen=True, kw_only=True):
    """One manager's total of a closed month (PAY-9: a Decimal, encoded as a string)."""

    manager: str
    total: Decimal
    best_manager: bool = False


@event("payroll.month.closed.v1")
class PayrollMonthClosed(Event, frozen=True, kw_only=True):
    """PAY-8: a payroll month ("YYYY-MM", agency time zone) was closed by the project lead and is now frozen.

    Later facts of this month become adjustment lines of the next open month.
    """

    month: str
    currency: str
    closed_by: str
    closed_at: datetime
    rule_set: int
    total: Decimal
    managers: list[ManagerTotal] = msgspec.field(default_factory=list)
    best_manager: str | None = None
