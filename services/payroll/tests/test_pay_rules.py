"""Each PAY rule on its own, driven by real clients events on a real nats-server and read through the API (SQLite)."""

from __future__ import annotations

from decimal import Decimal

from .conftest import (
    assigned,
    at,
    breached,
    loss_undone,
    lost,
    met,
    refund,
    renewed,
    rules_of,
    total_of,
    waived,
    window_ended,
)


async def test_pay1_base_salary_for_every_content_manager_employed_that_month(payroll) -> None:
    await payroll.employ("anna", "2026-01-15")
    await payroll.employ("boris", "2026-02-01", employed_to="2026-03-10")
    await payroll.employ("dana", "2026-05-01")
    april = await payroll.statements("2026-04")
    assert sorted(april) == ["anna"]  # boris left in March, dana starts in May
    assert rules_of(april["anna"]) == [("PAY-1", "150000.00")]
    march = await payroll.statements("2026-03")
    assert sorted(march) == ["anna", "boris"]  # employed on some day of the month: the whole base


async def test_pay1_manager_first_seen_in_a_clients_event_is_auto_enrolled_from_that_month(payroll) -> None:
    await payroll.publish(assigned("vera", at("2026-03-20 06:00")))
    employees = (await payroll.get("/employees")).json()
    assert employees == [{"login": "vera", "role": "content_manager", "employed_from": "2026-03-01",
                          "employed_to": None, "auto_enrolled": True}]
    assert "vera" not in await payroll.statements("2026-02")
    assert rules_of((await payroll.statements("2026-04"))["vera"]) == [("PAY-1", "150000.00")]


async def test_pay2_renewal_after_a_full_month_adds_10000_in_the_month_of_the_payment(payroll) -> None:
    first = renewed("anna", at("2026-04-10 09:00"), deal="d1")
    second_month = renewed("anna", at("2026-04-12 09:00"), deal="d2", after_full_month=False)
    await payroll.publish(first, second_month)
    anna = (await payroll.statements("2026-04"))["anna"]
    pay2 = [ln for ln in anna["lines"] if ln["rule"] == "PAY-2"]
    assert [(ln["amount"], ln["deal_id"], ln["event_id"]) for ln in pay2] == [("10000.00", "d1", first.event_id)]
    assert pay2[0]["occurred_at"] == "2026-04-10T09:00:00+00:00"


async def test_pay2_month_is_the_agency_time_zone_month_of_the_fact(payroll) -> None:
    # 2026-04-30 20:30 UTC is 2026-05-01 01:30 in Asia/Almaty (UTC+5): a May renewal.
    await payroll.employ("anna", "2026-01-01")
    await payroll.publish(renewed("anna", at("2026-04-30 20:30")))
    assert [r for r, _ in rules_of((await payroll.statements("2026-04"))["anna"])] == ["PAY-1"]
    assert ("PAY-2", "10000.00") in rules_of((await payroll.statements("2026-05"))["anna"])


async def test_pay2_line_carries_the_producers_trace_id(payroll) -> None:
    evt = renewed("anna", at("2026-04-10 09:00"))
    await payroll.publish(evt)
    line = next(ln for ln in (await payroll.statements("2026-04"))["anna"]["lines"] if ln["rule"] == "PAY-2")
    assert line["trace_id"] == payroll.trace_ids[evt.event_id]


async def test_pay3_loss_after_a_full_month_costs_5000_for_either_reason(payroll) -> None:
    await payroll.publish(lost("anna", at("2026-04-03 09:00"), deal="d1", reason="declined"),
                          lost("anna", at("2026-04-04 09:00"), deal="d2", reason="unpaid"),
                          lost("anna", at("2026-04-05 09:00"), deal="d3", after_full_month=False))
    anna = (await payroll.statements("2026-04"))["anna"]
    assert [a for r, a in rules_of(anna) if r == "PAY-3"] == ["-5000.00", "-5000.00"]


async def test_pay3_loss_undone_by_late_payment_removes_its_fine(payroll) -> None:
    loss = lost("anna", at("2026-04-08 09:00"))
    await payroll.publish(loss, loss_undone(loss, at("2026-04-09 09:00")),
                          renewed("anna", at("2026-04-06 12:00")))  # the late payment, dated before the loss
    anna = (await payroll.statements("2026-04"))["anna"]
    assert rules_of(anna) == [("PAY-1", "150000.00"), ("PAY-2", "10000.00"), ("PAY-7", "30000.00")]
    assert anna["total"] == "190000.00"


async def test_pay3_loss_undone_before_the_loss_arrives_never_fines(payroll) -> None:
    loss = lost("anna", at("2026-04-08 09:00"))
    await payroll.publish(loss_undone(loss, at("2026-04-09 09:00")), loss)
    assert "PAY-3" not in [r for r, _ in rules_of((await payroll.statements("2026-04"))["anna"])]


async def test_pay3_loss_undone_after_its_month_closed_is_reversed_in_the_next_open_month(payroll) -> None:
    loss = lost("anna", at("2026-03-20 09:00"))
    await payroll.publish(loss)
    closed = await payroll.close("2026-03")
    march_before = await payroll.statements("2026-03")
    await payroll.publish(loss_undone(loss, at("2026-04-02 09:00")))
    assert await payroll.statements("2026-03") == march_before
    assert (await payroll.month("2026-03"))["managers"] == closed["managers"]
    april = (await payroll.statements("2026-04"))["anna"]
    reversal = [ln for ln in april["lines"] if ln["rule"] == "PAY-3"]
    assert len(reversal) == 1 and reversal[0]["amount"] == "5000.00"
    assert reversal[0]["adjusts_month"] == "2026-03" and reversal[0]["corrects_line_id"] is not None
    frozen = next(ln for ln in march_before["anna"]["lines"] if ln["rule"] == "PAY-3")
    assert reversal[0]["corrects_line_id"] == frozen["id"]


async def test_pay4_refund_within_10_days_costs_4000_and_outside_costs_nothing(payroll) -> None:
    await payroll.publish(refund("anna", at("2026-04-05 09:00"), deal="d1"),
                          refund("anna", at("2026-04-25 09:00"), deal="d2", within_window=False))
    anna = (await payroll.statements("2026-04"))["anna"]
    pay4 = [ln for ln in anna["lines"] if ln["rule"] == "PAY-4"]
    assert [(ln["amount"], ln["deal_id"]) for ln in pay4] == [("-4000.00", "d1")]


async def test_pay5_client_not_refunded_when_the_10_days_end_earns_2000_in_that_month(payroll) -> None:
    await payroll.publish(window_ended("anna", at("2026-04-11 05:00"), deal="d1"),
                          window_ended("anna", at("2026-04-12 05:00"), deal="d2", refunded=True),
                          window_ended("anna", at("2026-03-31 19:30"), deal="d3"))  # = 1 April 00:30 Almaty
    anna = (await payroll.statements("2026-04"))["anna"]
    assert [(ln["amount"], ln["deal_id"]) for ln in anna["lines"] if ln["rule"] == "PAY-5"] == [
        ("2000.00", "d3"), ("2000.00", "d1")]


async def test_pay6_breach_fined_per_rule_cl9_5000_others_recorded_with_0(payroll) -> None:
    await payroll.publish(breached("anna", at("2026-04-07 10:00"), rule="CL-9", deadline="dl-9"),
                          breached("anna", at("2026-04-08 10:00"), rule="CL-3", deadline="dl-3"))
    anna = (await payroll.statements("2026-04"))["anna"]
    fines = sorted((ln["note"], ln["amount"], ln["deadline_id"]) for ln in anna["lines"] if ln["rule"] == "PAY-6")
    assert fines == [("deadline CL-3 breached", "0.00", "dl-3"), ("deadline CL-9 breached", "-5000.00", "dl-9")]


async def test_pay6_waived_deadline_undoes_its_fine(payroll) -> None:
    breach = breached("anna", at("2026-04-07 10:00"), rule="CL-9")
    await payroll.publish(renewed("anna", at("2026-04-02 10:00")), breach, waived(breach, at("2026-04-09 10:00")))
    anna = (await payroll.statements("2026-04"))["anna"]
    assert "PAY-6" not in [r for r, _ in rules_of(anna)]
    month = await payroll.month("2026-04")
    assert month["best_manager_why"]["winner"]["deadlines_breached"] == 0


async def test_pay6_fine_amounts_come_from_the_rule_set(payroll) -> None:
    response = await payroll.put("/rules", {"effective_from": "2026-04", "deadline_fines": {"CL-9": "-7500.50",
                                                                                            "CO-3": "-1000"}})
    assert response.status_code == 200, response.text
    await payroll.publish(breached("anna", at("2026-04-07 10:00"), rule="CO-3"),
                          breached("anna", at("2026-04-08 10:00"), rule="CL-9"))
    anna = (await payroll.statements("2026-04"))["anna"]
    assert sorted(a for r, a in rules_of(anna) if r == "PAY-6") == ["-1000.00", "-7500.50"]


async def test_pay7_best_manager_most_renewals_then_fewest_lost_then_compliance(payroll) -> None:
    for m in ("anna", "boris", "vera"):
        await payroll.employ(m, "2026-01-01")
    await payroll.publish(
        renewed("anna", at("2026-04-02 09:00"), deal="a1"), renewed("anna", at("2026-04-03 09:00"), deal="a2"),
        renewed("boris", at("2026-04-02 09:00"), deal="b1"), renewed("boris", at("2026-04-03 09:00"), deal="b2"),
        renewed("vera", at("2026-04-02 09:00"), deal="v1"),
        lost("anna", at("2026-04-10 09:00"), deal="a3"), lost("boris", at("2026-04-10 09:00"), deal="b3"),
        met("anna", at("2026-04-11 09:00")), breached("anna", at("2026-04-12 09:00"), rule="CL-3"),
        met("boris", at("2026-04-11 09:00")), met("boris", at("2026-04-12 09:00")),
    )
    month = await payroll.month("2026-04")
    assert month["best_manager"] == "boris"  # 2 renewals, 1 lost each; compliance 100% vs 50%
    why = month["best_manager_why"]
    assert why["rule"] == ["renewals", "lost", "compliance"]
    assert why["winner"] == {"manager": "boris", "renewals": 2, "lost": 1, "refunds": 0, "deadlines_met": 2,
                             "deadlines_breached": 0, "deals": 3, "compliance": "1.0000"}
    assert "decided over anna by compliance: 100.0% vs 50.0%" in why["reason"]
    st = await payroll.statements("2026-04")
    assert [m for m, s in st.items() if s["best_manager"]] == ["boris"]
    assert ("PAY-7", "30000.00") in rules_of(st["boris"])
    assert "PAY-7" not in [r for r, _ in rules_of(st["anna"])]
    best = next(ln for ln in st["boris"]["lines"] if ln["rule"] == "PAY-7")
    assert "compliance" in best["note"]


async def test_pay7_month_without_facts_has_no_best_manager(payroll) -> None:
    await payroll.employ("anna", "2026-01-01")
    month = await payroll.month("2026-04")
    assert month["best_manager"] is None
    assert rules_of((await payroll.statements("2026-04"))["anna"]) == [("PAY-1", "150000.00")]


async def test_pay7_rule_is_configurable(payroll) -> None:
    response = await payroll.put("/rules", {"effective_from": "2026-04", "best_manager_rule": ["lost", "renewals"]})
    assert response.status_code == 200, response.text
    await payroll.publish(renewed("anna", at("2026-04-02 09:00"), deal="a1"),
                          renewed("anna", at("2026-04-03 09:00"), deal="a2"),
                          lost("anna", at("2026-04-04 09:00"), deal="a3"),
                          renewed("boris", at("2026-04-02 09:00"), deal="b1"))
    assert (await payroll.month("2026-04"))["best_manager"] == "boris"


async def test_pay8_every_line_points_to_its_fact(payroll) -> None:
    evt = refund("anna", at("2026-04-05 09:00"), deal="d7")
    await payroll.publish(evt)
    line = next(ln for ln in (await payroll.statements("2026-04"))["anna"]["lines"] if ln["rule"] == "PAY-4")
    assert (line["event_id"], line["deal_id"], line["occurred_at"]) == (evt.event_id, "d7",
                                                                       "2026-04-05T09:00:00+00:00")
    assert "refund" in line["note"]


async def test_pay9_money_is_exact_decimal_strings_and_floats_are_refused(payroll) -> None:
    response = await payroll.put("/rules", {"effective_from": "2026-04", "amounts": {"PAY-2": 10000.5}})
    assert response.status_code == 422
    response = await payroll.put("/rules", {"effective_from": "2026-04", "amounts": {"PAY-2": "10000.005"}})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "amounts.PAY-2"
    response = await payroll.put("/rules", {"effective_from": "2026-04", "amounts": {"PAY-3": "5000"}})
    assert response.status_code == 422 and "deduction" in response.json()["errors"][0]["message"]
    response = await payroll.put("/rules", {"effective_from": "2026-04", "amounts": {"PAY-2": "0.10"}})
    assert response.status_code == 200
    await payroll.publish(*(renewed("anna", at(f"2026-04-{d:02d} 09:00"), deal=f"d{d}") for d in range(1, 4)))
    anna = (await payroll.statements("2026-04"))["anna"]
    assert [a for r, a in rules_of(anna) if r == "PAY-2"] == ["0.10"] * 3
    assert anna["total"] == "180000.30" == str(total_of(anna))


async def test_rules_change_reprices_open_months_and_never_a_closed_one(payroll) -> None:
    await payroll.publish(renewed("anna", at("2026-03-10 09:00"), deal="d1"),
                          renewed("anna", at("2026-04-10 09:00"), deal="d2"))
    await payroll.close("2026-03")
    refused = await payroll.put("/rules", {"effective_from": "2026-03", "amounts": {"PAY-2": "12000"}})
    assert refused.status_code == 409 and refused.json()["errors"][0]["field"] == "effective_from"
    response = await payroll.put("/rules", {"effective_from": "2026-04", "amounts": {"PAY-2": "12000",
                                                                                    "PAY-1": "160000"}})
    assert response.status_code == 200, response.text
    assert rules_of((await payroll.statements("2026-03"))["anna"])[:2] == [("PAY-1", "150000.00"),
                                                                           ("PAY-2", "10000.00")]
    april = rules_of((await payroll.statements("2026-04"))["anna"])
    assert ("PAY-1", "160000.00") in april and ("PAY-2", "12000.00") in april
    rules = (await payroll.get("/rules")).json()
    assert [v["effective_from"] for v in rules["history"]] == ["2000-01", "2026-04"]
    assert rules["current"]["amounts"]["PAY-2"] == "12000.00"
    # A late March fact is priced with March's (closed) rules, in April as an adjustment.
    await payroll.publish(renewed("anna", at("2026-03-20 09:00"), deal="d3"))
    adj = [ln for ln in (await payroll.statements("2026-04"))["anna"]["lines"] if ln["adjusts_month"] == "2026-03"]
    assert [(ln["rule"], ln["amount"]) for ln in adj] == [("PAY-2", "10000.00")]
    assert Decimal((await payroll.month("2026-04"))["total"]) == Decimal(160000) + 12000 + 10000 + 30000
