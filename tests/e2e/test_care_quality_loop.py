"""Issue 12 end to end through a real nats-server: clients → engagement → payroll.

- A payment makes a deal (manager anna), launched; engagement learns the current client from
  `clients.deal.period_opened.v1`
  and, its account in check-rounds mode, makes the 11:00 round for anna; a comment waiting since 10:50 is left
  unanswered; at 12:00 (one working hour) the round is missed → `engagement.deadline.breached.v1` (EN-4) →
  payroll's PAY-6 line for anna, priced by the rule set.
- On the agency's own brand account (live clocks), a Direct message assigned to agent1 waits past the 7-minute
  target → the EN-3 timer records the breach → payroll's PAY-6 line for agent1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from shared.clock import FixedClock
from shared.testing import eventually, make_settings, staff_headers

ALMATY = ZoneInfo("Asia/Almaty")
TOKEN = {"Authorization": "Bearer dev-token"}
LEAD = ("aliya", "lead")
TG = {"bot_token": "123456:ABC", "secret_token": "tg-secret-token-1234567890"}


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ALMATY)


class Svc:
    def __init__(self, name: str, client: AsyncTestClient, app: Any) -> None:
        self.name, self.client, self.app = name, client, app

    async def call(self, method: str, path: str, json: Any = None, as_: tuple[str, str] | None = None,
                   **params: Any) -> Any:
        headers = TOKEN if as_ is None else staff_headers(as_[0], as_[1], self.app.state.settings)
        response = await self.client.request(method, f"/api/{self.name}{path}", json=json, headers=headers,
                                              params=params or None)
        assert response.status_code in (200, 201, 202), f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def in_app(self, fn: Any) -> Any:
        return self.client.blocking_portal.call(fn)

    def run_due(self) -> None:
        self.in_app(self.app.state.runtime.scheduler.run_due)


@pytest.fixture
async def stack(tmp_path, nats_server, monkeypatch, database_url) -> AsyncIterator[tuple[Svc, Svc, Svc, FixedClock]]:
    from clients.app import create_app as clients_app
    from engagement.app import create_app as engagement_app
    from engagement.config import ChannelSettings
    from payroll.app import create_app as payroll_app

    monkeypatch.setenv("ZABOTA_VAR_DIR", str(tmp_path / "var"))
    clock = FixedClock(local(2026, 3, 2, 10, 40))                      # Monday
    capp = clients_app(settings=make_settings("clients", database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                                              nats_url=nats_server.url), clock=clock)
    eapp = engagement_app(settings=make_settings("engagement", database_url=database_url, nats_url=nats_server.url),
                          clock=clock, channels=ChannelSettings(telegram_api_url="http://127.0.0.1:1"))
    papp = payroll_app(settings=make_settings("payroll", database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
                                              nats_url=nats_server.url), clock=clock)
    async with AsyncTestClient(capp) as c, AsyncTestClient(eapp) as e, AsyncTestClient(papp) as p:
        clients, engagement, payroll = Svc("clients", c, capp), Svc("engagement", e, eapp), Svc("payroll", p, papp)
        await clients.call("PUT", "/staff/anna", {"role": "content_manager"})
        for login in ("anna", "agent1"):
            await payroll.call("PUT", f"/employees/{login}", {"employed_from": "2026-01-01",
                                                              "role": "content_manager"})
        await payroll.call("PUT", "/rules", {"effective_from": "2026-03",
                                             "deadline_fines": {"CL-9": "-5000", "EN-3": "-500", "EN-4": "-1000"}},
                           as_=LEAD)
        yield clients, engagement, payroll, clock


def tg_update(update_id: int, user_id: int, at: datetime, text: str) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(at.timestamp()), "text": text,
        "from": {"id": user_id, "is_bot": False, "first_name": "Анна"},
        "chat": {"id": user_id, "first_name": "Анна", "type": "private"}}}


async def pay6(payroll: Svc, login: str, deadline_id: str | None = None) -> list[dict]:
    statements = await payroll.call("GET", "/statements", as_=LEAD, month="2026-03")
    by = {s["manager"]: s for s in statements}
    return [ln for ln in by.get(login, {"lines": []})["lines"]
            if ln["rule"] == "PAY-6" and deadline_id in (None, ln["deadline_id"])]


async def test_en3_and_en4_breaches_reach_payroll_through_nats(stack) -> None:
    clients, engagement, payroll, clock = stack
    paid = await clients.call("POST", "/payments", {
        "external_id": "p-1", "paid_at": local(2026, 3, 2, 10, 30).isoformat(), "amount": "60000.00",
        "currency": "KZT", "service_kind": "account_management", "responsible_manager": "anna",
        "client": {"full_name": "Ольга Ким", "phone": "+7 701 555 1122", "payer_type": "individual",
                   "instagram": "https://instagram.com/olga.kim", "email": "olga@example.kz"}})
    deal = paid["deal_id"]
    await clients.call("POST", f"/deals/{deal}/stage", {"stage": "project_launched", "service_start": "2026-03-02",
                                                        "instagram_login": "olga.kim", "instagram_password": "pw"})

    async def account_known() -> bool:
        return await _account(engagement, deal)

    await eventually(account_known, timeout=30, message="engagement learned the current client from clients events")
    await engagement.call("PUT", f"/care-settings/{deal}", {"mode": "rounds"}, as_=LEAD)
    client_channel = await engagement.call("POST", "/channels", {"kind": "telegram", "name": "Ольга TG",
                                                                 "deal_id": deal, "config": TG}, as_=LEAD)
    brand_channel = await engagement.call("POST", "/channels", {"kind": "telegram", "name": "Наш бренд",
                                                                "config": {**TG, "bot_token": "654321:XYZ"}}, as_=LEAD)
    await engagement.call("PUT", "/staff/agent1/accounts", {"accounts": ["agency"]}, as_=LEAD)
    for channel, update in ((client_channel, tg_update(1, 501, local(2026, 3, 2, 10, 50), "Где мой заказ?")),
                            (brand_channel, tg_update(2, 502, local(2026, 3, 2, 10, 52), "Сколько стоит?"))):
        response = await engagement.client.post(f"/webhooks/telegram/{channel['id']}", json=update,
                                                headers={"X-Telegram-Bot-Api-Secret-Token": TG["secret_token"]})
        assert response.status_code == 200
    engagement.in_app(engagement.app.state.runtime.state["processor"].run_due)
    [brand] = await engagement.call("GET", "/conversations", as_=LEAD, status="open", channel=brand_channel["id"])
    await engagement.call("POST", f"/conversations/{brand['id']}/assign", {"agent": "agent1"}, as_=LEAD)

    clock.set(local(2026, 3, 2, 11, 0))
    engagement.run_due()                                                # the 11:00 round; EN-3 due 10:59
    [round11] = await engagement.call("GET", "/check-rounds", as_=("anna", "content_manager"))
    assert (round11["state"], round11["left"]) == ("open", 1)
    clock.set(local(2026, 3, 2, 12, 0, 1))
    engagement.run_due()                                                # one working hour later: missed

    async def fined() -> bool:
        return len(await pay6(payroll, "anna", round11["id"])) == 1 and len(await pay6(payroll, "agent1")) == 1

    await eventually(fined, timeout=30, message="payroll fined the EN-4 and EN-3 breaches")
    [anna_line], [agent_line] = await pay6(payroll, "anna", round11["id"]), await pay6(payroll, "agent1")
    assert anna_line["amount"] == "-1000.00" and agent_line["amount"] == "-500.00", (anna_line, agent_line)


async def _account(engagement: Svc, deal: str) -> bool:
    from engagement.quality_models import ClientAccount

    async def read() -> bool:
        async with engagement.app.state.runtime.db.transaction() as session:
            row = await session.get(ClientAccount, deal)
            return row is not None and row.current and row.manager == "anna"

    return engagement.in_app(read)
