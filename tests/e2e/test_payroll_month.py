"""A hand-computed payroll month (seed 001's numbers) through the REAL clients API, real NATS and payroll.

Nothing is inserted into the ledger: the clients service records payments, launches, a declined renewal,
a refund, an automatic loss and the late payment that undoes it; its timers fire (money-back windows,
renewal deadlines, the automatic loss); its outbox relay publishes to JetStream; payroll consumes.

Two content managers, April 2026 (Asia/Almaty). Deals A1–A3 (anna) and B1–B2 (boris) were launched on
2 March, so their first period ends on 2 April 00:00. The agency fines a breached renewal call (CL-11)
with 1,000, a care first response past its target (EN-3) with 500 and a missed check round (EN-4) with 300 from
April (a rule version set by the lead; DOMAIN leaves these at 0 until an agency sets them). The care inbox's
deadlines arrive on the ENGAGEMENT stream, published here as the engagement service publishes them.

anna  PAY-1 base                                   150,000
      PAY-2 A1 renewed 1 Apr (after a full month)  +10,000
      PAY-2 A2 renewed 1 Apr                       +10,000
      PAY-3 A3 declined 1 Apr (after a full month)  −5,000
      PAY-4 N1 paid 3 Apr, refunded 6 Apr          −4,000   (inside the 10 days; no PAY-5 for N1)
      PAY-5 N3 paid 3 Apr, not refunded by 13 Apr  +2,000
      PAY-5 N4 paid 3 Apr, not refunded by 13 Apr  +2,000 → voided: two partial refunds dated 12 Apr were
      PAY-4 N4 refunded (twice) inside the 10 days −4,000   recorded on 20 Apr; one refunded client, one line
      PAY-6 A1's 19:00 check round missed 7 Apr (EN-4) −300
                                                  = 158,700
boris PAY-1 base                                   150,000
      PAY-2 B1 renewed 1 Apr                       +10,000
      PAY-6 B2 renewal call (CL-11) breached 2 Apr  −1,000
      PAY-3 B2 lost automatically 9 Apr             −5,000 → undone: the late payment is dated 8 Apr
      PAY-2 B2 renewed by that payment (8 Apr)     +10,000
      PAY-5 N2 paid 3 Apr, not refunded by 13 Apr  +2,000
      PAY-6 a Direct to B1 answered late 14 Apr (EN-3) −500
      PAY-6 a comment on B1 answered late 15 Apr (EN-3) −500 → waived by the senior agent (spam): undone
      PAY-7 best manager                           +30,000   (2 renewals each; lost: boris 0, anna 1)
                                                  = 200,500

April is closed on 2 May. On 3 May the renewal call of B2 turns out to have been made on 1 April (a fact
dated before its due time, recorded late: `clients.deadline.met.v1` revising the breach, published here as
clients will publish it): April stays as it was, and boris's May statement gets +1,000 for April,
pointing at the frozen fine (PAY-8).

Payroll runs on SQLite and on PostgreSQL (the clients service on SQLite in both).
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
from shared.bus import Bus, Outgoing
from shared.clock import FixedClock
from shared.events import encode
from shared.events.clients import DeadlineMet
from shared.events.engagement import EngagementDeadlineBreached, EngagementDeadlineWaived
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
async def stack(tmp_path, nats_server, monkeypatch, database_url
                ) -> AsyncIterator[tuple[Clients, AsyncTestClient, Bus]]:
    from clients.app import create_app as clients_app
    from payroll.app import create_app as payroll_app

    monkeypatch.setenv("ZABOTA_VAR_DIR", str(tmp_path / "var"))
    clock = FixedClock(local(2026, 3, 2, 12, 0))
    capp = clients_app(settings=make_settings("clients", database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                                              nats_url=nats_server.url), clock=clock)
    papp = payroll_app(settings=make_settings("payroll", database_url=database_url, nats_url=nats_server.url),
                       clock=clock)
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

    async def engagement_done() -> bool:
        stream = await bus.js.stream_info("ENGAGEMENT")
        try:
            info = await bus.js.consumer_info("ENGAGEMENT", "payroll-engagement")
        except NotFoundError:
            return False
        return info.num_pending == 0 and info.num_ack_pending == 0 and \
            info.delivered.stream_seq >= stream.state.last_seq

    await eventually(engagement_done, timeout=60, message="payroll consumed the care inbox's deadlines")


async def publish(bus: Bus, *events: Any) -> None:
    await bus.publish_many([Outgoing(e.subject, encode(e), {"Nats-Msg-Id": e.event_id}) for e in events])


async def test_payroll_month_hand_computed_from_seed_001_through_clients_and_nats(stack) -> None:
    clients, payroll, bus = stack
    rules = await payroll.put("/api/payroll/rules", json={"effective_from": "2026-04",
                                                          "deadline_fines": {"CL-9": "-5000", "CL-11": "-1000",
                                                                             "EN-3": "-500", "EN-4": "-300"}},
                              headers=LEAD)
    assert rules.status_code == 200, rules.text
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
    for name, manager in (("N1", "anna"), ("N2", "boris"), ("N3", "anna"), ("N4", "anna")):
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

    # The care inbox (issue 12): anna missed A1's 19:00 check round on 7 April (EN-4); boris answered a Direct
    # to B1 past the 7-minute target on 14 April (EN-3), and a comment on 15 April — waived by the senior agent
    # (spam), so its fine is undone.
    await publish(bus,
                  EngagementDeadlineBreached(deadline_id="round-A1-0407-1900", rule="EN-4", owner="anna",
                                             due_at=local(2026, 4, 7, 19, 0), deal_id=deals["A1"],
                                             occurred_at=local(2026, 4, 7, 19, 0)),
                  EngagementDeadlineBreached(deadline_id="frt-c1", rule="EN-3", owner="boris",
                                             due_at=local(2026, 4, 14, 10, 7), deal_id=deals["B1"],
                                             conversation_id="c1", occurred_at=local(2026, 4, 14, 10, 7)),
                  EngagementDeadlineBreached(deadline_id="frt-c2", rule="EN-3", owner="boris",
                                             due_at=local(2026, 4, 15, 16, 7), deal_id=deals["B1"],
                                             conversation_id="c2", occurred_at=local(2026, 4, 15, 16, 7)),
                  EngagementDeadlineWaived(deadline_id="frt-c2", rule="EN-3", owner="boris", waived_by="sanzhar",
                                           reason="spam", due_at=local(2026, 4, 15, 16, 7), deal_id=deals["B1"],
                                           conversation_id="c2", occurred_at=local(2026, 4, 15, 17, 0)))

    # 20 April: N1–N4's 10 days ended on 13 April (N4: not refunded, PAY-5) — then two partial refunds of N4
    # dated 12 April are recorded: inside the window after all (issue 7 §1): N4's PAY-5 is voided, one PAY-4.
    await clients.at(local(2026, 4, 20, 12, 0))
    await payroll_caught_up(clients, bus)
    april = (await payroll.get("/api/payroll/statements", params={"month": "2026-04"}, headers=LEAD)).json()
    assert deals["N4"] in {ln["deal_id"] for s in april for ln in s["lines"] if ln["rule"] == "PAY-5"}
    for n, (amount, hour) in enumerate((("20000.00", 11), ("10000.00", 15))):
        await clients.call("POST", f"/deals/{deals['N4']}/refunds", {
            "external_id": f"N4-refund-{n}", "amount": amount, "currency": "KZT",
            "refunded_at": local(2026, 4, 12, hour, 0).isoformat()})

    await clients.at(local(2026, 5, 2, 10, 0))
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
        ("PAY-3", "-5000.00", "A3"), ("PAY-4", "-4000.00", "N1"), ("PAY-4", "-4000.00", "N4"),
        ("PAY-5", "2000.00", "N3"), ("PAY-6", "-300.00", "A1")]
    assert lines("boris") == [
        ("PAY-1", "150000.00", None), ("PAY-2", "10000.00", "B1"), ("PAY-2", "10000.00", "B2"),
        ("PAY-5", "2000.00", "N2"), ("PAY-6", "-1000.00", "B2"), ("PAY-6", "-500.00", "B1"),
        ("PAY-7", "30000.00", None)]
    assert (st["anna"]["total"], st["boris"]["total"]) == ("158700.00", "200500.00")
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
    assert {m["manager"]: m["total"] for m in closed.json()["managers"]} == {"anna": "158700.00",
                                                                             "boris": "200500.00"}
    after = (await payroll.get("/api/payroll/statements", params={"month": "2026-04"}, headers=LEAD)).json()
    assert {s["manager"]: s["total"] for s in after} == {"anna": "158700.00", "boris": "200500.00"}

    # 3 May: B2's renewal call was made on 1 April after all; the met is recorded now, after April closed.
    fine = next(ln for ln in st["boris"]["lines"] if ln["rule"] == "PAY-6" and ln["deal_id"] == deals["B2"])
    frozen = next(ln for s in after if s["manager"] == "boris" for ln in s["lines"]
                  if ln["rule"] == "PAY-6" and ln["deal_id"] == deals["B2"])
    clients.clock.set(local(2026, 5, 3, 10, 0))
    due = datetime.fromisoformat(fine["occurred_at"])
    met = DeadlineMet(deadline_id=fine["deadline_id"], rule="CL-11", owner="boris", due_at=due,
                      met_at=local(2026, 4, 1, 16, 0), occurred_at=local(2026, 4, 1, 16, 0),
                      deal_id=deals["B2"], revises_breach_event_id=fine["event_id"])
    await bus.publish_many([Outgoing(met.subject, encode(met), {"Nats-Msg-Id": met.event_id})])
    await payroll_caught_up(clients, bus)
    again = (await payroll.get("/api/payroll/statements", params={"month": "2026-04"}, headers=LEAD)).json()
    assert again == after                                                    # a closed month never changes
    may = (await payroll.get("/api/payroll/statements", params={"month": "2026-05"}, headers=LEAD)).json()
    may_boris = next(s for s in may if s["manager"] == "boris")
    assert [(ln["rule"], ln["amount"], ln["adjusts_month"], ln["corrects_line_id"], ln["event_id"])
            for ln in may_boris["lines"] if ln["adjusts_month"]] == [
        ("PAY-6", "1000.00", "2026-04", frozen["id"], met.event_id)]
    # The base lines of March came from the same events (the managers were enrolled on 2 March).
    march = (await payroll.get("/api/payroll/months/2026-03", headers=LEAD)).json()
    assert {m["manager"] for m in march["managers"]} == {"anna", "boris"}
