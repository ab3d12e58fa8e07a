"""Thin HTTP handlers of the payroll API (mounted under /api/payroll, behind the API guard).

Who may do what (DOMAIN.md, Roles): a content manager sees only their own statement and figures; the
analyst, the project lead and integration tokens read everything; only the project lead (`lead`) closes
a month, changes the rules or rebuilds the ledger — the gateway re-authenticates the lead's password
before it calls close. Integration tokens may NOT close a month or change rules (a close is a person's
decision), but may maintain the roster (PUT /employees, e.g. from an HR system).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from litestar import Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from shared.auth import Actor
from shared.errors import Forbidden, NotFound
from shared.service import Runtime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from payroll import roster, rule_sets
from payroll import services as svc
from payroll.handlers import rebuild
from payroll.models import Employee
from payroll.rules import RuleBook, check_month, month_of
from payroll.schemas import BestManagerIn, EmployeeIn, RulesIn
from shared import messages as M

READ_ALL = {"lead", "analyst", "integration"}
ROSTER_WRITERS = {"lead", "integration"}
ROLES = {"content_manager", "lead", "analyst", "ad_manager", "growth", "monitoring", "care_agent", "senior_agent"}


def _scope(actor: NamedDependency[Actor]) -> str | None:
    """None = every manager; a login = only that manager's own figures."""
    if actor.role in READ_ALL:
        return None
    if actor.role == "content_manager":
        return actor.login
    raise M.refusal(Forbidden, None, M.ROLE_MAY_NOT_READ_PAYROLL, role=actor.role)


def _lead(actor: NamedDependency[Actor], refusal: str) -> None:
    """Only the project lead; `refusal` is the code saying what only the lead may do."""
    if actor.role != "lead":
        raise M.refusal(Forbidden, None, refusal)


def _tz(runtime: NamedDependency[Runtime]):
    return runtime.settings.calendar.tz


def _own(actor: NamedDependency[Actor], manager: str) -> None:
    scope = _scope(actor)
    if scope is not None and scope != manager:
        raise M.refusal(Forbidden, "manager", M.OWN_STATEMENT)


@get("/statements")
async def list_statements(month: str, actor: NamedDependency[Actor], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> list[dict]:
    """Statements of a month: every manager (or only yourself, as a content manager), with all lines."""
    check_month(month)
    return await svc.statements(session, month, _tz(runtime), only=_scope(actor))


@get("/statements/{manager:str}")
async def manager_statement(manager: str, month: str, actor: NamedDependency[Actor], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                            page: int = 1, page_size: int = 200) -> Any:
    """One manager's statement with paginated lines; `/statements/<login>.csv?month=` exports every line as CSV."""
    check_month(month)
    as_csv = manager.endswith(".csv")
    if as_csv:
        manager = manager[:-4]
    _own(actor, manager)
    if as_csv:
        return await _csv(session, month, manager, runtime)
    if not 1 <= page <= 1_000_000:   # issue 8 item 10: an unbounded page overflows the SQL offset
        raise M.error("page", M.PAGE_RANGE)
    if not 1 <= page_size <= 5000:
        raise M.error("page_size", M.PAGE_SIZE_RANGE)
    return await svc.statement_page(session, month, manager, _tz(runtime), page, page_size)


async def _csv(session: NamedDependency[AsyncSession], month: str, manager: str, runtime: NamedDependency[Runtime]) -> Response:
    tz = _tz(runtime)
    found = await svc.statements(session, month, tz, only=manager)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["month", "manager", "rule", "amount", "currency", "occurred_at_utc", "occurred_at_local",
                     "deal_id", "event_id", "deadline_id", "adjusts_month", "corrects_line_id", "note"])
    from datetime import datetime

    total = "0.00"
    for st in found:
        total = st["total"]
        for ln in st["lines"]:
            at = datetime.fromisoformat(ln["occurred_at"])
            writer.writerow([month, manager, ln["rule"], ln["amount"], ln["currency"], ln["occurred_at"],
                             at.astimezone(tz).isoformat(), ln["deal_id"] or "", ln["event_id"] or "",
                             ln["deadline_id"] or "", ln["adjusts_month"] or "", ln["corrects_line_id"] or "",
                             ln["note"]])
    writer.writerow([month, manager, "TOTAL", total, found[0]["currency"] if found else "", "", "", "", "", "",
                     "", "", ""])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="payroll-{manager}-{month}.csv"'})


@get("/months")
async def list_months(actor: NamedDependency[Actor], session: NamedDependency[AsyncSession]) -> dict:
    """The months that have data (issue 9, the month picker): a ledger line (of the actor's own, for a
    content manager) or a closed run; newest first. The current month is the caller's to add."""
    return {"months": await svc.months_with_data(session, only=_scope(actor))}


@get("/months/{month:str}")
async def get_month(month: str, actor: NamedDependency[Actor], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> dict:
    """A month's state (open = live preview, closed = frozen), totals per manager by rule, best manager and why."""
    view = await svc.month_view(session, month, _tz(runtime), only=_scope(actor))
    return view.as_json()


@post("/months/{month:str}/close", status_code=200)
async def close_month(month: str, actor: NamedDependency[Actor], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> dict:
    """Close (freeze) a month: project lead only, after the gateway re-authenticated them. Emits
    `payroll.month.closed.v1`. Integration tokens may not close. 409 with the code
    `payroll.best_manager_tie_unresolved` while a PAY-7 tie waits for the lead's pick."""
    _lead(actor, M.LEAD_CLOSES_MONTH)
    view = await svc.close_month(session, month, actor.login, _tz(runtime), runtime.clock)
    return view.as_json()


@post("/months/{month:str}/best-manager", status_code=200)
async def pick_best_manager(month: str, data: JSONBody[BestManagerIn], actor: NamedDependency[Actor],
                            session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> dict:
    """PAY-7: in a full tie (equal on every criterion) the project lead picks the best manager of an open
    month, among the tied managers only; audited. Answers with the month overview."""
    _lead(actor, M.LEAD_PICKS_BEST)
    view = await svc.pick_best_manager(session, month, data.manager, by=actor.login, role=actor.role,
                                       tz=_tz(runtime), clock=runtime.clock)
    return view.as_json()


@get("/rules")
async def get_rules(actor: NamedDependency[Actor], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> dict:
    """The rules in force this month (agency time) and every version with its effective month."""
    _scope(actor)
    month = month_of(runtime.clock.now(), _tz(runtime))
    current = await rule_sets.rule_book(session, month)
    history = [RuleBook.of(rs).as_json() | {"created_at": rs.created_at.isoformat(), "created_by": rs.created_by}
               for rs in await rule_sets.rules_history(session)]
    return {"month": month, "current": current.as_json(), "history": history}


@put("/rules")
async def put_rules(data: JSONBody[RulesIn], actor: NamedDependency[Actor], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> dict:
    """A new rule-set version from an open month on (project lead only); open months are re-priced."""
    _lead(actor, M.LEAD_CHANGES_RULES)
    changes = {k: getattr(data, k) for k in ("currency", "amounts", "deadline_fines", "default_fine",
                                             "best_manager_rule")}
    book = await rule_sets.change_rules(session, effective_from=data.effective_from, changes=changes, by=actor.login,
                                  clock=runtime.clock)
    return book.as_json()


def _employee_json(e: Employee) -> dict:
    return {"login": e.login, "role": e.role, "employed_from": e.employed_from.isoformat(),
            "employed_to": e.employed_to.isoformat() if e.employed_to else None, "auto_enrolled": e.auto_enrolled}


@get("/employees")
async def list_employees(actor: NamedDependency[Actor], session: NamedDependency[AsyncSession]) -> list[dict]:
    scope = _scope(actor)
    query = select(Employee).order_by(Employee.login)
    if scope is not None:
        query = query.where(Employee.login == scope)
    return [_employee_json(e) for e in (await session.execute(query)).scalars()]


@get("/employees/{login:str}")
async def get_employee(login: str, actor: NamedDependency[Actor], session: NamedDependency[AsyncSession]) -> dict:
    _own(actor, login)
    emp = await session.get(Employee, login)
    if emp is None:
        raise M.refusal(NotFound, "login", M.EMPLOYEE_NOT_FOUND, login=login)
    return _employee_json(emp)


@put("/employees/{login:str}")
async def put_employee(login: str, data: JSONBody[EmployeeIn], actor: NamedDependency[Actor], session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> dict:
    """Set an employment period (project lead or an integration token); events never change it afterwards."""
    if actor.role not in ROSTER_WRITERS:
        raise M.refusal(Forbidden, None, M.ROSTER_WRITERS)
    if data.role not in ROLES:
        raise M.error("role", M.ROSTER_UNKNOWN_ROLE, value=data.role)
    emp = await roster.put_employee(session, login, data.role, data.employed_from, data.employed_to, runtime.clock)
    return _employee_json(emp)


@post("/rebuild", status_code=200)
async def rebuild_ledger(actor: NamedDependency[Actor], runtime: NamedDependency[Runtime]) -> dict:
    """Rebuild the ledger of open months from the CLIENTS stream (project lead only)."""
    _lead(actor, M.LEAD_REBUILDS)
    if runtime.bus is None or not runtime.bus.is_connected:
        raise M.error(None, M.BUS_DOWN)
    return await rebuild(runtime)


api_routes = [list_statements, manager_statement, list_months, get_month, close_month, pick_best_manager, get_rules, put_rules, list_employees,
              get_employee, put_employee, rebuild_ledger]
