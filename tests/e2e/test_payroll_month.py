"""A hand-computed payroll month (seed 001's numbers) through the REAL clients API, real NATS and payroll.

Nothing is inserted into the ledger: the clients service records payments, launches, a declined renewal,
a refund, an automatic loss and the late payment that undoes it; its timers fire (money-back windows,
renewal deadlines, the automatic loss); its outbox relay publishes to JetStream; payroll consumes.

Two content managers, April 2026 (Asia/Almaty). Deals A1–A3 (anna) and B1–B2 (boris) were launched on
2 March, so their first period ends on 2 April 00:00.

anna  PAY-1 base                                   150,000
      PAY-2 A1 renewed 1 Apr (after a full month)  +10,000
      PAY-2 A2 renewed 1 Apr                       +10,000
      PAY-3 A3 declined 1 Apr (after a full month)  −5,000
      PAY-4 N1 paid 3 Apr, refunded 6 Apr          −4,000   (inside the 10 days; no PAY-5 for N1)
      PAY-5 N3 paid 3 Apr, not refunded by 13 Apr  +2,000
                                                  = 163,000
boris PAY-1 base                                   150,000
      PAY-2 B1 renewed 1 Apr                       +10,000
      PAY-6 B2 renewal call (CL-11) breached 2 Apr       0   (recorded with 0: only CL-9 has a fine)
      PAY-3 B2 lost automatically 9 Apr             −5,000 → undone: the late payment is dated 8 Apr
      PAY-2 B2 renewed by that payment (8 Apr)     +10,000
      PAY-5 N2 paid 3 Apr, not refunded by 13 Apr  +2,000
      PAY-7 best manager                           +30,000   (2 renewals each; lost: boris 0, anna 1)
                                                  = 202,000
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from nats.js.errors import NotFoundError
from shared.bus import Bus
from shared.clock import FixedClock
from shared.infra import OutboxRow
from shared.testing import default_settings, eventually, make_settings, staff_headers
from sqlalchemy import func, select

ALMATY = ZoneInfo("Asia/Almaty")
TOKEN = {"Authorization": "Bearer dev-token"}
LEAD = staff_headers("aliya", "lead", default_settings("payroll"))


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ALMATY)


def payment(external_id: str, paid_at: datetime, manager: str | None = None, deal_id: str | None = None) -> dict:
    body: dict[str, Any] = {"external_id": external_id, "paid_at": paid_at.isoformat(), "amount": "60000.00",
                            "currency": "KZT", "service_kind": "account_management"}
    if deal_id:
        return body | {"deal_id": deal_id}
    body["client"] = {"full_name": f"Клиент {external_id}", "phone": f"+7 701 {abs(hash(external_id)) % 10**7:07d}",
                      "instagram": f"https://instagram.com/{external_id}", "email": f"{external_id}@example.kz",
                      "payer_type": "individual"}
    return body | {"responsible_manager": manager}


class Clients:
    def __init__(self, client: AsyncTestClient, app: Any, clock: FixedClock) -> None:
        self.client, self.app, self.clock = client, app, clock

    async def call(self, method: str, path: str, json: Any = None) -> dict:
        response = await self.client.request(method, f"/api/clients{path}", json=json, headers=TOKEN)
        assert response.status_code in (200, 201), f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def at(self, when: datetime) -> None:
        """Move the shared clock and fire what clients has due (its scheduler, deterministically)."""
        self.clock.set(when)
        self.client.blocking_portal.call(self.app.state.runtime.scheduler.run_due)

    async def pay(self, external_id: str, paid_at: datetime, manager: str | None = None,
                  deal_id: str | None = None) -> str:
        return (await self.call("POST", "/payments", payment(external_id, paid_at, manager, deal_id)))["deal_id"]

    async def launch(self, deal_id: str, start: str) -> None:
        await self.call("POST", f"/deals/{deal_id}/stage", {
            "stage": "project_launched", "service_start": start, "instagram_login": "acc", "instagram_password": "pw"})

    def unpublished(self) -> int:
        async def count() -> int:
            async with self.app.state.runtime.db.transaction() as session:
                return (await session.execute(select(func.count()).select_from(OutboxRow)
                                              .where(OutboxRow.published_at.is_(None)))).scalar_one()

        return self.client.blocking_portal.call(count)


@pytest.fixture
async def stack(tmp_path, nats_server, monkeypatch) -> AsyncIterator[tuple[Clients, AsyncTestClient, Bus]]:
    from clients.app import create_app as clients_app
    from payroll.app import create_app as payroll_app

    monkeypatch.setenv("ZABOTA_VAR_DIR", str(tmp_path / "var"))
    clock = FixedClock(local(2026, 3, 2, 12, 0))
    capp = clients_app(settings=make_settings("clients", database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                                              nats_url=nats_server.url), clock=clock)
    papp = payroll_app(settings=make_settings("payroll", database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
                                              nats_url=nats_server.url), clock=clock)
    bus = Bus(nats_server.url, "e2e-observer")
    async with AsyncTestClient(capp) as c, AsyncTestClient(papp) as p:
        await bus.connect(retry_forever=False)
        clients = Clients(c, capp, clock)
        for login in ("anna", "boris"):
            await clients.call("PUT", f"/staff/{login}", {"role": "content_manager"})
        try:
            yield clients, p, bus
        finally:
            await bus.drain()


async def payroll_caught_up(clients: Clients, bus: Bus) -> None:
    async def done() -> bool:
        if clients.unpublished():
            return False
        stream = await bus.js.stream_info("CLIENTS")
        try:
            info = await bus.js.consumer_info("CLIENTS", "payroll-clients")
        except NotFoundError:
            return False
        return info.num_pending == 0 and info.num_ack_pending == 0 and \
            info.delivered.stream_seq >= stream.state.last_seq

    await eventually(done, timeout=60, message="clients published everything and payroll consumed it")


async def test_payroll_month_hand_computed_from_seed_001_through_clients_and_nats(stack) -> None:
    clients, payroll, bus = stack
    # 2 March: five clients pay and are launched the same day.
    deals = {}
    for name, manager in (("A1", "anna"), ("A2", "anna"), ("A3", "anna"), ("B1", "boris"), ("B2", "boris")):
        deals[name] = await clients.pay(name, local(2026, 3, 2, 11, 0), manager)
        await clients.launch(deals[name], "2026-03-02")
    await clients.at(local(2026, 3, 30, 12, 0))          # renewal calls (CL-11) are due at the period end

    await clients.at(local(2026, 4, 1, 10, 0))
    await clients.call("POST", f"/deals/{deals['A3']}/renewal-answer", {"continues": False})   # PAY-3
    await clients.at(local(2026, 4, 1, 15, 0))
    await clients.pay("A1-r", local(2026, 4, 1, 14, 0), deal_id=deals["A1"])                  # PAY-2
    await clients.pay("A2-r", local(2026, 4, 1, 14, 30), deal_id=deals["A2"])                 # PAY-2
    await clients.pay("B1-r", local(2026, 4, 1, 14, 0), deal_id=deals["B1"])                  # PAY-2

    # 3 April: three new clients; first calls made in time.
    await clients.at(local(2026, 4, 3, 12, 20))
    for name, manager in (("N1", "anna"), ("N2", "boris"), ("N3", "anna")):
        deals[name] = await clients.pay(name, local(2026, 4, 3, 12, 0), manager)
        await clients.call("POST", f"/deals/{deals[name]}/stage",
                           {"stage": "contacted", "at": local(2026, 4, 3, 12, 10).isoformat()})
    await clients.at(local(2026, 4, 6, 12, 0))
    await clients.call("POST", f"/deals/{deals['N1']}/refunds", {                               # PAY-4
        "external_id": "N1-refund", "amount": "60000.00", "currency": "KZT",
        "refunded_at": local(2026, 4, 6, 11, 0).isoformat()})

    # B2 never paid: its renewal call was breached on 2 April, the deal is lost on 9 April 00:00 …
    await clients.at(local(2026, 4, 9, 0, 1))
    assert (await clients.call("GET", f"/deals/{deals['B2']}"))["stage"] == "lost"
    # … and a bank transfer dated 8 April arrives on the 10th: the loss is undone, the renewal counts.
    await clients.at(local(2026, 4, 10, 12, 0))
    await clients.pay("B2-r", local(2026, 4, 8, 12, 0), deal_id=deals["B2"])

    await clients.at(local(2026, 5, 2, 10, 0))           # N1–N3's 10 days ended on 13 April
    await payroll_caught_up(clients, bus)

    response = await payroll.get("/api/payroll/statements", params={"month": "2026-04"}, headers=LEAD)
    assert response.status_code == 200, response.text
    st = {s["manager"]: s for s in response.json()}
    assert sorted(st) == ["anna", "boris"]

    def lines(manager: str) -> list[tuple[str, str, str | None]]:
        names = {v: k for k, v in deals.items()}
        return sorted((ln["rule"], ln["amount"], names.get(ln["deal_id"])) for ln in st[manager]["lines"])

    assert lines("anna") == [
        ("PAY-1", "150000.00", None), ("PAY-2", "10000.00", "A1"), ("PAY-2", "10000.00", "A2"),
        ("PAY-3", "-5000.00", "A3"), ("PAY-4", "-4000.00", "N1"), ("PAY-5", "2000.00", "N3")]
    assert lines("boris") == [
        ("PAY-1", "150000.00", None), ("PAY-2", "10000.00", "B1"), ("PAY-2", "10000.00", "B2"),
        ("PAY-5", "2000.00", "N2"), ("PAY-6", "0.00", "B2"), ("PAY-7", "30000.00", None)]
    assert (st["anna"]["total"], st["boris"]["total"]) == ("163000.00", "202000.00")
    for s in st.values():
        assert Decimal(s["total"]) == sum(Decimal(ln["amount"]) for ln in s["lines"])
    assert (st["anna"]["best_manager"], st["boris"]["best_manager"]) == (False, True)
    # DESIGN 6, one trace per client journey: B2's breach (fired by a timer on 2 April) and its renewal
    # (a payment posted after the loss) continue the trace of the payment that created B2 in March —
    # through clients, its timers, JetStream and payroll.
    b2_traces = {ln["trace_id"] for ln in st["boris"]["lines"] if ln["deal_id"] == deals["B2"]}
    assert len(b2_traces) == 1 and None not in b2_traces, b2_traces

    month = (await payroll.get("/api/payroll/months/2026-04", headers=LEAD)).json()
    assert month["best_manager"] == "boris"
    assert "decided over anna by lost: 0 vs 1" in month["best_manager_why"]["reason"]
    assert month["best_manager_why"]["winner"]["renewals"] == 2

    closed = await payroll.post("/api/payroll/months/2026-04/close", headers=LEAD)
    assert closed.status_code == 200, closed.text
    assert {m["manager"]: m["total"] for m in closed.json()["managers"]} == {"anna": "163000.00",
                                                                             "boris": "202000.00"}
    after = (await payroll.get("/api/payroll/statements", params={"month": "2026-04"}, headers=LEAD)).json()
    assert {s["manager"]: s["total"] for s in after} == {"anna": "163000.00", "boris": "202000.00"}
    # The base lines of March came from the same events (the managers were enrolled on 2 March).
    march = (await payroll.get("/api/payroll/months/2026-03", headers=LEAD)).json()
    assert {m["manager"] for m in march["managers"]} == {"anna", "boris"}
