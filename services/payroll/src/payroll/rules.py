"""The pay rules as plain functions (DOMAIN.md PAY-1…PAY-9): no database, no HTTP, no NATS.

- months in the agency's time zone (`month_of`, `next_month`, …): a line counts in its fact's month;
- PAY-9 money: integer minor units inside, decimal strings at the edges (`to_minor`, `fmt`);
- rule sets: amounts, fines and the PAY-7 criteria with their signs and validation (`RuleBook`, `validate_rules`);
- PAY-7: the ranking of the month's candidates (`rank_best_manager`), ties included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from shared.errors import DomainError

from payroll.models import RuleSet
from shared import messages as M

PAY_RULES = ("PAY-1", "PAY-2", "PAY-3", "PAY-4", "PAY-5", "PAY-6", "PAY-7")
CONTENT_MANAGER = "content_manager"
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

# ---------------------------------------------------------------- months (agency time zone)


def check_month(month: str, field_name: str = "month") -> str:
    if not isinstance(month, str) or not MONTH_RE.match(month):
        raise M.error(field_name, M.PAYROLL_MONTH_FORMAT, field=field_name, value=month)
    if not 1970 <= int(month[:4]) <= 9998:   # issue 8 item 10: 9999-12 has no next month to end at (500)
        raise M.error(field_name, M.PAYROLL_MONTH_YEARS, field=field_name, value=month)
    return month


def month_of(ts: datetime, tz: ZoneInfo) -> str:
    """The month ("YYYY-MM") of an instant in the agency's time zone."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime")
    return ts.astimezone(tz).strftime("%Y-%m")


def next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:])
    return f"{y + 1}-01" if m == 12 else f"{y}-{m + 1:02d}"


def first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:]), 1)


def last_day(month: str) -> date:
    return first_day(next_month(month)) - timedelta(days=1)


def month_start_utc(month: str, tz: ZoneInfo) -> datetime:
    return datetime.combine(first_day(month), time(0), tzinfo=tz).astimezone(UTC)


# ---------------------------------------------------------------- money (PAY-9)

CENT = Decimal("0.01")


def to_minor(value: Any, field_name: str = "amount") -> int:
    """A decimal string (or int / Decimal, never a float) → integer minor units; at most 2 decimals."""
    if isinstance(value, (float, bool)):
        raise M.error(field_name, M.PAYROLL_AMOUNT_FLOAT, field=field_name)
    try:
        amount = Decimal(str(value).strip().replace(" ", "").replace("_", ""))
    except (InvalidOperation, ValueError):
        raise M.error(field_name, M.PAYROLL_AMOUNT_NOT_DECIMAL, field=field_name, value=value) from None
    if amount.is_finite() and amount.adjusted() >= 12:   # issue 8 item 10: quantize would fail, minor units overflow
        raise M.error(field_name, M.PAYROLL_AMOUNT_TOO_BIG, field=field_name)
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise M.error(field_name, M.PAYROLL_AMOUNT_CENTS, field=field_name, value=value)
    return int(amount * 100)


def fmt(minor: int | None) -> str:
    """Integer minor units → "150000.00"."""
    return str((Decimal(int(minor or 0)) / 100).quantize(CENT))


# ---------------------------------------------------------------- rule sets (configuration with effective dates)

# DOMAIN.md defaults; an agency overrides them with new rule-set versions (never in code).
DEFAULT_AMOUNTS = {"PAY-1": "150000", "PAY-2": "10000", "PAY-3": "-5000", "PAY-4": "-4000",
                   "PAY-5": "2000", "PAY-7": "30000"}
# CO-*: issue 10, EN-*: issue 12 — 0 until the agency sets an amount.
DEFAULT_DEADLINE_FINES = {"CL-9": "-5000", "CO-3": "0", "CO-5": "0", "EN-3": "0", "EN-4": "0"}
DEFAULT_BEST_MANAGER_RULE = ["renewals", "lost", "compliance"]
DEFAULT_EFFECTIVE_FROM = "2000-01"
# criterion → (direction, label): "desc" = more is better.
CRITERIA = {
    "renewals": ("desc", "renewals after a month of service (PAY-2)"),
    "lost": ("asc", "clients lost after a month of service (PAY-3)"),
    "compliance": ("desc", "deadline compliance = met / (met + breached)"),
    "breaches": ("asc", "deadlines breached"),
    "refunds": ("asc", "refunds within the money-back window (PAY-4)"),
}
# Sign of each amount: bonuses are >= 0, deductions and fines <= 0.
SIGNS = {"PAY-1": 1, "PAY-2": 1, "PAY-3": -1, "PAY-4": -1, "PAY-5": 1, "PAY-7": 1}


@dataclass(frozen=True)
class RuleBook:
    """One rule-set version in usable form (amounts in minor units)."""

    id: int
    effective_from: str
    currency: str
    amounts: dict[str, int]
    deadline_fines: dict[str, int]
    default_fine: int
    best_manager_rule: tuple[str, ...]

    @classmethod
    def of(cls, rs: RuleSet) -> RuleBook:
        return cls(id=rs.id, effective_from=rs.effective_from, currency=rs.currency,
                   amounts={k: to_minor(v) for k, v in rs.amounts.items()},
                   deadline_fines={k: to_minor(v) for k, v in rs.deadline_fines.items()},
                   default_fine=to_minor(rs.default_fine), best_manager_rule=tuple(rs.best_manager_rule))

    def amount(self, rule: str, deadline_rule: str | None = None) -> int:
        if rule == "PAY-6":
            return self.deadline_fines.get(deadline_rule or "", self.default_fine)
        return self.amounts[rule]

    def as_json(self) -> dict[str, Any]:
        return {"version": self.id, "effective_from": self.effective_from, "currency": self.currency,
                "amounts": {k: fmt(v) for k, v in sorted(self.amounts.items())},
                "deadline_fines": {k: fmt(v) for k, v in sorted(self.deadline_fines.items())},
                "default_fine": fmt(self.default_fine), "best_manager_rule": list(self.best_manager_rule)}


def validate_rules(currency: str, amounts: dict[str, Any], deadline_fines: dict[str, Any], default_fine: Any,
                   best_manager_rule: Sequence[str]) -> dict[str, Any]:
    """Check a rule set and return it normalised (decimal strings); errors name the field and carry a code."""
    errors: list[dict[str, Any]] = []

    def err(f: str, code: str, **params: Any) -> None:
        errors.append(M.item(f, code, **params))

    if not re.fullmatch(r"[A-Z]{3}", currency or ""):
        err("currency", M.RULES_CURRENCY)
    norm_amounts: dict[str, str] = {}
    for rule, sign in SIGNS.items():
        if rule not in amounts:
            err(f"amounts.{rule}", M.RULES_AMOUNT_MISSING)
            continue
        try:
            minor = to_minor(amounts[rule], f"amounts.{rule}")
        except DomainError as exc:
            errors.extend(exc.errors)
            continue
        if minor * sign < 0:
            err(f"amounts.{rule}", M.RULES_BONUS_SIGN if sign > 0 else M.RULES_DEDUCTION_SIGN)
        norm_amounts[rule] = fmt(minor)
    for rule in set(amounts) - set(SIGNS):
        err(f"amounts.{rule}", M.RULES_UNKNOWN_RULE)
    norm_fines: dict[str, str] = {}
    for dl_rule, value in deadline_fines.items():
        try:
            minor = to_minor(value, f"deadline_fines.{dl_rule}")
        except DomainError as exc:
            errors.extend(exc.errors)
            continue
        if minor > 0:
            err(f"deadline_fines.{dl_rule}", M.RULES_FINE_SIGN)
        norm_fines[dl_rule] = fmt(minor)
    try:
        d = to_minor(default_fine, "default_fine")
        if d > 0:
            err("default_fine", M.RULES_FINE_SIGN)
        norm_default = fmt(d)
    except DomainError as exc:
        errors.extend(exc.errors)
        norm_default = "0"
    crit = list(best_manager_rule)
    if not crit:
        err("best_manager_rule", M.RULES_NO_CRITERION)
    for c in crit:
        if c not in CRITERIA:
            err("best_manager_rule", M.RULES_UNKNOWN_CRITERION, value=c, known=", ".join(CRITERIA))
    if len(set(crit)) != len(crit):
        err("best_manager_rule", M.RULES_CRITERION_TWICE)
    if errors:
        raise DomainError("invalid rule set", errors=errors)
    return {"currency": currency, "amounts": norm_amounts, "deadline_fines": norm_fines,
            "default_fine": norm_default, "best_manager_rule": crit}



# ---------------------------------------------------------------- PAY-7: the best manager (pure ranking)


@dataclass
class ManagerStats:
    """A manager's PAY-7 figures for one month; `deals` = deals they were responsible for during the month."""

    manager: str
    renewals: int = 0
    lost: int = 0
    refunds: int = 0
    met: int = 0
    breached: int = 0
    deals: int = 0

    @property
    def compliance(self) -> Decimal:
        """met / (met + breached); a manager with no deadlines breached nothing: 1."""
        total = self.met + self.breached
        return Decimal(1) if total == 0 else Decimal(self.met) / Decimal(total)

    @property
    def active(self) -> bool:
        """Has a fact of the month: a renewal, a loss, a refund or a deadline."""
        return bool(self.renewals or self.lost or self.refunds or self.met or self.breached)

    @property
    def candidate(self) -> bool:
        """PAY-7 (issue 7 §6): a manager with no deals and no facts in the month is not a candidate."""
        return self.active or self.deals > 0

    def figure(self, criterion: str) -> Any:
        if criterion == "compliance":
            return self.compliance
        return getattr(self, criterion)

    def figures(self) -> dict[str, Any]:
        return {"manager": self.manager, "renewals": self.renewals, "lost": self.lost, "refunds": self.refunds,
                "deadlines_met": self.met, "deadlines_breached": self.breached, "deals": self.deals,
                "compliance": str(self.compliance.quantize(Decimal("0.0001")))}


@dataclass(frozen=True)
class Pick:
    """The lead's choice among managers tied on every criterion (valid only for exactly that tie)."""

    manager: str
    tied: tuple[str, ...]
    picked_by: str
    picked_at: datetime


def rank_best_manager(stats: Iterable[ManagerStats], criteria: Sequence[str],
                      pick: Pick | None = None) -> tuple[str | None, dict[str, Any]]:
    """PAY-7: order the candidates by the configured criteria; returns the winner (or None) and why.

    - Candidates are managers with deals or facts in the month; nobody wins a month without facts.
    - A full tie at the top (equal on every criterion) is not decided by the alphabet: the winner is the
      lead's `pick` if it was made for exactly these tied managers, else nobody yet (`why["tie"]`).
    `why["code"]`: "no_facts" | "decided" | "tie_unresolved" | "tie_picked" (the gateway words it).
    """
    rule = list(criteria)
    candidates = [s for s in stats if s.candidate]
    if not any(s.active for s in candidates):
        return None, {"rule": rule, "code": "no_facts", "tie": None, "winner": None, "ranking": [],
                      "reason": "no renewals, losses, refunds or deadlines this month"}

    def key(s: ManagerStats) -> tuple:
        return tuple(-s.figure(c) if CRITERIA[c][0] == "desc" else s.figure(c) for c in rule)

    ranked = sorted(candidates, key=lambda s: (key(s), s.manager))
    top = [s for s in ranked if key(s) == key(ranked[0])]
    order = "first by " + ", then ".join(f"{c} ({CRITERIA[c][0]})" for c in rule)
    ranking = [s.figures() for s in ranked[:max(5, len(top))]]
    if len(top) == 1:
        winner = ranked[0]
        reason = order
        if len(ranked) > 1:
            runner = ranked[1]
            decided = next(c for c in rule if winner.figure(c) != runner.figure(c))
            reason += (f"; decided over {runner.manager} by {decided}: "
                       f"{_show(winner.figure(decided))} vs {_show(runner.figure(decided))}")
        return winner.manager, {"rule": rule, "code": "decided", "reason": reason, "winner": winner.figures(),
                                "tie": None, "ranking": ranking}
    tied = tuple(s.manager for s in top)
    tie: dict[str, Any] = {"managers": list(tied), "picked": None, "picked_by": None, "picked_at": None}
    if pick is not None and pick.manager in tied and tuple(sorted(pick.tied)) == tuple(sorted(tied)):
        tie.update(picked=pick.manager, picked_by=pick.picked_by, picked_at=pick.picked_at.isoformat())
        winner = next(s for s in top if s.manager == pick.manager)
        return winner.manager, {"rule": rule, "code": "tie_picked", "tie": tie, "winner": winner.figures(),
                                "ranking": ranking,
                                "reason": f"{order}; {', '.join(tied)} tied on every criterion; "
                                          f"{pick.manager} picked by {pick.picked_by}"}
    return None, {"rule": rule, "code": "tie_unresolved", "tie": tie, "winner": None, "ranking": ranking,
                  "reason": f"{order}; {', '.join(tied)} tied on every criterion: the project lead picks the "
                            "best manager before the month is closed"}


def _show(v: Any) -> str:
    return f"{(v * 100).quantize(Decimal('0.1'))}%" if isinstance(v, Decimal) else str(v)
