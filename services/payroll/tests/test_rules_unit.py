"""The pure parts of the pay rules: months in the agency time zone, exact money, rule sets, PAY-7 ranking."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from payroll.rules import (
    DEFAULT_AMOUNTS,
    ManagerStats,
    Pick,
    RuleBook,
    fmt,
    month_of,
    next_month,
    rank_best_manager,
    to_minor,
    validate_rules,
)
from shared.errors import DomainError

ALMATY = ZoneInfo("Asia/Almaty")


def test_month_of_a_fact_is_its_agency_time_zone_month() -> None:
    assert month_of(datetime(2026, 4, 30, 18, 59, tzinfo=UTC), ALMATY) == "2026-04"
    assert month_of(datetime(2026, 4, 30, 19, 0, tzinfo=UTC), ALMATY) == "2026-05"
    assert next_month("2026-12") == "2027-01"
    with pytest.raises(ValueError):
        month_of(datetime(2026, 4, 30), ALMATY)


def test_pay9_money_is_integer_minor_units_and_decimal_strings() -> None:
    assert to_minor("150000") == 15_000_000 and to_minor("-5000.5") == -500_050 and to_minor(10) == 1000
    assert fmt(to_minor("0.1") * 3) == "0.30"
    for bad in (0.1, "1.005", "abc", "NaN", True):
        with pytest.raises(DomainError):
            to_minor(bad)


def test_rule_set_validation_names_the_field() -> None:
    ok = validate_rules("KZT", DEFAULT_AMOUNTS, {"CL-9": "-5000"}, "0", ["renewals", "lost", "compliance"])
    assert ok["amounts"]["PAY-1"] == "150000.00"
    with pytest.raises(DomainError) as err:
        validate_rules("kzt", {**DEFAULT_AMOUNTS, "PAY-9": "1"}, {"CL-9": "5000"}, "0", ["speed"])
    fields = {e["field"] for e in err.value.errors}
    assert fields == {"currency", "amounts.PAY-9", "deadline_fines.CL-9", "best_manager_rule"}


def test_pay6_fine_per_deadline_rule_with_a_default() -> None:
    book = RuleBook(id=1, effective_from="2000-01", currency="KZT", amounts={}, deadline_fines={"CL-9": -500_000},
                    default_fine=0, best_manager_rule=("renewals",))
    assert book.amount("PAY-6", "CL-9") == -500_000 and book.amount("PAY-6", "CO-3") == 0


RULE = ["renewals", "lost", "compliance"]


def test_pay7_most_renewals_wins() -> None:
    winner, why = rank_best_manager([ManagerStats("anna", renewals=3, lost=2), ManagerStats("boris", renewals=2)],
                                    RULE)
    assert winner == "anna" and "decided over boris by renewals: 3 vs 2" in why["reason"]


def test_pay7_then_fewest_lost() -> None:
    winner, why = rank_best_manager([ManagerStats("anna", renewals=2, lost=2), ManagerStats("boris", renewals=2,
                                                                                            lost=1)], RULE)
    assert winner == "boris" and "by lost: 1 vs 2" in why["reason"]


def test_pay7_then_best_deadline_compliance() -> None:
    winner, why = rank_best_manager([ManagerStats("anna", renewals=1, met=3, breached=1),
                                     ManagerStats("boris", renewals=1, met=9, breached=1)], RULE)
    assert winner == "boris" and "by compliance: 90.0% vs 75.0%" in why["reason"]
    assert why["ranking"][1]["compliance"] == "0.7500"


def test_pay7_full_tie_is_not_decided_by_the_alphabet_but_waits_for_the_lead() -> None:
    # issue 7 §6: equal on every criterion → nobody yet; the tie and the figures are shown.
    stats = [ManagerStats("boris", renewals=1), ManagerStats("anna", renewals=1), ManagerStats("vera", lost=1)]
    winner, why = rank_best_manager(stats, RULE)
    assert winner is None and why["code"] == "tie_unresolved"
    assert why["tie"] == {"managers": ["anna", "boris"], "picked": None, "picked_by": None, "picked_at": None}
    assert [f["manager"] for f in why["ranking"]] == ["anna", "boris", "vera"]
    assert "the project lead picks" in why["reason"]


def test_pay7_lead_pick_decides_exactly_that_tie() -> None:
    when = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)
    stats = [ManagerStats("boris", renewals=1), ManagerStats("anna", renewals=1)]
    winner, why = rank_best_manager(stats, RULE, Pick("boris", ("anna", "boris"), "aliya", when))
    assert winner == "boris" and why["code"] == "tie_picked" and why["tie"]["picked_by"] == "aliya"
    assert why["winner"]["manager"] == "boris"
    # A pick made for another tie does not count: a third manager joined it, so the lead is asked again.
    stats.append(ManagerStats("vera", renewals=1))
    winner, why = rank_best_manager(stats, RULE, Pick("boris", ("anna", "boris"), "aliya", when))
    assert winner is None and why["tie"]["managers"] == ["anna", "boris", "vera"]
    # New facts broke the tie: the ranking decides, the pick is moot.
    winner, why = rank_best_manager([ManagerStats("boris", renewals=1), ManagerStats("anna", renewals=2)], RULE,
                                    Pick("boris", ("anna", "boris"), "aliya", when))
    assert winner == "anna" and why["code"] == "decided"


def test_pay7_manager_without_deals_or_facts_is_not_a_candidate() -> None:
    # vera has nothing this month: with her as a candidate, her 0 lost would beat anna's 1 lost.
    stats = [ManagerStats("anna", lost=1), ManagerStats("vera")]
    winner, why = rank_best_manager(stats, RULE)
    assert winner == "anna" and [f["manager"] for f in why["ranking"]] == ["anna"]
    # … but a manager with deals during the month is one, facts or not.
    winner, _ = rank_best_manager([ManagerStats("anna", lost=1), ManagerStats("vera", deals=2)], RULE)
    assert winner == "vera"


def test_pay7_no_facts_no_best_manager() -> None:
    assert rank_best_manager([ManagerStats("anna"), ManagerStats("boris")], RULE)[0] is None
