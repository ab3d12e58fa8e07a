"""shared.calendar: CAL-1 working time, CAL-2 wall-clock vs working-time arithmetic, CL-3 first call.

Dates: January 2026 has no DST anywhere (Mon 5 … Fri 9, Sat 10, Sun 11, Mon 12, Tue 13), so a zone
is paired with its fixed January UTC offset and every expectation is an exact UTC instant.
Europe/Berlin DST nights in 2026: spring forward Sun 29 Mar 02:00 CET → 03:00 CEST,
fall back Sun 25 Oct 03:00 CEST → 02:00 CET.
"""

import time as perf
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from shared.calendar import BusinessCalendar

# (zone, UTC offset in hours in January): one without DST, one with.
ZONES = [pytest.param("Asia/Almaty", 5, id="almaty"), pytest.param("Europe/Berlin", 1, id="berlin")]
BERLIN = BusinessCalendar(tz=ZoneInfo("Europe/Berlin"))


def cal(zone: str, **kwargs) -> BusinessCalendar:
    return BusinessCalendar(tz=ZoneInfo(zone), **kwargs)


def at(zone: str, d: date, h: int, mi: int = 0) -> datetime:
    """An input: local wall time in ``zone``."""
    return datetime.combine(d, time(h, mi), tzinfo=ZoneInfo(zone))


def utc(offset: int, d: date, h: int, mi: int = 0) -> datetime:
    """An expectation: the UTC instant of local wall time ``h:mi`` at a fixed UTC ``offset``."""
    return datetime.combine(d, time(h, mi), tzinfo=UTC) - timedelta(hours=offset)


MON, TUE, WED, THU, FRI, SAT = (date(2026, 1, d) for d in (5, 6, 7, 8, 9, 10))
NEXT_MON, NEXT_TUE, NEXT_WED, NEXT_THU = (date(2026, 1, d) for d in (12, 13, 14, 15))


# ---------------------------------------------------------------- CAL-1 working time


@pytest.mark.parametrize("zone, offset", ZONES)
@pytest.mark.parametrize(
    "h, mi, working", [(9, 59, False), (10, 0, True), (19, 59, True), (20, 0, False)], ids=str
)
def test_cal1_working_time_boundaries(zone, offset, h, mi, working):
    assert cal(zone).is_working_time(at(zone, MON, h, mi)) is working


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal1_working_time_judged_in_agency_zone_whatever_input_zone(zone, offset):
    c = cal(zone)
    assert c.is_working_time(utc(offset, MON, 10)) is True
    assert c.is_working_time(utc(offset, MON, 9, 59)) is False
    assert c.local(utc(offset, MON, 10)) == at(zone, MON, 10)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal1_saturday_and_sunday_not_working(zone, offset):
    c = cal(zone)
    assert not c.is_working_time(at(zone, SAT, 12))
    assert not c.is_working_day(SAT + timedelta(days=1))


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal1_configured_holiday_not_working(zone, offset):
    c = cal(zone, holidays=frozenset({TUE}))
    assert not c.is_working_day(TUE)
    assert not c.is_working_time(at(zone, TUE, 12))
    assert c.is_working_time(at(zone, WED, 12))


def test_cal1_next_working_day_is_strictly_after_and_skips_weekend_and_holiday():
    c = BusinessCalendar(holidays=frozenset({NEXT_MON}))
    assert c.next_working_day(MON) == TUE
    assert c.next_working_day(THU) == FRI
    assert c.next_working_day(FRI) == NEXT_TUE


@pytest.mark.parametrize(
    "call",
    [
        lambda c, ts: c.local(ts),
        lambda c, ts: c.is_working_time(ts),
        lambda c, ts: c.add_hours(ts, 1),
        lambda c, ts: c.add_days(ts, 1),
        lambda c, ts: c.add_working_hours(ts, 1),
        lambda c, ts: c.add_working_days(ts, 1),
        lambda c, ts: c.working_hours_between(ts, ts),
        lambda c, ts: c.first_call_due(ts),
    ],
    ids=[
        "local",
        "is_working_time",
        "add_hours",
        "add_days",
        "add_working_hours",
        "add_working_days",
        "working_hours_between",
        "first_call_due",
    ],
)
def test_cal1_naive_datetime_rejected(call):
    with pytest.raises(ValueError, match="naive"):
        call(BusinessCalendar(), datetime(2026, 1, 5, 12, 0))


# ---------------------------------------------------------------- CAL-2 working hours / days


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal2_working_hours_across_a_night(zone, offset):
    assert cal(zone).add_working_hours(at(zone, MON, 19), 2) == utc(offset, TUE, 11)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal2_working_hours_across_a_weekend(zone, offset):
    assert cal(zone).add_working_hours(at(zone, FRI, 19), 2) == utc(offset, NEXT_MON, 11)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal2_working_hours_across_weekend_and_holiday(zone, offset):
    c = cal(zone, holidays=frozenset({NEXT_MON}))
    assert c.add_working_hours(at(zone, FRI, 19), timedelta(hours=2)) == utc(offset, NEXT_TUE, 11)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal2_working_hours_start_outside_hours_counts_from_next_start(zone, offset):
    c = cal(zone)
    assert c.add_working_hours(at(zone, SAT, 12), 2) == utc(offset, NEXT_MON, 12)
    assert c.add_working_hours(at(zone, MON, 7), 1.5) == utc(offset, MON, 11, 30)
    assert c.add_working_hours(at(zone, MON, 21), 1) == utc(offset, TUE, 11)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal2_working_hours_ending_at_work_end_stay_there(zone, offset):
    c = cal(zone)
    assert c.add_working_hours(at(zone, MON, 10), 10) == utc(offset, MON, 20)
    assert c.add_working_hours(at(zone, FRI, 19), 1) == utc(offset, FRI, 20)


def test_cal2_zero_working_hours_is_a_no_op_even_off_hours():
    ts = at("Asia/Almaty", SAT, 12)
    assert BusinessCalendar().add_working_hours(ts, 0) == ts


def test_cal2_negative_working_time_rejected():
    with pytest.raises(ValueError):
        BusinessCalendar().add_working_hours(at("Asia/Almaty", MON, 12), -1)
    with pytest.raises(ValueError):
        BusinessCalendar().add_working_days(at("Asia/Almaty", MON, 12), -1)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal2_working_days_friday_to_wednesday(zone, offset):
    assert cal(zone).add_working_days(at(zone, FRI, 15), 3) == utc(offset, NEXT_WED, 15)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal2_working_days_from_saturday_count_monday_to_wednesday(zone, offset):
    # Counting starts Monday 10:00; three full days end Wednesday 20:00 (end-of-day rule), which is
    # the same working moment as Thursday 10:00: no working time lies between the two.
    c = cal(zone)
    due = c.add_working_days(at(zone, SAT, 12), 3)
    assert due == utc(offset, NEXT_WED, 20)
    assert c.working_hours_between(due, at(zone, NEXT_THU, 10)) == timedelta(0)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal2_wall_clock_and_working_time_differ(zone, offset):
    c, friday = cal(zone), at(zone, FRI, 15)
    assert c.add_hours(friday, 24) == utc(offset, SAT, 15)
    assert c.add_working_hours(friday, 24) == utc(offset, NEXT_TUE, 19)  # 5 + 10 + 9 working hours
    assert c.add_days(friday, 3) == utc(offset, NEXT_MON, 15)
    assert c.add_working_days(friday, 3) == utc(offset, NEXT_WED, 15)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cal2_working_hours_between_inverts_add_working_hours(zone, offset):
    c = cal(zone, holidays=frozenset({NEXT_MON}))
    assert c.working_hours_between(at(zone, FRI, 19), at(zone, NEXT_TUE, 11)) == timedelta(hours=2)
    assert c.working_hours_between(at(zone, TUE, 11), at(zone, MON, 11)) == timedelta(0)
    for start in (at(zone, MON, 9), at(zone, WED, 13, 17), at(zone, SAT, 12)):
        for hours in (0.25, 10, 37.5):
            end = c.add_working_hours(start, hours)
            assert c.working_hours_between(start, end) == timedelta(hours=hours)


def test_cal2_thousand_working_days_is_fast():
    c, start = BusinessCalendar(), at("Asia/Almaty", MON, 10)
    t0 = perf.perf_counter()
    due = c.add_working_days(start, 1000)  # exactly 200 five-day weeks: ends on a Friday at 20:00
    assert perf.perf_counter() - t0 < 1.0
    assert due == utc(5, FRI + timedelta(weeks=199), 20)
    assert c.working_hours_between(start, due) == timedelta(hours=10_000)


# CAL-2 across Berlin's DST nights: wall-clock "days" keep the local hour, "hours" keep elapsed time.


def test_cal2_add_days_keeps_local_time_across_spring_forward():
    friday = datetime(2026, 3, 27, 14, tzinfo=UTC)  # 15:00 CET
    assert BERLIN.add_days(friday, 3) == datetime(2026, 3, 30, 13, tzinfo=UTC)  # 15:00 CEST
    assert BERLIN.add_hours(friday, 72) == datetime(2026, 3, 30, 14, tzinfo=UTC)  # 16:00 CEST


def test_cal2_add_days_keeps_local_time_across_fall_back():
    friday = datetime(2026, 10, 23, 13, tzinfo=UTC)  # 15:00 CEST
    assert BERLIN.add_days(friday, 3) == datetime(2026, 10, 26, 14, tzinfo=UTC)  # 15:00 CET


def test_cal2_add_days_into_missing_or_repeated_wall_time_uses_fold_rules():
    # 02:30 does not exist on 29 Mar (moves forward to 03:30 CEST) and occurs twice on 25 Oct
    # (the first, summer-time, occurrence is taken).
    assert BERLIN.add_days(datetime(2026, 3, 28, 1, 30, tzinfo=UTC), 1) == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    assert BERLIN.add_days(datetime(2026, 10, 24, 0, 30, tzinfo=UTC), 1) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def test_cal2_working_hours_across_dst_weekend():
    friday_1900 = datetime(2026, 3, 27, 18, tzinfo=UTC)  # CET
    assert BERLIN.add_working_hours(friday_1900, 2) == datetime(2026, 3, 30, 9, tzinfo=UTC)  # Mon 11:00 CEST
    assert BERLIN.add_working_days(friday_1900, 1) == datetime(2026, 3, 30, 17, tzinfo=UTC)  # Mon 19:00 CEST


def test_cal2_working_hours_are_real_elapsed_time_when_dst_falls_inside_them():
    # An (odd) calendar working 01:00–05:00 every day: on 29 Mar that window is only 3 real hours.
    night = BusinessCalendar(
        tz=ZoneInfo("Europe/Berlin"), work_start=time(1), work_end=time(5), workdays=frozenset(range(7))
    )
    opens = datetime(2026, 3, 29, 0, tzinfo=UTC)  # 01:00 CET
    assert night.add_working_hours(opens, 3) == datetime(2026, 3, 29, 3, tzinfo=UTC)  # 05:00 CEST
    assert night.add_working_hours(opens, 4) == datetime(2026, 3, 30, 0, tzinfo=UTC)  # Mon 02:00 CEST


# ---------------------------------------------------------------- CL-3 first call due


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cl3_paid_1930_due_2030(zone, offset):
    # Wall-clock hour (CAL-2), even though 20:30 is after work_end.
    assert cal(zone).first_call_due(at(zone, MON, 19, 30)) == utc(offset, MON, 20, 30)


@pytest.mark.parametrize("zone, offset", ZONES)
@pytest.mark.parametrize(
    "h, mi, due_h, due_mi", [(10, 0, 11, 0), (14, 45, 15, 45), (19, 59, 20, 59)], ids=str
)
def test_cl3_paid_in_working_hours_due_one_hour_later(zone, offset, h, mi, due_h, due_mi):
    assert cal(zone).first_call_due(at(zone, MON, h, mi)) == utc(offset, MON, due_h, due_mi)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cl3_configured_within_replaces_the_hour(zone, offset):
    assert cal(zone).first_call_due(at(zone, MON, 19, 30), within=timedelta(minutes=30)) == utc(
        offset, MON, 20
    )


@pytest.mark.parametrize("zone, offset", ZONES)
@pytest.mark.parametrize("h, mi", [(20, 0), (20, 1), (23, 59)], ids=str)
def test_cl3_paid_from_2000_due_1100_next_morning(zone, offset, h, mi):
    assert cal(zone).first_call_due(at(zone, MON, h, mi)) == utc(offset, TUE, 11)


@pytest.mark.parametrize("zone, offset", ZONES)
@pytest.mark.parametrize("h, mi", [(0, 0), (0, 30), (8, 0), (9, 59)], ids=str)
def test_cl3_paid_before_0900_due_1100_same_morning(zone, offset, h, mi):
    assert cal(zone).first_call_due(at(zone, MON, h, mi)) == utc(offset, MON, 11)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cl3_default_counts_calendar_days_friday_2100_due_saturday_1100(zone, offset):
    c = cal(zone, holidays=frozenset({SAT}))  # holidays are ignored too by default
    assert c.first_call_due(at(zone, FRI, 21)) == utc(offset, SAT, 11)
    assert c.first_call_due(at(zone, SAT, 12)) == utc(offset, SAT, 13)
    assert c.first_call_due(at(zone, SAT, 8)) == utc(offset, SAT, 11)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cl3_next_working_day_setting_friday_2100_due_monday_1100(zone, offset):
    c = cal(zone)
    due = c.first_call_due(at(zone, FRI, 21), next_morning_is_working_day=True)
    assert due == utc(offset, NEXT_MON, 11)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cl3_next_working_day_setting_skips_holiday_monday(zone, offset):
    c = cal(zone, holidays=frozenset({NEXT_MON}))
    due = c.first_call_due(at(zone, FRI, 21), next_morning_is_working_day=True)
    assert due == utc(offset, NEXT_TUE, 11)


@pytest.mark.parametrize("zone, offset", ZONES)
@pytest.mark.parametrize("h", [8, 12, 21], ids=["before_hours", "in_hours", "after_hours"])
def test_cl3_next_working_day_setting_payment_on_saturday_due_monday_1100(zone, offset, h):
    due = cal(zone).first_call_due(at(zone, SAT, h), next_morning_is_working_day=True)
    assert due == utc(offset, NEXT_MON, 11)


@pytest.mark.parametrize("zone, offset", ZONES)
def test_cl3_next_working_day_setting_keeps_weekday_rules(zone, offset):
    c = cal(zone)
    assert c.first_call_due(at(zone, MON, 19, 30), next_morning_is_working_day=True) == utc(
        offset, MON, 20, 30
    )
    assert c.first_call_due(at(zone, MON, 8), next_morning_is_working_day=True) == utc(offset, MON, 11)
    assert c.first_call_due(at(zone, MON, 20), next_morning_is_working_day=True) == utc(offset, TUE, 11)


def test_cl3_input_in_any_zone_judged_in_agency_time():
    almaty = BusinessCalendar()
    moscow = timezone(timedelta(hours=3))
    assert almaty.first_call_due(datetime(2026, 1, 5, 17, 30, tzinfo=moscow)) == datetime(
        2026, 1, 5, 15, 30, tzinfo=UTC
    )  # 19:30 Almaty → 20:30 Almaty
    assert almaty.first_call_due(datetime(2026, 1, 5, 18, 0, tzinfo=moscow)) == datetime(
        2026, 1, 6, 6, 0, tzinfo=UTC
    )  # 20:00 Almaty → 11:00 Almaty next day


# CL-3 around Berlin's DST nights (the evening before is a Saturday: default vs setting).


@pytest.mark.parametrize(
    "paid, flag, due",
    [
        # Sat 28 Mar 21:00 CET → Sun 29 Mar 11:00 CEST (09:00 UTC), or Monday with the setting.
        (datetime(2026, 3, 28, 20, tzinfo=UTC), False, datetime(2026, 3, 29, 9, tzinfo=UTC)),
        (datetime(2026, 3, 28, 20, tzinfo=UTC), True, datetime(2026, 3, 30, 9, tzinfo=UTC)),
        # Sun 29 Mar 08:00 CEST, after the jump → 11:00 CEST the same morning.
        (datetime(2026, 3, 29, 6, tzinfo=UTC), False, datetime(2026, 3, 29, 9, tzinfo=UTC)),
        # Fri 27 Mar 19:30 CET → 20:30 CET.
        (datetime(2026, 3, 27, 18, 30, tzinfo=UTC), False, datetime(2026, 3, 27, 19, 30, tzinfo=UTC)),
        # Sat 24 Oct 21:00 CEST → Sun 25 Oct 11:00 CET (10:00 UTC), or Monday with the setting.
        (datetime(2026, 10, 24, 19, tzinfo=UTC), False, datetime(2026, 10, 25, 10, tzinfo=UTC)),
        (datetime(2026, 10, 24, 19, tzinfo=UTC), True, datetime(2026, 10, 26, 10, tzinfo=UTC)),
        # Sun 25 Oct 02:30 CET (second occurrence) → 11:00 CET the same morning.
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), False, datetime(2026, 10, 25, 10, tzinfo=UTC)),
    ],
    ids=[
        "spring_sat_2100",
        "spring_sat_2100_workday",
        "spring_sun_0800",
        "spring_fri_1930",
        "fall_sat_2100",
        "fall_sat_2100_workday",
        "fall_sun_0230_repeated",
    ],
)
def test_cl3_berlin_dst_nights(paid, flag, due):
    assert BERLIN.first_call_due(paid, next_morning_is_working_day=flag) == due


def test_cl3_nonexistent_morning_wall_time_does_not_crash():
    # A morning of 02:30 on the spring-forward night does not exist; fold=0 moves it to 03:30 CEST.
    paid = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET, before work_start
    assert BERLIN.first_call_due(paid, morning=time(2, 30)) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


# ---------------------------------------------------------------- configuration (CAL-1 settings)


def test_cal1_from_strings_defaults_match_handbook_defaults():
    assert BusinessCalendar.from_strings() == BusinessCalendar()


def test_cal1_from_strings_parses_env_values():
    c = BusinessCalendar.from_strings(
        tz=" Europe/Berlin ", hours="09:30 - 18:00", workdays="1-3, 6", holidays="2026-01-01, 2026-03-08,"
    )
    assert c.tz == ZoneInfo("Europe/Berlin")
    assert (c.work_start, c.work_end) == (time(9, 30), time(18))
    assert c.workdays == frozenset({0, 1, 2, 5})
    assert c.holidays == frozenset({date(2026, 1, 1), date(2026, 3, 8)})
    assert BusinessCalendar.from_strings(workdays="1,2,3,4,5").workdays == BusinessCalendar().workdays
    assert BusinessCalendar.from_strings(workdays="7").workdays == frozenset({6})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"tz": ""}, "unknown time zone"),
        ({"hours": "10:00"}, "bad working hours"),
        ({"hours": "10:00-"}, "bad working hours"),
        ({"hours": "ten-eight"}, "bad working hours"),
        ({"hours": "20:00-10:00"}, "start must be before end"),
        ({"workdays": "0-5"}, "within 1..7"),
        ({"workdays": "1-8"}, "within 1..7"),
        ({"workdays": "5-1"}, "low to high"),
        ({"workdays": "mon-fri"}, "not an ISO weekday"),
        ({"workdays": "1-"}, "not an ISO weekday"),
        ({"workdays": ""}, "at least one"),
        ({"holidays": "2026-13-01"}, "bad holiday"),
        ({"holidays": "01.01.2026"}, "bad holiday"),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_cal1_from_strings_rejects_bad_values_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BusinessCalendar.from_strings(**kwargs)


def test_cal1_calendar_rejects_impossible_configuration():
    with pytest.raises(ValueError, match="workdays"):
        BusinessCalendar(workdays=frozenset())
    with pytest.raises(ValueError, match="work_start"):
        BusinessCalendar(work_start=time(20), work_end=time(10))
