"""Fixtures for the content service: the app over a real database, a FixedClock, an API helper acting as
an integration or as a staff member (a signed gateway assertion, shared.testing.staff_headers), and `feed`,
which applies clients events through the service's own NATS handlers in one transaction, as the durable
consumer does (the NATS path itself is tested in test_bus.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from content.app import create_app
from content.handlers import handlers
from litestar.testing import AsyncTestClient
from shared.clock import FixedClock
from shared.events import Event, decode
from shared.events.clients import (
    ClientProfileChanged,
    DealLost,
    DealManagerAssigned,
    DealPeriodOpened,
    DealRenewed,
    DealStageChanged,
)
from shared.infra import OutboxRow
from shared.testing import make_settings, staff_headers
from sqlalchemy import select

ALMATY = ZoneInfo("Asia/Almaty")
TOKEN = {"Authorization": "Bearer dev-token"}
LEAD = ("boss", "lead")
MANAGER = ("manager1", "content_manager")
OTHER = ("manager2", "content_manager")
ANALYST = ("ann", "analyst")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ALMATY)


# Monday 2 March 2026, 12:00 in Almaty.
T0 = local(2026, 3, 2, 12, 0).astimezone(UTC)


# ---------------------------------------------------------------- what the clients service emits

def stage(deal: str, to: str, at: datetime, manager: str = "manager1", client: str = "client-1") -> DealStageChanged:
    return DealStageChanged(deal_id=deal, client_id=client, occurred_at=at, from_stage=None, to_stage=to,
                            manager=manager)


def period_opened(deal: str, no: int, start: datetime, end: datetime, manager: str = "manager1",
                  client: str = "client-1", at: datetime | None = None) -> DealPeriodOpened:
    return DealPeriodOpened(deal_id=deal, client_id=client, occurred_at=at or start, manager=manager,
                            service_kind="account_management", period_no=no, period_start=start, period_end=end)


def renewed(deal: str, start: datetime, end: datetime, manager: str = "manager1") -> DealRenewed:
    return DealRenewed(deal_id=deal, client_id="client-1", occurred_at=start, manager=manager, payment_id="p2",
                       period_start=start, period_end=end)


def lost(deal: str, at: datetime, manager: str = "manager1") -> DealLost:
    return DealLost(deal_id=deal, client_id="client-1", occurred_at=at, manager=manager, reason="declined")


def assigned(deal: str, manager: str, at: datetime) -> DealManagerAssigned:
    return DealManagerAssigned(deal_id=deal, client_id="client-1", occurred_at=at, manager=manager)


def profile(client: str, name: str, deals: list[str], at: datetime, instagram: str = "@cakes") -> ClientProfileChanged:
    return ClientProfileChanged(client_id=client, deal_id=deals[0] if deals else None, occurred_at=at,
                                full_name=name, instagram=instagram, deal_ids=deals)


def midnight(*args: int) -> datetime:
    return local(*args, 0, 0).astimezone(UTC)


class Api:
    def __init__(self, client: AsyncTestClient, app: Any, clock: FixedClock) -> None:
        self.client, self.app, self.clock = client, app, clock

    def headers(self, as_: tuple[str, str] | None) -> dict[str, str]:
        if as_ is None:
            return dict(TOKEN)
        return staff_headers(as_[0], as_[1], self.app.state.settings)

    async def call(self, method: str, path: str, json: Any = None, as_: tuple[str, str] | None = MANAGER):
        url = path if path.startswith(("/public", "/api")) else f"/api/content{path}"
        headers = self.headers(as_) if as_ != "public" else {}
        if method == "get":
            return await self.client.get(url, headers=headers)
        return await getattr(self.client, method)(url, json=json, headers=headers)

    async def ok(self, method: str, path: str, json: Any = None, as_: Any = MANAGER,
                 status: int | tuple[int, ...] = (200, 201)) -> Any:
        response = await self.call(method, path, json, as_)
        expected = (status,) if isinstance(status, int) else status
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def plans(self, deal: str, as_: Any = MANAGER) -> list[dict[str, Any]]:
        return await self.ok("get", f"/deals/{deal}/plans", as_=as_)

    async def deadlines(self, deal: str) -> list[dict[str, Any]]:
        return await self.ok("get", f"/deals/{deal}/deadlines", as_=LEAD)

    def in_app(self, fn: Any, *args: Any) -> Any:
        """Run a coroutine function on the app's event loop (asyncpg connections belong to it)."""
        return self.client.blocking_portal.call(fn, *args)

    async def feed(self, *events: Event) -> None:
        """Apply clients events through the service's handlers, each in its own transaction."""
        runtime = self.app.state.runtime
        table = handlers(runtime)

        async def apply() -> None:
            for evt in events:
                async with runtime.db.transaction() as session:
                    await table[evt.subject](evt, session)

        self.in_app(apply)

    async def tick(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))
        self.in_app(self.app.state.runtime.scheduler.run_due)

    async def outbox(self) -> list[OutboxRow]:
        async def read() -> list[OutboxRow]:
            async with self.app.state.runtime.db.transaction() as session:
                return list((await session.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars())

        return self.in_app(read)

    async def events(self, prefix: str = "") -> list[Any]:
        return [decode(r.subject, r.payload) for r in await self.outbox() if r.subject.startswith(prefix)]


def new_deal() -> str:
    return f"deal-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture(autouse=True)
def _var_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ZABOTA_VAR_DIR", str(tmp_path / "var"))


async def _api(url: str, clock: FixedClock, nats_url: str = "nats://127.0.0.1:1") -> AsyncIterator[Api]:
    settings = make_settings("content", database_url=url, nats_url=nats_url)
    settings = make_settings("content", database_url=url, nats_url=nats_url,
                             service_urls={**settings.service_urls, "gateway": "https://zabota.example.kz"})
    app = create_app(settings=settings, clock=clock, background=False)
    async with AsyncTestClient(app) as client:
        yield Api(client, app, clock)


@pytest.fixture
async def api(tmp_path, clock) -> AsyncIterator[Api]:
    """The service on SQLite (rule-detail tests)."""
    async for a in _api(f"sqlite+aiosqlite:///{tmp_path / 'content.db'}", clock):
        yield a


@pytest.fixture
async def api_any(database_url, clock) -> AsyncIterator[Api]:
    """The service on SQLite and on PostgreSQL (the contract)."""
    async for a in _api(database_url, clock):
        yield a
