"""Care quality services (issue 12, EN-3): response clocks kept current, the first-response deadline as a stored
fact, per-agent-per-day figures and the agents' report.

`refresh(session, conversation, clock)` is called in the transaction of every change to a conversation's
timeline (a customer message, an answer, a status change, ask-the-client). It replays the whole timeline through
`clocks.run_clock` — so a late, earlier-dated message revises what was settled, and a replay changes nothing —
then:
- stores the latest cycle's first response (wall and business seconds), target and SLA state on the conversation;
- keeps one `ResponseFact` per measured response and resolution, and re-sums the `AgentDay` rows they touch;
- keeps one `CareDeadline` (EN-3) per cycle: met / breached / waived, publishing `engagement.deadline.*.v1`
  when the state changes, and a durable timer at the due instant so a breach is recorded on time even when
  nothing else happens (the timer's handler is just another `refresh`).

Choices where DOMAIN is silent (issue 12): the breach's owner is the agent the conversation is assigned to when
it breaches (unassigned: "" — nobody is fined, the lead sees it); a cycle resolved before its target without an
answer (spam, "thanks!") waives its deadline; resolved after the target, it stays breached.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.clock import Clock, as_utc
from shared.events.engagement import (
    EngagementDeadlineBreached,
    EngagementDeadlineMet,
    EngagementDeadlineWaived,
)
from shared.outbox import add_event
from shared.timers import schedule_many
from sqlalchemy import Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import clocks, rounds
from engagement.models import ClientQuestion, Conversation, Message
from engagement.quality_models import (
    AgentDay,
    CareDeadline,
    CareSettings,
    QualityMark,
    ResponseFact,
    StatusChange,
)
from shared import messages as M

TIMER_KIND = "engagement.en3"
_agency_tz = "Asia/Almaty"


def configure(agency_tz: str) -> None:
    """The agency's time zone (AGENCY_TIMEZONE): a care calendar without a zone of its own is read in it."""
    global _agency_tz
    _agency_tz = agency_tz


async def settings_of(session: AsyncSession, account: str) -> CareSettings:
    row = await session.get(CareSettings, account)
    if row is None:  # defaults: 7 minutes, every day all day, brand care
        row = CareSettings(account=account, target_s=clocks.DEFAULT_TARGET_SECONDS, tz="", hours="", days="1-7",
                           holidays="", mode="brand")
    return row


def calendar_of(row: CareSettings) -> clocks.CareCalendar:
    return clocks.CareCalendar.from_strings(row.tz or _agency_tz, hours=row.hours or "", days=row.days or "1-7",
                                            holidays=row.holidays or "")


async def all_settings(session: AsyncSession) -> list[dict[str, Any]]:
    """Every account the inbox knows — with a channel, or a current client — with its care settings and a name
    (the client's, else the channels')."""
    from engagement.models import Channel
    from engagement.quality_models import ClientAccount

    names: dict[str, str] = {}
    for account, name in (await session.execute(select(Channel.account, Channel.name).order_by(Channel.name))).all():
        names.setdefault(account, name)
    for deal_id, client_name, current in (await session.execute(
            select(ClientAccount.deal_id, ClientAccount.client_name, ClientAccount.current))).all():
        if current or deal_id in names:
            names[deal_id] = client_name or names.get(deal_id, "")
    rows = {r.account: r for r in (await session.execute(select(CareSettings))).scalars()}
    out = []
    for account in sorted(names, key=lambda a: (a != "agency", names[a].lower(), a)):
        row = rows.get(account) or await settings_of(session, account)
        out.append({**settings_out(row), "name": names[account]})
    return out


def settings_out(row: CareSettings) -> dict[str, Any]:
    return {"account": row.account, "target_s": row.target_s, "tz": row.tz or _agency_tz, "hours": row.hours,
            "days": row.days, "holidays": [h for h in (row.holidays or "").split(",") if h], "mode": row.mode,
            "contact_email": row.contact_email or "", "contact_telegram": row.contact_telegram or ""}


async def put_settings(session: AsyncSession, account: str, *, target_s: int, tz: str, hours: str, days: str,
                       holidays: list[str], mode: str, actor: str, clock: Clock, contact_email: str = "",
                       contact_telegram: str = "") -> CareSettings:
    row = await session.get(CareSettings, account)
    if row is None:
        row = CareSettings(account=account)
        session.add(row)
    row.target_s, row.tz, row.hours, row.days, row.mode = target_s, tz, hours, days, mode
    row.holidays = ",".join(sorted(holidays))
    row.contact_email, row.contact_telegram = contact_email.strip(), contact_telegram.strip()
    row.updated_at, row.updated_by = clock.now(), actor
    await session.flush()
    return row


# ---------------------------------------------------------------- the timeline of one conversation

async def timeline(session: AsyncSession, conversation_id: str) -> list[clocks.ClockEvent]:
    return (await timelines(session, [conversation_id]))[conversation_id]


async def timelines(session: AsyncSession, ids: list[str]) -> dict[str, list[clocks.ClockEvent]]:
    """The clock events of each conversation, read for all of them in three queries."""
    events: dict[str, list[clocks.ClockEvent]] = {i: [] for i in ids}
    for cid, direction, at, author in (await session.execute(
            select(Message.conversation_id, Message.direction, Message.at, Message.author)
            .where(Message.conversation_id.in_(ids)).order_by(Message.at, Message.seq))).all():
        events[cid].append(clocks.ClockEvent(as_utc(at), clocks.INBOUND if direction == "in" else clocks.ANSWER,
                                             author if direction == "out" else ""))
    questions: dict[str, list[Any]] = defaultdict(list)
    for cid, asked_at, answered_at in (await session.execute(
            select(ClientQuestion.conversation_id, ClientQuestion.asked_at, ClientQuestion.answered_at)
            .where(ClientQuestion.conversation_id.in_(ids)).order_by(ClientQuestion.asked_at))).all():
        questions[cid].append((asked_at, answered_at))
    for cid, spans in questions.items():
        for asked_at, answered_at in _union(spans):  # two questions open at once are one wait
            events[cid].append(clocks.ClockEvent(asked_at, clocks.WAIT))
            if answered_at is not None:
                events[cid].append(clocks.ClockEvent(answered_at, clocks.UNWAIT))
    for cid, kind, at, actor in (await session.execute(
            select(StatusChange.conversation_id, StatusChange.kind, StatusChange.at, StatusChange.actor)
            .where(StatusChange.conversation_id.in_(ids)).order_by(StatusChange.id))).all():
        mapped = {"wait": clocks.WAIT, "unwait": clocks.UNWAIT, "resolve": clocks.RESOLVE}.get(kind)
        if mapped:
            events[cid].append(clocks.ClockEvent(as_utc(at), mapped, actor))
    return events


def _union(spans: list[Any]) -> list[tuple[datetime, datetime | None]]:
    merged: list[tuple[datetime, datetime | None]] = []
    for lo, hi in spans:
        lo, hi = as_utc(lo), as_utc(hi) if hi is not None else None
        if merged and (merged[-1][1] is None or lo <= merged[-1][1]):
            last_lo, last_hi = merged[-1]
            merged[-1] = (last_lo, None if hi is None or last_hi is None else max(hi, last_hi))
        else:
            merged.append((lo, hi))
    return merged


def log_status(session: AsyncSession, conversation: Conversation, old: str, new: str, actor: str,
               at: datetime) -> None:
    """Record the status change a clock needs (EN-5 wait pauses it; resolve stops it)."""
    kind = None
    if new == "waiting_client" and old != "waiting_client":
        kind = "wait"
    elif old == "waiting_client" and new != "waiting_client":
        kind = "unwait" if new == "open" else None
    if new == "resolved" and old != "resolved":
        if old == "waiting_client":
            session.add(StatusChange(conversation_id=conversation.id, kind="unwait", at=at, actor=actor))
        kind = "resolve"
    elif old == "resolved" and new != "resolved":
        kind = "reopen"
    if kind:
        session.add(StatusChange(conversation_id=conversation.id, kind=kind, at=at, actor=actor))


# ---------------------------------------------------------------- refresh

async def refresh(session: AsyncSession, conversation: Conversation, clock: Clock) -> None:
    await refresh_many(session, [conversation], clock)


async def refresh_many(session: AsyncSession, conversations: list[Conversation], clock: Clock) -> None:
    """`refresh` of several conversations with the reads shared (the inbound processor refreshes each
    conversation of a batch once): the care settings, timelines, facts, deadlines and timers of all of them
    are read in one query each, whatever their number."""
    conversations = list({id(c): c for c in conversations}.values())
    if not conversations:
        return
    await session.flush()
    now = clock.now()
    cares = await settings_many(session, {c.account for c in conversations})
    events = await timelines(session, [c.id for c in conversations])
    computed = []
    for c in conversations:
        care = cares[c.account]
        calendar = calendar_of(care)
        result = clocks.run_clock(calendar, events[c.id])
        first = result.first_response
        running = result.running
        c.target_s = care.target_s
        c.first_response_s = first.wall_s if first and not _running_first(result) else None
        c.first_response_business_s = first.business_s if first and not _running_first(result) else None
        c.clock_started_at = running.started_at if running else None
        c.sla_due_at = _due_at(calendar, running, care.target_s) if _running_first(result) else None
        computed.append((c, result, care, calendar))
    await _store_facts(session, computed)
    live = [item for item in computed if item[2].mode != "rounds"]
    rounds_accounts = sorted({c.account for c, _, care, _ in computed if care.mode == "rounds"})
    for c, _, care, _ in computed:
        if care.mode == "rounds":  # EN-4: agency check rounds instead of live clocks — no EN-3 deadline
            c.sla, c.sla_due_at = None, None
    if rounds_accounts:
        await session.flush()
        for account in rounds_accounts:
            await rounds.account_changed(session, account, clock)
    await _settle_deadlines(session, live, now, clock)


async def settings_many(session: AsyncSession, accounts: set[str]) -> dict[str, CareSettings]:
    rows = {r.account: r for r in (await session.execute(
        select(CareSettings).where(CareSettings.account.in_(sorted(accounts))))).scalars()}
    return {a: rows[a] if a in rows else await settings_of(session, a) for a in accounts}


def _running_first(result: clocks.ClockResult) -> bool:
    return result.running is not None and result.running.kind == "first"


def _due_at(calendar: clocks.CareCalendar, running: clocks.Running | None, target_s: int) -> datetime | None:
    """When a running first-response clock passes its target (None while paused: a paused clock has no due)."""
    if running is None or running.paused_since is not None:
        return None
    # The clock started at `started_at`; the pauses so far do not count: push the due time by their length.
    due = clocks.add_business_seconds(calendar, running.started_at, target_s)
    for lo, hi in running.pauses:
        due = clocks.add_business_seconds(calendar, due, calendar.business_seconds(lo, hi))
    return due


# ---------------------------------------------------------------- response facts and agent days

async def _store_facts(session: AsyncSession, computed: list[Any]) -> None:
    ids = [c.id for c, *_ in computed]
    existing_of: dict[str, list[ResponseFact]] = defaultdict(list)
    for fact in (await session.execute(select(ResponseFact).where(ResponseFact.conversation_id.in_(ids)))).scalars():
        existing_of[fact.conversation_id].append(fact)
    touched: set[tuple[str, date, str, str]] = set()
    adding: list[tuple[Conversation, dict[tuple[str, datetime], dict[str, Any]], clocks.CareCalendar]] = []
    for c, result, care, calendar in computed:
        wanted: dict[tuple[str, datetime], dict[str, Any]] = {}
        for r in result.responses:
            wanted[(r.kind, r.started_at)] = dict(ended_at=r.answered_at, agent=r.agent, wall_s=r.wall_s,
                                                  business_s=r.business_s,
                                                  within_target=r.business_s <= care.target_s)
        for r in result.resolutions:
            wanted[("resolution", r.opened_at)] = dict(ended_at=r.resolved_at, agent=r.agent, wall_s=r.wall_s,
                                                       business_s=r.business_s, within_target=True)
        existing = {(f.kind, as_utc(f.started_at)): f for f in existing_of[c.id]}
        for key, fact in existing.items():
            values = wanted.get(key)
            same = values is not None and (as_utc(fact.ended_at), fact.agent, fact.wall_s, fact.business_s,
                                           fact.within_target) == (values["ended_at"], values["agent"],
                                                                   values["wall_s"], values["business_s"],
                                                                   values["within_target"])
            if not same:
                touched.add((fact.agent, fact.day, fact.account, fact.channel_kind))
                await session.delete(fact)
            else:
                wanted.pop(key)
        adding.append((c, wanted, calendar))
    await session.flush()   # the replaced facts go before their successors (one key) are written
    for c, wanted, calendar in adding:
        for (kind, started_at), values in wanted.items():
            day = values["ended_at"].astimezone(calendar.tz).date()
            session.add(ResponseFact(conversation_id=c.id, kind=kind, started_at=started_at, day=day,
                                     account=c.account, channel_kind=c.kind, **values))
            touched.add((values["agent"], day, c.account, c.kind))
    await session.flush()
    for agent, day, account, channel_kind in sorted(touched):
        await resum_agent_day(session, agent, day, account, channel_kind)


async def resum_agent_day(session: AsyncSession, agent: str, day: date, account: str, channel_kind: str) -> None:
    """Re-sum one agent-day from its facts (never incremented: replays and revisions can't double count)."""
    row = await session.get(AgentDay, (agent, day, account, channel_kind))
    if row is None:
        row = AgentDay(agent=agent, day=day, account=account, channel_kind=channel_kind, answered=0, resolved=0,
                       messages_sent=0, first_count=0, first_wall_sum=0, first_business_sum=0, within_target=0)
        session.add(row)
    base = select(ResponseFact).where(ResponseFact.agent == agent, ResponseFact.day == day,
                                      ResponseFact.account == account, ResponseFact.channel_kind == channel_kind)
    sub = base.subquery()
    firsts = (await session.execute(
        select(func.count(), func.coalesce(func.sum(sub.c.wall_s), 0), func.coalesce(func.sum(sub.c.business_s), 0),
               func.coalesce(func.sum(cast(sub.c.within_target, Integer)), 0))
        .where(sub.c.kind == "first"))).one()
    resolved = (await session.execute(select(func.count()).select_from(sub).where(sub.c.kind == "resolution"))) \
        .scalar_one()
    row.answered = row.first_count = int(firsts[0])
    row.first_wall_sum, row.first_business_sum, row.within_target = int(firsts[1]), int(firsts[2]), int(firsts[3])
    row.resolved = int(resolved)


async def count_message_sent(session: AsyncSession, c: Conversation, agent: str, at: datetime) -> None:
    """One outbound message, counted once: called in the transaction that stores it."""
    care = await settings_of(session, c.account)
    day = as_utc(at).astimezone(ZoneInfo(care.tz or _agency_tz)).date()
    row = await session.get(AgentDay, (agent, day, c.account, c.kind))
    if row is None:
        row = AgentDay(agent=agent, day=day, account=c.account, channel_kind=c.kind, answered=0, resolved=0,
                       messages_sent=0, first_count=0, first_wall_sum=0, first_business_sum=0, within_target=0)
        session.add(row)
    row.messages_sent = (row.messages_sent or 0) + 1


# ---------------------------------------------------------------- the EN-3 deadline

async def _settle_deadlines(session: AsyncSession, computed: list[Any], now: datetime, clock: Clock) -> None:
    """Each conversation's deadlines (see `_outcomes`), their rows read in one query, their timers written in
    one; sets each conversation's `sla`."""
    decided = []
    for c, result, care, calendar in computed:
        state, outcomes, due = _outcomes(result, care, calendar, now)
        c.sla = state
        decided.append((c, outcomes, due))
    keys = [_key(c, started_at) for c, outcomes, _ in decided for started_at in outcomes]
    rows = {r.key: r for r in (await session.execute(
        select(CareDeadline).where(CareDeadline.key.in_(keys)))).scalars()} if keys else {}
    await schedule_many(session, [(TIMER_KIND, f"en3:{c.id}:{due.isoformat()}", due, {"conversation_id": c.id})
                                  for c, _, due in decided if due is not None], clock=clock)
    for c, outcomes, _ in decided:
        for started_at, (new_state, due, when) in outcomes.items():
            _record(session, c, started_at, new_state, due, when, clock, rows.get(_key(c, started_at)))


def _outcomes(result: clocks.ClockResult, care: CareSettings, calendar: clocks.CareCalendar,
              now: datetime) -> tuple[str, dict[datetime, tuple[str, datetime | None, datetime]], datetime | None]:
    """One deadline per cycle: met / breached by the first response, breached by a clock still running past the
    target, waived by a resolve before the target. Returns the latest cycle's SLA state, the outcome of each
    cycle and when a timer must look again (a running clock's due instant)."""
    target = care.target_s
    timer_due = None
    outcomes: dict[datetime, tuple[str, datetime | None, datetime]] = {}  # cycle start → (state, due, when)
    for r in result.responses:
        if r.kind == "first":
            due = clocks.add_business_seconds(calendar, r.started_at, target)
            outcomes[r.started_at] = ("met" if r.business_s <= target else "breached", due, r.answered_at)
    for res in result.resolutions:
        if res.opened_at not in outcomes:  # resolved before any answer
            elapsed = calendar.business_seconds(res.opened_at, res.resolved_at)
            due = clocks.add_business_seconds(calendar, res.opened_at, target)
            outcomes[res.opened_at] = ("waived" if elapsed <= target else "breached", due, res.resolved_at)
    state = "met" if result.first_response else None
    if _running_first(result):
        running = result.running
        assert running is not None
        wall, business = running.elapsed(calendar, now)
        due = _due_at(calendar, running, target)
        if business > target:
            outcomes[running.started_at] = ("breached", due, now)
            state = "breached"
        else:
            outcomes[running.started_at] = ("open", due, now)
            state = "paused" if running.paused_since else "running"
            timer_due = due
    elif result.first_response is not None:
        state = outcomes.get(result.first_response.started_at, ("met",))[0]
    elif result.resolutions:
        state = outcomes.get(result.resolutions[-1].opened_at, ("waived",))[0]
    return state or "met", outcomes, timer_due


def _key(c: Conversation, started_at: datetime) -> str:
    return f"en3:{c.id}:{as_utc(started_at).isoformat()}"


def _record(session: AsyncSession, c: Conversation, started_at: datetime, state: str, due: datetime | None,
            when: datetime, clock: Clock, row: CareDeadline | None) -> None:
    if row is None:
        row = CareDeadline(id=str(uuid.uuid4()), rule="EN-3", key=_key(c, started_at), conversation_id=c.id,
                           account=c.account, owner="", due_at=due, state="open")
        session.add(row)
    row.due_at = due
    if row.state == state or (state == "open" and row.state != "open"):
        return
    previous = row.state
    row.state, row.decided_at = state, when
    if state == "breached":
        row.owner = c.assignee or ""
        event = EngagementDeadlineBreached(deadline_id=row.id, rule="EN-3", owner=row.owner,
                                           due_at=due or when, conversation_id=c.id, deal_id=c.deal_id)
        row.breach_event_id = event.event_id
        add_event(session, event, clock=clock)
    elif state == "met":
        row.owner = row.owner or (c.assignee or "")
        add_event(session, EngagementDeadlineMet(deadline_id=row.id, rule="EN-3", owner=row.owner,
                                                 due_at=due or when, met_at=when, conversation_id=c.id,
                                                 revises_breach=previous == "breached", deal_id=c.deal_id),
                  clock=clock)
    elif state == "waived":
        add_event(session, EngagementDeadlineWaived(deadline_id=row.id, rule="EN-3", owner=row.owner,
                                                    waived_by="", reason="resolved before the target",
                                                    due_at=due, conversation_id=c.id, deal_id=c.deal_id),
                  clock=clock)


async def on_timer(session: AsyncSession, timer: Any, clock: Clock) -> None:
    c = await session.get(Conversation, timer.payload.get("conversation_id"))
    if c is not None:
        await refresh(session, c, clock)


# ---------------------------------------------------------------- the agents' report

async def agents_report(session: AsyncSession, *, start: date, end: date, account: str | None,
                        agents: list[str] | None, channel: str | None = None) -> list[dict[str, Any]]:
    """Per agent over [start, end] (local days): sums from `agent_days`, p90 from the response facts; optionally
    for one client account and/or one channel kind."""
    conditions: list[Any] = [AgentDay.day >= start, AgentDay.day <= end]
    if account:
        conditions.append(AgentDay.account == account)
    if channel:
        conditions.append(AgentDay.channel_kind == channel)
    if agents is not None:
        conditions.append(AgentDay.agent.in_(agents))
    rows = (await session.execute(
        select(AgentDay.agent, func.sum(AgentDay.answered), func.sum(AgentDay.resolved),
               func.sum(AgentDay.messages_sent), func.sum(AgentDay.first_count), func.sum(AgentDay.first_wall_sum),
               func.sum(AgentDay.first_business_sum), func.sum(AgentDay.within_target))
        .where(*conditions, AgentDay.agent != "").group_by(AgentDay.agent).order_by(AgentDay.agent))).all()
    p90 = await _p90(session, start, end, account, agents, channel)
    marks = await _marks(session, start, end, agents)
    out = []
    for agent, answered, resolved, sent, n, wall, business, within in rows:
        n = int(n or 0)
        out.append({"agent": agent, "answered": int(answered or 0), "resolved": int(resolved or 0),
                    "messages_sent": int(sent or 0),
                    "first_response_avg_s": round(int(wall) / n) if n else None,
                    "first_response_business_avg_s": round(int(business) / n) if n else None,
                    "first_response_p90_s": p90.get(agent, (None, None))[0],
                    "first_response_business_p90_s": p90.get(agent, (None, None))[1],
                    "within_target_share": round(int(within) / n, 4) if n else None,
                    "days": (end - start).days + 1,
                    "quality_avg": marks.get(agent)})
    return out


async def _marks(session: AsyncSession, start: date, end: date, agents: list[str] | None) -> dict[str, float]:
    conditions: list[Any] = [QualityMark.day >= start, QualityMark.day <= end]
    if agents is not None:
        conditions.append(QualityMark.agent.in_(agents))
    rows = (await session.execute(select(QualityMark.agent, func.avg(QualityMark.score))
                                  .where(*conditions).group_by(QualityMark.agent))).all()
    return {agent: round(float(avg), 2) for agent, avg in rows}


async def mark(session: AsyncSession, conversation: Conversation, *, by: str, score: int, note: str,
               clock: Clock) -> QualityMark:
    """A senior agent's mark on the conversation's first answer (who gave it, on which local day)."""
    if not 1 <= score <= 5:
        raise M.error("score", M.QUALITY_SCORE)
    fact = (await session.execute(select(ResponseFact).where(
        ResponseFact.conversation_id == conversation.id, ResponseFact.kind == "first")
        .order_by(ResponseFact.started_at.desc()).limit(1))).scalar_one_or_none()
    if fact is None:
        raise M.error("conversation", M.QUALITY_NO_ANSWER)
    row = await session.get(QualityMark, (conversation.id, by))
    if row is None:
        row = QualityMark(conversation_id=conversation.id, marked_by=by)
        session.add(row)
    row.agent, row.day, row.score, row.note, row.marked_at = fact.agent, fact.day, score, note.strip(), clock.now()
    await session.flush()
    return row


async def _p90(session: AsyncSession, start: date, end: date, account: str | None, agents: list[str] | None,
               channel: str | None = None) -> dict[str, tuple[int | None, int | None]]:
    conditions: list[Any] = [ResponseFact.day >= start, ResponseFact.day <= end, ResponseFact.kind == "first"]
    if account:
        conditions.append(ResponseFact.account == account)
    if channel:
        conditions.append(ResponseFact.channel_kind == channel)
    if agents is not None:
        conditions.append(ResponseFact.agent.in_(agents))
    if session.bind.dialect.name == "postgresql":
        rows = (await session.execute(
            select(ResponseFact.agent,
                   func.percentile_disc(0.9).within_group(ResponseFact.wall_s),
                   func.percentile_disc(0.9).within_group(ResponseFact.business_s))
            .where(*conditions).group_by(ResponseFact.agent))).all()
        return {a: (int(w), int(b)) for a, w, b in rows}
    values: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for agent, wall, business in (await session.execute(
            select(ResponseFact.agent, ResponseFact.wall_s, ResponseFact.business_s).where(*conditions))).all():
        values[agent][0].append(wall)
        values[agent][1].append(business)
    return {a: (clocks.percentile(w, 0.9), clocks.percentile(b, 0.9)) for a, (w, b) in values.items()}

