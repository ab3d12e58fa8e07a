"""The pay rules (DOMAIN.md PAY-1…PAY-9) and the ledger operations built on them.

Pure parts first (months, money, rule sets, the best-manager ranking), then the ledger operations that
the NATS handlers and the HTTP controllers call. One rule lives in one place:

- PAY-1 base salary: `base_lines` (derived per employed content manager; frozen at close).
- PAY-2…PAY-6: `record_fact` prices a fact with the rule set of the fact's month (`RuleBook.amount`).
- PAY-3 / PAY-6 undone: `void_fact`.
- PAY-7 best manager: `rank_best_manager` (pure) over `manager_stats` (SQL).
- PAY-8 closed months are immutable: `placement` sends a fact of a closed month to the next open month.
- PAY-9 money: integer minor units in the ledger, decimal strings at the edges (`to_minor`, `fmt`).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from shared.clock import Clock
from shared.errors import Conflict, DomainError
from shared.events.payroll import ManagerTotal, PayrollMonthClosed
from shared.outbox import add_event
from sqlalchemy import and_, case, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from payroll.models import DeadlineOutcome, Employee, LedgerLine, MonthRun, RuleSet, Void

PAY_RULES = ("PAY-1", "PAY-2", "PAY-3", "PAY-4", "PAY-5", "PAY-6", "PAY-7")
CONTENT_MANAGER = "content_manager"
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

# ---------------------------------------------------------------- months (agency time zone)


def check_month(month: str, field_name: str = "month") -> str:
    if not isinstance(month, str) or not MONTH_RE.match(month):
        raise DomainError(f"{field_name} must be YYYY-MM, got {month!r}", field=field_name)
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
        raise DomainError(f"{field_name} must be a decimal string, not a float", field=field_name)
    try:
        amount = Decimal(str(value).strip().replace(" ", "").replace("_", ""))
    except (InvalidOperation, ValueError):
        raise DomainError(f"{field_name} is not a decimal number: {value!r}", field=field_name) from None
    if amount.is_finite() and amount.adjusted() >= 12:   # issue 8 item 10: quantize would fail, minor units overflow
        raise DomainError(f"{field_name} has more than 12 digits before the decimal point", field=field_name)
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise DomainError(f"{field_name} must have at most 2 decimal places: {value!r}", field=field_name)
    return int(amount * 100)


def fmt(minor: int | None) -> str:
    """Integer minor units → "150000.00"."""
    return str((Decimal(int(minor or 0)) / 100).quantize(CENT))


# ---------------------------------------------------------------- rule sets (configuration with effective dates)

# DOMAIN.md defaults; an agency overrides them with new rule-set versions (never in code).
DEFAULT_AMOUNTS = {"PAY-1": "150000", "PAY-2": "10000", "PAY-3": "-5000", "PAY-4": "-4000",
                   "PAY-5": "2000", "PAY-7": "30000"}
DEFAULT_DEADLINE_FINES = {"CL-9": "-5000"}
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
    """Check a rule set and return it normalised (decimal strings); errors name the field."""
    errors: list[dict[str, str]] = []

    def err(f: str, m: str) -> None:
        errors.append({"field": f, "message": m})

    if not re.fullmatch(r"[A-Z]{3}", currency or ""):
        err("currency", "currency must be a 3-letter ISO code")
    norm_amounts: dict[str, str] = {}
    for rule, sign in SIGNS.items():
        if rule not in amounts:
            err(f"amounts.{rule}", "missing")
            continue
        try:
            minor = to_minor(amounts[rule], f"amounts.{rule}")
        except DomainError as exc:
            err(f"amounts.{rule}", exc.message)
            continue
        if minor * sign < 0:
            err(f"amounts.{rule}", "must be >= 0 (a bonus)" if sign > 0 else "must be <= 0 (a deduction)")
        norm_amounts[rule] = fmt(minor)
    for rule in set(amounts) - set(SIGNS):
        err(f"amounts.{rule}", "unknown rule (PAY-6 fines go in deadline_fines)")
    norm_fines: dict[str, str] = {}
    for dl_rule, value in deadline_fines.items():
        try:
            minor = to_minor(value, f"deadline_fines.{dl_rule}")
        except DomainError as exc:
            err(f"deadline_fines.{dl_rule}", exc.message)
            continue
        if minor > 0:
            err(f"deadline_fines.{dl_rule}", "a fine must be <= 0")
        norm_fines[dl_rule] = fmt(minor)
    try:
        d = to_minor(default_fine, "default_fine")
        if d > 0:
            err("default_fine", "a fine must be <= 0")
        norm_default = fmt(d)
    except DomainError as exc:
        err("default_fine", exc.message)
        norm_default = "0"
    crit = list(best_manager_rule)
    if not crit:
        err("best_manager_rule", "at least one criterion")
    for c in crit:
        if c not in CRITERIA:
            err("best_manager_rule", f"unknown criterion {c!r}; known: {', '.join(CRITERIA)}")
    if len(set(crit)) != len(crit):
        err("best_manager_rule", "a criterion appears twice")
    if errors:
        raise DomainError("invalid rule set", errors=errors)
    return {"currency": currency, "amounts": norm_amounts, "deadline_fines": norm_fines,
            "default_fine": norm_default, "best_manager_rule": crit}


async def ensure_default_rules(session: AsyncSession, clock: Clock) -> None:
    if (await session.execute(select(RuleSet.id).limit(1))).first() is None:
        session.add(RuleSet(effective_from=DEFAULT_EFFECTIVE_FROM, currency="KZT", amounts=dict(DEFAULT_AMOUNTS),
                            deadline_fines=dict(DEFAULT_DEADLINE_FINES), default_fine="0",
                            best_manager_rule=list(DEFAULT_BEST_MANAGER_RULE), created_at=clock.now(),
                            created_by="defaults (DOMAIN.md)"))
        await session.flush()


async def closed_runs(session: AsyncSession) -> dict[str, MonthRun]:
    rows = (await session.execute(select(MonthRun))).scalars().all()
    return {r.month: r for r in rows}


async def is_closed(session: AsyncSession, month: str) -> bool:
    return (await session.get(MonthRun, month)) is not None


async def rule_book(session: AsyncSession, month: str) -> RuleBook:
    """The rules of a month: a closed month keeps those it was closed with; else the newest version in force."""
    run = await session.get(MonthRun, month)
    if run is not None:
        rs = await session.get(RuleSet, run.rule_set_id)
    else:
        rs = (await session.execute(
            select(RuleSet).where(RuleSet.effective_from <= month)
            .order_by(RuleSet.effective_from.desc(), RuleSet.id.desc()).limit(1))).scalar_one_or_none()
    if rs is None:
        raise DomainError(f"no rule set in force for {month}", field="month")
    return RuleBook.of(rs)


async def rules_history(session: AsyncSession) -> list[RuleSet]:
    return list((await session.execute(select(RuleSet).order_by(RuleSet.id))).scalars())


async def change_rules(session: AsyncSession, *, effective_from: str, changes: dict[str, Any], by: str,
                       clock: Clock) -> RuleBook:
    """A new rule-set version from an open month on; open months from then on are re-priced.

    Fields not given are taken from the version in force at `effective_from`. Closed months keep the
    version they were closed with; adjustment lines keep the prices of the month they adjust.
    """
    check_month(effective_from, "effective_from")
    await ledger_lock(session, exclusive=True)
    if await is_closed(session, effective_from):
        raise Conflict(f"{effective_from} is closed: rules of a closed month never change", field="effective_from")
    base = await rule_book(session, effective_from)
    current = base.as_json()
    merged = validate_rules(
        changes.get("currency") or current["currency"],
        {**current["amounts"], **(changes.get("amounts") or {})},
        changes["deadline_fines"] if changes.get("deadline_fines") is not None else current["deadline_fines"],
        changes["default_fine"] if changes.get("default_fine") is not None else current["default_fine"],
        changes["best_manager_rule"] if changes.get("best_manager_rule") is not None else current["best_manager_rule"],
    )
    rs = RuleSet(effective_from=effective_from, created_at=clock.now(), created_by=by, **merged)
    session.add(rs)
    await session.flush()
    await reprice_open_months(session, since=effective_from)
    return RuleBook.of(rs)


async def reprice_open_months(session: AsyncSession, since: str) -> None:
    closed = set(await closed_runs(session))
    months = (await session.execute(
        select(LedgerLine.month).where(LedgerLine.month >= since).distinct())).scalars().all()
    for month in sorted(set(months) - closed):
        book = await rule_book(session, month)
        own = and_(LedgerLine.month == month, LedgerLine.adjusts_month.is_(None),
                   LedgerLine.corrects_line_id.is_(None))
        for rule in ("PAY-2", "PAY-3", "PAY-4", "PAY-5"):
            await session.execute(update(LedgerLine).where(own, LedgerLine.rule == rule)
                                  .values(amount_minor=book.amount(rule), currency=book.currency))
        fine = case(*((LedgerLine.deadline_rule == r, v) for r, v in book.deadline_fines.items()),
                    else_=book.default_fine) if book.deadline_fines else book.default_fine
        await session.execute(update(LedgerLine).where(own, LedgerLine.rule == "PAY-6")
                              .values(amount_minor=fine, currency=book.currency))


# ---------------------------------------------------------------- concurrency

LEDGER_LOCK = zlib.crc32(b"zabota-payroll-ledger")


async def ledger_lock(session: AsyncSession, exclusive: bool) -> None:
    """On PostgreSQL: facts take the ledger lock shared; closing, re-pricing and rebuilding take it exclusive,
    so no fact slips into a month while it is being closed. SQLite serialises writers already."""
    if session.bind.dialect.name == "postgresql":
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await session.execute(text(f"SELECT {fn}(:k)"), {"k": LEDGER_LOCK})


# ---------------------------------------------------------------- roster (PAY-1)


async def enroll(session: AsyncSession, login: str, at: datetime, tz: ZoneInfo, clock: Clock) -> None:
    """Auto-enrol a manager first seen in a clients event, employed from the first day of that month.

    An auto-enrolled period may move earlier when an older fact shows up (replays, backdated facts); a
    period set by hand (PUT /employees) is never changed by events.
    """
    if not login:
        return
    start = first_day(month_of(at, tz))
    emp = await session.get(Employee, login)
    if emp is None:
        session.add(Employee(login=login, role=CONTENT_MANAGER, employed_from=start, employed_to=None,
                             auto_enrolled=True, updated_at=clock.now()))
        await session.flush()
    elif emp.auto_enrolled and emp.employed_from > start:
        emp.employed_from = start
        emp.updated_at = clock.now()


async def put_employee(session: AsyncSession, login: str, role: str, employed_from: date,
                       employed_to: date | None, clock: Clock) -> Employee:
    if employed_to is not None and employed_to < employed_from:
        raise DomainError("employed_to is before employed_from", field="employed_to")
    emp = await session.get(Employee, login)
    if emp is None:
        emp = Employee(login=login)
        session.add(emp)
    emp.role, emp.employed_from, emp.employed_to = role, employed_from, employed_to
    emp.auto_enrolled = False
    emp.updated_at = clock.now()
    await session.flush()
    return emp


async def employed_managers(session: AsyncSession, month: str) -> list[str]:
    """Content managers employed on at least one day of the month (a whole month's base: no pro-rating)."""
    rows = await session.execute(
        select(Employee.login).where(Employee.role == CONTENT_MANAGER,
                                     Employee.employed_from <= last_day(month),
                                     (Employee.employed_to.is_(None)) | (Employee.employed_to >= first_day(month)))
        .order_by(Employee.login))
    return list(rows.scalars())


# ---------------------------------------------------------------- facts → ledger lines (PAY-2…PAY-6, PAY-8)


async def placement(session: AsyncSession, month: str) -> tuple[str, str | None]:
    """(month the line goes to, month it adjusts): a fact of a closed month goes to the next open month."""
    closed = set(await closed_runs(session))
    if month not in closed:
        return month, None
    target = next_month(month)
    while target in closed:
        target = next_month(target)
    return target, month


@dataclass
class Fact:
    manager: str
    rule: str
    occurred_at: datetime
    event_id: str
    deal_id: str | None = None
    trace_id: str | None = None
    note: str = ""
    deadline_id: str | None = None
    deadline_rule: str | None = None


async def record_fact(session: AsyncSession, fact: Fact, tz: ZoneInfo, clock: Clock) -> LedgerLine | None:
    """Turn one fact into its ledger line, once: (source event, rule, manager) is unique."""
    await ledger_lock(session, exclusive=False)
    existing = (await session.execute(select(LedgerLine.id).where(
        LedgerLine.source_event_id == fact.event_id, LedgerLine.rule == fact.rule,
        LedgerLine.manager == fact.manager))).first()
    if existing is not None:
        return None
    if await _voided(session, fact):
        return None  # undone before it arrived (a late loss after its undo; a waived deadline)
    fact_month = month_of(fact.occurred_at, tz)
    book = await rule_book(session, fact_month)  # a fact is priced by its own month's rules
    month, adjusts = await placement(session, fact_month)
    note = fact.note if adjusts is None else f"adjustment for {adjusts} (closed): {fact.note}"
    line = LedgerLine(manager=fact.manager, month=month, rule=fact.rule,
                      amount_minor=book.amount(fact.rule, fact.deadline_rule), currency=book.currency,
                      source_event_id=fact.event_id, deal_id=fact.deal_id, deadline_id=fact.deadline_id,
                      deadline_rule=fact.deadline_rule, occurred_at=fact.occurred_at, trace_id=fact.trace_id,
                      note=note, adjusts_month=adjusts, created_at=clock.now())
    session.add(line)
    await session.flush()
    return line


async def _voided(session: AsyncSession, fact: Fact) -> bool:
    targets = [f"event:{fact.event_id}"]
    if fact.deadline_id:
        targets.append(f"deadline:{fact.deadline_id}")
    return (await session.execute(select(Void.target).where(Void.target.in_(targets)))).first() is not None


async def void_fact(session: AsyncSession, *, target: str, rule: str, void_event_id: str, occurred_at: datetime,
                    trace_id: str | None, note: str, clock: Clock) -> None:
    """Undo the line(s) of a fact (PAY-3 loss undone, PAY-6 deadline waived).

    In an open month the line leaves the statement (kept with `voided_by_event_id`); in a closed month it
    stays and a reversing adjustment goes to the next open month, pointing at it (PAY-8).
    """
    await ledger_lock(session, exclusive=False)
    if await session.get(Void, target) is None:
        session.add(Void(target=target, void_event_id=void_event_id, occurred_at=occurred_at))
    kind, _, key = target.partition(":")
    match = LedgerLine.source_event_id == key if kind == "event" else LedgerLine.deadline_id == key
    lines = (await session.execute(select(LedgerLine).where(
        match, LedgerLine.rule == rule, LedgerLine.corrects_line_id.is_(None),
        LedgerLine.voided_by_event_id.is_(None)))).scalars().all()
    closed = set(await closed_runs(session))
    for line in lines:
        if line.month not in closed:
            line.voided_by_event_id = void_event_id
            continue
        done = (await session.execute(select(LedgerLine.id).where(
            LedgerLine.source_event_id == void_event_id, LedgerLine.rule == rule,
            LedgerLine.manager == line.manager))).first()
        if done is not None:
            continue
        month, _ = await placement(session, line.month)
        session.add(LedgerLine(
            manager=line.manager, month=month, rule=rule, amount_minor=-line.amount_minor, currency=line.currency,
            source_event_id=void_event_id, deal_id=line.deal_id, deadline_id=line.deadline_id,
            deadline_rule=line.deadline_rule, occurred_at=occurred_at, trace_id=trace_id,
            note=f"adjustment for {line.month} (closed): reverses line {line.id} — {note}",
            adjusts_month=line.month, corrects_line_id=line.id, created_at=clock.now()))
    await session.flush()


OUTCOME_RANK = {"met": 0, "breached": 1, "waived": 2}


async def record_deadline_outcome(session: AsyncSession, *, deadline_id: str, owner: str, rule: str,
                                  due_at: datetime, outcome: str, event_id: str, tz: ZoneInfo) -> None:
    """A deadline's outcome for PAY-7 (month of its due time). Waived beats breached beats met."""
    row = await session.get(DeadlineOutcome, deadline_id)
    month = month_of(due_at, tz)
    if row is None:
        session.add(DeadlineOutcome(deadline_id=deadline_id, owner=owner, rule=rule, month=month,
                                    outcome=outcome, event_id=event_id))
        await session.flush()
    elif OUTCOME_RANK[outcome] > OUTCOME_RANK[row.outcome]:
        row.outcome, row.event_id = outcome, event_id


# ---------------------------------------------------------------- PAY-7: the best manager (pure ranking)


@dataclass
class ManagerStats:
    manager: str
    renewals: int = 0
    lost: int = 0
    refunds: int = 0
    met: int = 0
    breached: int = 0

    @property
    def compliance(self) -> Decimal:
        """met / (met + breached); a manager with no deadlines breached nothing: 1."""
        total = self.met + self.breached
        return Decimal(1) if total == 0 else Decimal(self.met) / Decimal(total)

    @property
    def active(self) -> bool:
        return bool(self.renewals or self.lost or self.refunds or self.met or self.breached)

    def figure(self, criterion: str) -> Any:
        if criterion == "compliance":
            return self.compliance
        return getattr(self, criterion)

    def figures(self) -> dict[str, Any]:
        return {"manager": self.manager, "renewals": self.renewals, "lost": self.lost, "refunds": self.refunds,
                "deadlines_met": self.met, "deadlines_breached": self.breached,
                "compliance": str(self.compliance.quantize(Decimal("0.0001")))}


def rank_best_manager(stats: Iterable[ManagerStats], criteria: Sequence[str]) -> tuple[str | None, dict[str, Any]]:
    """PAY-7: order by the configured criteria, then by login; returns the winner and why.

    Nobody wins a month without facts (no renewals, losses, refunds or deadlines for anyone).
    """
    candidates = list(stats)
    rule = list(criteria)
    if not any(s.active for s in candidates):
        return None, {"rule": rule, "reason": "no renewals, losses, refunds or deadlines this month", "ranking": []}

    def key(s: ManagerStats) -> tuple:
        parts = []
        for c in rule:
            v = s.figure(c)
            parts.append(-v if CRITERIA[c][0] == "desc" else v)
        return (*parts, s.manager)

    ranked = sorted(candidates, key=key)
    winner = ranked[0]
    reason = "first by " + ", then ".join(f"{c} ({CRITERIA[c][0]})" for c in rule)
    if len(ranked) > 1:
        runner = ranked[1]
        decided = next((c for c in rule if winner.figure(c) != runner.figure(c)), None)
        reason += (f"; decided over {runner.manager} by {decided}: "
                   f"{_show(winner.figure(decided))} vs {_show(runner.figure(decided))}"
                   if decided else f"; tied with {runner.manager} on every criterion, decided by login")
    return winner.manager, {"rule": rule, "reason": reason, "winner": winner.figures(),
                            "ranking": [s.figures() for s in ranked[:5]]}


def _show(v: Any) -> str:
    return f"{(v * 100).quantize(Decimal('0.1'))}%" if isinstance(v, Decimal) else str(v)


async def manager_stats(session: AsyncSession, month: str, managers: Sequence[str]) -> list[ManagerStats]:
    """The figures of PAY-7 for a month: the month's own facts (adjustments for other months don't count)."""
    stats = {m: ManagerStats(m) for m in managers}
    counted = {"PAY-2": "renewals", "PAY-3": "lost", "PAY-4": "refunds"}
    rows = await session.execute(
        select(LedgerLine.manager, LedgerLine.rule, func.count())
        .where(LedgerLine.month == month, LedgerLine.rule.in_(list(counted)), LedgerLine.adjusts_month.is_(None),
               LedgerLine.voided_by_event_id.is_(None))
        .group_by(LedgerLine.manager, LedgerLine.rule))
    for manager, rule, n in rows:
        if manager in stats:
            setattr(stats[manager], counted[rule], int(n))
    rows = await session.execute(
        select(DeadlineOutcome.owner, DeadlineOutcome.outcome, func.count())
        .where(DeadlineOutcome.month == month, DeadlineOutcome.outcome.in_(["met", "breached"]))
        .group_by(DeadlineOutcome.owner, DeadlineOutcome.outcome))
    for owner, outcome, n in rows:
        if owner in stats:
            setattr(stats[owner], outcome, int(n))
    return list(stats.values())


# ---------------------------------------------------------------- the month: live preview and close


@dataclass
class MonthView:
    month: str
    state: str
    book: RuleBook
    managers: dict[str, dict[str, list[int]]]  # manager → rule → [sum minor, count]
    employed: list[str]
    best_manager: str | None
    why: dict[str, Any]
    closed_at: datetime | None = None
    closed_by: str | None = None
    virtual: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # open month: PAY-1 / PAY-7 lines

    def total(self, manager: str) -> int:
        return sum(v[0] for v in self.managers.get(manager, {}).values())

    def as_json(self) -> dict[str, Any]:
        managers = []
        for m in sorted(self.managers):
            by_rule = self.managers[m]
            managers.append({"manager": m, "total": fmt(self.total(m)), "best_manager": m == self.best_manager,
                             "by_rule": {r: {"amount": fmt(v[0]), "lines": v[1]} for r, v in sorted(by_rule.items())}})
        return {"month": self.month, "state": self.state, "currency": self.book.currency,
                "rule_set": self.book.id, "closed_at": self.closed_at.isoformat() if self.closed_at else None,
                "closed_by": self.closed_by, "total": fmt(sum(self.total(m) for m in self.managers)),
                "managers": managers, "best_manager": self.best_manager, "best_manager_why": self.why}


def best_line(month: str, manager: str, book: RuleBook, why: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    return {"id": None, "manager": manager, "rule": "PAY-7", "amount_minor": book.amount("PAY-7"),
            "currency": book.currency, "deal_id": None, "event_id": None, "deadline_id": None,
            "occurred_at": month_start_utc(next_month(month), tz) - timedelta(microseconds=1),
            "trace_id": None, "note": f"best manager of {month}: {why.get('reason', '')}",
            "adjusts_month": None, "corrects_line_id": None}


def base_line(month: str, manager: str, book: RuleBook, tz: ZoneInfo) -> dict[str, Any]:
    return {"id": None, "manager": manager, "rule": "PAY-1", "amount_minor": book.amount("PAY-1"),
            "currency": book.currency, "deal_id": None, "event_id": None, "deadline_id": None,
            "occurred_at": month_start_utc(month, tz), "trace_id": None, "note": f"base salary {month}",
            "adjusts_month": None, "corrects_line_id": None}


async def month_view(session: AsyncSession, month: str, tz: ZoneInfo, only: str | None = None) -> MonthView:
    """The month overview: one GROUP BY (manager, rule) over the ledger, never the lines themselves.

    An open month is a live preview: base salaries (PAY-1) of the managers employed that month and the
    best manager (PAY-7) are derived now; a closed month shows what was frozen.
    """
    check_month(month)
    run = await session.get(MonthRun, month)
    book = await rule_book(session, month)
    query = (select(LedgerLine.manager, LedgerLine.rule, func.sum(LedgerLine.amount_minor), func.count())
             .where(LedgerLine.month == month, LedgerLine.voided_by_event_id.is_(None))
             .group_by(LedgerLine.manager, LedgerLine.rule))
    if only is not None:
        query = query.where(LedgerLine.manager == only)
    managers: dict[str, dict[str, list[int]]] = {}
    for manager, rule, total, n in await session.execute(query):
        managers.setdefault(manager, {})[rule] = [int(total or 0), int(n)]
    employed = await employed_managers(session, month)
    view = MonthView(month=month, state="closed" if run else "open", book=book, managers=managers,
                     employed=employed, best_manager=None, why={})
    if run is not None:
        view.best_manager, view.why = run.best_manager, dict(run.best_manager_why or {})
        view.closed_at, view.closed_by = run.closed_at, run.closed_by
        return view
    view.best_manager, view.why = rank_best_manager(await manager_stats(session, month, employed),
                                                    book.best_manager_rule)
    for m in employed:
        if only is not None and m != only:
            continue
        managers.setdefault(m, {})["PAY-1"] = [book.amount("PAY-1"), 1]
        view.virtual.setdefault(m, []).append(base_line(month, m, book, tz))
    if view.best_manager and (only is None or view.best_manager == only):
        managers.setdefault(view.best_manager, {})["PAY-7"] = [book.amount("PAY-7"), 1]
        view.virtual.setdefault(view.best_manager, []).append(best_line(month, view.best_manager, book, view.why, tz))
    return view


LINE_COLUMNS = (LedgerLine.id, LedgerLine.manager, LedgerLine.rule, LedgerLine.amount_minor, LedgerLine.currency,
                LedgerLine.deal_id, LedgerLine.source_event_id, LedgerLine.deadline_id, LedgerLine.occurred_at,
                LedgerLine.trace_id, LedgerLine.note, LedgerLine.adjusts_month, LedgerLine.corrects_line_id)


def _line_dict(row: Any) -> dict[str, Any]:
    return {"id": row[0], "manager": row[1], "rule": row[2], "amount_minor": row[3], "currency": row[4],
            "deal_id": row[5], "event_id": row[6], "deadline_id": row[7], "occurred_at": row[8],
            "trace_id": row[9], "note": row[10], "adjusts_month": row[11], "corrects_line_id": row[12]}


async def stored_lines(session: AsyncSession, month: str, manager: str | None = None, offset: int = 0,
                       limit: int | None = None) -> list[dict[str, Any]]:
    from shared.clock import as_utc

    query = (select(*LINE_COLUMNS).where(LedgerLine.month == month, LedgerLine.voided_by_event_id.is_(None))
             .order_by(LedgerLine.manager, LedgerLine.occurred_at, LedgerLine.id))
    if manager is not None:
        query = query.where(LedgerLine.manager == manager)
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    # Core rows, not ORM objects: a statement of thousands of lines stays cheap.
    result = await session.execute(query)
    lines = [_line_dict(r) for r in result]
    for line in lines:
        line["occurred_at"] = as_utc(line["occurred_at"])
    return lines


def line_json(line: dict[str, Any]) -> dict[str, Any]:
    return {"rule": line["rule"], "amount": fmt(line["amount_minor"]), "currency": line["currency"],
            "deal_id": line["deal_id"], "event_id": line["event_id"],
            "occurred_at": line["occurred_at"].isoformat(), "note": line["note"], "id": line["id"],
            "deadline_id": line["deadline_id"], "trace_id": line["trace_id"],
            "adjusts_month": line["adjusts_month"], "corrects_line_id": line["corrects_line_id"]}


async def statements(session: AsyncSession, month: str, tz: ZoneInfo, only: str | None = None) -> list[dict]:
    """The contract's statements: every manager of the month with all lines; total = the sum of the lines."""
    view = await month_view(session, month, tz, only=only)
    stored = await stored_lines(session, month, manager=only)
    by_manager: dict[str, list[dict[str, Any]]] = {m: list(v) for m, v in view.virtual.items()}
    for line in stored:
        by_manager.setdefault(line["manager"], []).append(line)
    out = []
    for manager in sorted(by_manager):
        lines = sorted(by_manager[manager], key=lambda ln: (ln["occurred_at"], ln["id"] or 0))
        total = sum(ln["amount_minor"] for ln in lines)
        out.append({"manager": manager, "month": month, "currency": view.book.currency,
                    "lines": [line_json(ln) for ln in lines], "total": fmt(total),
                    "best_manager": manager == view.best_manager})
    return out


async def statement_page(session: AsyncSession, month: str, manager: str, tz: ZoneInfo, page: int,
                         page_size: int) -> dict[str, Any]:
    """One manager's statement, lines paginated (derived PAY-1/PAY-7 lines of an open month come first)."""
    view = await month_view(session, month, tz, only=manager)
    virtual = view.virtual.get(manager, [])
    stored_count = sum(v[1] for r, v in view.managers.get(manager, {}).items()) - len(virtual)
    start = (page - 1) * page_size
    lines = virtual[start:start + page_size]
    rest = page_size - len(lines)
    if rest > 0:
        lines += await stored_lines(session, month, manager=manager, offset=max(0, start - len(virtual)), limit=rest)
    return {"manager": manager, "month": month, "state": view.state, "currency": view.book.currency,
            "total": fmt(view.total(manager)), "best_manager": manager == view.best_manager, "page": page,
            "page_size": page_size, "lines_total": stored_count + len(virtual),
            "lines": [line_json(ln) for ln in lines]}


async def close_month(session: AsyncSession, month: str, by: str, tz: ZoneInfo, clock: Clock) -> MonthView:
    """Freeze a month: store its base salaries and best manager as lines, keep its rule set, emit the event."""
    check_month(month)
    await ledger_lock(session, exclusive=True)
    if await is_closed(session, month):
        raise Conflict(f"{month} is already closed", field="month")
    if clock.now() < month_start_utc(next_month(month), tz):
        raise Conflict(f"{month} has not ended yet (agency time)", field="month")
    view = await month_view(session, month, tz)
    now = clock.now()
    for manager, lines in view.virtual.items():
        for ln in lines:
            session.add(LedgerLine(
                manager=manager, month=month, rule=ln["rule"], amount_minor=ln["amount_minor"],
                currency=ln["currency"], source_event_id=f"payroll:{month}:{ln['rule']}", deal_id=None,
                occurred_at=ln["occurred_at"], trace_id=None, note=ln["note"], created_at=now))
    session.add(MonthRun(month=month, state="closed", rule_set_id=view.book.id, closed_at=now, closed_by=by,
                         best_manager=view.best_manager, best_manager_why=view.why))
    await session.flush()
    view.state, view.closed_at, view.closed_by = "closed", now, by
    add_event(session, PayrollMonthClosed(
        month=month, currency=view.book.currency, closed_by=by, closed_at=now, rule_set=view.book.id,
        best_manager=view.best_manager,
        total=Decimal(fmt(sum(view.total(m) for m in view.managers))),
        managers=[ManagerTotal(manager=m, total=Decimal(fmt(view.total(m))), best_manager=m == view.best_manager)
                  for m in sorted(view.managers)]), clock)
    return view


# ---------------------------------------------------------------- rebuild (replays are safe)


async def clear_open_months(session: AsyncSession) -> int:
    """Before a rebuild from the event stream: drop what the stream will give back (lines of open months,
    voids, deadline outcomes); closed months stay as they were frozen."""
    await ledger_lock(session, exclusive=True)
    closed = list(await closed_runs(session))
    query = delete(LedgerLine)
    if closed:
        query = query.where(LedgerLine.month.not_in(closed))
    result = await session.execute(query)
    await session.execute(delete(Void))
    await session.execute(delete(DeadlineOutcome))
    return result.rowcount or 0


async def ledger_snapshot(session: AsyncSession) -> list[tuple]:
    """Every ledger line in a comparable form (for replay tests and operators)."""
    rows = await session.execute(select(
        LedgerLine.manager, LedgerLine.month, LedgerLine.rule, LedgerLine.amount_minor, LedgerLine.currency,
        LedgerLine.source_event_id, LedgerLine.deal_id, LedgerLine.deadline_id, LedgerLine.trace_id,
        LedgerLine.note, LedgerLine.adjusts_month, LedgerLine.voided_by_event_id)
        .order_by(LedgerLine.source_event_id, LedgerLine.rule, LedgerLine.manager))
    return [tuple(r) for r in rows]
