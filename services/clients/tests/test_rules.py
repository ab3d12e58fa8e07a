"""Rules as pure functions (rules.py): no HTTP, no database."""

from __future__ import annotations

from datetime import UTC, date, timedelta

from clients import rules
from clients.rules import RuleValues
from shared.calendar import BusinessCalendar

from .conftest import local

CAL = BusinessCalendar()
RV = RuleValues()


def test_cl3_payment_at_1930_is_due_at_2030() -> None:
    assert rules.first_call_due(CAL, local(2026, 3, 2, 19, 30), RV) == local(2026, 3, 2, 20, 30).astimezone(UTC)


def test_cl3_payment_after_20_is_due_next_morning_11() -> None:
    assert rules.first_call_due(CAL, local(2026, 3, 2, 20, 15), RV) == local(2026, 3, 3, 11, 0).astimezone(UTC)


def test_cl3_payment_before_10_is_due_11_that_morning() -> None:
    assert rules.first_call_due(CAL, local(2026, 3, 3, 8, 0), RV) == local(2026, 3, 3, 11, 0).astimezone(UTC)


def test_cl3_setting_moves_next_morning_to_the_next_working_day() -> None:
    friday_night = local(2026, 3, 6, 21, 0)
    assert rules.first_call_due(CAL, friday_night, RV) == local(2026, 3, 7, 11, 0).astimezone(UTC)
    working = RuleValues(first_call_next_morning_working_day=True)
    assert rules.first_call_due(CAL, friday_night, working) == local(2026, 3, 9, 11, 0).astimezone(UTC)


def test_cl3_least_open_deals_wins_ties_by_full_name_then_login() -> None:
    assert rules.pick_least_loaded([("manager2", ""), ("manager1", "")], {}) == "manager1"
    assert rules.pick_least_loaded([("manager1", ""), ("manager2", "")], {"manager1": 3, "manager2": 1}) == "manager2"
    assert rules.pick_least_loaded([], {}) is None
    # issue 7 §6: a tie goes by the staff member's full name, then login
    staff = [("a_zhan", "Жанна Ахметова"), ("b_alia", "Алия Беркова"), ("c_alia", "Алия Беркова")]
    assert rules.pick_least_loaded(staff, {}) == "b_alia"
    assert rules.pick_least_loaded(staff, {"b_alia": 1}) == "c_alia"
    assert rules.pick_least_loaded(staff, {"b_alia": 1, "c_alia": 1}) == "a_zhan"


def test_pay2_pay3_after_a_full_month_is_a_completed_period_issue7() -> None:
    end = local(2026, 4, 1, 0, 0).astimezone(UTC)
    week_early = local(2026, 3, 25, 12, 0).astimezone(UTC)
    # a second-month client renewing a week early counts (the first period was completed)
    assert rules.after_full_month(2, end, week_early, 3, CAL)
    # a first-month client a week early does not; on time (renewal window) does
    assert not rules.after_full_month(1, end, week_early, 3, CAL)
    assert rules.after_full_month(1, end, local(2026, 3, 30, 12, 0).astimezone(UTC), 3, CAL)
    assert not rules.after_full_month(0, None, week_early, 3, CAL)


def test_cl6_concept_is_due_24_wall_clock_hours_after_the_questionnaire() -> None:
    assert rules.concept_due(CAL, local(2026, 3, 6, 18, 0), RV) == local(2026, 3, 7, 18, 0).astimezone(UTC)


def test_cl9_first_post_is_due_3_working_days_after_the_questionnaire() -> None:
    friday = local(2026, 3, 6, 15, 0)
    assert rules.first_post_due(CAL, friday, RV) == local(2026, 3, 11, 15, 0).astimezone(UTC)


def test_cl10_cl11_cl13_period_is_a_calendar_month_with_renewal_task_3_days_before_and_loss_7_days_after() -> None:
    period = rules.service_period(CAL, date(2026, 3, 1), RV)
    assert period.start == local(2026, 3, 1, 0, 0).astimezone(UTC)
    assert period.end == local(2026, 4, 1, 0, 0).astimezone(UTC)
    assert period.renewal_task_at == local(2026, 3, 29, 0, 0).astimezone(UTC)
    assert period.loss_at == local(2026, 4, 8, 0, 0).astimezone(UTC)
    assert rules.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    two = rules.service_period(CAL, date(2026, 3, 1), RuleValues(period_months=2))
    assert two.end == local(2026, 5, 1, 0, 0).astimezone(UTC)


def test_cl15_refund_within_10_days_of_the_first_payment() -> None:
    paid = local(2026, 3, 2, 12, 0)
    assert rules.refund_within_window(paid + timedelta(days=9, hours=23), paid, RV, CAL)
    assert not rules.refund_within_window(paid + timedelta(days=10), paid, RV, CAL)


def test_cal3_done_at_the_due_instant_is_met_later_is_breached() -> None:
    due = local(2026, 3, 2, 13, 0)
    assert rules.deadline_outcome(due, due) == "met"
    assert rules.deadline_outcome(due, due + timedelta(seconds=1)) == "breached"


def test_cl4_to_cl13_stages_move_forward_only() -> None:
    assert rules.can_move("new", "contacted")
    assert not rules.can_move("contacted", "new")
    assert not rules.can_move("project_launched", "contacted")
    assert rules.can_move("notification_sent", "lost")
    assert not rules.can_move("lost", "project_launched")


def test_cl16_funnel_conversion_between_steps() -> None:
    steps = {s["step"]: s for s in rules.funnel({"dialogs": 10, "warm_leads": 5, "applications": 4, "paid": 2,
                                                  "launched": 2, "renewed": 1, "lost": 1})}
    assert steps["warm_leads"]["conversion_from_previous"] == 0.5
    assert steps["paid"]["conversion_from_previous"] == 0.5
    assert steps["renewed"]["conversion_from_previous"] == 0.5 and steps["lost"]["conversion_from_previous"] == 0.5
    assert rules.funnel({})[1]["conversion_from_previous"] is None


def test_settings_are_validated() -> None:
    assert RuleValues.coerce("concept_within_hours", 12) == 12
    for key, value in (("loss_after_days", -1), ("period_months", 0), ("first_call_morning", "noon"),
                       ("nope", 1), ("first_call_next_morning_working_day", "yes"), ("money_back_days", 1.5)):
        try:
            RuleValues.coerce(key, value)
        except ValueError:
            continue
        raise AssertionError(f"{key}={value!r} accepted")
