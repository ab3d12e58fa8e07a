"""Issue 10 §2: payroll fines the content service's deadlines (CO-3) and cadence misses (CO-5) per rule
(PAY-6), on its own durable consumer of the CONTENT stream, with real events on a real nats-server, on
SQLite and PostgreSQL. A met after the breach (or a waiver) voids the fine in an open month and reverses it
in the next open month when its month is closed (PAY-8); deadline outcomes count in PAY-7's compliance."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from nats.js.errors import NotFoundError
from payroll.content_handlers import CONSUMER as CONTENT_CONSUMER
from shared.bus import Outgoing
from shared.events import Event, encode
from shared.events.content import (
    CadenceMissed,
    ContentDeadlineBreached,
    ContentDeadlineMet,
    ContentDeadlineWaived,
)
from shared.testing import eventually

from .conftest import at, renewed

FINES = {"CL-9": "-5000", "CO-3": "-3000", "CO-5": "-1000"}


async def publish_content(h, *events: Event) -> None:
    """Write content events to JetStream as the content outbox relay does, and wait until payroll's
    `payroll-content` consumer has acked them all."""
    for evt in events:
        await h.bus.publish_many([Outgoing(evt.subject, encode(evt), {"Nats-Msg-Id": evt.event_id})])
    js = h.bus.js

    async def done() -> bool:
        stream = await js.stream_info("CONTENT")
        try:
            info = await js.consumer_info("CONTENT", CONTENT_CONSUMER)
        except NotFoundError:
            return False
        return info.num_pending == 0 and info.num_ack_pending == 0 and \
            info.delivered.stream_seq >= stream.state.last_seq

    await eventually(done, timeout=30, message="payroll consumed every content event")


def co3_breach(owner: str, due: datetime, deal: str = "deal-1") -> ContentDeadlineBreached:
    return ContentDeadlineBreached(deadline_id=str(uuid.uuid4()), rule="CO-3", owner=owner, due_at=due,
                                   occurred_at=due, deal_id=deal, plan_id="plan-2")


def co3_met(breach: ContentDeadlineBreached, met_at: datetime, revises: bool = True) -> ContentDeadlineMet:
    return ContentDeadlineMet(deadline_id=breach.deadline_id, rule="CO-3", owner=breach.owner, due_at=breach.due_at,
                              met_at=met_at, occurred_at=met_at, deal_id=breach.deal_id, plan_id=breach.plan_id,
                              revises_breach=revises)


def lines_of(statement: dict, rule: str) -> list[dict]:
    return [ln for ln in statement["lines"] if ln["rule"] == rule]


async def set_fines(h, month: str = "2026-04") -> None:
    response = await h.put("/rules", {"effective_from": month, "deadline_fines": FINES})
    assert response.status_code == 200, response.text


async def test_co3_breach_is_fined_0_by_default_then_per_rule_once_set(payroll_any_db) -> None:
    h = payroll_any_db
    await h.employ("anna", "2026-01-01")
    breach = co3_breach("anna", at("2026-04-14 12:00"))
    await publish_content(h, breach)
    [line] = lines_of((await h.statements("2026-04"))["anna"], "PAY-6")
    assert (line["amount"], line["deadline_id"]) == ("0.00", breach.deadline_id)   # default 0 until set
    await set_fines(h)
    [line] = lines_of((await h.statements("2026-04"))["anna"], "PAY-6")
    assert line["amount"] == "-3000.00"
    # Reported twice (another event id): one fine per deadline.
    await publish_content(h, ContentDeadlineBreached(deadline_id=breach.deadline_id, rule="CO-3", owner="anna",
                                                     due_at=breach.due_at, occurred_at=breach.due_at,
                                                     deal_id=breach.deal_id))
    assert len(lines_of((await h.statements("2026-04"))["anna"], "PAY-6")) == 1


async def test_co3_met_revising_a_breach_voids_the_fine_and_counts_in_pay7_compliance(payroll_any_db) -> None:
    h = payroll_any_db
    await set_fines(h)
    await h.publish(renewed("anna", at("2026-04-02 09:00"), deal="d0"))
    breach = co3_breach("anna", at("2026-04-14 12:00"), deal="d1")
    other = co3_breach("anna", at("2026-04-20 12:00"), deal="d2")
    await publish_content(h, breach, other)
    assert len(lines_of((await h.statements("2026-04"))["anna"], "PAY-6")) == 2
    # The plan was submitted (dated) before the due time; the fact was recorded after the timer's breach.
    await publish_content(h, co3_met(breach, at("2026-04-14 11:00")))
    anna = (await h.statements("2026-04"))["anna"]
    assert [ln["deadline_id"] for ln in lines_of(anna, "PAY-6")] == [other.deadline_id]
    why = (await h.month("2026-04"))["best_manager_why"]
    assert (why["winner"]["deadlines_met"], why["winner"]["deadlines_breached"]) == (1, 1)


async def test_co3_any_met_after_a_breach_voids_it_even_without_revises_breach(payroll_any_db) -> None:
    h = payroll_any_db
    await set_fines(h)
    breach = co3_breach("anna", at("2026-04-14 12:00"))
    await publish_content(h, breach, co3_met(breach, at("2026-04-14 11:30"), revises=False))
    assert lines_of((await h.statements("2026-04")).get("anna", {"lines": []}), "PAY-6") == []


async def test_co3_met_arriving_before_its_breach_never_fines(payroll_any_db) -> None:
    h = payroll_any_db
    await set_fines(h)
    await h.publish(renewed("anna", at("2026-04-02 09:00"), deal="d0"))
    breach = co3_breach("anna", at("2026-04-14 12:00"))
    await publish_content(h, co3_met(breach, at("2026-04-14 11:30")), breach)
    assert lines_of((await h.statements("2026-04"))["anna"], "PAY-6") == []
    assert (await h.month("2026-04"))["best_manager_why"]["winner"]["deadlines_met"] == 1


async def test_co3_waiver_in_a_closed_month_is_reversed_once_in_the_next_open_month(payroll_any_db) -> None:
    h = payroll_any_db
    await set_fines(h)
    breach = co3_breach("anna", at("2026-04-20 12:00"), deal="d1")
    await h.publish(renewed("anna", at("2026-04-02 09:00"), deal="d0"))
    await publish_content(h, breach)
    await h.close("2026-04")
    april = await h.statements("2026-04")
    [frozen] = lines_of(april["anna"], "PAY-6")
    assert frozen["amount"] == "-3000.00"
    h.clock.set(at("2026-05-03 10:00"))
    waiver = ContentDeadlineWaived(deadline_id=breach.deadline_id, rule="CO-3", owner="anna", waived_by="lost",
                                   reason="deal lost", due_at=breach.due_at, occurred_at=at("2026-05-03 10:00"),
                                   deal_id="d1")
    await publish_content(h, waiver)
    assert await h.statements("2026-04") == april                       # a closed month never changes
    may = lines_of((await h.statements("2026-05"))["anna"], "PAY-6")
    assert [(ln["amount"], ln["adjusts_month"], ln["corrects_line_id"]) for ln in may] == [
        ("3000.00", "2026-04", frozen["id"])]
    # A late met of the same deadline afterwards: still one reversal.
    await publish_content(h, co3_met(breach, at("2026-04-20 11:00")))
    assert len(lines_of((await h.statements("2026-05"))["anna"], "PAY-6")) == 1


async def test_co5_cadence_missed_is_fined_per_rule_once_per_deal_day_and_what(payroll_any_db) -> None:
    h = payroll_any_db
    await h.employ("anna", "2026-01-01")
    check = at("2026-04-14 13:00")  # 18:00 in Almaty
    feed = CadenceMissed(day=date(2026, 4, 14), what="feed", manager="anna", occurred_at=check, deal_id="d1")
    stories = CadenceMissed(day=date(2026, 4, 14), what="stories", manager="anna", occurred_at=check, deal_id="d1")
    again = CadenceMissed(day=date(2026, 4, 14), what="feed", manager="anna", occurred_at=check, deal_id="d1")
    await publish_content(h, feed)
    assert [ln["amount"] for ln in lines_of((await h.statements("2026-04"))["anna"], "PAY-6")] == ["0.00"]
    await set_fines(h)
    await publish_content(h, stories, again)
    lines = lines_of((await h.statements("2026-04"))["anna"], "PAY-6")
    assert sorted(ln["amount"] for ln in lines) == ["-1000.00", "-1000.00"]
    # A cadence miss is not a deadline: it does not count in PAY-7's compliance.
    await h.publish(renewed("anna", at("2026-04-02 09:00"), deal="d0"))
    why = (await h.month("2026-04"))["best_manager_why"]
    assert (why["winner"]["deadlines_met"], why["winner"]["deadlines_breached"]) == (0, 0)


async def test_issue10_rebuild_replays_the_content_stream_too(payroll_any_db) -> None:
    h = payroll_any_db
    await set_fines(h)
    await h.publish(renewed("anna", at("2026-04-02 09:00"), deal="d0"))
    breach = co3_breach("anna", at("2026-04-14 12:00"))
    kept = co3_breach("anna", at("2026-04-15 12:00"))
    miss = CadenceMissed(day=date(2026, 4, 16), what="feed", manager="anna",
                         occurred_at=at("2026-04-16 13:00"), deal_id="d1")
    await publish_content(h, breach, kept, miss, co3_met(breach, at("2026-04-14 11:00")))
    before = await h.snapshot()
    response = await h.post("/rebuild")
    assert response.status_code == 200, response.text
    assert await h.snapshot() == before
    assert len(lines_of((await h.statements("2026-04"))["anna"], "PAY-6")) == 2
