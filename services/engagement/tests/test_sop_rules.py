"""Issue 13's rules as plain functions, against hand-computed values (no database, no clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from engagement import sop_rules as r

BERLIN, SHANGHAI, ALMATY = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Shanghai"), ZoneInfo("Asia/Almaty")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekdays_in_shanghai_fire_at_the_local_minute() -> None:
    rule = r.Schedule(at=time(9, 0), tz=SHANGHAI, weekdays=frozenset({1, 3}))  # Mon, Wed
    # 2026-12-02 is a Wednesday; 09:00 +08:00 is 01:00 UTC
    assert r.occurrences_between(rule, utc(2026, 12, 2), utc(2026, 12, 9)) == [utc(2026, 12, 2, 1),
                                                                                utc(2026, 12, 7, 1)]
    assert r.next_occurrence(rule, utc(2026, 12, 2, 1)) == utc(2026, 12, 7, 1)  # strictly after


def test_every_n_days_counts_from_the_start_and_stops_after_the_end() -> None:
    rule = r.Schedule(at=time(18, 0), tz=ALMATY, every_n_days=3, starts_on=date(2026, 12, 1),
                      ends_on=date(2026, 12, 7))
    assert r.next_occurrence(rule, utc(2026, 11, 1)) == utc(2026, 12, 1, 13)  # 18:00 +05:00
    assert r.next_occurrence(rule, utc(2026, 12, 1, 13)) == utc(2026, 12, 4, 13)
    assert r.next_occurrence(rule, utc(2026, 12, 4, 13)) == utc(2026, 12, 7, 13)
    assert r.next_occurrence(rule, utc(2026, 12, 7, 13)) is None


def test_a_time_in_the_spring_gap_fires_at_the_end_of_the_gap() -> None:
    rule = r.Schedule(at=time(2, 30), tz=BERLIN)
    # 2026-03-29 02:00 CET → 03:00 CEST: 02:30 does not exist → 03:00 CEST = 01:00 UTC
    assert r.next_occurrence(rule, utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)
    assert r.next_occurrence(rule, utc(2026, 3, 29, 1)) == utc(2026, 3, 30, 0, 30)  # 02:30 CEST


def test_an_ambiguous_time_fires_once_at_its_first_occurrence() -> None:
    rule = r.Schedule(at=time(2, 30), tz=BERLIN)
    # 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens twice; the first is CEST (00:30 UTC), once
    assert r.occurrences_between(rule, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)) == [
        utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_a_rule_without_weekdays_never_fires_and_never_loops() -> None:
    assert r.next_occurrence(r.Schedule(at=time(9), tz=BERLIN, weekdays=frozenset()), utc(2026, 1, 1)) is None


def test_targets_match_category_and_any_tag_or_listed_groups() -> None:
    assert r.matches({"category": "A"}, "g1", "A", [])
    assert not r.matches({"category": "A"}, "g1", "B", ["x"])
    assert r.matches({"tags": ["vip", "kz"]}, "g1", "B", ["kz"])
    assert not r.matches({"category": "A", "tags": ["vip"]}, "g1", "A", ["kz"])
    assert r.matches({"category": "A", "tags": ["vip"]}, "g1", "A", ["vip"])
    assert r.matches({"group_ids": ["g1"], "category": "Z"}, "g1", "A", [])  # listed groups are the target
    assert not r.matches({"group_ids": ["g2"]}, "g1", "A", [])
    assert not r.matches({}, "g1", "A", ["vip"])  # an empty target targets nobody


def test_quota_month_is_the_agency_month_and_the_reason_order() -> None:
    # 2026-12-31 20:00 UTC is 2027-01-01 01:00 in Almaty: January's quota
    start, end = r.month_bounds(utc(2026, 12, 31, 20), ALMATY)
    assert (start, end) == (utc(2026, 12, 31, 19), utc(2027, 1, 31, 19))
    assert not r.over_quota(3, 4) and r.over_quota(4, 4)
    ok = {"group_active": True, "owner_active": True, "counted_this_month": 0, "quota": 4}
    assert r.failure_at_materialisation(**ok) is None
    assert r.failure_at_materialisation(**{**ok, "counted_this_month": 4}) == "quota"
    assert r.failure_at_materialisation(**{**ok, "owner_active": False, "counted_this_month": 9}) == "owner_left"
    assert r.failure_at_materialisation(**{**ok, "group_active": False, "owner_active": False}) == "group_inactive"


def test_the_six_metrics_and_the_owner_lines_by_hand() -> None:
    pushes = [("ann", "sent"), ("ann", "sent"), ("bob", "pending"), ("bob", "sent"), ("cat", "failed"),
              ("dan", "failed"), ("dan", "sent")]
    # owners: ann done; bob pending; cat only failed (neither); dan done (no pending, one sent)
    assert r.task_metrics(pushes) == {"owners_pending": 1, "owners_done": 2, "failed_tasks": 1,
                                      "groups_pending": 1, "groups_sent": 4, "groups_failed": 2}
    assert r.task_metrics([("ann", "pending")])["failed_tasks"] == 0
    lines = r.owner_lines([("ann", "sent", 60.0), ("ann", "sent", 300.0), ("ann", "sent", 120.0),
                           ("ann", "failed", None), ("bob", "pending", None)])
    ann, bob = lines
    assert (ann.owner, ann.pushes, ann.sent, ann.failed) == ("ann", 4, 3, 1)
    assert r.completion_rate(ann) == 0.75 and r.median_delay(ann.delays) == 120.0
    assert r.completion_rate(bob) == 0.0 and r.median_delay(bob.delays) is None
    assert r.sum_metrics([r.task_metrics(pushes), r.task_metrics([("ann", "pending")])])["owners_pending"] == 2
    assert r.delay_seconds(utc(2026, 1, 1, 9), utc(2026, 1, 1, 9, 5)) == 300.0
