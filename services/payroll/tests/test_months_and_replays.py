"""Months (preview, close, adjustments), the API contract, access by role, and safe replays.

The contract, the close and the replay tests run on SQLite and PostgreSQL (`payroll_any_db`).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import msgspec
from nats.js.api import ConsumerConfig, DeliverPolicy
from shared.bus import Outgoing
from shared.events import decode
from shared.events.payroll import PayrollMonthClosed

from .conftest import (
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


async def _april_facts(h) -> None:
    loss = lost("anna", at("2026-04-08 09:00"), deal="a3")
    breach = breached("boris", at("2026-04-09 05:00"), rule="CL-9", deal="b2")
    await h.publish(
        renewed("anna", at("2026-04-02 09:00"), deal="a1"), renewed("anna", at("2026-04-03 09:00"), deal="a2"),
        renewed("boris", at("2026-04-02 09:00"), deal="b1"), loss, loss_undone(loss, at("2026-04-10 09:00")),
        lost("boris", at("2026-04-11 09:00"), deal="b4", reason="declined"),
        refund("boris", at("2026-04-12 09:00"), deal="b5"), window_ended("anna", at("2026-04-13 05:00"), deal="a6"),
        breach, breached("anna", at("2026-04-14 05:00"), rule="CL-9", deal="a7"),
        waived(breach, at("2026-04-15 05:00")), met("anna", at("2026-04-16 05:00")),
    )


async def test_statements_contract_total_is_exactly_the_sum_of_the_lines(payroll_any_db) -> None:
    h = payroll_any_db
    await _april_facts(h)
    response = await h.get("/statements", month="2026-04")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["manager"] for s in body] == ["anna", "boris"]
    for st in body:
        assert set(st) >= {"manager", "month", "currency", "lines", "total", "best_manager"}
        assert st["month"] == "2026-04" and st["currency"] == "KZT"
        assert isinstance(st["total"], str) and Decimal(st["total"]) == total_of(st)
        for ln in st["lines"]:
            assert set(ln) >= {"rule", "amount", "deal_id", "event_id", "occurred_at", "note"}
            assert isinstance(ln["amount"], str)
    st = {s["manager"]: s for s in body}
    # anna: base + 2 renewals + PAY-5 + CL-9 fine (+ best manager: 2 renewals, 0 lost); her loss was undone.
    assert rules_of(st["anna"]) == [("PAY-1", "150000.00"), ("PAY-2", "10000.00"), ("PAY-2", "10000.00"),
                                    ("PAY-5", "2000.00"), ("PAY-6", "-5000.00"), ("PAY-7", "30000.00")]
    assert st["anna"]["total"] == "197000.00" and st["anna"]["best_manager"] is True
    # boris: base + renewal + loss + refund; his CL-9 fine was waived.
    assert rules_of(st["boris"]) == [("PAY-1", "150000.00"), ("PAY-2", "10000.00"), ("PAY-3", "-5000.00"),
                                     ("PAY-4", "-4000.00")]
    assert st["boris"]["total"] == "151000.00" and st["boris"]["best_manager"] is False
    month = await h.month("2026-04")
    assert month["state"] == "open" and month["total"] == "348000.00"
    assert {m["manager"]: m["total"] for m in month["managers"]} == {"anna": "197000.00", "boris": "151000.00"}
    assert month["managers"][0]["by_rule"]["PAY-2"] == {"amount": "20000.00", "lines": 2}


async def test_pay8_closed_month_stays_unchanged_and_a_late_fact_adjusts_the_next_month(payroll_any_db) -> None:
    h = payroll_any_db
    await _april_facts(h)
    preview = await h.statements("2026-04")
    closed = await h.close("2026-04")
    assert closed["state"] == "closed" and closed["best_manager"] == "anna" and closed["closed_by"] == "aliya"
    frozen = await h.statements("2026-04")
    assert {m: s["total"] for m, s in frozen.items()} == {m: s["total"] for m, s in preview.items()}
    assert all(ln["event_id"] for s in frozen.values() for ln in s["lines"] if ln["rule"] != "PAY-1"
               and ln["rule"] != "PAY-7")
    h.clock.set(at("2026-06-02 10:00"))
    # A renewal paid in April arrives late (bank transfer), and a new breach for April is reported.
    late = renewed("boris", at("2026-04-29 12:00"), deal="b9")
    await h.publish(late, breached("boris", at("2026-04-20 05:00"), rule="CL-9", deal="b10"))
    assert await h.statements("2026-04") == frozen
    assert (await h.month("2026-04"))["managers"] == closed["managers"]
    may = (await h.statements("2026-05"))["boris"]
    adjustments = [(ln["rule"], ln["amount"], ln["event_id"] == late.event_id) for ln in may["lines"]
                   if ln["adjusts_month"] == "2026-04"]
    assert sorted(adjustments) == [("PAY-2", "10000.00", True), ("PAY-6", "-5000.00", False)]
    # Late April facts don't make boris May's best manager: only May's own facts count.
    assert (await h.month("2026-05"))["best_manager"] is None
    again = await h.post("/months/2026-04/close")
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "month"


async def test_pay8_close_emits_month_closed_event(payroll) -> None:
    await payroll.publish(renewed("anna", at("2026-04-02 09:00")))
    await payroll.close("2026-04")
    js = payroll.bus.js
    psub = await js.pull_subscribe("payroll.month.closed.v1", stream="PAYROLL",
                                   config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
    msgs = await psub.fetch(1, timeout=5)
    evt = decode(msgs[0].subject, msgs[0].data)
    assert isinstance(evt, PayrollMonthClosed)
    assert (evt.month, evt.best_manager, evt.total, evt.closed_by) == ("2026-04", "anna", Decimal("190000.00"),
                                                                       "aliya")
    assert msgspec.json.decode(msgs[0].data)["total"] == "190000.00"  # a decimal string on the wire


async def test_pay8_only_the_lead_closes_a_month_and_only_after_it_ended(payroll) -> None:
    for role in ("analyst", "content_manager", "integration"):
        response = await payroll.post("/months/2026-04/close", role=role, login="x")
        assert response.status_code == 403, (role, response.text)
    response = await payroll.post("/months/2026-05/close")
    assert response.status_code == 409 and "not ended" in response.json()["detail"]
    bad = await payroll.post("/months/2026-13/close")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "month"
    assert (await payroll.put("/rules", {"effective_from": "2026-06"}, role="analyst")).status_code == 403
    assert (await payroll.post("/rebuild", role="integration")).status_code == 403


async def test_content_manager_sees_only_their_own_statement_analyst_sees_all(payroll) -> None:
    await payroll.publish(renewed("anna", at("2026-04-02 09:00"), deal="a1"),
                          renewed("boris", at("2026-04-02 09:00"), deal="b1"))
    own = await payroll.statements("2026-04", role="content_manager", login="anna")
    assert list(own) == ["anna"]
    assert sorted(await payroll.statements("2026-04", role="analyst", login="olga")) == ["anna", "boris"]
    other = await payroll.get("/statements/boris", role="content_manager", login="anna", month="2026-04")
    assert other.status_code == 403
    month = (await payroll.get("/months/2026-04", role="content_manager", login="anna")).json()
    assert [m["manager"] for m in month["managers"]] == ["anna"]
    assert (await payroll.get("/statements", role="care_agent", login="c", month="2026-04")).status_code == 403


async def test_manager_statement_pages_and_csv_export(payroll) -> None:
    await payroll.employ("anna", "2026-01-01")
    await payroll.publish(*(renewed("anna", at(f"2026-04-{d:02d} 09:00"), deal=f"d{d}") for d in range(1, 8)))
    pages = [(await payroll.get("/statements/anna", month="2026-04", page=p, page_size=3)).json() for p in (1, 2, 3)]
    page1, page3 = pages[0], pages[2]
    assert page1["lines_total"] == 9 and page1["total"] == "250000.00" and page1["best_manager"] is True
    # Issue 9: in date order across pages — the base salary at the month's start, the best-manager bonus at its end.
    assert [ln["rule"] for ln in page1["lines"]] == ["PAY-1", "PAY-2", "PAY-2"]
    assert [ln["deal_id"] for ln in page1["lines"]] == [None, "d1", "d2"]
    assert [ln["deal_id"] for ln in page3["lines"]] == ["d6", "d7", None] and page3["lines"][-1]["rule"] == "PAY-7"
    every = [ln["occurred_at"] for p in pages for ln in p["lines"]]
    assert len(every) == 9 and every == sorted(every)
    exported = await payroll.get("/statements/anna.csv", month="2026-04")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 10 and rows[-1]["rule"] == "TOTAL" and rows[-1]["amount"] == "250000.00"
    assert sum(Decimal(r["amount"]) for r in rows[:-1]) == Decimal("250000.00")


async def test_months_with_data_for_the_month_picker(payroll) -> None:
    """Issue 9: the picker lists months with lines (a manager: their own) or a closed run, newest first."""
    await payroll.publish(renewed("anna", at("2026-03-05 09:00"), deal="m1"),
                          renewed("boris", at("2026-04-02 09:00"), deal="b1"))
    assert (await payroll.get("/months")).json() == {"months": ["2026-04", "2026-03"]}
    own = await payroll.get("/months", role="content_manager", login="anna")
    assert own.json() == {"months": ["2026-03"]}
    assert (await payroll.get("/months", role="care_agent", login="c")).status_code == 403


async def test_duplicate_delivery_and_a_full_replay_give_the_same_ledger(payroll_any_db) -> None:
    h = payroll_any_db
    await h.publish(renewed("anna", at("2026-03-05 09:00"), deal="m1"), lost("anna", at("2026-03-06 09:00")))
    await h.close("2026-03")
    await _april_facts(h)
    late_loss = lost("boris", at("2026-03-20 09:00"), deal="late")  # lands in April as an adjustment
    await h.publish(late_loss, loss_undone(late_loss, at("2026-04-20 09:00")))
    before_totals = {m: s["total"] for m, s in (await h.statements("2026-04")).items()}
    before = await h.snapshot()

    # Redelivery: the same events again under new message ids (past JetStream's de-duplication window).
    psub = await h.bus.js.pull_subscribe("clients.>", stream="CLIENTS",
                                         config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
    originals = await psub.fetch(100, timeout=5)
    for msg in originals:
        headers = {**(msg.headers or {}), "Nats-Msg-Id": "again-" + msg.headers["Nats-Msg-Id"]}
        await h.bus.publish_many([Outgoing(msg.subject, msg.data, headers)])
    await h.settled()
    assert await h.snapshot() == before

    # A full rebuild from the stream (which now holds every event twice) gives the same ledger.
    response = await h.post("/rebuild")
    assert response.status_code == 200, response.text
    assert response.json()["applied"] == 2 * len(originals)
    assert await h.snapshot() == before
    assert {m: s["total"] for m, s in (await h.statements("2026-04")).items()} == before_totals
