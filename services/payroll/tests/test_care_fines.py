"""Issue 12 §payroll: the care inbox's deadlines (EN-3 first response past its target, EN-4 missed check round)
are fined per rule (PAY-6, 0 until set) on payroll's own durable consumer of the ENGAGEMENT stream, with real
events on a real nats-server; a later met (an earlier-dated fact) or a waiver undoes the fine; every outcome
counts in PAY-7's deadline compliance."""

from __future__ import annotations

import uuid
from datetime import datetime

from nats.js.errors import NotFoundError
from payroll.care_handlers import CONSUMER
from shared.bus import Outgoing
from shared.events import Event, encode
from shared.events.engagement import (
    EngagementDeadlineBreached,
    EngagementDeadlineMet,
    EngagementDeadlineWaived,
)
from shared.testing import eventually

from .conftest import at

FINES = {"CL-9": "-5000", "EN-3": "-500", "EN-4": "-1000"}


async def publish_care(h, *events: Event) -> None:
    for evt in events:
        await h.bus.publish_many([Outgoing(evt.subject, encode(evt), {"Nats-Msg-Id": evt.event_id})])
    js = h.bus.js

    async def done() -> bool:
        stream = await js.stream_info("ENGAGEMENT")
        try:
            info = await js.consumer_info("ENGAGEMENT", CONSUMER)
        except NotFoundError:
            return False
        return info.num_pending == 0 and info.num_ack_pending == 0 and \
            info.delivered.stream_seq >= stream.state.last_seq

    await eventually(done, timeout=30, message="payroll consumed every engagement event")


def breach(owner: str, rule: str, due: datetime) -> EngagementDeadlineBreached:
    return EngagementDeadlineBreached(deadline_id=str(uuid.uuid4()), rule=rule, owner=owner, due_at=due,
                                      occurred_at=due, deal_id="deal-1", conversation_id="conv-1")


def pay6(statement: dict) -> list[dict]:
    return [ln for ln in statement["lines"] if ln["rule"] == "PAY-6"]


async def test_en3_and_en4_breaches_are_fined_per_rule_and_a_later_met_or_waiver_undoes_them(payroll_any_db) -> None:
    h = payroll_any_db
    await h.employ("agent1", "2026-01-01")
    en3, en4 = breach("agent1", "EN-3", at("2026-04-14 12:07")), breach("agent1", "EN-4", at("2026-04-15 12:00"))
    await publish_care(h, en3, en4)
    lines = pay6((await h.statements("2026-04"))["agent1"])
    assert sorted((ln["deadline_id"], ln["amount"]) for ln in lines) == sorted(
        [(en3.deadline_id, "0.00"), (en4.deadline_id, "0.00")])                  # 0 until the agency sets it
    response = await h.put("/rules", {"effective_from": "2026-04", "deadline_fines": FINES})
    assert response.status_code == 200, response.text
    amounts = {ln["deadline_id"]: ln["amount"] for ln in pay6((await h.statements("2026-04"))["agent1"])}
    assert amounts == {en3.deadline_id: "-500.00", en4.deadline_id: "-1000.00"}

    met = EngagementDeadlineMet(deadline_id=en3.deadline_id, rule="EN-3", owner="agent1", due_at=en3.due_at,
                                met_at=at("2026-04-14 12:05"), occurred_at=at("2026-04-14 13:00"),
                                deal_id="deal-1", revises_breach=True)
    waived = EngagementDeadlineWaived(deadline_id=en4.deadline_id, rule="EN-4", owner="agent1", waived_by="lead",
                                      reason="account paused", occurred_at=at("2026-04-16 10:00"), deal_id="deal-1")
    await publish_care(h, met, waived, en3)                                       # a redelivery changes nothing
    assert pay6((await h.statements("2026-04"))["agent1"]) == []                  # both fines voided


async def test_an_unassigned_breach_fines_nobody(payroll_any_db) -> None:
    h = payroll_any_db
    await h.employ("agent1", "2026-01-01")
    await publish_care(h, breach("", "EN-3", at("2026-04-14 12:07")))
    assert pay6((await h.statements("2026-04"))["agent1"]) == []
