"""Issue 7 §1 and §6 in payroll, on SQLite and PostgreSQL, with real events on a real nats-server:

- a fact judged on its own time but recorded late retracts what the timer decided: a DeadlineMet after
  the deadline's breach voids its PAY-6 line (an open month) or reverses it in the next open month (a
  closed one, PAY-8); a within-window refund after MoneyBackWindowEnded(refunded=False) does the same to
  the deal's PAY-5 line;
- PAY-4 is one line per refunded client (deal), PAY-2 / PAY-3 once per deal and service period, a full
  refund inside the 10 days that ends the deal (DealLost "refunded") is no PAY-3;
- PAY-7: managers without deals or facts are not candidates; a full tie waits for the lead's pick (an
  audited API), and closing a month with an unresolved tie is refused with a code;
- redelivery and rebuild give the same ledger.
"""

from __future__ import annotations

from datetime import timedelta

from nats.js.api import ConsumerConfig, DeliverPolicy
from shared.bus import Outgoing
from shared.events.clients import DealLost, DealPaid, DealRenewed

from .conftest import (
    at,
    breached,
    lost,
    met_late,
    refund,
    renewed,
    rules_of,
    waived,
    window_ended,
)


def lines_of(statement: dict, rule: str) -> list[dict]:
    return [ln for ln in statement["lines"] if ln["rule"] == rule]


# ---------------------------------------------------------------- PAY-6: a late met retracts the breach


async def test_pay6_late_met_after_breach_voids_the_fine_in_an_open_month(payroll_any_db) -> None:
    h = payroll_any_db
    await h.employ("anna", "2026-01-01")
    breach = breached("anna", at("2026-04-09 15:00"), rule="CL-9", deal="d1")
    other = breached("anna", at("2026-04-10 15:00"), rule="CL-9", deal="d2")
    await h.publish(breach, other)
    assert len(lines_of((await h.statements("2026-04"))["anna"], "PAY-6")) == 2
    # The first post came on 8 April, before the due time; its event was consumed on the 11th.
    await h.publish(met_late(breach, at("2026-04-08 17:20"), recorded_at=at("2026-04-11 09:00")))
    anna = (await h.statements("2026-04"))["anna"]
    assert [ln["deadline_id"] for ln in lines_of(anna, "PAY-6")] == [other.deadline_id]
    why = (await h.month("2026-04"))["best_manager_why"]
    assert (why["winner"]["deadlines_met"], why["winner"]["deadlines_breached"]) == (1, 1)  # compliance revised


async def test_pay6_met_is_authoritative_even_without_revises_breach_event_id(payroll_any_db) -> None:
    h = payroll_any_db
    await h.employ("anna", "2026-01-01")
    breach = breached("anna", at("2026-04-09 15:00"), rule="CL-9")
    await h.publish(breach, met_late(breach, at("2026-04-09 14:00"), revises=False))
    assert lines_of((await h.statements("2026-04"))["anna"], "PAY-6") == []


async def test_pay6_met_recorded_before_its_breach_arrives_never_fines(payroll_any_db) -> None:
    h = payroll_any_db
    await h.employ("anna", "2026-01-01")
    breach = breached("anna", at("2026-04-09 15:00"), rule="CL-9")
    await h.publish(met_late(breach, at("2026-04-09 14:00")), breach)
    anna = (await h.statements("2026-04"))["anna"]
    assert lines_of(anna, "PAY-6") == []
    assert (await h.month("2026-04"))["best_manager_why"]["winner"]["deadlines_met"] == 1


async def test_pay8_late_met_after_breach_in_a_closed_month_is_reversed_in_the_next_open_month(payroll_any_db) -> None:
    h = payroll_any_db
    breach = breached("anna", at("2026-04-20 15:00"), rule="CL-9", deal="d1")
    await h.publish(renewed("anna", at("2026-04-02 09:00"), deal="d0"), breach)
    await h.close("2026-04")
    april = await h.statements("2026-04")
    frozen = lines_of(april["anna"], "PAY-6")[0]
    assert frozen["amount"] == "-5000.00"
    h.clock.set(at("2026-05-03 10:00"))
    late = met_late(breach, at("2026-04-20 14:00"), recorded_at=at("2026-05-03 10:00"))
    await h.publish(late)
    assert await h.statements("2026-04") == april                       # a closed month never changes
    may = (await h.statements("2026-05"))["anna"]
    reversal = lines_of(may, "PAY-6")
    assert [(ln["amount"], ln["adjusts_month"], ln["corrects_line_id"], ln["event_id"], ln["deadline_id"])
            for ln in reversal] == [("5000.00", "2026-04", frozen["id"], late.event_id, breach.deadline_id)]
    # A waiver of the same deadline afterwards, and the met redelivered: still one reversal.
    await h.publish(waived(breach, at("2026-05-03 11:00")))
    await h.publish(late, msg_id="again-" + late.event_id)
    assert len(lines_of((await h.statements("2026-05"))["anna"], "PAY-6")) == 1


async def test_pay6_one_fine_per_deadline_even_if_its_breach_is_reported_twice(payroll_any_db) -> None:
    h = payroll_any_db
    breach = breached("anna", at("2026-04-09 15:00"), rule="CL-9", deadline="dl-1")
    again = breached("anna", at("2026-04-09 15:00"), rule="CL-9", deadline="dl-1")  # another event id
    await h.publish(breach, again)
    assert [ln["event_id"] for ln in lines_of((await h.statements("2026-04"))["anna"], "PAY-6")] == [
        breach.event_id]


# ---------------------------------------------------------------- PAY-4 / PAY-5: refunds inside the window


async def test_pay5_refund_dated_in_the_window_recorded_after_it_ended_voids_pay5(payroll_any_db) -> None:
    h = payroll_any_db
    await h.publish(window_ended("anna", at("2026-04-13 05:00"), deal="d1"),
                    window_ended("anna", at("2026-04-13 05:00"), deal="d2"))
    assert len(lines_of((await h.statements("2026-04"))["anna"], "PAY-5")) == 2
    late = refund("anna", at("2026-04-12 11:00"), deal="d1")            # recorded on the 14th
    await h.publish(late)
    anna = (await h.statements("2026-04"))["anna"]
    assert [ln["deal_id"] for ln in lines_of(anna, "PAY-5")] == ["d2"]
    assert [(ln["amount"], ln["deal_id"]) for ln in lines_of(anna, "PAY-4")] == [("-4000.00", "d1")]


async def test_pay5_refund_after_window_ended_in_a_closed_month_is_reversed_in_the_next_open_month(
        payroll_any_db) -> None:
    h = payroll_any_db
    await h.publish(window_ended("anna", at("2026-04-28 05:00"), deal="d1"))
    await h.close("2026-04")
    april = await h.statements("2026-04")
    frozen = lines_of(april["anna"], "PAY-5")[0]
    h.clock.set(at("2026-05-03 10:00"))
    late = refund("anna", at("2026-04-27 11:00"), deal="d1")
    await h.publish(late)
    assert await h.statements("2026-04") == april
    may = (await h.statements("2026-05"))["anna"]
    assert sorted((ln["rule"], ln["amount"], ln["adjusts_month"], ln["corrects_line_id"]) for ln in may["lines"]
                  if ln["adjusts_month"]) == [("PAY-4", "-4000.00", "2026-04", None),
                                              ("PAY-5", "-2000.00", "2026-04", frozen["id"])]


async def test_pay4_two_partial_refunds_inside_the_window_are_one_refunded_client(payroll_any_db) -> None:
    h = payroll_any_db
    await h.employ("anna", "2026-01-01")
    first, second = refund("anna", at("2026-04-05 09:00"), deal="d1"), refund("anna", at("2026-04-07 09:00"), deal="d1")
    await h.publish(first, second, window_ended("anna", at("2026-04-13 05:00"), deal="d1", refunded=True),
                    refund("anna", at("2026-04-06 09:00"), deal="d2"))
    anna = (await h.statements("2026-04"))["anna"]
    assert sorted((ln["deal_id"], ln["event_id"] == first.event_id) for ln in lines_of(anna, "PAY-4")) == [
        ("d1", True), ("d2", False)]
    assert (await h.month("2026-04"))["best_manager_why"]["winner"]["refunds"] == 2


async def test_pay3_full_refund_inside_10_days_ends_the_deal_without_pay3(payroll_any_db) -> None:
    h = payroll_any_db
    await h.publish(refund("anna", at("2026-04-05 09:00"), deal="d1"),
                    DealLost(manager="anna", reason="refunded", after_full_month=False,
                             occurred_at=at("2026-04-05 09:00"), deal_id="d1", client_id="c1"))
    anna = (await h.statements("2026-04"))["anna"]
    assert [r for r, _ in rules_of(anna) if r in ("PAY-3", "PAY-4")] == ["PAY-4"]


async def test_pay2_pay3_count_once_per_deal_and_period(payroll_any_db) -> None:
    h = payroll_any_db
    period = at("2026-04-01 19:00")  # 2 April 00:00 in Almaty
    twice = [DealRenewed(manager="anna", payment_id=f"p{i}", period_start=period, period_end=period + timedelta(days=30),
                         after_full_month=True, occurred_at=at(f"2026-04-0{i + 2} 09:00"), deal_id="d1") for i in (1, 2)]
    # d2: declined at the renewal call, then the automatic loss of the same period fires too.
    await h.publish(*twice, lost("anna", at("2026-04-05 09:00"), deal="d2", reason="declined"),
                    lost("anna", at("2026-04-09 19:00"), deal="d2", reason="unpaid"))
    anna = (await h.statements("2026-04"))["anna"]
    assert [ln["event_id"] for ln in lines_of(anna, "PAY-2")] == [twice[0].event_id]
    assert len(lines_of(anna, "PAY-3")) == 1
    # A later period of d2 (paid again after the loss) may be lost again: that is a second PAY-3.
    await h.publish(renewed("anna", at("2026-04-12 09:00"), deal="d2"),
                    lost("anna", at("2026-04-25 09:00"), deal="d2", reason="declined"))
    anna = (await h.statements("2026-04"))["anna"]
    assert len(lines_of(anna, "PAY-3")) == 2 and len(lines_of(anna, "PAY-2")) == 2


# ---------------------------------------------------------------- replays and rebuild


async def test_late_fact_retractions_survive_redelivery_and_rebuild(payroll_any_db) -> None:
    h = payroll_any_db
    for m in ("anna", "boris"):
        await h.employ(m, "2026-01-01")
    breach_open = breached("anna", at("2026-04-09 15:00"), rule="CL-9", deal="d1")
    breach_closed = breached("boris", at("2026-03-20 15:00"), rule="CL-9", deal="b1")
    await h.publish(breach_closed, window_ended("boris", at("2026-03-25 05:00"), deal="b2"))
    h.clock.set(at("2026-04-02 10:00"))
    await h.close("2026-03")
    h.clock.set(at("2026-05-02 10:00"))
    period = at("2026-04-01 19:00")
    await h.publish(
        breach_open, met_late(breach_open, at("2026-04-09 12:00")), met_late(breach_closed, at("2026-03-20 12:00")),
        refund("boris", at("2026-03-24 10:00"), deal="b2"), refund("boris", at("2026-03-24 12:00"), deal="b2"),
        window_ended("anna", at("2026-04-13 05:00"), deal="d3"), refund("anna", at("2026-04-12 10:00"), deal="d3"),
        refund("anna", at("2026-04-12 11:00"), deal="d3"),
        *[DealRenewed(manager="anna", payment_id=f"p{i}", period_start=period, period_end=period + timedelta(days=30),
                      occurred_at=at(f"2026-04-0{i + 2} 09:00"), deal_id="d4") for i in (1, 2)],
        lost("anna", at("2026-04-05 09:00"), deal="d5", reason="declined"),
        lost("anna", at("2026-04-09 19:00"), deal="d5", reason="unpaid"),
    )
    before = await h.snapshot()
    totals = {m: s["total"] for m, s in (await h.statements("2026-04")).items()}
    # anna: base − nothing for d1 (met) + PAY-4 d3 once, no PAY-5 d3, PAY-2 d4 once, PAY-3 d5 once, PAY-7.
    # boris: March's PAY-6 and PAY-5 reversed in April, March's PAY-4 as an April adjustment, once.
    assert totals == {"anna": str(150000 - 4000 + 10000 - 5000 + 30000) + ".00",
                      "boris": str(150000 + 5000 - 2000 - 4000) + ".00"}

    psub = await h.bus.js.pull_subscribe("clients.>", stream="CLIENTS",
                                         config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
    originals = await psub.fetch(100, timeout=5)
    for msg in originals:
        headers = {**(msg.headers or {}), "Nats-Msg-Id": "again-" + msg.headers["Nats-Msg-Id"]}
        await h.bus.publish_many([Outgoing(msg.subject, msg.data, headers)])
    await h.settled()
    assert await h.snapshot() == before

    response = await h.post("/rebuild")
    assert response.status_code == 200, response.text
    assert await h.snapshot() == before
    assert {m: s["total"] for m, s in (await h.statements("2026-04")).items()} == totals


# ---------------------------------------------------------------- PAY-7: candidates and ties


async def test_pay7_manager_with_no_deals_and_no_facts_is_not_a_candidate(payroll_any_db) -> None:
    h = payroll_any_db
    for m in ("anna", "vera"):
        await h.employ(m, "2026-01-01")
    # anna renewed one client and lost another; vera had nothing at all in April.
    await h.publish(renewed("anna", at("2026-04-02 09:00"), deal="a1"), lost("anna", at("2026-04-03 09:00"), deal="a2"))
    month = await h.month("2026-04")
    assert month["best_manager"] == "anna"
    assert [f["manager"] for f in month["best_manager_why"]["ranking"]] == ["anna"]
    # A manager with a deal running in April is a candidate even without facts (and beats anna on losses
    # only if renewals tie: here anna's renewal still wins).
    await h.publish(DealPaid(manager="vera", payment_id="p", external_id="x", amount=1, currency="KZT",
                             paid_at=at("2026-03-10 09:00"), service_kind="account_management",
                             occurred_at=at("2026-03-10 09:00"), deal_id="v1"))
    ranking = (await h.month("2026-04"))["best_manager_why"]["ranking"]
    assert [(f["manager"], f["deals"]) for f in ranking] == [("anna", 2), ("vera", 1)]


async def test_pay7_full_tie_is_shown_close_refused_until_the_lead_picks(payroll_any_db) -> None:
    h = payroll_any_db
    await h.publish(renewed("boris", at("2026-04-02 09:00"), deal="b1"), renewed("anna", at("2026-04-03 09:00"),
                                                                                   deal="a1"))
    month = await h.month("2026-04")
    assert month["best_manager"] is None
    assert month["tie"] == {"managers": ["anna", "boris"], "picked": None, "picked_by": None, "picked_at": None}
    assert [(f["manager"], f["renewals"]) for f in month["best_manager_why"]["ranking"]] == [("anna", 1),
                                                                                           ("boris", 1)]
    statements = await h.statements("2026-04")
    assert all("PAY-7" not in [r for r, _ in rules_of(s)] for s in statements.values())

    refused = await h.post("/months/2026-04/close")
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "payroll.best_manager_tie_unresolved"
    assert (await h.month("2026-04"))["state"] == "open"

    for role in ("analyst", "content_manager", "integration"):
        response = await h.post("/months/2026-04/best-manager", role=role, login="boris", json={"manager": "boris"})
        assert response.status_code == 403, (role, response.text)
    not_tied = await h.post("/months/2026-04/best-manager", json={"manager": "vera"})
    assert not_tied.status_code == 422 and not_tied.json()["errors"][0]["field"] == "manager"
    assert not_tied.json()["errors"][0]["code"] == "payroll.best_manager_not_tied"
    missing = await h.post("/months/2026-04/best-manager", json={})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "manager"
    assert (await h.post("/months/2026-13/best-manager", json={"manager": "anna"})).status_code == 422
    no_tie = await h.post("/months/2026-03/best-manager", json={"manager": "anna"})
    assert no_tie.status_code == 409 and no_tie.json()["errors"][0]["code"] == "payroll.best_manager_no_tie"
    assert await h.audit() == []

    picked = await h.post("/months/2026-04/best-manager", json={"manager": "boris"})
    assert picked.status_code == 200, picked.text
    assert picked.json()["best_manager"] == "boris" and picked.json()["tie"]["picked_by"] == "aliya"
    statements = await h.statements("2026-04")
    assert ("PAY-7", "30000.00") in rules_of(statements["boris"])
    assert "PAY-7" not in [r for r, _ in rules_of(statements["anna"])]
    audit = await h.audit()
    assert [(a[0], a[1], a[2], a[3], a[4]["manager"], a[4]["tied"]) for a in audit] == [
        ("aliya", "lead", "payroll.best_manager.picked", "2026-04", "boris", ["anna", "boris"])]

    closed = await h.close("2026-04")
    assert closed["best_manager"] == "boris" and closed["tie"]["picked"] == "boris"
    assert ("PAY-7", "30000.00") in rules_of((await h.statements("2026-04"))["boris"])
    after = await h.post("/months/2026-04/best-manager", json={"manager": "anna"})
    assert after.status_code == 409 and after.json()["errors"][0]["field"] == "month"


async def test_pay7_pick_lapses_when_new_facts_change_the_tie(payroll_any_db) -> None:
    h = payroll_any_db
    await h.publish(renewed("boris", at("2026-04-02 09:00"), deal="b1"), renewed("anna", at("2026-04-03 09:00"),
                                                                                   deal="a1"))
    assert (await h.post("/months/2026-04/best-manager", json={"manager": "boris"})).status_code == 200
    await h.publish(renewed("vera", at("2026-04-04 09:00"), deal="v1"))   # vera joins the tie
    month = await h.month("2026-04")
    assert month["best_manager"] is None and month["tie"]["managers"] == ["anna", "boris", "vera"]
    await h.publish(renewed("anna", at("2026-04-05 09:00"), deal="a2"))   # anna now leads outright
    month = await h.month("2026-04")
    assert month["best_manager"] == "anna" and month["tie"] is None
