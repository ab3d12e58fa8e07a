"""The agency's business calendar (CAL-1, CAL-2) and the first-call deadline (CL-3).

Pure functions over aware datetimes; stdlib only. Every input must be timezone-aware (a naive
datetime raises ``ValueError``); every returned instant is in UTC, because all stored times are
UTC (CAL-1). Local wall times are interpreted in the agency's time zone.

DST: a local wall time that does not exist (spring-forward gap) or occurs twice (fall-back
overlap) is resolved with zoneinfo's ``fold=0`` rule: a missing time moves forward by the gap
(02:30 in Berlin on the spring-forward night is 03:30 CEST), an ambiguous one takes the first
occurrence (summer time). Working hours are counted as real elapsed time, so on the rare day a
DST change falls inside working hours that day is an hour shorter or longer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["BusinessCalendar"]

_ONE_DAY = timedelta(days=1)


def _require_aware(ts: datetime) -> None:
    if ts.tzinfo is None or ts.tzinfo.utcoffset(ts) is None:
        raise ValueError(f"naive datetime {ts!r}: all Zabota times must be timezone-aware (CAL-1)")


def _as_timedelta(hours: float | timedelta) -> timedelta:
    return hours if isinstance(hours, timedelta) else timedelta(hours=hours)


@dataclass(frozen=True)
class BusinessCalendar:
    """CAL-1: working hours ``work_start``–``work_end`` on ``workdays`` (Monday=0) minus
    ``holidays``, in the agency's time zone ``tz``. The defaults are the handbook's defaults
    (10:00–20:00, Monday–Friday, Asia/Almaty); agencies configure their own."""

    tz: ZoneInfo = ZoneInfo("Asia/Almaty")  # noqa: RUF009 - ZoneInfo is immutable and cached per key
    work_start: time = time(10, 0)
    work_end: time = time(20, 0)
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday=0, as date.weekday()
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        # Fail at configuration time rather than looping forever in next_working_day().
        if not self.work_start < self.work_end:
            raise ValueError(f"work_start {self.work_start} must be before work_end {self.work_end}")
        if not self.workdays or not self.workdays <= set(range(7)):
            raise ValueError(f"workdays must be a non-empty subset of 0..6 (Monday=0), got {self.workdays}")

    # ----------------------------------------------------------------- configuration

    @classmethod
    def from_strings(
        cls,
        tz: str = "Asia/Almaty",
        hours: str = "10:00-20:00",
        workdays: str = "1-5",
        holidays: str = "",
    ) -> BusinessCalendar:
        """Build a calendar from env-style settings.

        ``hours`` is ``"HH:MM-HH:MM"``; ``workdays`` uses ISO weekdays (1=Monday..7=Sunday) as a
        list and/or ranges (``"1-5"``, ``"1,2,3,4,5"``, ``"1-3,6"``); ``holidays`` is a comma-separated
        list of ISO dates (``"2026-01-01,2026-03-08"``). Bad input raises ``ValueError``.
        """
        work_start, work_end = _parse_hours(hours)
        return cls(
            tz=_parse_tz(tz),
            work_start=work_start,
            work_end=work_end,
            workdays=_parse_workdays(workdays),
            holidays=_parse_holidays(holidays),
        )

    # ----------------------------------------------------------------- CAL-1

    def local(self, ts: datetime) -> datetime:
        """``ts`` as the agency's local time (what every page shows, CAL-1)."""
        _require_aware(ts)
        return ts.astimezone(self.tz)

    def is_working_day(self, d: date) -> bool:
        """CAL-1: a configured workday that is not a configured holiday."""
        return d.weekday() in self.workdays and d not in self.holidays

    def is_working_time(self, ts: datetime) -> bool:
        """CAL-1: on a working day and ``work_start <= local time < work_end``."""
        loc = self.local(ts)
        return self.is_working_day(loc.date()) and self.work_start <= loc.time() < self.work_end

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        d += _ONE_DAY
        while not self.is_working_day(d):
            d += _ONE_DAY
        return d

    @property
    def working_day_length(self) -> timedelta:
        """Nominal length of one working day (10 hours by default)."""
        return datetime.combine(date.min, self.work_end) - datetime.combine(date.min, self.work_start)

    # ----------------------------------------------------------------- CAL-2 wall clock

    def add_hours(self, ts: datetime, hours: float | timedelta) -> datetime:
        """CAL-2 "N hours" is wall-clock: plain elapsed time, nights and weekends included."""
        _require_aware(ts)
        return ts.astimezone(UTC) + _as_timedelta(hours)

    def add_days(self, ts: datetime, days: int) -> datetime:
        """CAL-2 "N days" is wall-clock: the same local wall time ``days`` calendar days later,
        so a DST change in between does not shift the local hour (the UTC gap is then 23/25 h)."""
        loc = self.local(ts)
        return self._to_utc(loc.date() + timedelta(days=days), loc.time())

    # ----------------------------------------------------------------- CAL-2 working time

    def add_working_hours(self, ts: datetime, hours: float | timedelta) -> datetime:
        """CAL-2 "N working hours": the earliest instant by which ``hours`` of working time have
        passed since ``ts``.

        Only time inside working hours on working days counts. A start outside working hours
        starts counting at the next working-time start (Saturday 12:00 + 2h → Monday 12:00). A
        result exactly at the end of a working day stays at ``work_end`` rather than moving to the
        next morning. Adding zero returns ``ts`` unchanged. Steps day by day, not minute by minute.
        """
        _require_aware(ts)
        remaining = _as_timedelta(hours)
        if remaining < timedelta(0):
            raise ValueError(f"cannot add a negative number of working hours: {hours}")
        cursor = ts.astimezone(UTC)
        if not remaining:
            return cursor
        day = self.local(cursor).date()
        if not self.is_working_day(day):
            day = self.next_working_day(day)
        while True:
            opens, closes = self._window(day)
            begin = max(cursor, opens)
            if begin < closes:
                if remaining <= closes - begin:
                    return begin + remaining
                remaining -= closes - begin
            day = self.next_working_day(day)

    def add_working_days(self, ts: datetime, days: int) -> datetime:
        """CAL-2 "N working days", defined as ``add_working_hours(ts, days × working-day length)``:
        Friday 15:00 + 3 working days = Wednesday 15:00.

        From outside working hours counting starts at the next working-time start, so Saturday
        12:00 + 3 working days counts Monday, Tuesday and Wednesday in full and, by the end-of-day
        rule of add_working_hours, is due Wednesday at ``work_end`` (20:00) — the same working
        moment as Thursday 10:00 (no working time lies between them), but the earlier instant.
        """
        if days < 0:
            raise ValueError(f"cannot add a negative number of working days: {days}")
        return self.add_working_hours(ts, days * self.working_day_length)

    def working_hours_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time (CAL-2) inside ``[start, end)``; zero if ``end <= start``.
        Inverse of add_working_hours: ``working_hours_between(t, add_working_hours(t, h)) == h``."""
        _require_aware(start)
        _require_aware(end)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        total = timedelta(0)
        if end <= start:
            return total
        day, last = self.local(start).date(), self.local(end).date()
        while day <= last:
            if self.is_working_day(day):
                opens, closes = self._window(day)
                total += max(timedelta(0), min(end, closes) - max(start, opens))
            day += _ONE_DAY
        return total

    # ----------------------------------------------------------------- CL-3

    def first_call_due(
        self,
        paid_at: datetime,
        *,
        within: timedelta = timedelta(hours=1),
        morning: time = time(11, 0),
        next_morning_is_working_day: bool = False,
    ) -> datetime:
        """CL-3: when the "first call (script #3)" task is due after a new client's payment.

        By the payment's local time (CAL-1 hours):

        * in ``[work_start, work_end)`` → ``paid_at + within``, wall-clock (CAL-2), even when that
          falls after ``work_end`` (paid 19:30 → due 20:30);
        * at or after ``work_end`` (20:00, 23:59) → ``morning`` (11:00) of the next morning;
        * before ``work_start`` (08:00, 00:30) → ``morning`` of that same morning.

        By default "next morning" is the next *calendar* day and weekends/holidays are ignored,
        as the seed does (Friday 21:00 → Saturday 11:00). With ``next_morning_is_working_day``
        the morning is always on a working day (CAL-1): after hours → next working day; before
        hours on a non-working day → the next working day; and a payment inside working hours
        on a non-working day (Saturday 12:00) is also treated as after hours → next working
        day's morning, because nobody is on duty to call within the hour.
        """
        loc = self.local(paid_at)
        day, wall = loc.date(), loc.time()
        on_duty = self.is_working_day(day) or not next_morning_is_working_day
        if self.work_start <= wall < self.work_end and on_duty:
            return self.add_hours(paid_at, within)
        if wall < self.work_start and on_duty:
            return self._to_utc(day, morning)
        if next_morning_is_working_day:
            return self._to_utc(self.next_working_day(day), morning)
        return self._to_utc(day + _ONE_DAY, morning)

    # ----------------------------------------------------------------- helpers

    def _to_utc(self, d: date, wall: time) -> datetime:
        """Local wall time on ``d`` as a UTC instant; fold=0 handles DST gaps and overlaps."""
        return datetime.combine(d, wall, tzinfo=self.tz).astimezone(UTC)

    def _window(self, d: date) -> tuple[datetime, datetime]:
        """Working hours of day ``d`` as a UTC interval ``[opens, closes)``."""
        return self._to_utc(d, self.work_start), self._to_utc(d, self.work_end)


# --------------------------------------------------------------------- parsing


def _parse_tz(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (expected an IANA name like 'Asia/Almaty')") from exc


def _parse_hours(value: str) -> tuple[time, time]:
    parts = value.split("-")
    try:
        if len(parts) != 2:
            raise ValueError
        start, end = (time.fromisoformat(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(
            f"bad working hours {value!r} (expected 'HH:MM-HH:MM', e.g. '10:00-20:00')"
        ) from None
    if not start < end:
        raise ValueError(f"bad working hours {value!r}: start must be before end")
    return start, end


def _parse_workdays(value: str) -> frozenset[int]:
    days: set[int] = set()
    for item in filter(None, (p.strip() for p in value.split(","))):
        lo, dash, hi = item.partition("-")
        try:
            first, last = int(lo), int(hi if dash else lo)  # "5" is the range 5-5; "5-" is an error
        except ValueError:
            raise ValueError(f"bad workdays {value!r}: {item!r} is not an ISO weekday or range") from None
        if not 1 <= first <= last <= 7:
            raise ValueError(f"bad workdays {value!r}: {item!r} must be within 1..7 (1=Monday), low to high")
        days.update(d - 1 for d in range(first, last + 1))  # ISO 1=Monday → weekday() 0=Monday
    if not days:
        raise ValueError(f"bad workdays {value!r}: at least one working weekday is required")
    return frozenset(days)


def _parse_holidays(value: str) -> frozenset[date]:
    holidays: set[date] = set()
    for item in filter(None, (p.strip() for p in value.split(","))):
        try:
            holidays.add(date.fromisoformat(item))
        except ValueError:
            raise ValueError(f"bad holiday {item!r} in {value!r} (expected YYYY-MM-DD)") from None
    return frozenset(holidays)
