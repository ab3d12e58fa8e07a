"""Payroll under test: the real app (SQLite or PostgreSQL) consuming real clients events from a real nats-server.

`payroll` gives a `Harness`: `publish(*events)` writes clients events to JetStream the way the clients
service's outbox relay does (encoded Struct, `Nats-Msg-Id` = event id, W3C `traceparent`) and waits until
the payroll consumer has acked everything; `get/post/put` call the API as a given role.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from litestar.testing import AsyncTestClient
from nats.js.errors import NotFoundError
from payroll.app import create_app
from payroll.handlers import CONSUMER
from payroll.services import ledger_snapshot
from shared.bus import Bus, Outgoing
from shared.clock import FixedClock
from shared.db import Database
from shared.events import Event, encode
from shared.events.clients import (
    DeadlineBreached,
    DeadlineMet,
    DeadlineWaived,
    DealLossUndone,
    DealLost,
    DealManagerAssigned,
    DealRenewed,
    MoneyBackWindowEnded,
    RefundRecorded,
)
from shared.testing import eventually, make_settings, staff_headers

TOKEN = {"Authorization": "Bearer dev-token"}


def at(text: str) -> datetime:
    """An instant in UTC: at("2026-03-10 09:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def traceparent() -> tuple[str, str]:
    trace_id = uuid.uuid4().hex
    return trace_id, f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"


class Harness:
    def __init__(self, client: AsyncTestClient, bus: Bus, clock: FixedClock, app) -> None:
        self.client = client
        self.bus = bus
        self.clock = clock
        self.app = app
        self.trace_ids: dict[str, str] = {}

    @property
    def runtime(self):
        return self.app.state.runtime

    async def publish(self, *events: Event, msg_id: str | None = None) -> None:
        out = []
        for evt in events:
            trace_id, parent = traceparent()
            self.trace_ids.setdefault(evt.event_id, trace_id)
            out.append(Outgoing(evt.subject, encode(evt), {"Nats-Msg-Id": msg_id or evt.event_id,
                                                           "traceparent": parent}))
        for message in out:  # one by one: the stream order is the order given
            await self.bus.publish_many([message])
        await self.settled()

    async def settled(self) -> None:
        js = self.bus.js

        async def done() -> bool:
            stream = await js.stream_info("CLIENTS")
            try:
                info = await js.consumer_info("CLIENTS", CONSUMER)
            except NotFoundError:  # the consumer is created when payroll subscribes
                return False
            return info.num_pending == 0 and info.num_ack_pending == 0 and \
                info.delivered.stream_seq >= stream.state.last_seq

        await eventually(done, timeout=30, message="payroll consumed every clients event")

    async def snapshot(self) -> list[tuple]:
        """The whole ledger, read on a connection of the test's own loop (the app runs in the client's)."""
        db = Database(self.runtime.db.url)
        try:
            async with db.transaction() as session:
                return await ledger_snapshot(session)
        finally:
            await db.dispose()

    async def audit(self) -> list[tuple]:
        """The payroll audit log as (actor, role, action, target, detail), oldest first."""
        from payroll.models import AuditEntry
        from sqlalchemy import select

        db = Database(self.runtime.db.url)
        try:
            async with db.transaction() as session:
                rows = await session.execute(select(AuditEntry.actor, AuditEntry.role, AuditEntry.action,
                                                    AuditEntry.target, AuditEntry.detail).order_by(AuditEntry.id))
                return [tuple(r) for r in rows]
        finally:
            await db.dispose()

    def headers(self, role: str, login: str) -> dict[str, str]:
        if role == "integration":
            return dict(TOKEN)
        return staff_headers(login, role, self.app.state.settings)

    async def get(self, path: str, role: str = "lead", login: str = "aliya", **params):
        return await self.client.get(f"/api/payroll{path}", params=params, headers=self.headers(role, login))

    async def post(self, path: str, role: str = "lead", login: str = "aliya", json=None):
        return await self.client.post(f"/api/payroll{path}", json=json, headers=self.headers(role, login))

    async def put(self, path: str, json, role: str = "lead", login: str = "aliya"):
        return await self.client.put(f"/api/payroll{path}", json=json, headers=self.headers(role, login))

    async def statements(self, month: str, role: str = "lead", login: str = "aliya") -> dict[str, dict]:
        response = await self.get("/statements", role=role, login=login, month=month)
        assert response.status_code == 200, response.text
        return {s["manager"]: s for s in response.json()}

    async def month(self, month: str) -> dict:
        response = await self.get(f"/months/{month}")
        assert response.status_code == 200, response.text
        return response.json()

    async def close(self, month: str) -> dict:
        response = await self.post(f"/months/{month}/close")
        assert response.status_code == 200, response.text
        return response.json()

    async def employ(self, login: str, employed_from: str, employed_to: str | None = None) -> None:
        body = {"employed_from": employed_from, "role": "content_manager"}
        if employed_to:
            body["employed_to"] = employed_to
        response = await self.put(f"/employees/{login}", body)
        assert response.status_code == 200, response.text


def rules_of(statement: dict) -> list[tuple[str, str]]:
    return sorted((ln["rule"], ln["amount"]) for ln in statement["lines"])


def total_of(statement: dict) -> Decimal:
    return sum((Decimal(ln["amount"]) for ln in statement["lines"]), Decimal(0))


# ---------------------------------------------------------------- event builders (what clients emits)

def renewed(manager: str, when: datetime, deal: str = "deal-1", after_full_month: bool = True) -> DealRenewed:
    return DealRenewed(manager=manager, payment_id=f"pay-{uuid.uuid4().hex[:6]}", period_start=when,
                       period_end=when + timedelta(days=30), after_full_month=after_full_month, occurred_at=when,
                       deal_id=deal, client_id=f"client-{deal}")


def lost(manager: str, when: datetime, deal: str = "deal-1", reason: str = "unpaid",
         after_full_month: bool = True) -> DealLost:
    return DealLost(manager=manager, reason=reason, after_full_month=after_full_month, occurred_at=when,
                    deal_id=deal, client_id=f"client-{deal}")


def loss_undone(loss: DealLost, when: datetime) -> DealLossUndone:
    return DealLossUndone(manager=loss.manager, lost_event_id=loss.event_id, payment_id="late-pay",
                          occurred_at=when, deal_id=loss.deal_id, client_id=loss.client_id)


def refund(manager: str, when: datetime, deal: str = "deal-1", within_window: bool = True) -> RefundRecorded:
    return RefundRecorded(manager=manager, refund_id=f"ref-{uuid.uuid4().hex[:6]}", payment_id="pay-1",
                          amount=Decimal("90000.00"), currency="KZT", refunded_at=when,
                          first_payment_at=when - timedelta(days=3), within_window=within_window,
                          occurred_at=when, deal_id=deal, client_id=f"client-{deal}")


def window_ended(manager: str, when: datetime, deal: str = "deal-1", refunded: bool = False) -> MoneyBackWindowEnded:
    return MoneyBackWindowEnded(manager=manager, first_payment_at=when - timedelta(days=10), refunded=refunded,
                                occurred_at=when, deal_id=deal, client_id=f"client-{deal}")


def breached(owner: str, due: datetime, rule: str = "CL-9", deadline: str | None = None,
             deal: str = "deal-1") -> DeadlineBreached:
    return DeadlineBreached(deadline_id=deadline or f"dl-{uuid.uuid4().hex[:8]}", rule=rule, owner=owner,
                            due_at=due, occurred_at=due, deal_id=deal, client_id=f"client-{deal}")


def met(owner: str, due: datetime, rule: str = "CL-3", deal: str = "deal-1") -> DeadlineMet:
    return DeadlineMet(deadline_id=f"dl-{uuid.uuid4().hex[:8]}", rule=rule, owner=owner, due_at=due,
                       met_at=due - timedelta(minutes=5), occurred_at=due - timedelta(minutes=5), deal_id=deal)


def met_late(breach: DeadlineBreached, met_at: datetime, recorded_at: datetime | None = None,
             revises: bool = True) -> DeadlineMet:
    """Issue 7 §1: the fact that meets a deadline was recorded after the timer breached it."""
    return DeadlineMet(deadline_id=breach.deadline_id, rule=breach.rule, owner=breach.owner, due_at=breach.due_at,
                       met_at=met_at, occurred_at=met_at, deal_id=breach.deal_id, client_id=breach.client_id,
                       revises_breach_event_id=breach.event_id if revises else None)


def waived(breach: DeadlineBreached, when: datetime) -> DeadlineWaived:
    return DeadlineWaived(deadline_id=breach.deadline_id, rule=breach.rule, owner=breach.owner, waived_by="aliya",
                          reason="client was travelling", occurred_at=when, deal_id=breach.deal_id)


def assigned(manager: str, when: datetime, deal: str = "deal-1") -> DealManagerAssigned:
    return DealManagerAssigned(manager=manager, occurred_at=when, deal_id=deal)


# ---------------------------------------------------------------- fixtures


async def _harness(database_url: str, nats_server, now: datetime) -> AsyncIterator[Harness]:
    clock = FixedClock(now)
    app = create_app(settings=make_settings("payroll", database_url=database_url, nats_url=nats_server.url),
                     clock=clock)
    bus = Bus(nats_server.url, "clients-test-publisher")
    async with AsyncTestClient(app) as client:
        await bus.connect(retry_forever=False)
        runtime = app.state.runtime
        await eventually(lambda: _ready(runtime), message="payroll connected to NATS")
        try:
            yield Harness(client, bus, clock, app)
        finally:
            await bus.drain()


async def _ready(runtime) -> bool:
    return runtime.bus is not None and runtime.bus.is_connected and runtime.consumers[0]._psub is not None


@pytest.fixture
async def payroll(tmp_path, nats_server) -> AsyncIterator[Harness]:
    """The service on SQLite (rule details); clock at 2026-05-02 10:00 UTC (April has ended)."""
    async for h in _harness(f"sqlite+aiosqlite:///{tmp_path / 'payroll.db'}", nats_server, at("2026-05-02 10:00")):
        yield h


@pytest.fixture
async def payroll_any_db(database_url, nats_server) -> AsyncIterator[Harness]:
    """The service on SQLite and on PostgreSQL (the contract and the replay guarantees)."""
    async for h in _harness(database_url, nats_server, at("2026-05-02 10:00")):
        yield h


if os.environ.get("PAYROLL_TEST_DEBUG"):
    import logging

    logging.basicConfig(level=logging.INFO)
