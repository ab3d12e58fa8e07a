"""msgspec request Structs of the payroll API (responses are plain JSON built in services.py).

Money in requests is a decimal string (or an integer); a JSON float is refused (PAY-9).
"""

from __future__ import annotations

from datetime import date

import msgspec


class RulesIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new rule-set version from `effective_from` ("YYYY-MM", an open month); omitted fields are inherited."""

    effective_from: str
    currency: str | None = None
    amounts: dict[str, str | int] | None = None          # {"PAY-1": "150000", "PAY-3": "-5000", ...}
    deadline_fines: dict[str, str | int] | None = None   # PAY-6 per deadline rule: {"CL-9": "-5000"}
    default_fine: str | int | None = None                # PAY-6 for rules not listed (default 0)
    best_manager_rule: list[str] | None = None           # PAY-7 criteria in order: renewals, lost, compliance…


class EmployeeIn(msgspec.Struct, forbid_unknown_fields=True):
    """An employment period (PAY-1: a content manager employed on any day of a month gets that month's base)."""

    employed_from: date
    role: str = "content_manager"
    employed_to: date | None = None


class BestManagerIn(msgspec.Struct, forbid_unknown_fields=True):
    """PAY-7: the lead's pick among the managers tied on every criterion."""

    manager: str = ""  # empty → 422 naming `manager`
