"""The clients service's shared operation context and helpers: Ctx, settings, roster, timeline,
spans, fact times, and `settle_deal` (the deal's due timers, fired in the caller's transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry import trace
from shared.auth import Actor
from shared.calendar import BusinessCalendar
from shared.clock import Clock
from shared.errors import DomainError
from shared.events import Event
from shared.events.clients import (
    DealStageChanged,
)
from shared.infra import Timer
from shared.outbox import add_event
from shared.settings import Settings
from shared.telemetry import continue_trace
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clients import access, rules
from clients.models import (
    AuditEntry,
    Deal,
    DealHistory,
    RuleSetting,
    StaffMember,
)
from clients.rules import RuleValues
from clients.schemas import (
    Errors,
    check_aware,
)
from shared import messages as M
from shared import timers

SYSTEM = Actor(login="system", role="integration")
OPEN_STAGES = ("new", "contacted", "questionnaire_received", "project_launched", "notification_sent")


@dataclass
class Ctx:
    """What every operation needs: the transaction, the clock, the agency settings and who acts."""

    session: AsyncSession
    clock: Clock
    settings: Settings
    actor: Actor
    handlers: dict[str, Any] = field(default_factory=dict)  # timer kind → handler, for settle_deal

    @property
    def cal(self) -> BusinessCalendar:
        return self.settings.calendar

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def emit(self, evt: Event) -> Event:
        add_event(self.session, evt, self.clock)
        return evt

    def audit(self, action: str, target: str | None = None, **detail: Any) -> None:
        self.session.add(AuditEntry(at=self.now, actor=self.actor.login, role=self.actor.role, action=action,
                                    target=target, detail=detail))


# ============================================================================ settings, roster, helpers

async def rule_values(session: AsyncSession, at: datetime) -> RuleValues:
    """The agency's numbers in effect at `at` (the fact's own time): for each key the newest row
    with `effective_from <= at`, else the DOMAIN default."""
    rows = (await session.execute(
        select(RuleSetting).where(RuleSetting.effective_from <= at)
        .order_by(RuleSetting.effective_from, RuleSetting.id))).scalars().all()
    values: dict[str, Any] = {}
    for row in rows:
        values[row.key] = row.value
    known = RuleValues.names()
    return RuleValues(**{k: v for k, v in values.items() if k in known})


async def put_settings(ctx: Ctx, values: dict[str, Any], effective_from: datetime) -> None:
    """Store the changed settings from `effective_from` on, audited. A change of the calendar (CAL-1) takes
    effect at once: announced with `clients.agency.calendar_changed.v1` (the whole calendar, versioned), which
    every service applies (shared/agency_calendar.py), this one included."""
    from shared.events.clients import AgencyCalendarChanged

    from clients.rules import SettingError

    errors = Errors()
    coerced: dict[str, Any] = {}
    for key, value in values.items():
        try:
            coerced[key] = RuleValues.coerce(key, value)
        except SettingError as exc:
            errors.items.append(M.item(f"values.{key}", exc.code))
    errors.raise_if_any("invalid settings")
    calendar_keys = [k for k in coerced if k.startswith("calendar_")]
    if calendar_keys:
        effective_from = min(effective_from, ctx.now)
    for key, value in coerced.items():
        ctx.session.add(RuleSetting(key=key, value=value, effective_from=effective_from, created_at=ctx.now,
                                    created_by=ctx.actor.login))
    ctx.audit("settings.changed", None, values=coerced, effective_from=effective_from.isoformat())
    if calendar_keys:
        await ctx.session.flush()
        current = await rule_values(ctx.session, ctx.now)
        try:
            current.calendar(ctx.settings.calendar)
        except ValueError:
            raise DomainError("invalid settings", errors=[M.item("values.calendar_hours", M.CALENDAR_HOURS)]) from None
        version = (await ctx.session.execute(select(func.count()).select_from(RuleSetting).where(
            RuleSetting.key.like("calendar\\_%", escape="\\")))).scalar_one()
        ctx.emit(AgencyCalendarChanged(
            version=version, timezone=current.calendar_timezone, working_hours=current.calendar_hours,
            workdays=current.calendar_workdays, holidays=current.calendar_holidays, changed_by=ctx.actor.login,
            occurred_at=ctx.now))


async def put_staff(ctx: Ctx, login: str, role: str, full_name: str, active: bool) -> StaffMember:
    member = await ctx.session.get(StaffMember, login)
    if member is None:
        member = StaffMember(login=login, role=role, full_name=full_name, active=active, updated_at=ctx.now)
        ctx.session.add(member)
    else:
        member.role, member.full_name, member.active, member.updated_at = role, full_name, active, ctx.now
    ctx.audit("staff.put", login, role=role, active=active)
    return member


async def open_deal_counts(session: AsyncSession, column: Any) -> dict[str, int]:
    rows = await session.execute(select(column, func.count()).where(Deal.stage.in_(OPEN_STAGES))
                                 .group_by(column))
    return {login: n for login, n in rows.all() if login}


async def assign_least_loaded(session: AsyncSession, role: str, column: Any) -> str | None:
    """CL-3 (and CL-6, CL-7 by analogy): the active staff member of `role` with the fewest OPEN deals;
    ties by full name, then login (rules.pick_least_loaded).

    Choice: staff accounts live in the gateway, but assignment must work when the gateway is down and
    be reproducible in tests, so the clients service keeps its own roster of assignable staff
    (`PUT /api/clients/staff/{login}`: login, role content_manager | ad_manager | growth, active).
    An empty roster leaves the deal unassigned (the payment is still recorded; the lead assigns by
    hand with `POST /deals/{id}/manager`)."""
    candidates = [(login, name) for login, name in (await session.execute(
        select(StaffMember.login, StaffMember.full_name)
        .where(StaffMember.role == role, StaffMember.active.is_(True)))).all()]
    return rules.pick_least_loaded(candidates, await open_deal_counts(session, column))


async def get_deal(session: AsyncSession, deal_id: str, *, lock: bool = True) -> Deal | None:
    """The deal, read fresh under its row lock (issue 7 §2): every writer of a deal — a request, an
    event handler, a timer fired by `settle_deal` — takes `SELECT … FOR UPDATE` before reading its
    state, so two writers of one deal run one after the other and neither loses the other's update.
    On SQLite the lock is a no-op (one writer at a time, BEGIN IMMEDIATE). Re-locking a deal the
    transaction already holds returns at once."""
    query = select(Deal).where(Deal.id == deal_id).execution_options(populate_existing=True)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_deal_for_timer(session: AsyncSession, deal_id: str) -> Deal | None:
    """The deal under its row lock for a timer handler, never waiting: the background scheduler holds
    the timer rows it claimed, while a request holds the deal and waits for those timer rows — if the
    scheduler waited for the deal, the two would deadlock. A deal locked by another transaction raises
    `timers.Busy`: the scheduler leaves the timer (not a failure) for that writer's `settle_deal` or a
    later round. Inside `settle_deal` the transaction already holds the lock, so this returns at once."""
    query = (select(Deal).where(Deal.id == deal_id).execution_options(populate_existing=True)
             .with_for_update(skip_locked=True))
    deal = (await session.execute(query)).scalar_one_or_none()
    if deal is None and session.bind.dialect.name == "postgresql":
        if (await session.execute(select(Deal.id).where(Deal.id == deal_id))).scalar_one_or_none() is not None:
            raise timers.Busy(f"deal {deal_id} is locked by another transaction")
    return deal


def history(ctx: Ctx, deal: Deal, at: datetime, kind: str, summary: str, *, code: str, **data: Any) -> None:
    """A timeline entry: `kind` groups it, `code` (e.g. "deadline.met") and `data` (its parameters)
    let a UI say it in its own language; `summary` says it in English for API users."""
    ctx.session.add(DealHistory(deal_id=deal.id, at=at, kind=kind, code=code, summary=summary, by=ctx.actor.login,
                                data=data))


@contextmanager
def deal_span(deal: Deal, step: str) -> Iterator[trace.Span]:
    """A step of the deal's journey, continuing the trace of the payment that created it (DESIGN 6)."""
    with continue_trace(deal.trace_headers, f"clients.{step}", kind=trace.SpanKind.INTERNAL,
                        attributes={"zabota.deal_id": deal.id, "zabota.client_id": deal.client_id}) as span:
        yield span


def manager_of(deal: Deal) -> str:
    return deal.responsible_manager or ""


def timer_key(deal: Deal, *parts: object) -> str:
    return ":".join(["deal", deal.id, *map(str, parts)])


def change_stage(ctx: Ctx, deal: Deal, to_stage: str, at: datetime) -> None:
    from_stage = deal.stage
    deal.stage = to_stage
    ctx.emit(DealStageChanged(deal_id=deal.id, client_id=deal.client_id, occurred_at=at, from_stage=from_stage,
                              to_stage=to_stage, manager=manager_of(deal), by=ctx.actor.login))
    history(ctx, deal, at, "stage", f"{from_stage or '—'} → {to_stage}", code="stage.changed", from_stage=from_stage,
            to_stage=to_stage)


def fact_time(ctx: Ctx, at: datetime | None, field_name: str = "at") -> datetime:
    """The moment a reported fact happened: `at` if given (never in the future, and only from those
    who may backdate — access.may_backdate), else now."""
    if at is None:
        return ctx.now
    errors = Errors()
    check_aware(errors, field_name, at)
    errors.raise_if_any()
    if at > ctx.now:
        raise M.error(field_name, M.FACT_IN_FUTURE)
    if not access.may_backdate(ctx.actor) and at != ctx.now:
        raise M.error(field_name, M.FACT_BACKDATE)
    return at


# ============================================================================ settle: what is already due

async def settle_deal(ctx: Ctx, deal: Deal, before: datetime | None = None) -> int:
    """Fire this deal's timers that are due, in due order, inside the current transaction (which holds
    the deal's row lock, `get_deal`). Without `before`: everything due by now. With `before` = the time
    of a fact about to be applied: only the timers due strictly before it (issue 7 §1, CAL-3) — a fact
    is judged on its own time, so a call made exactly at the due time meets its deadline, and a refund
    dated inside the money-back window is applied before the window's end is. Callers apply the fact
    and then settle again without `before`.

    Handlers may schedule further already-due timers (launch 40 days ago → renewal task → its
    deadline breached → automatic loss); loop until nothing is due. On PostgreSQL the timer rows are
    locked without SKIP LOCKED: a timer of this deal that the background scheduler is running is
    waited for, not skipped (its handler cannot hold the deal, which this transaction holds, so it
    gives way: timers.Busy)."""
    fired = 0
    limit = ctx.now if before is None else min(before, ctx.now)
    while True:
        due_by = Timer.due_at <= limit if before is None else Timer.due_at < limit
        query = (select(Timer).where(Timer.key.like(f"deal:{deal.id}:%"), Timer.fired_at.is_(None),
                                     Timer.cancelled_at.is_(None), due_by)
                 .order_by(Timer.due_at, Timer.id).limit(50).execution_options(populate_existing=True))
        if ctx.session.bind.dialect.name == "postgresql":
            query = query.with_for_update()
        due = (await ctx.session.execute(query)).scalars().all()
        if not due:
            return fired
        for timer in due:
            with continue_trace(timer.headers, f"timer {timer.kind}", attributes={"zabota.timer": timer.key}):
                await ctx.handlers[timer.kind](ctx.session, timer)
            timer.fired_at = ctx.now
            fired += 1


async def load_deal(ctx: Ctx, deal_id: str, *, settle: bool = True, lock: bool = True) -> Deal:
    """The deal under its row lock (a writer), 404/403 as the actor may see it, settled up to now
    unless `settle=False` (a route about to apply a dated fact settles up to the fact's time)."""
    deal = await get_deal(ctx.session, deal_id, lock=lock)
    access.require_visible(ctx.actor, deal)
    assert deal is not None
    if settle:
        await settle_deal(ctx, deal)
    return deal
