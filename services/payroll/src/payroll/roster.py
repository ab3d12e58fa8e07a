"""PAY-1's roster: content managers with their employment periods (a whole month's base for any day employed)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from shared.clock import Clock
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from payroll.models import Employee
from payroll.rules import CONTENT_MANAGER, first_day, last_day, month_of
from shared import messages as M


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
        raise M.error("employed_to", M.ROSTER_END_BEFORE_START)
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
