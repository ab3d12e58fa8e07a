"""EN-3 response clocks as plain functions: the care calendar and the clock arithmetic (issue 12).

Brand care works on a calendar of its own, not the agency's CAL-1 office hours: often 09:00–21:00 seven days a
week, with several intervals a day (lunch breaks) and holidays. The default is every day, 24 hours — a brand's
customers write at night too, and a clock that silently skipped nights would flatter the team.

Every response time is kept twice: wall-clock seconds and business seconds (only the calendar's working time
counts). Time a conversation spends "waiting for client" (EN-5, ask the client) counts in neither: the clock is
paused. Resolving stops a running clock without a response; a customer message after that reopens the
conversation and starts a *new first-response* clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[time, time]  # [start, end) local wall time; end 00:00 means midnight at the end of the day

ALL_DAY: tuple[Interval, ...] = ((time(0, 0), time(0, 0)),)
DEFAULT_TARGET_SECONDS = 7 * 60  # seed 004: the first answer within 7 minutes


def _utc(ts: datetime) -> datetime:
    """Aware instants in UTC: Python subtracts two datetimes of the same zone by their wall clocks (an hour off
    across a DST change), so every difference here is taken in UTC."""
    if ts.tzinfo is None:
        raise ValueError("care clocks need timezone-aware datetimes")
    return ts.astimezone(UTC)


@dataclass(frozen=True)
class CareCalendar:
    """Working intervals per ISO weekday (1 = Monday … 7 = Sunday), holidays and the time zone they are read in."""

    tz: ZoneInfo = ZoneInfo("UTC")
    week: dict[int, tuple[Interval, ...]] = field(default_factory=lambda: {d: ALL_DAY for d in range(1, 8)})
    holidays: frozenset[date] = frozenset()

    @classmethod
    def from_strings(cls, tz: str = "UTC", hours: str = "", days: str = "1-7", holidays: str = "") -> CareCalendar:
        """`hours` "09:00-13:00,14:00-21:00" (empty: all day), `days` "1-5" or "1,2,3,6", `holidays` ISO dates."""
        intervals = _parse_intervals(hours) if hours.strip() else ALL_DAY
        return cls(tz=ZoneInfo(tz), week={d: intervals for d in _parse_days(days)},
                   holidays=frozenset(date.fromisoformat(h.strip()) for h in holidays.split(",") if h.strip()))

    def windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working windows of one local day, as UTC instants (DST-correct: each bound is converted on its own)."""
        if day in self.holidays:
            return []
        result = []
        for start, end in self.week.get(day.isoweekday(), ()):
            lo = datetime.combine(day, start, self.tz)
            hi = datetime.combine(day + timedelta(days=1) if end == time(0, 0) else day, end, self.tz)
            result.append((lo.astimezone(UTC), hi.astimezone(UTC)))
        return result

    def business_seconds(self, start: datetime, end: datetime) -> int:
        """Working seconds in [start, end): the overlap with every working window of every local day touched."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return 0
        total = 0.0
        day = start.astimezone(self.tz).date() - timedelta(days=1)
        last = end.astimezone(self.tz).date()
        while day <= last:
            for lo, hi in self.windows(day):
                overlap = (min(hi, end) - max(lo, start)).total_seconds()
                if overlap > 0:
                    total += overlap
            day += timedelta(days=1)
        return int(total)


def _parse_intervals(text: str) -> tuple[Interval, ...]:
    intervals = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", part)
        if not match:
            raise ValueError(f"care hours: {part.strip()!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = time(h1 % 24, m1), time(h2 % 24, m2)
        if end != time(0, 0) and end <= start:
            raise ValueError(f"care hours: {part.strip()!r} ends before it starts")
        intervals.append((start, end))
    intervals.sort()
    for (_, end1), (start2, _) in zip(intervals, intervals[1:], strict=False):
        if end1 == time(0, 0) or end1 > start2:
            raise ValueError("care hours: intervals overlap")
    return tuple(intervals)


def _parse_days(text: str) -> set[int]:
    days: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if not 1 <= first <= last <= 7:
            raise ValueError(f"care days: {part!r} is not within 1-7")
        days.update(range(first, last + 1))
    return days


# ---------------------------------------------------------------- the clock over a conversation's timeline

INBOUND, ANSWER, WAIT, UNWAIT, RESOLVE = "inbound", "answer", "wait", "unwait", "resolve"


@dataclass(frozen=True)
class ClockEvent:
    at: datetime
    kind: str  # inbound (a customer message) | answer (a human's outbound answer) | wait | unwait | resolve
    agent: str = ""  # who answered or resolved


@dataclass(frozen=True)
class Response:
    kind: str  # "first" (opened or reopened the conversation) | "next" (a later customer message that waited)
    started_at: datetime
    answered_at: datetime
    wall_s: int
    business_s: int
    agent: str = ""


@dataclass(frozen=True)
class Resolution:
    opened_at: datetime
    resolved_at: datetime
    wall_s: int
    business_s: int
    agent: str = ""


@dataclass(frozen=True)
class Running:
    """A clock still running at the end of the timeline: the customer is waiting for `kind` response."""

    kind: str
    started_at: datetime
    paused_since: datetime | None
    pauses: tuple[tuple[datetime, datetime], ...]

    def elapsed(self, calendar: CareCalendar, now: datetime) -> tuple[int, int]:
        """(wall, business) seconds waited so far, pauses excluded; a paused clock stands still."""
        end = self.paused_since or _utc(now)
        return _net(calendar, self.started_at, end, self.pauses)


@dataclass(frozen=True)
class ClockResult:
    responses: tuple[Response, ...]
    resolutions: tuple[Resolution, ...]
    running: Running | None

    @property
    def first_response(self) -> Response | None:
        """The first response of the latest cycle (a reopen starts a new one)."""
        firsts = [r for r in self.responses if r.kind == "first"]
        return firsts[-1] if firsts else None


def _net(calendar: CareCalendar, start: datetime, end: datetime,
         pauses: tuple[tuple[datetime, datetime], ...] | list[tuple[datetime, datetime]]) -> tuple[int, int]:
    start, end = _utc(start), _utc(end)
    wall = (end - start).total_seconds()
    business = calendar.business_seconds(start, end)
    for lo, hi in pauses:
        lo, hi = max(lo, start), min(hi, end)
        if hi > lo:
            wall -= (hi - lo).total_seconds()
            business -= calendar.business_seconds(lo, hi)
    return max(0, int(wall)), max(0, business)


def run_clock(calendar: CareCalendar, events: list[ClockEvent]) -> ClockResult:
    """Replay a conversation's timeline (in time order; ties keep the given order) into its response times.

    - A customer message starts a clock unless one is already running (the customer has been waiting since
      their first unanswered message); the first clock of a cycle measures the first response, later ones the
      next responses.
    - An answer stops the running clock and records the response.
    - wait / unwait pause and resume the running clock (and the cycle's resolution clock).
    - resolve stops a running clock without a response and records the resolution time; the next customer
      message opens a new cycle with a new first-response clock.
    """
    responses: list[Response] = []
    resolutions: list[Resolution] = []
    cycle_start: datetime | None = None
    cycle_pauses: list[tuple[datetime, datetime]] = []
    answered_in_cycle = False
    clock: tuple[datetime, str] | None = None
    clock_pauses: list[tuple[datetime, datetime]] = []
    paused_since: datetime | None = None

    def end_pause(at: datetime) -> None:
        nonlocal paused_since
        if paused_since is not None:
            cycle_pauses.append((paused_since, at))
            if clock is not None:
                clock_pauses.append((max(paused_since, clock[0]), at))
            paused_since = None

    for event in sorted((ClockEvent(_utc(e.at), e.kind, e.agent) for e in events), key=lambda e: e.at):
        if event.kind == INBOUND:
            end_pause(event.at)  # the customer wrote again: nobody waits for the client any more
            if cycle_start is None:
                cycle_start, cycle_pauses, answered_in_cycle = event.at, [], False
            if clock is None:
                clock, clock_pauses = (event.at, "next" if answered_in_cycle else "first"), []
        elif event.kind == ANSWER:
            if clock is not None:
                end_pause(event.at)
                wall, business = _net(calendar, clock[0], event.at, clock_pauses)
                responses.append(Response(clock[1], clock[0], event.at, wall, business, event.agent))
                clock, answered_in_cycle = None, True
        elif event.kind == WAIT:
            if paused_since is None and cycle_start is not None:
                paused_since = event.at
        elif event.kind == UNWAIT:
            end_pause(event.at)
        elif event.kind == RESOLVE:
            if cycle_start is not None:
                end_pause(event.at)
                wall, business = _net(calendar, cycle_start, event.at, cycle_pauses)
                resolutions.append(Resolution(cycle_start, event.at, wall, business, event.agent))
            cycle_start, clock, answered_in_cycle = None, None, False
        else:
            raise ValueError(f"unknown clock event {event.kind!r}")

    running = None
    if clock is not None:
        pauses = tuple(clock_pauses)
        running = Running(clock[1], clock[0], paused_since, pauses)
    return ClockResult(tuple(responses), tuple(resolutions), running)


# ---------------------------------------------------------------- SLA state and report figures

def sla_state(result: ClockResult, target_s: int, calendar: CareCalendar, now: datetime,
              waived: bool = False) -> str:
    """running | met | breached | paused | waived — of the latest cycle's first response (business seconds)."""
    if waived:
        return "waived"
    first = result.first_response
    if result.running is not None and result.running.kind == "first":
        if result.running.elapsed(calendar, now)[1] > target_s:
            return "breached"
        return "paused" if result.running.paused_since is not None else "running"
    if first is None:
        return "met"  # nothing asked yet (an outbound-only conversation): nothing to breach
    return "met" if first.business_s <= target_s else "breached"


def add_business_seconds(calendar: CareCalendar, start: datetime, seconds: int) -> datetime:
    """The instant at which `seconds` of working time have passed since `start` (a first response's due time)."""
    start = _utc(start)
    remaining = float(seconds)
    day = start.astimezone(calendar.tz).date() - timedelta(days=1)
    for _ in range(800):  # two years of days without a single working minute: a calendar error, not a loop
        for lo, hi in calendar.windows(day):
            lo = max(lo, start)
            if hi <= lo:
                continue
            span = (hi - lo).total_seconds()
            if span >= remaining:
                return lo + timedelta(seconds=remaining)
            remaining -= span
        day += timedelta(days=1)
    raise ValueError("the care calendar has no working time")


def clock_colour(elapsed_s: int, target_s: int) -> str:
    """The inbox's live clock: amber from 80 % of the target, red past it."""
    if elapsed_s > target_s:
        return "red"
    return "amber" if elapsed_s >= 0.8 * target_s else "green"


def percentile(values: list[int], q: float) -> int | None:
    """Nearest-rank percentile (p90 of [1..10] is 9): what a reader counting by hand gets."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-int(q * 100) * len(ordered) // 100))  # ceil(q·n) in integers
    return ordered[min(rank, len(ordered)) - 1]
