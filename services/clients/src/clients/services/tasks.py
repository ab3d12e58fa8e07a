"""Tasks and their deadlines (CAL-3), CL-7 checklists."""

from __future__ import annotations

from datetime import datetime

from shared.errors import Conflict, DomainError
from shared.events.clients import (
    DeadlineBreached,
    DeadlineMet,
    DeadlineWaived,
    TaskAssigned,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clients import access, rules
from clients.models import (
    Deadline,
    Deal,
    Task,
)
from clients.services.core import Ctx, deal_span, get_deal, history, timer_key
from shared import messages as M
from shared import timers

# ============================================================================ tasks and deadlines (CAL-3)

TASK_TITLES = {
    "first_call": "First call (script #3)",
    "concept": "Concept, 3 reference accounts, call with the client, request materials",
    "growth_start": "Start follower growth (credentials attached to the deal)",
    "account_setup": "Account setup checklist",
    "renewal_call": "Renewal call (script #4), recorded, recording attached",
    "ask_ad_manager": "Ask the ad manager whether the client continues",
}
CHECKLISTS = {
    "concept": ["preliminary account concept", "3 reference accounts", "call with the client",
                "request materials (high resolution, by e-mail)"],
    "account_setup": ["avatar", "contact buttons", "WhatsApp link", "USP in bio", "call to action", "contacts"],
}


async def create_task(ctx: Ctx, deal: Deal, *, kind: str, rule: str, assignee: str | None, at: datetime,
                      due_at: datetime | None, script: str | None = None, period_no: int = 0) -> Task:
    """A task for someone, with its deadline (CAL-3) when it has a due time. Once per deal, kind and
    period: replaying a rule never duplicates a task."""
    existing = (await ctx.session.execute(select(Task).where(
        Task.deal_id == deal.id, Task.kind == kind, Task.period_no == period_no))).scalar_one_or_none()
    if existing is not None:
        return existing
    task = Task(deal_id=deal.id, kind=kind, rule=rule, title=TASK_TITLES[kind], script=script,
                checklist=[{"item": item, "done": False} for item in CHECKLISTS.get(kind, [])],
                assignee=assignee, period_no=period_no, due_at=due_at, status="open", created_at=at)
    ctx.session.add(task)
    await ctx.session.flush()
    if due_at is not None:
        await create_deadline(ctx, deal, rule=rule, what=task.title, what_code=kind, owner=assignee, due_at=due_at,
                              at=at, task=task)
    ctx.emit(TaskAssigned(deal_id=deal.id, client_id=deal.client_id, occurred_at=at, task_id=task.id, kind=kind,
                          rule=rule, assignee=assignee, title=task.title, due_at=due_at, script=script))
    history(ctx, deal, at, "task", f"task {kind} → {assignee or 'unassigned'}", code="task.assigned", task_id=task.id,
            rule=rule, task_kind=kind, assignee=assignee)
    return task


async def create_deadline(ctx: Ctx, deal: Deal, *, rule: str, what: str, what_code: str, owner: str | None,
                          due_at: datetime, at: datetime, task: Task | None = None) -> Deadline:
    """CAL-3: a stored deadline and a timer at its due time that breaches it if still open. `what` is
    English; `what_code` names it for translation (the task kind, or "first_post")."""
    deadline = Deadline(deal_id=deal.id, task_id=task.id if task else None, rule=rule, what=what,
                        what_code=what_code, owner=owner, due_at=due_at, state="open", created_at=at)
    ctx.session.add(deadline)
    await ctx.session.flush()
    await timers.schedule(ctx.session, kind="clients.deadline", key=timer_key(deal, "deadline", deadline.id),
                          due_at=due_at, payload={"deal_id": deal.id, "deadline_id": deadline.id}, clock=ctx.clock)
    return deadline


def resolve_deadline(ctx: Ctx, deal: Deal, deadline: Deadline, done_at: datetime, task_kind: str | None) -> None:
    """CAL-3: the work was done at `done_at`. In time → met; late and not yet breached → breached (a
    backdated report of late work); waived → stays as it is.

    Issue 7 §1: a breach is an outcome the timer made for want of a fact. A fact recorded later but
    dated in time (a post published before the due time whose event arrived after it, a call backdated
    by the lead) contradicts it: the deadline becomes met at the fact's time and the breach is
    retracted — `DeadlineMet.revises_breach_event_id` names the `DeadlineBreached` event, so payroll
    voids (or, in a closed month, reverses) its PAY-6 line."""
    in_time = rules.deadline_outcome(deadline.due_at, done_at) == "met"
    if deadline.state == "breached" and in_time:
        revised = deadline.breach_event_id
        met(ctx, deal, deadline, done_at, revises_breach_event_id=revised)
        history(ctx, deal, done_at, "deadline", f"{deadline.rule} breach retracted: met in time",
                code="deadline.breach_retracted", deadline_id=deadline.id, rule=deadline.rule,
                what_code=deadline.what_code, breach_event_id=revised)
        return
    if deadline.state != "open":
        return
    if in_time:
        met(ctx, deal, deadline, done_at)
    else:
        breach(ctx, deal, deadline, task_kind)


def met(ctx: Ctx, deal: Deal, deadline: Deadline, done_at: datetime, *,
        revises_breach_event_id: str | None = None) -> None:
    deadline.state, deadline.resolved_at = "met", done_at
    ctx.emit(DeadlineMet(deal_id=deal.id, client_id=deal.client_id, occurred_at=done_at, deadline_id=deadline.id,
                         rule=deadline.rule, owner=deadline.owner or "", due_at=deadline.due_at, met_at=done_at,
                         revises_breach_event_id=revises_breach_event_id))
    history(ctx, deal, done_at, "deadline", f"{deadline.rule} met", code="deadline.met", deadline_id=deadline.id,
            rule=deadline.rule, what_code=deadline.what_code)


def breach(ctx: Ctx, deal: Deal, deadline: Deadline, task_kind: str | None) -> None:
    """CAL-3 / PAY-6: the deadline passed unmet; the event is dated at the due time (the fact). Its
    event id is kept on the deadline, so a later-recorded fact in time can retract it."""
    deadline.state, deadline.resolved_at = "breached", deadline.due_at
    evt = ctx.emit(DeadlineBreached(deal_id=deal.id, client_id=deal.client_id, occurred_at=deadline.due_at,
                                    deadline_id=deadline.id, rule=deadline.rule, owner=deadline.owner or "",
                                    due_at=deadline.due_at, task_kind=task_kind))
    deadline.breach_event_id = evt.event_id
    history(ctx, deal, deadline.due_at, "deadline", f"{deadline.rule} breached", code="deadline.breached",
            deadline_id=deadline.id, rule=deadline.rule, what_code=deadline.what_code)


def waive(ctx: Ctx, deal: Deal, deadline: Deadline, reason: str) -> None:
    """CAL-3: waived, with who and why. A breached deadline may be waived too (payroll undoes its fine)."""
    if deadline.state in ("met", "waived"):
        raise M.refusal(Conflict, "deadline_id", M.DEADLINE_STATE, state=deadline.state)
    deadline.state, deadline.waived_by, deadline.reason, deadline.resolved_at = (
        "waived", ctx.actor.login, reason, ctx.now)
    ctx.emit(DeadlineWaived(deal_id=deal.id, client_id=deal.client_id, occurred_at=ctx.now, deadline_id=deadline.id,
                            rule=deadline.rule, owner=deadline.owner or "", waived_by=ctx.actor.login, reason=reason))
    history(ctx, deal, ctx.now, "deadline", f"{deadline.rule} waived: {reason}", code="deadline.waived",
            deadline_id=deadline.id, rule=deadline.rule, what_code=deadline.what_code, reason=reason)
    ctx.audit("deadline.waived", deal.id, deadline_id=deadline.id, reason=reason)


async def deadlines_of_task(session: AsyncSession, task: Task) -> list[Deadline]:
    return list((await session.execute(select(Deadline).where(Deadline.task_id == task.id))).scalars())


async def finish_task(ctx: Ctx, deal: Deal, task: Task, done_at: datetime, by: str) -> None:
    if task.status != "open":
        return
    task.status, task.completed_at, task.completed_by = "done", done_at, by
    for deadline in await deadlines_of_task(ctx.session, task):
        resolve_deadline(ctx, deal, deadline, done_at, task.kind)
    history(ctx, deal, done_at, "task", f"task {task.kind} done", code="task.done", task_id=task.id,
            task_kind=task.kind)


async def open_task(session: AsyncSession, deal: Deal, kind: str) -> Task | None:
    return (await session.execute(select(Task).where(Task.deal_id == deal.id, Task.kind == kind,
                                                     Task.status == "open")
                                  .order_by(Task.period_no.desc()))).scalars().first()


# ============================================================================ CL-7: checklists

CHECKLIST_REQUIRED = ("account_setup",)  # CL-7: the setup task is done when its checklist is


async def tick_checklist(ctx: Ctx, task: Task, item: str, done: bool) -> Deal:
    """CL-7: tick (or untick) one checklist item of an open task: its assignee or the lead (and
    integrations). An item the task does not have is a 422 naming `item`."""
    deal = await get_deal(ctx.session, task.deal_id)  # the deal's row lock, then the task as it is now
    await ctx.session.refresh(task)
    access.require_checklist_tick(ctx.actor, deal, task)
    if task.status != "open":
        raise M.refusal(Conflict, "task_id", M.TASK_STATE, status=task.status)
    items = [dict(entry) for entry in task.checklist or []]
    entry = next((e for e in items if e["item"] == item), None)
    if entry is None:
        raise M.error("item", M.CHECKLIST_ITEM, items=", ".join(e["item"] for e in items) or "none")
    if entry["done"] == done:
        return deal
    entry["done"] = done
    task.checklist = items  # a new list: the JSON column notices the change
    with deal_span(deal, "checklist"):
        history(ctx, deal, ctx.now, "checklist", f"{item}: {'done' if done else 'not done'}", code="checklist.ticked",
                task_id=task.id, task_kind=task.kind, item=item, done=done)
    return deal


def require_checklist_done(task: Task) -> None:
    """CL-7: the setup task is completed only with every item ticked; the 422 lists the missing ones."""
    if task.kind not in CHECKLIST_REQUIRED:
        return
    missing = [e["item"] for e in task.checklist or [] if not e.get("done")]
    if missing:
        raise DomainError(M.text(M.CHECKLIST_FIRST, missing=", ".join(missing)),
                          errors=[M.item("checklist", M.CHECKLIST_NOT_TICKED, checklist_item=item) for item in missing])
