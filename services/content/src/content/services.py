"""Domain operations of the content service: the accounts read model, periods and their plans (CO-1),
plan 1 becoming due (CO-2), the CO-3 deadlines. Plans, approvals and publishing are in `plans.py`.

Each operation runs inside the caller's transaction (the request's, the timer's or the event's) and
writes its events to the outbox in that same transaction. Arithmetic lives in `rules.py`.

Time. Rules are evaluated on the facts' own timestamps. Before a fact dated `t` is applied, only the
deal's timers due strictly before `t` are fired (`settle(ctx, deal_id, before=t)`); then the fact; then
everything due by now. A breach the timer made is revised when a fact recorded later but dated in time
contradicts it (the deadline becomes met, `revises_breach=True`), and a loss waives what fell due after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.auth import Actor
from shared.calendar import BusinessCalendar
from shared.clock import Clock
from shared.errors import DomainError, NotFound
from shared.events import Event
from shared.events.content import ContentDeadlineBreached, ContentDeadlineMet, ContentDeadlineWaived
from shared.infra import Timer
from shared.outbox import add_event
from shared.settings import Settings
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from content import access, rules
from content.models import Account, AuditEntry, ClientProfile, Deadline, Period, Plan, RuleSetting
from content.rules import RuleValues, SettingError
from shared import messages as M
from shared import timers

SYSTEM = Actor(login="system", role="integration")
DEADLINE_TIMER = "content.deadline"


@dataclass
class Ctx:
    """What every operation needs: the transaction, the clock, the agency settings and who acts."""

    session: AsyncSession
    clock: Clock
    settings: Settings
    actor: Actor
    handlers: dict[str, Any] = field(default_factory=dict)  # timer kind → handler, for settle

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

    def as_system(self) -> Ctx:
        return Ctx(self.session, self.clock, self.settings, SYSTEM, self.handlers)


# ============================================================================ settings

async def rule_values(session: AsyncSession, at: datetime) -> RuleValues:
    """The agency's content numbers in effect at `at` (the fact's own time), else the DOMAIN defaults."""
    rows = (await session.execute(select(RuleSetting).where(RuleSetting.effective_from <= at)
                                  .order_by(RuleSetting.effective_from, RuleSetting.id))).scalars().all()
    values = {row.key: row.value for row in rows if row.key in RuleValues.names()}
    return RuleValues(**values)


async def put_settings(ctx: Ctx, values: dict[str, Any], effective_from: datetime) -> None:
    errors: list[dict[str, str]] = []
    coerced: dict[str, Any] = {}
    for key, value in values.items():
        try:
            coerced[key] = RuleValues.coerce(key, value)
        except SettingError as exc:
            errors.append(M.item(f"values.{key}", exc.code))
    if not errors:
        try:
            RuleValues(**{**(await rule_values(ctx.session, effective_from)).__dict__, **coerced}).check()
        except ValueError:
            errors.append(M.item("values", M.CONTENT_PLAN_DAYS_ORDER))
    if errors:
        raise DomainError("invalid settings", errors=errors)
    for key, value in coerced.items():
        ctx.session.add(RuleSetting(key=key, value=value, effective_from=effective_from, created_at=ctx.now,
                                    created_by=ctx.actor.login))
    ctx.audit("settings.changed", None, values=coerced, effective_from=effective_from.isoformat())


# ============================================================================ settle: what is already due

def timer_prefix(deal_id: str) -> str:
    return f"deal:{deal_id}:"


async def lock_account(session: AsyncSession, deal_id: str) -> Account | None:
    """Every writer of a deal's content takes its account row lock first (PostgreSQL), so a request, a
    timer and an event handler never interleave on one deal."""
    query = select(Account).where(Account.deal_id == deal_id)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def settle(ctx: Ctx, deal_id: str, before: datetime | None = None) -> int:
    """Fire this deal's timers due strictly before `before` (default: due by now), in due order, inside
    the current transaction. Handlers are idempotent, so a race with the background scheduler is harmless."""
    fired = 0
    while True:
        cond = Timer.due_at < before if before is not None else Timer.due_at <= ctx.now
        query = (select(Timer).where(Timer.key.like(f"{timer_prefix(deal_id)}%"), Timer.fired_at.is_(None),
                                     Timer.cancelled_at.is_(None), cond)
                 .order_by(Timer.due_at, Timer.id).limit(50))
        if ctx.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        due = (await ctx.session.execute(query)).scalars().all()
        if not due:
            return fired
        for timer in due:
            await ctx.handlers[timer.kind](ctx.session, timer)
            timer.fired_at = ctx.now
            fired += 1


def fact_time(ctx: Ctx, at: datetime | None, field_name: str = "at", grace_minutes: int = 0) -> datetime:
    """The moment a reported fact happened: `at` if given, never in the future; earlier than
    `grace_minutes` ago only from those who may backdate (the lead, integrations)."""
    if at is None:
        return ctx.now
    if at.tzinfo is None or at.utcoffset() is None:
        raise M.error(field_name, M.DATETIME)
    if at > ctx.now:
        raise M.error(field_name, M.FACT_IN_FUTURE)
    if not access.may_backdate(ctx.actor) and at < ctx.now - timedelta(minutes=grace_minutes):
        raise M.error(field_name, M.FACT_BACKDATE)
    return at


# ============================================================================ the accounts read model

async def account_for(ctx: Ctx, deal_id: str, client_id: str | None, at: datetime) -> Account:
    account = await lock_account(ctx.session, deal_id)
    if account is None:
        account = Account(deal_id=deal_id, client_id=client_id, period_no=0, updated_at=at)
        ctx.session.add(account)
        await ctx.session.flush()
    if client_id and not account.client_id:
        account.client_id = client_id
    account.updated_at = max(account.updated_at, at)
    return account


async def periods_of(session: AsyncSession, deal_id: str) -> list[Period]:
    return list((await session.execute(select(Period).where(Period.deal_id == deal_id)
                                       .order_by(Period.period_no))).scalars())


async def plans_of_period(session: AsyncSession, period: Period) -> list[Plan]:
    return list((await session.execute(select(Plan).where(Plan.period_id == period.id)
                                       .order_by(Plan.number))).scalars())


async def open_period(ctx: Ctx, account: Account, period_no: int, starts_at: datetime, ends_at: datetime,
                      at: datetime) -> Period:
    """CO-1: a service period gets its three plans (days 1–9, 10–18, 19–end). A provisional period 1
    (plan 1 was due before the launch) takes the real dates and its plans' days follow; the items
    already planned keep their days. A renewal's period (no. 2, 3…) has its plan 1 due at once: the
    questionnaire and materials are already in (CO-2)."""
    rv = await rule_values(ctx.session, starts_at)
    first_day, last_day = rules.period_days(ctx.cal, starts_at, ends_at)
    days = rules.plan_days(first_day, last_day, rv)
    period = (await ctx.session.execute(select(Period).where(
        Period.deal_id == account.deal_id, Period.period_no == period_no))).scalar_one_or_none()
    account.period_no = max(account.period_no, period_no)
    if period is not None:
        if period.provisional:
            period.starts_at, period.ends_at, period.first_day, period.last_day = starts_at, ends_at, first_day, last_day
            period.provisional = False
            for plan in await plans_of_period(ctx.session, period):
                plan.first_day, plan.last_day = days[plan.number - 1]
        return period
    period = Period(deal_id=account.deal_id, period_no=period_no, starts_at=starts_at, ends_at=ends_at,
                    first_day=first_day, last_day=last_day, provisional=False, created_at=ctx.now)
    ctx.session.add(period)
    await ctx.session.flush()
    plan_1_due = account.materials_at if period_no == 1 else at
    for number, (first, last) in enumerate(days, start=1):
        ctx.session.add(Plan(deal_id=account.deal_id, period_id=period.id, period_no=period_no, number=number,
                             first_day=first, last_day=last, state="open", round=0, created_at=ctx.now,
                             due_at=plan_1_due if number == 1 else None))
    await ctx.session.flush()
    return period


async def materials_received(ctx: Ctx, account: Account, at: datetime) -> None:
    """CO-2: plan 1 becomes due once the questionnaire is in (the deal reaches questionnaire_received) or
    the manager says the materials are in — whichever comes first. Before the launch there is no period
    yet: a provisional period 1 is counted from that day (CO-1), and the launch brings the real dates."""
    if account.materials_at is not None and account.materials_at <= at:
        return
    account.materials_at = at
    periods = await periods_of(ctx.session, account.deal_id)
    if not periods:
        rv = await rule_values(ctx.session, at)
        start, end = rules.provisional_period(ctx.cal, rules.local_date(ctx.cal, at), rv)
        period = await open_period(ctx, account, 1, start, end, at)
        period.provisional = True
        account.period_no = 0  # clients has not opened a period yet
        periods = [period]
    plan_1 = (await ctx.session.execute(select(Plan).where(
        Plan.period_id == periods[0].id, Plan.number == 1))).scalar_one()
    if plan_1.due_at is None or at < plan_1.due_at:
        plan_1.due_at = at


async def set_manager(ctx: Ctx, account: Account, manager: str | None) -> None:
    """A (re)assigned manager owns the deal's open content deadlines from now on."""
    if not manager or account.manager == manager:
        return
    account.manager = manager
    for deadline in (await ctx.session.execute(select(Deadline).where(
            Deadline.deal_id == account.deal_id, Deadline.state == "open"))).scalars():
        deadline.owner = manager


async def lose(ctx: Ctx, account: Account, at: datetime, reason: str) -> None:
    """A lost deal stops its work: its content deadlines that fall due after the loss are waived by
    `system` — the open ones, and those a timer breached before the loss was known (judged on their own time)."""
    account.lost_at, account.stage = at, "lost"
    system = ctx.as_system()
    for deadline in (await ctx.session.execute(select(Deadline).where(
            Deadline.deal_id == account.deal_id, Deadline.state.in_(("open", "breached")),
            Deadline.due_at > at))).scalars():
        await waive(system, account, deadline, f"deal lost ({reason})")


def reopen(account: Account, at: datetime) -> None:
    """A renewal (or a late payment undoing a loss) after the loss brings the deal back."""
    if account.lost_at is not None and at >= account.lost_at:
        account.lost_at = None


async def profile_changed(ctx: Ctx, client_id: str, full_name: str, instagram: str, at: datetime) -> None:
    profile = await ctx.session.get(ClientProfile, client_id)
    if profile is None:
        ctx.session.add(ClientProfile(client_id=client_id, full_name=full_name, instagram=instagram, changed_at=at))
    elif at >= profile.changed_at:
        profile.full_name, profile.instagram, profile.changed_at = full_name, instagram, at


# ============================================================================ CO-3 deadlines (CAL-3)

def deadline_timer_key(deadline: Deadline) -> str:
    return f"{timer_prefix(deadline.deal_id)}deadline:{deadline.id}:v{deadline.version}"


async def plan_deadline(session: AsyncSession, plan: Plan) -> Deadline | None:
    return (await session.execute(select(Deadline).where(Deadline.plan_id == plan.id))).scalar_one_or_none()


async def first_post(ctx: Ctx, account: Account, period: Period, published_at: datetime) -> None:
    """CO-3: the period's first published post sets plan 2 due 6 days later and plan 3 15 days later, each
    to be submitted within 3 working days: a stored deadline with its timer. A post dated before the
    first one moves the open deadlines earlier (those met or breached stay as they are)."""
    if period.first_post_at is not None and period.first_post_at <= published_at:
        return
    period.first_post_at = published_at
    rv = await rule_values(ctx.session, published_at)
    for plan in await plans_of_period(ctx.session, period):
        due = rules.plan_due(plan.number, published_at, ctx.cal, rv)
        if due is None:
            continue
        plan.due_at, plan.submit_by = due, rules.submit_by(due, ctx.cal, rv)
        await ensure_deadline(ctx, account, plan)


async def ensure_deadline(ctx: Ctx, account: Account, plan: Plan) -> Deadline:
    deadline = await plan_deadline(ctx.session, plan)
    if deadline is None:
        deadline = Deadline(deal_id=plan.deal_id, plan_id=plan.id, rule="CO-3", owner=account.manager,
                            due_at=plan.submit_by, state="open", version=1, created_at=ctx.now)
        ctx.session.add(deadline)
        await ctx.session.flush()
    elif deadline.state == "open" and deadline.due_at != plan.submit_by:
        await timers.cancel(ctx.session, deadline_timer_key(deadline), clock=ctx.clock)
        deadline.version += 1
        deadline.due_at = plan.submit_by
    else:
        return deadline
    if account.lost_at is not None and deadline.due_at > account.lost_at:
        await waive(ctx.as_system(), account, deadline, "deal lost")
        return deadline
    if plan.first_submitted_at is not None:  # submitted before it became due: judged on that time
        await resolve_deadline(ctx, account, deadline, plan.first_submitted_at)
        return deadline
    await timers.schedule(ctx.session, kind=DEADLINE_TIMER, key=deadline_timer_key(deadline), due_at=deadline.due_at,
                          payload={"deal_id": deadline.deal_id, "deadline_id": deadline.id,
                                   "version": deadline.version}, clock=ctx.clock)
    return deadline


async def resolve_deadline(ctx: Ctx, account: Account, deadline: Deadline, done_at: datetime) -> None:
    """CAL-3: the plan was submitted at `done_at`. Open: met in time, else breached. Breached by the
    timer although `done_at` was in time (a fact recorded late): revised to met. Met or waived: stays."""
    in_time = rules.deadline_outcome(deadline.due_at, done_at) == "met"
    if deadline.state == "open" and not in_time:
        await breach(ctx, account, deadline)
        return
    if not in_time or deadline.state not in ("open", "breached"):
        return
    revises = deadline.state == "breached"
    deadline.state, deadline.resolved_at = "met", done_at
    await timers.cancel(ctx.session, deadline_timer_key(deadline), clock=ctx.clock)
    ctx.emit(ContentDeadlineMet(deal_id=deadline.deal_id, client_id=account.client_id, occurred_at=done_at,
                                deadline_id=deadline.id, rule=deadline.rule, owner=deadline.owner or "",
                                due_at=deadline.due_at, met_at=done_at, plan_id=deadline.plan_id,
                                revises_breach=revises))


async def breach(ctx: Ctx, account: Account, deadline: Deadline) -> None:
    """CAL-3 / PAY-6: the deadline passed unmet; the event is dated at the due time (the fact)."""
    deadline.state, deadline.resolved_at = "breached", deadline.due_at
    await timers.cancel(ctx.session, deadline_timer_key(deadline), clock=ctx.clock)
    ctx.emit(ContentDeadlineBreached(deal_id=deadline.deal_id, client_id=account.client_id,
                                     occurred_at=deadline.due_at, deadline_id=deadline.id, rule=deadline.rule,
                                     owner=deadline.owner or "", due_at=deadline.due_at, plan_id=deadline.plan_id))


async def waive(ctx: Ctx, account: Account, deadline: Deadline, reason: str) -> None:
    """CAL-3: waived, with who and why (a breached one too: payroll undoes its fine)."""
    if deadline.state in ("met", "waived"):
        return
    deadline.state, deadline.waived_by, deadline.reason, deadline.resolved_at = (
        "waived", ctx.actor.login, reason, ctx.now)
    await timers.cancel(ctx.session, deadline_timer_key(deadline), clock=ctx.clock)
    ctx.emit(ContentDeadlineWaived(deal_id=deadline.deal_id, client_id=account.client_id, occurred_at=ctx.now,
                                   deadline_id=deadline.id, rule=deadline.rule, owner=deadline.owner or "",
                                   waived_by=ctx.actor.login, reason=reason, due_at=deadline.due_at,
                                   plan_id=deadline.plan_id))
    ctx.audit("deadline.waived", deadline.deal_id, deadline_id=deadline.id, reason=reason)


async def deadlines_of(session: AsyncSession, deal_id: str) -> list[Deadline]:
    return list((await session.execute(select(Deadline).where(Deadline.deal_id == deal_id)
                                       .order_by(Deadline.due_at, Deadline.id))).scalars())


def timer_handlers(make_ctx: Any) -> dict[str, Any]:
    """Timer kind → handler; `make_ctx(session)` builds a system Ctx. A deadline timer breaches its
    deadline if it is still open and was not moved since (the version in the payload)."""

    async def on_deadline(session: AsyncSession, timer: Timer) -> None:
        account = await lock_account(session, timer.payload["deal_id"])  # the deal's writers take turns
        deadline = await session.get(Deadline, timer.payload["deadline_id"])
        if deadline is None or account is None:
            return
        await session.refresh(deadline)
        if deadline.state != "open" or deadline.version != timer.payload.get("version"):
            return
        await breach(make_ctx(session), account, deadline)

    return {DEADLINE_TIMER: on_deadline}


async def load_account(ctx: Ctx, deal_id: str) -> Account:
    account = await lock_account(ctx.session, deal_id)
    access.require_visible(ctx.actor, account)
    if account is None:
        raise M.refusal(NotFound, None, M.DEAL_NOT_FOUND)
    return account
