"""Fixtures for the clients service: the app over a real database, a FixedClock, and an API helper that
acts as an integration or as a staff member (a signed X-Zabota-Assertion, as the gateway sends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clients.app import create_app
from litestar.testing import AsyncTestClient
from shared.clock import FixedClock
from shared.events import decode
from shared.infra import OutboxRow
from shared.testing import make_settings, staff_headers
from sqlalchemy import select

ALMATY = ZoneInfo("Asia/Almaty")
# Monday 2 March 2026, 12:00 in Almaty: a working day, inside working hours.
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=ALMATY).astimezone(UTC)
TOKEN = {"Authorization": "Bearer dev-token"}


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ALMATY)


def payment(external_id: str = "pay-1", *, paid_at: datetime | None = None, kind: str = "account_management",
            payer: str = "individual", **extra: Any) -> dict[str, Any]:
    client = {"full_name": "Айгерим Сапарова", "phone": f"+7 701 {abs(hash(external_id)) % 10_000_000:07d}",
              "instagram": "https://instagram.com/aigerim.cakes", "email": "aigerim@example.kz", "payer_type": payer}
    if payer == "legal":
        client |= {"company_name": "ТОО «Сладкий дом»", "bin": "123456789012"}
    body = {"external_id": external_id, "paid_at": (paid_at or T0).isoformat(), "amount": "60000.00",
            "currency": "KZT", "service_kind": kind, "client": client}
    return body | extra


class Api:
    def __init__(self, client: AsyncTestClient, app: Any, clock: FixedClock) -> None:
        self.client, self.app, self.clock = client, app, clock

    def headers(self, as_: tuple[str, str] | None) -> dict[str, str]:
        if as_ is None:
            return dict(TOKEN)
        return staff_headers(as_[0], as_[1], self.app.state.settings)

    async def post(self, path: str, json: Any = None, as_: tuple[str, str] | None = None, **kw: Any):
        return await self.client.post(f"/api/clients{path}", json=json, headers=self.headers(as_), **kw)

    async def put(self, path: str, json: Any = None, as_: tuple[str, str] | None = None):
        return await self.client.put(f"/api/clients{path}", json=json, headers=self.headers(as_))

    async def get(self, path: str, as_: tuple[str, str] | None = None, **kw: Any):
        return await self.client.get(f"/api/clients{path}", headers=self.headers(as_), **kw)

    async def ok(self, method: str, path: str, json: Any = None, as_: tuple[str, str] | None = None,
                 status: int | tuple[int, ...] = (200, 201)) -> Any:
        response = await getattr(self, method)(path, json, as_) if method != "get" else await self.get(path, as_)
        expected = (status,) if isinstance(status, int) else status
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def pay(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.ok("post", "/payments", body)

    async def deal(self, deal_id: str) -> dict[str, Any]:
        return await self.ok("get", f"/deals/{deal_id}")

    async def tick(self, **delta: float) -> None:
        """Let time pass and fire what is due (the background scheduler, deterministically)."""
        from datetime import timedelta

        self.clock.advance(timedelta(**delta))
        await self.run_due()

    def in_app(self, fn: Any, *args: Any) -> Any:
        """Run a coroutine function on the app's event loop: AsyncTestClient runs the app (and its
        database pool) in a portal thread, and asyncpg connections belong to the loop that made them."""
        return self.client.blocking_portal.call(fn, *args)

    async def run_due(self) -> int:
        return self.in_app(self.app.state.runtime.scheduler.run_due)

    async def outbox(self) -> list[OutboxRow]:
        async def read() -> list[OutboxRow]:
            async with self.app.state.runtime.db.transaction() as session:
                return list((await session.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars())

        return self.in_app(read)

    async def events(self, subject_suffix: str | None = None, deal_id: str | None = None) -> list[Any]:
        events = [decode(r.subject, r.payload) for r in await self.outbox()]
        if subject_suffix:
            events = [e for e in events if e.subject.startswith(f"clients.{subject_suffix}")
                      or e.subject.startswith(subject_suffix)]
        if deal_id:
            events = [e for e in events if e.deal_id == deal_id]
        return events

    async def roster(self) -> None:
        for login, role in (("manager1", "content_manager"), ("manager2", "content_manager"),
                            ("admanager", "ad_manager"), ("growth", "growth")):
            await self.ok("put", f"/staff/{login}", {"role": role})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture(autouse=True)
def _var_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ZABOTA_VAR_DIR", str(tmp_path / "var"))


async def _api(url: str, clock: FixedClock, nats_url: str = "nats://127.0.0.1:1") -> AsyncIterator[Api]:
    app = create_app(settings=make_settings("clients", database_url=url, nats_url=nats_url), clock=clock,
                     background=False)
    async with AsyncTestClient(app) as client:
        api = Api(client, app, clock)
        await api.roster()
        yield api


@pytest.fixture
async def api(tmp_path, clock) -> AsyncIterator[Api]:
    """The service on SQLite (rule-detail tests)."""
    async for a in _api(f"sqlite+aiosqlite:///{tmp_path / 'clients.db'}", clock):
        yield a


@pytest.fixture
async def api_any(database_url, clock) -> AsyncIterator[Api]:
    """The service on SQLite and on PostgreSQL (the contract)."""
    async for a in _api(database_url, clock):
        yield a
