"""The content rules as pure functions (CO-1, CO-2, CO-3, CO-4): no HTTP, no database, no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from content import rules
from content.rules import RuleValues
from shared.calendar import BusinessCalendar

ALMATY = ZoneInfo("Asia/Almaty")
CAL = BusinessCalendar()
RV = RuleValues()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ALMATY)


def period(first: date, months: int = 1) -> tuple[date, date]:
    start, end = rules.local_midnight(CAL, first), rules.local_midnight(CAL, rules.add_months(first, months))
    return rules.period_days(CAL, start, end)


def test_co1_28_day_period_february_plans_1_9_10_18_19_28() -> None:
    first, last = period(date(2026, 2, 1))
    assert (first, last) == (date(2026, 2, 1), date(2026, 2, 28))
    assert rules.plan_days(first, last, RV) == [(date(2026, 2, 1), date(2026, 2, 9)),
                                                (date(2026, 2, 10), date(2026, 2, 18)),
                                                (date(2026, 2, 19), date(2026, 2, 28))]


def test_co1_30_day_period_april_last_plan_has_12_days() -> None:
    first, last = period(date(2026, 4, 1))
    [_, _, (p3_first, p3_last)] = rules.plan_days(first, last, RV)
    assert (p3_first, p3_last) == (date(2026, 4, 19), date(2026, 4, 30))
    assert (p3_last - p3_first).days + 1 == 12  # seed 001: "the remaining 12 days"


def test_co1_31_day_period_started_mid_month() -> None:
    first, last = period(date(2026, 3, 15))  # 15 March → 14 April: 31 days
    assert (last - first).days + 1 == 31
    assert rules.plan_days(first, last, RV) == [(date(2026, 3, 15), date(2026, 3, 23)),
                                                (date(2026, 3, 24), date(2026, 4, 1)),
                                                (date(2026, 4, 2), date(2026, 4, 14))]


def test_co1_configured_length_and_a_period_too_short_for_three_plans() -> None:
    first = date(2026, 5, 1)
    assert rules.plan_days(first, date(2026, 5, 14), RV)[2] == (date(2026, 5, 14), date(2026, 5, 14))
    assert rules.plan_days(first, date(2026, 5, 21), RuleValues(plan_1_last_day=7, plan_2_last_day=14)) == [
        (date(2026, 5, 1), date(2026, 5, 7)), (date(2026, 5, 8), date(2026, 5, 14)),
        (date(2026, 5, 15), date(2026, 5, 21))]


def test_co1_renewal_period_starts_where_the_payment_put_it() -> None:
    # CL-14: a renewal paid on 29 March starts the next period on 29 March (local midnight): 29.03–28.04.
    first, last = period(date(2026, 3, 29))
    assert (first, last) == (date(2026, 3, 29), date(2026, 4, 28))
    assert rules.plan_days(first, last, RV)[0] == (date(2026, 3, 29), date(2026, 4, 6))


def test_co1_period_days_are_local_even_when_utc_midnight_differs() -> None:
    start = local(2026, 3, 1, 0, 0).astimezone(UTC)   # 28 Feb 19:00 UTC
    end = local(2026, 4, 1, 0, 0).astimezone(UTC)
    assert rules.period_days(CAL, start, end) == (date(2026, 3, 1), date(2026, 3, 31))


def test_co2_publishing_needs_plan_1_approved_before_the_post_time() -> None:
    approved = local(2026, 3, 5, 12, 0)
    assert not rules.publishing_allowed(None, local(2026, 3, 6, 12, 0))
    assert not rules.publishing_allowed(approved, local(2026, 3, 5, 11, 59))  # backdated before approval
    assert rules.publishing_allowed(approved, approved)


def test_co3_plan_2_due_6_days_and_plan_3_15_days_after_the_first_post() -> None:
    first_post = local(2026, 3, 2, 15, 0)  # Monday
    assert rules.plan_due(1, first_post, CAL, RV) is None
    assert rules.plan_due(2, first_post, CAL, RV) == local(2026, 3, 8, 15, 0)
    assert rules.plan_due(3, first_post, CAL, RV) == local(2026, 3, 17, 15, 0)


def test_co3_submit_within_3_working_days_across_a_weekend() -> None:
    # Due Sunday 15:00 → counting starts Monday 10:00 → three full working days → Wednesday 20:00.
    assert rules.submit_by(local(2026, 3, 8, 15, 0), CAL, RV) == local(2026, 3, 11, 20, 0)
    # Due Friday 15:00 → Wednesday 15:00 (Friday 5 h, Monday, Tuesday, Wednesday 5 h).
    assert rules.submit_by(local(2026, 3, 6, 15, 0), CAL, RV) == local(2026, 3, 11, 15, 0)


def test_co3_submit_within_3_working_days_across_holidays() -> None:
    holidays = BusinessCalendar(holidays=frozenset({date(2026, 3, 9), date(2026, 3, 10)}))  # Mon, Tue off
    assert rules.submit_by(local(2026, 3, 6, 15, 0), holidays, RV) == local(2026, 3, 13, 15, 0)
    # Nauryz (21–23 March 2026, Sat–Mon) moved: due on the Friday evening, after hours.
    nauryz = BusinessCalendar(holidays=frozenset({date(2026, 3, 23), date(2026, 3, 24), date(2026, 3, 25)}))
    assert rules.submit_by(local(2026, 3, 20, 21, 0), nauryz, RV) == local(2026, 3, 30, 20, 0)


def test_co3_deadline_met_at_the_due_instant_and_breached_after() -> None:
    due = local(2026, 3, 11, 20, 0)
    assert rules.deadline_outcome(due, due) == "met"
    assert rules.deadline_outcome(due, local(2026, 3, 11, 20, 1)) == "breached"


def test_co3_only_feed_posts_and_reels_start_the_clock() -> None:
    assert rules.counts_as_post("feed") and rules.counts_as_post("reel") and not rules.counts_as_post("story")


def test_co4_status_of_an_open_plan_and_round_changes() -> None:
    now = local(2026, 3, 5, 12, 0)
    assert rules.plan_status("open", None, False, now) == "not_due"
    assert rules.plan_status("open", now, False, now) == "due"
    assert rules.plan_status("open", None, True, now) == "draft"
    assert rules.plan_status("changes_requested", now, True, now) == "changes_requested"
    before = [{"id": "a", "date": "2026-03-01", "kind": "feed", "caption": "x", "media": []},
              {"id": "b", "date": "2026-03-02", "kind": "feed", "caption": "y", "media": []}]
    after = [{"id": "a", "date": "2026-03-01", "kind": "reel", "caption": "x2", "media": []},
             {"id": "c", "date": "2026-03-03", "kind": "story", "caption": "", "media": []}]
    assert rules.round_changes(before, after) == {"added": ["c"], "removed": ["b"],
                                                  "changed": [{"item_id": "a", "fields": ["caption", "kind"]}]}


def test_settings_are_validated() -> None:
    assert RuleValues.coerce("plan_2_after_days", 7) == 7
    for bad in (0, -1, 1.5, "6", True):
        try:
            RuleValues.coerce("plan_2_after_days", bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def test_co5_stories_every_3_days_from_the_last_story_or_the_cadence_start() -> None:
    origin = date(2026, 3, 2)
    assert not rules.stories_due(date(2026, 3, 3), None, origin, RV)
    assert rules.stories_due(date(2026, 3, 4), None, origin, RV)  # nothing in the first 3 days
    assert not rules.stories_due(date(2026, 3, 6), date(2026, 3, 4), origin, RV)
    assert rules.stories_due(date(2026, 3, 7), date(2026, 3, 4), origin, RV)  # 4.03, then due 7.03
    assert rules.stories_due(date(2026, 3, 8), date(2026, 3, 4), origin, RV)  # still due until one goes out
    assert not rules.stories_due(date(2026, 3, 7), date(2026, 3, 4), origin, RuleValues(stories_every_days=4))


def test_co5_a_day_is_missed_only_once_its_check_time_has_come() -> None:
    assert rules.check_instant(CAL, date(2026, 3, 2), RV) == local(2026, 3, 2, 18, 0)
    assert rules.cadence_missed(0, True, False, checked=False, rv=RV) == []
    assert rules.cadence_missed(0, True, False, checked=True, rv=RV) == ["feed", "stories"]
    assert rules.cadence_missed(1, True, True, checked=True, rv=RV) == []
    assert rules.cadence_missed(1, False, False, checked=True, rv=RuleValues(feed_posts_per_day=2)) == ["feed"]
    assert RuleValues.coerce("cadence_check_time", "19:30") == "19:30"
