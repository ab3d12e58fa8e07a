"""EN-3 clock arithmetic (issue 12): overnight, weekend, two intervals a day, holiday, DST, paused by
waiting-for-client, resolve, reopen. Pure functions: no service, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from engagement.clocks import (
    ANSWER,
    INBOUND,
    RESOLVE,
    UNWAIT,
    WAIT,
    CareCalendar,
    ClockEvent,
    clock_colour,
    percentile,
    run_clock,
    sla_state,
)

ALMATY = ZoneInfo("Asia/Almaty")
BERLIN = ZoneInfo("Europe/Berlin")
BRAND = CareCalendar.from_strings("Asia/Almaty", hours="09:00-13:00,14:00-21:00", days="1-7", holidays="2026-12-16")


def at(day: int, hh: int, mm: int = 0, ss: int = 0, tz=ALMATY, month: int = 12) -> datetime:
    return datetime(2026, month, day, hh, mm, ss, tzinfo=tz)


def ev(kind: str, ts: datetime) -> ClockEvent:
    return ClockEvent(ts, kind)


def test_default_calendar_is_every_day_all_day():
    cal = CareCalendar()
    assert cal.business_seconds(at(5, 23, 50), at(6, 0, 10)) == 20 * 60  # Saturday night counts


def test_overnight_counts_only_working_time():
    # 20:55 → next day 09:03: 5 min before closing + 3 min after opening.
    assert BRAND.business_seconds(at(3, 20, 55), at(4, 9, 3)) == 8 * 60


def test_two_intervals_a_day_skip_the_lunch_break():
    assert BRAND.business_seconds(at(3, 12, 58), at(3, 14, 2)) == 4 * 60


def test_weekend_off_on_an_office_calendar():
    office = CareCalendar.from_strings("Asia/Almaty", hours="09:00-18:00", days="1-5")
    # Friday 17:58 → Monday 09:01 (2026-12-04 is a Friday).
    assert office.business_seconds(at(4, 17, 58), at(7, 9, 1)) == 3 * 60


def test_holiday_does_not_count():
    # 2026-12-16 (Independence Day) is a holiday on the brand calendar: 15th 20:59 → 17th 09:01 = 2 minutes.
    assert BRAND.business_seconds(at(15, 20, 59), at(17, 9, 1)) == 2 * 60


def test_dst_night_in_berlin_counts_real_seconds():
    cal = CareCalendar.from_strings("Europe/Berlin")
    start = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)   # the clocks jump 02:00 → 03:00
    end = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
    assert cal.business_seconds(start, end) == 3600


def test_bad_hours_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="HH:MM"):
        CareCalendar.from_strings(hours="9-18")
    with pytest.raises(ValueError, match="overlap"):
        CareCalendar.from_strings(hours="09:00-14:00,13:00-18:00")
    with pytest.raises(ValueError, match="1-7"):
        CareCalendar.from_strings(days="0-5")


def test_first_response_wall_and_business_across_the_night():
    result = run_clock(BRAND, [ev(INBOUND, at(3, 20, 58)), ev(ANSWER, at(4, 9, 4))])
    first = result.first_response
    assert first is not None and first.kind == "first"
    assert first.wall_s == int(timedelta(hours=12, minutes=6).total_seconds())
    assert first.business_s == 6 * 60
    assert result.running is None


def test_next_responses_for_later_customer_messages_that_waited():
    result = run_clock(CareCalendar(), [
        ev(INBOUND, at(3, 10)), ev(INBOUND, at(3, 10, 1)), ev(ANSWER, at(3, 10, 5)),
        ev(INBOUND, at(3, 11)), ev(ANSWER, at(3, 11, 2)), ev(ANSWER, at(3, 11, 3)),
    ])
    assert [(r.kind, r.wall_s) for r in result.responses] == [("first", 300), ("next", 120)]


def test_waiting_for_the_client_pauses_the_clock():
    result = run_clock(CareCalendar(), [
        ev(INBOUND, at(3, 10)), ev(WAIT, at(3, 10, 2)), ev(UNWAIT, at(3, 15, 2)), ev(ANSWER, at(3, 15, 5)),
    ])
    assert result.first_response.wall_s == 5 * 60
    assert result.first_response.business_s == 5 * 60


def test_a_paused_clock_stands_still_and_says_so():
    cal = CareCalendar()
    result = run_clock(cal, [ev(INBOUND, at(3, 10)), ev(WAIT, at(3, 10, 3))])
    assert result.running is not None and result.running.paused_since == at(3, 10, 3)
    assert result.running.elapsed(cal, at(3, 18)) == (180, 180)
    assert sla_state(result, 420, cal, at(3, 18)) == "paused"


def test_a_customer_message_during_the_wait_resumes_the_clock():
    cal = CareCalendar()
    result = run_clock(cal, [ev(INBOUND, at(3, 10)), ev(WAIT, at(3, 10, 1)), ev(INBOUND, at(3, 10, 31)),
                             ev(ANSWER, at(3, 10, 33))])
    assert result.first_response.wall_s == 3 * 60


def test_resolving_stops_the_clock_and_a_reopen_starts_a_new_first_response():
    cal = CareCalendar()
    result = run_clock(cal, [
        ev(INBOUND, at(3, 10)), ev(ANSWER, at(3, 10, 2)), ev(RESOLVE, at(3, 10, 30)),
        ev(INBOUND, at(3, 12)), ev(RESOLVE, at(3, 12, 1)),       # resolved unanswered: no response recorded
        ev(INBOUND, at(3, 14)), ev(ANSWER, at(3, 14, 9)),
    ])
    assert [(r.kind, r.wall_s) for r in result.responses] == [("first", 120), ("first", 540)]
    assert [r.wall_s for r in result.resolutions] == [1800, 60]
    assert result.first_response.started_at == at(3, 14)
    assert sla_state(result, 420, cal, at(3, 15)) == "breached"


def test_resolution_time_excludes_waiting_for_the_client():
    result = run_clock(CareCalendar(), [ev(INBOUND, at(3, 10)), ev(ANSWER, at(3, 10, 1)), ev(WAIT, at(3, 10, 2)),
                                        ev(UNWAIT, at(3, 11, 2)), ev(RESOLVE, at(3, 11, 10))])
    assert result.resolutions[0].wall_s == 10 * 60


def test_sla_running_then_breached_on_business_time_only():
    cal = BRAND
    result = run_clock(cal, [ev(INBOUND, at(3, 20, 57))])
    assert sla_state(result, 420, cal, at(3, 23, 59)) == "running"    # 3 business minutes so far, night
    assert sla_state(result, 420, cal, at(4, 9, 5)) == "breached"     # 3 + 5 = 8 minutes
    met = run_clock(cal, [ev(INBOUND, at(3, 20, 57)), ev(ANSWER, at(4, 9, 3))])
    assert sla_state(met, 420, cal, at(4, 12)) == "met"
    assert sla_state(met, 420, cal, at(4, 12), waived=True) == "waived"


def test_events_out_of_order_are_replayed_in_time_order():
    result = run_clock(CareCalendar(), [ev(ANSWER, at(3, 10, 4)), ev(INBOUND, at(3, 10))])
    assert result.first_response.wall_s == 240


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        run_clock(CareCalendar(), [ClockEvent(datetime(2026, 12, 3, 10), INBOUND)])


def test_clock_colour_amber_from_80_percent_red_past_target():
    assert clock_colour(335, 420) == "green"
    assert clock_colour(336, 420) == "amber"
    assert clock_colour(420, 420) == "amber"
    assert clock_colour(421, 420) == "red"


def test_percentile_is_nearest_rank():
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile([5], 0.9) == 5
    assert percentile([], 0.9) is None
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0.9) == 10


def test_utc_input_is_fine():
    cal = CareCalendar.from_strings("Asia/Almaty", hours="09:00-18:00")
    start = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)   # 08:00 Almaty (UTC+5)
    assert cal.business_seconds(start, start + timedelta(hours=2)) == 3600


def test_add_business_seconds_finds_the_due_time_across_lunch_and_night():
    from engagement.clocks import add_business_seconds
    assert add_business_seconds(BRAND, at(3, 12, 58), 420) == at(3, 14, 5)
    assert add_business_seconds(BRAND, at(3, 20, 57), 420) == at(4, 9, 4)
    assert add_business_seconds(BRAND, at(15, 20, 59), 120) == at(17, 9, 1)      # over the holiday
    assert add_business_seconds(CareCalendar(), at(3, 10), 420) == at(3, 10, 7)
    with pytest.raises(ValueError):
        add_business_seconds(CareCalendar.from_strings(days="1", holidays=""), at(3, 10), 10**9)
