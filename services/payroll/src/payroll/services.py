"""Payroll's month on its database: the live preview, statements, PAY-7 tie picks, the close, and rebuild
helpers. The rules themselves are plain functions in `rules.py`; facts become ledger lines in `ledger.py`;
rule-set versions live in `rule_sets.py`, the roster in `roster.py`.

- PAY-1 base salary: `base_line` (derived per employed content manager; frozen at close).
- PAY-7 best manager: `rank_best_manager` (pure) over `manager_stats` (SQL); a full tie waits for the lead's
  `pick_best_manager`, and `close_month` refuses a month whose tie is unresolved.
- PAY-8 closed months are immutable: `close_month` freezes; later facts adjust the next open month.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from shared.clock import Clock
from shared.errors import Conflict, DomainError
from shared.events.payroll import ManagerTotal, PayrollMonthClosed
from shared.outbox import add_event
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from payroll.models import (
    AuditEntry,
    BestManagerPick,
    DeadlineOutcome,
    DealManager,
    DealPeriod,
    LedgerLine,
    MonthRun,
    Void,
)
from payroll.roster import employed_managers
from payroll.rule_sets import closed_runs, is_closed, ledger_lock, rule_book
from payroll.rules import (
    ManagerStats,
    Pick,
    RuleBook,
    check_month,
    fmt,
    month_start_utc,
    next_month,
    rank_best_manager,
)
from shared import messages as M

# Refusal codes (the gateway words them): closing with an unresolved PAY-7 tie; picking outside a tie.
TIE_UNRESOLVED = M.BEST_MANAGER_TIE_UNRESOLVED
NO_TIE = M.BEST_MANAGER_NO_TIE
NOT_TIED = M.BEST_MANAGER_NOT_TIED


async def manager_stats(session: AsyncSession, month: str, managers: Sequence[str], tz: ZoneInfo
                        ) -> list[ManagerStats]:
    """The figures of PAY-7 for a month: the month's own facts (adjustments for other months don't count),
    and how many deals each manager had during the month (seen before its end, not lost before its start)."""
    stats = {m: ManagerStats(m) for m in managers}
    start, end = month_start_utc(month, tz), month_start_utc(next_month(month), tz)
    rows = await session.execute(
        select(DealManager.manager, func.count()).where(
            DealManager.manager.in_(list(managers)), DealManager.since < end,
            or_(DealManager.lost_at.is_(None), DealManager.lost_at >= start))
        .group_by(DealManager.manager))
    for manager, n in rows:
        stats[manager].deals = int(n)
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
                "managers": managers, "best_manager": self.best_manager, "best_manager_why": self.why,
                "tie": self.why.get("tie")}


def best_line(month: str, manager: str, book: RuleBook, why: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    return {"id": None, "manager": manager, "rule": "PAY-7", "amount_minor": book.amount("PAY-7"),
            "currency": book.currency, "deal_id": None, "event_id": None, "deadline_id": None,
            "occurred_at": month_start_utc(next_month(month), tz) - timedelta(microseconds=1),
            "trace_id": None, "note": f"best manager of {month}: {why.get('reason', '')}",
            "adjusts_month": None, "corrects_line_id": None, "month": month}


def base_line(month: str, manager: str, book: RuleBook, tz: ZoneInfo) -> dict[str, Any]:
    return {"id": None, "manager": manager, "rule": "PAY-1", "amount_minor": book.amount("PAY-1"),
            "currency": book.currency, "deal_id": None, "event_id": None, "deadline_id": None,
            "occurred_at": month_start_utc(month, tz), "trace_id": None, "note": f"base salary {month}",
            "adjusts_month": None, "corrects_line_id": None, "month": month}


def why_seen_by(why: dict[str, Any], manager: str) -> dict[str, Any]:
    """PAY-7's "why" as one content manager may see it (DOMAIN "Roles": a content manager sees only their
    own figures; issue 8 matrix): the best manager's name, the criteria, the code and the tie's names, and
    the figures of `manager` alone — the ranking holds only their own row, the winner's figures only if they
    won, the reason only the criteria (its "decided over X by c: a vs b" quotes two other managers' figures).
    The lead, the analyst and integrations get the whole `why` (month_view without `only`)."""
    own = [row for row in why.get("ranking") or [] if row.get("manager") == manager]
    winner = why.get("winner")
    reason = str(why.get("reason") or "")
    if why.get("code") == "decided":
        reason = reason.split(";", 1)[0]
    return {**why, "ranking": own, "reason": reason,
            "winner": winner if not winner or winner.get("manager") == manager
            else {"manager": winner.get("manager")}}


async def months_with_data(session: AsyncSession, only: str | None = None) -> list[str]:
    """Months with a ledger line (of `only`, if given) or a closed run, newest first (two DISTINCT reads)."""
    lines = select(LedgerLine.month).where(LedgerLine.voided_by_event_id.is_(None)).distinct()
    if only is not None:
        lines = lines.where(LedgerLine.manager == only)
    months = {m for (m,) in await session.execute(lines)}
    months |= {m for (m,) in await session.execute(select(MonthRun.month))}
    return sorted(months, reverse=True)


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
        if only is not None:
            view.why = why_seen_by(view.why, only)
        return view
    row = await session.get(BestManagerPick, month)
    pick = None if row is None else Pick(row.manager, tuple(row.tied), row.picked_by, row.picked_at)
    view.best_manager, view.why = rank_best_manager(await manager_stats(session, month, employed, tz),
                                                    book.best_manager_rule, pick)
    if only is not None:
        view.why = why_seen_by(view.why, only)
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
                LedgerLine.trace_id, LedgerLine.note, LedgerLine.adjusts_month, LedgerLine.corrects_line_id,
                LedgerLine.deadline_rule, LedgerLine.month)


def _line_dict(row: Any) -> dict[str, Any]:
    return {"id": row[0], "manager": row[1], "rule": row[2], "amount_minor": row[3], "currency": row[4],
            "deal_id": row[5], "event_id": row[6], "deadline_id": row[7], "occurred_at": row[8],
            "trace_id": row[9], "note": row[10], "adjusts_month": row[11], "corrects_line_id": row[12],
            "deadline_rule": row[13], "month": row[14]}


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
            "adjusts_month": line["adjusts_month"], "corrects_line_id": line["corrects_line_id"],
            **note_code(line)}


LINE_CODES = {"PAY-1": M.LINE_BASE_SALARY, "PAY-2": M.LINE_RENEWAL, "PAY-3": M.LINE_LOST, "PAY-4": M.LINE_REFUND,
              "PAY-5": M.LINE_NO_REFUND, "PAY-6": M.LINE_DEADLINE, "PAY-7": M.LINE_BEST_MANAGER}


_WAIVED = re.compile(r"deadline (\S+) waived by (\S+): (.*)$", re.S)
_MET = re.compile(r"deadline (\S+) met at ")


def note_code(line: dict[str, Any]) -> dict[str, Any]:
    """What a statement line is about as a message code + parameters (issue 9: the gateway says it in the
    reader's language; `note` stays the English text for the CSV and the API). A reversal names the line it
    reverses; a line of a closed month's fact says which month it corrects (`adjusts_month`, shown apart)."""
    month = line.get("adjusts_month") or line.get("month") or str(line["occurred_at"])[:7]
    if line.get("corrects_line_id"):
        # The reversal's own note (ledger.reverse) names the fact behind it: a waiver keeps its reason.
        note, params = str(line.get("note") or ""), {"line": line["corrects_line_id"]}
        if waived := _WAIVED.search(note):
            return {"note_code": M.LINE_REVERSAL_WAIVED,
                    "note_params": {**params, "rule": waived[1], "by": waived[2], "reason": waived[3]}}
        if met := _MET.search(note):
            return {"note_code": M.LINE_REVERSAL_MET, "note_params": {**params, "rule": met[1]}}
        return {"note_code": M.LINE_REVERSAL, "note_params": params}
    code = LINE_CODES.get(line["rule"])
    if code is None:
        return {"note_code": None, "note_params": {}}
    params: dict[str, Any] = {}
    if code in (M.LINE_BASE_SALARY, M.LINE_BEST_MANAGER):
        params["month"] = month
    elif code == M.LINE_DEADLINE:
        params["rule"] = line.get("deadline_rule") or ""
    return {"note_code": code, "note_params": params}


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
    """One manager's statement, lines paginated in date order (issue 9): the derived lines of an open
    month (PAY-1 at the month's start, PAY-7 at its end) take their place among the stored lines by
    their time, so every page is in the order the statement is read (ties: a derived line first)."""
    view = await month_view(session, month, tz, only=manager)
    virtual = sorted(view.virtual.get(manager, []), key=lambda ln: ln["occurred_at"])
    stored_count = sum(v[1] for r, v in view.managers.get(manager, {}).items()) - len(virtual)
    positions = []   # each derived line's place in the merged order: stored lines before it + derived before it
    for i, ln in enumerate(virtual):
        before = (await session.execute(
            select(func.count()).select_from(LedgerLine).where(
                LedgerLine.month == month, LedgerLine.manager == manager, LedgerLine.voided_by_event_id.is_(None),
                LedgerLine.occurred_at < ln["occurred_at"]))).scalar_one()
        positions.append(int(before) + i)
    start, end = (page - 1) * page_size, page * page_size
    shown = [ln for ln, pos in zip(virtual, positions, strict=True) if start <= pos < end]
    skipped = sum(1 for pos in positions if pos < start)
    rest = page_size - len(shown)
    stored = await stored_lines(session, month, manager=manager, offset=start - skipped, limit=rest) if rest > 0 else []
    lines = sorted([*shown, *stored], key=lambda ln: (ln["occurred_at"], ln["id"] or 0))
    return {"manager": manager, "month": month, "state": view.state, "currency": view.book.currency,
            "total": fmt(view.total(manager)), "best_manager": manager == view.best_manager, "page": page,
            "page_size": page_size, "lines_total": stored_count + len(virtual),
            "lines": [line_json(ln) for ln in lines]}


async def close_month(session: AsyncSession, month: str, by: str, tz: ZoneInfo, clock: Clock) -> MonthView:
    """Freeze a month: store its base salaries and best manager as lines, keep its rule set, emit the event."""
    check_month(month)
    await ledger_lock(session, exclusive=True)
    if await is_closed(session, month):
        raise Conflict(M.text(M.MONTH_CLOSED, month=month), errors=[M.item("month", M.MONTH_CLOSED, month=month)])
    if clock.now() < month_start_utc(next_month(month), tz):
        raise Conflict(M.text(M.MONTH_NOT_ENDED, month=month), errors=[M.item("month", M.MONTH_NOT_ENDED, month=month)])
    view = await month_view(session, month, tz)
    tie = view.why.get("tie")
    if view.best_manager is None and tie:
        raise Conflict(f"{month}: {', '.join(tie['managers'])} are tied for best manager on every criterion; "
                       "pick the best manager before closing", errors=[{
                           **M.item("best_manager", TIE_UNRESOLVED), "managers": ", ".join(tie["managers"])}])
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


async def pick_best_manager(session: AsyncSession, month: str, manager: str, *, by: str, role: str, tz: ZoneInfo,
                            clock: Clock) -> MonthView:
    """PAY-7: the lead picks the best manager among those tied on every criterion (audited).

    The pick holds for exactly that tie: if later facts break it or change who is tied, the ranking decides
    again (or asks again). A closed month's best manager never changes.
    """
    check_month(month)
    if not isinstance(manager, str) or not manager.strip():
        raise M.error("manager", M.BEST_MANAGER_CHOOSE)
    await ledger_lock(session, exclusive=True)
    if await is_closed(session, month):
        raise M.refusal(Conflict, "month", M.BEST_MANAGER_CLOSED, month=month)
    view = await month_view(session, month, tz)
    tie = view.why.get("tie")
    if not tie:
        raise Conflict(f"nobody is tied for best manager in {month}", errors=[M.item("manager", NO_TIE)])
    if manager not in tie["managers"]:
        tied = ", ".join(tie["managers"])
        raise DomainError(f"{manager} is not among the tied managers ({tied})",
                          errors=[{**M.item("manager", NOT_TIED, managers=tied), "managers": tied}])
    row = await session.get(BestManagerPick, month)
    previous = None if row is None else {"manager": row.manager, "tied": row.tied}
    if row is None:
        row = BestManagerPick(month=month)
        session.add(row)
    row.manager, row.tied, row.picked_by, row.picked_at = manager, list(tie["managers"]), by, clock.now()
    session.add(AuditEntry(at=clock.now(), actor=by, role=role, action="payroll.best_manager.picked", target=month,
                           detail={"manager": manager, "tied": list(tie["managers"]), "previous": previous,
                                   "figures": [f for f in view.why.get("ranking", [])
                                               if f["manager"] in tie["managers"]]}))
    await session.flush()
    return await month_view(session, month, tz)


# ---------------------------------------------------------------- rebuild (replays are safe)


async def clear_open_months(session: AsyncSession) -> int:
    """Before a rebuild from the event stream: drop what the stream will give back (lines of open months,
    voids, deadline outcomes, deals and their periods); closed months stay as they were frozen, and the
    lead's PAY-7 picks stay (they are not in the stream)."""
    await ledger_lock(session, exclusive=True)
    closed = list(await closed_runs(session))
    query = delete(LedgerLine)
    if closed:
        query = query.where(LedgerLine.month.not_in(closed))
    result = await session.execute(query)
    await session.execute(delete(Void))
    await session.execute(delete(DeadlineOutcome))
    await session.execute(delete(DealManager))
    await session.execute(delete(DealPeriod))
    return result.rowcount or 0


async def ledger_snapshot(session: AsyncSession) -> list[tuple]:
    """Every ledger line in a comparable form (for replay tests and operators)."""
    rows = await session.execute(select(
        LedgerLine.manager, LedgerLine.month, LedgerLine.rule, LedgerLine.amount_minor, LedgerLine.currency,
        LedgerLine.source_event_id, LedgerLine.deal_id, LedgerLine.deadline_id, LedgerLine.trace_id,
        LedgerLine.note, LedgerLine.adjusts_month, LedgerLine.voided_by_event_id)
        .order_by(LedgerLine.source_event_id, LedgerLine.rule, LedgerLine.manager))
    return [tuple(r) for r in rows]
