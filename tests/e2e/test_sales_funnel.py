"""Issue 15 (CL-16 × EN-1): from the first message to a paying client, through the REAL engagement and clients
services and a real nats-server.

Engagement receives channel webhooks (Instagram Direct, Telegram) on the agency's own sales accounts, its
processor stores the messages and its outbox relay publishes `engagement.conversation.sales_dialog_started.v1`
and `engagement.conversation.answered.v1`; the clients service's durable consumer registers / matches the lead
and publishes `clients.lead.stage_changed.v1`, which engagement's consumer records on the conversations.
Nothing is fed by hand. Both services share one FixedClock; engagement runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from shared.clock import FixedClock
from shared.testing import eventually, make_settings, staff_headers

TOKEN = {"Authorization": "Bearer dev-token"}
LEAD = ("aliya", "lead")
AGENT1, AGENT2 = ("agent1", "care_agent"), ("agent2", "care_agent")
APP_SECRET = "meta-app-secret-e2e"
IG_SALES = "17841400000000777"
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # Monday 11:00 in Almaty


class Service:
    def __init__(self, name: str, client: AsyncTestClient, app: Any) -> None:
        self.name, self.client, self.app = name, client, app

    async def call(self, method: str, path: str, json_body: Any = None, as_: tuple[str, str] | None = LEAD,
                   status: tuple[int, ...] = (200, 201, 202), params: dict | None = None) -> Any:
        url = path if path.startswith(("/api/", "/webhooks/")) else f"/api/{self.name}{path}"
        headers = TOKEN if as_ is None else staff_headers(as_[0], as_[1], self.app.state.settings)
        response = await self.client.request(method, url, json=json_body, headers=headers, params=params)
        assert response.status_code in status, f"{method} {url}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def status_of(self, path: str, as_: tuple[str, str] | None = LEAD) -> int:
        headers = TOKEN if as_ is None else staff_headers(as_[0], as_[1], self.app.state.settings)
        return (await self.client.get(f"/api/{self.name}{path}", headers=headers)).status_code


@pytest.fixture
async def services(tmp_path, nats_server, monkeypatch, database_url
                   ) -> AsyncIterator[tuple[Service, Service, FixedClock]]:
    """clients on SQLite, engagement on SQLite and on PostgreSQL."""
    from clients.app import create_app as clients_app
    from engagement.app import create_app as engagement_app
    from engagement.config import ChannelSettings

    monkeypatch.setenv("ZABOTA_VAR_DIR", str(tmp_path / "var"))
    clock = FixedClock(T0)
    capp = clients_app(settings=make_settings("clients", database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                                              nats_url=nats_server.url), clock=clock)
    channels = ChannelSettings(meta_app_secret=APP_SECRET, meta_verify_token="verify",
                               instagram_graph_url="http://127.0.0.1:1/graph", telegram_api_url="http://127.0.0.1:1/tg",
                               vk_api_url="http://127.0.0.1:1/vk", public_url="https://zabota.example",
                               http_timeout_seconds=2.0)
    eapp = engagement_app(settings=make_settings("engagement", database_url=database_url, nats_url=nats_server.url),
                          clock=clock, channels=channels)
    async with AsyncTestClient(capp) as c, AsyncTestClient(eapp) as e:
        clients, engagement = Service("clients", c, capp), Service("engagement", e, eapp)
        await clients.call("PUT", "/staff/anna", {"role": "content_manager"}, as_=None)
        for agent in ("agent1", "agent2"):
            await engagement.call("PUT", f"/staff/{agent}/accounts", {"accounts": ["agency"]})
        yield clients, engagement, clock


async def sales_channels(engagement: Service) -> dict[str, dict]:
    ig = await engagement.call("POST", "/channels", {"kind": "instagram", "name": "Агентство IG", "sales": True,
                                                     "config": {"ig_user_id": IG_SALES, "access_token": "IGA-x"}})
    tg = await engagement.call("POST", "/channels", {"kind": "telegram", "name": "Агентство TG",
                                                     "config": {"bot_token": "1:AAA", "secret_token": "tg-sales"}})
    assert tg["sales"] is False
    tg = await engagement.call("PATCH", f"/channels/{tg['id']}", {"sales": True})   # marked later by the lead
    client_tg = await engagement.call("POST", "/channels", {
        "kind": "telegram", "name": "Клиент TG", "deal_id": "deal-client",
        "config": {"bot_token": "2:BBB", "secret_token": "tg-client"}})
    assert ig["sales"] and tg["sales"] and not client_tg["sales"]
    return {"ig": ig, "tg": tg, "client_tg": client_tg}


async def direct(engagement: Service, sender: str, text: str, at: datetime, mid: str) -> None:
    body = {"object": "instagram", "entry": [{"id": IG_SALES, "time": int(at.timestamp() * 1000), "messaging": [
        {"sender": {"id": sender}, "recipient": {"id": IG_SALES}, "timestamp": int(at.timestamp() * 1000),
         "message": {"mid": mid, "text": text}}]}]}
    raw = json.dumps(body, ensure_ascii=False).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    response = await engagement.client.post("/webhooks/instagram", content=raw, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": signature})
    assert response.status_code == 200, response.text


async def telegram(engagement: Service, channel: dict, secret: str, user_id: int, text: str, at: datetime,
                   update_id: int, first_name: str = "Айгерим") -> None:
    body = {"update_id": update_id, "message": {
        "message_id": update_id % 100000, "date": int(at.timestamp()),
        "from": {"id": user_id, "is_bot": False, "first_name": first_name},
        "chat": {"id": user_id, "first_name": first_name, "type": "private"}, "text": text}}
    response = await engagement.client.post(f"/webhooks/telegram/{channel['id']}", json=body,
                                            headers={"X-Telegram-Bot-Api-Secret-Token": secret})
    assert response.status_code == 200, response.text


async def conversation_of(engagement: Service, handle: str) -> dict:
    async def found() -> Any:
        items = await engagement.call("GET", "/conversations", params={"q": handle})
        return items[0] if items else None

    return await eventually(found, timeout=30, message=f"engagement stored the conversation of {handle}")


async def lead_of(clients: Service, conversation_id: str, as_: tuple[str, str] = LEAD) -> dict:
    async def found() -> Any:
        response = await clients.client.get(f"/api/clients/leads/by-conversation/{conversation_id}",
                                            headers=staff_headers(as_[0], as_[1], clients.app.state.settings))
        return response.json() if response.status_code == 200 else None

    return await eventually(found, timeout=30, message="clients registered the lead from the conversation")


async def test_from_a_direct_message_to_a_paying_client(services) -> None:
    clients, engagement, clock = services
    ch = await sales_channels(engagement)

    # A message on a CLIENT account (served by care) comes first: it must never make a lead.
    await telegram(engagement, ch["client_tg"], "tg-client", 5550001, "Где мой заказ?", clock.now(), 1001,
                   first_name="Покупатель")
    client_conv = await conversation_of(engagement, "покупатель")

    # A Direct message on the agency's sales Instagram → a lead in `dialog` with the handle.
    await direct(engagement, "1234567890123456", "Здравствуйте! Сколько стоит ведение аккаунта?", clock.now(),
                 "mid-direct-1")
    ig_conv = await conversation_of(engagement, "1234567890123456")
    lead = await lead_of(clients, ig_conv["id"])
    assert lead["stage"] == "dialog" and lead["channel"] == "instagram"
    assert [c["customer_handle"] for c in lead["conversations"]] == ["1234567890123456"]
    assert datetime.fromisoformat(lead["created_at"]) == clock.now()
    assert await clients.status_of(f"/leads/by-conversation/{client_conv['id']}") == 404

    # agent1 answers first: the administrator of this dialog.
    clock.advance(timedelta(minutes=4))
    await engagement.call("POST", f"/conversations/{ig_conv['id']}/replies", {"text": "Добрый день!"}, as_=AGENT1)

    async def owned() -> bool:
        return (await lead_of(clients, ig_conv["id"]))["owner"] == "agent1"

    await eventually(owned, timeout=30, message="clients took the first answerer as the administrator")

    # From the conversation the agent fills the CL-1 fields (a care agent works inbox leads).
    lead = await clients.call("PATCH", f"/leads/{lead['id']}", {
        "full_name": "Айгерим Сапарова", "phone": "+7 701 555 0101", "product": "ведение Instagram"}, as_=AGENT1)
    assert lead["phone"] == "+7 701 555 0101"
    bad = await clients.client.patch(f"/api/clients/leads/{lead['id']}", json={"email": "no-at-sign"},
                                     headers=staff_headers("agent1", "care_agent", clients.app.state.settings))
    assert bad.status_code == 422 and "email" in bad.text

    # The same person writes to the sales Telegram with the same phone (another form of it) → the same lead.
    clock.advance(timedelta(hours=1))
    await telegram(engagement, ch["tg"], "tg-sales", 7770001, "Это Айгерим, мой номер 8 (701) 555-01-01",
                   clock.now(), 2001)
    tg_conv = await conversation_of(engagement, "7770001")
    same = await lead_of(clients, tg_conv["id"])
    assert same["id"] == lead["id"]
    assert sorted(c["channel_kind"] for c in same["conversations"]) == ["instagram", "telegram"]
    all_leads = await clients.call("GET", "/leads")
    assert len(all_leads) == 1                                     # never duplicated; no lead of the client account

    # Warm → application with one click each, from the conversation.
    clock.advance(timedelta(minutes=30))
    await clients.call("POST", f"/leads/{lead['id']}/stage", {"stage": "warm_lead"}, as_=AGENT1)
    clock.advance(timedelta(hours=2))
    await clients.call("POST", f"/leads/{lead['id']}/stage", {"stage": "application"}, as_=AGENT1)

    async def inbox_shows(stage: str, deal_id: str | None = None) -> bool:
        for conv in (ig_conv, tg_conv):
            detail = await engagement.call("GET", f"/conversations/{conv['id']}")
            if (detail["lead"] or {}).get("stage") != stage or detail["lead"].get("deal_id") != deal_id:
                return False
        return True

    await eventually(lambda: inbox_shows("application"), timeout=30, message="the inbox shows the application")

    # A payment converts the lead (CL-16) and both conversations show "paid — deal …".
    clock.advance(timedelta(days=1))
    paid = await clients.call("POST", "/payments", {
        "external_id": "sales-e2e-1", "paid_at": clock.now().isoformat(), "amount": "60000.00", "currency": "KZT",
        "service_kind": "account_management", "responsible_manager": "anna", "lead_id": lead["id"],
        "client": {"full_name": "Айгерим Сапарова", "phone": "+7 701 555 0101", "payer_type": "individual"}},
        as_=None)
    await eventually(lambda: inbox_shows("paid", paid["deal_id"]), timeout=30,
                     message="engagement recorded the deal on the conversations")
    detail = await engagement.call("GET", f"/conversations/{client_conv['id']}")
    assert detail["lead"] is None

    # The funnel counts the dialog automatically: agent1, Instagram, paid; medians from the first message.
    report = await clients.call("GET", "/reports/funnel", params={"month": "2026-03"})
    steps = {s["step"]: s for s in report["steps"]}
    assert [steps[k]["count"] for k in ("dialogs", "warm_leads", "applications", "paid")] == [1, 1, 1, 1]
    assert steps["warm_leads"]["median_seconds_from_first_message"] == (4 + 60 + 30) * 60
    assert steps["paid"]["median_seconds_from_first_message"] == (4 + 60 + 30 + 120 + 24 * 60) * 60
    assert [a["administrator"] for a in report["by_administrator"]] == ["agent1"]
    assert [c["channel"] for c in report["by_channel"]] == ["instagram"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)   # the journey above runs on both databases
async def test_the_funnel_of_a_synthetic_month_matches_a_hand_count(services) -> None:
    """A synthetic March: 9 dialogs on the sales accounts (Direct and Telegram), answered by agent1 or agent2,
    moved along by hand, one paid, one spam, one resolved with nothing; 2 leads entered by hand by anna; one
    dialog of February. The report matches the hand count per administrator and per channel."""
    clients, engagement, clock = services
    ch = await sales_channels(engagement)
    march = datetime(2026, 3, 3, 5, 0, tzinfo=UTC)
    # (channel, agent, furthest step, spam) — the hand count below is made from this table.
    plan = [("ig", "agent1", "dialog", False), ("ig", "agent1", "warm_lead", False),
            ("ig", "agent1", "application", False), ("ig", "agent2", "paid", False),
            ("ig", "agent2", "dialog", True),
            ("tg", "agent1", "warm_lead", False), ("tg", "agent2", "dialog", False),
            ("tg", "agent2", "warm_lead", False), ("tg", "agent2", "application", False)]
    clock.set(march)
    conversations = []
    for n, (kind, agent, _, _) in enumerate(plan):
        at = march + timedelta(hours=n)
        clock.set(at)
        if kind == "ig":
            await direct(engagement, f"99000{n}", f"Здравствуйте, вопрос {n}", at, f"mid-synth-{n}")
            conv = await conversation_of(engagement, f"99000{n}")
        else:
            await telegram(engagement, ch["tg"], "tg-sales", 880000 + n, f"Добрый день, вопрос {n}", at, 3000 + n)
            conv = await conversation_of(engagement, str(880000 + n))
        clock.advance(timedelta(minutes=5))
        await engagement.call("POST", f"/conversations/{conv['id']}/replies", {"text": "Здравствуйте!"},
                              as_=(agent, "care_agent"))
        conversations.append(conv)
    # February's dialog is not March's.
    feb = datetime(2026, 2, 27, 5, 0, tzinfo=UTC)
    await direct(engagement, "99000777", "Февраль", feb, "mid-feb")

    leads = [await lead_of(clients, conv["id"]) for conv in conversations]

    async def owners_known() -> bool:
        return [(await lead_of(clients, c["id"]))["owner"] for c in conversations] == [p[1] for p in plan]

    await eventually(owners_known, timeout=30, message="every dialog has its administrator")
    await lead_of(clients, (await conversation_of(engagement, "99000777"))["id"])

    clock.set(march + timedelta(days=5))
    for lead, (_, _, furthest, spam) in zip(leads, plan, strict=True):
        steps = {"dialog": [], "warm_lead": ["warm_lead"], "application": ["warm_lead", "application"],
                 "paid": ["warm_lead", "application"]}[furthest]
        for step in steps:
            await clients.call("POST", f"/leads/{lead['id']}/stage", {"stage": step}, as_=None)
        if furthest == "paid":
            await clients.call("POST", "/payments", {
                "external_id": f"synth-{lead['id']}", "paid_at": clock.now().isoformat(), "amount": "60000.00",
                "currency": "KZT", "service_kind": "account_management", "responsible_manager": "anna",
                "lead_id": lead["id"], "client": {"full_name": "Синтетика", "phone": "+7 701 000 0009",
                                                  "payer_type": "individual"}}, as_=None)
        if spam:
            marked = await clients.call("POST", f"/leads/{lead['id']}/disqualify", {"reason": "spam"}, as_=AGENT2)
            assert marked["disqualified"] == "spam"
    # A conversation resolved with nothing stays a dialog only.
    await engagement.call("POST", f"/conversations/{conversations[0]['id']}/status", {"status": "resolved"})
    for n in range(2):   # leads entered by hand keep working
        hand = await clients.call("POST", "/leads", {"full_name": f"Ручной {n}", "phone": f"+7 702 000 000{n}",
                                                     "owner": "anna", "at": (march + timedelta(days=1)).isoformat()},
                                  as_=None)
        if n == 0:
            await clients.call("POST", f"/leads/{hand['id']}/stage", {"stage": "warm_lead"},
                               as_=("anna", "content_manager"))

    report = await clients.call("GET", "/reports/funnel", params={"month": "2026-03"})

    def counts(block: dict) -> list[int]:
        steps = {s["step"]: s["count"] for s in block["steps"]}
        return [steps["dialogs"], steps["warm_leads"], steps["applications"], steps["paid"]]

    # Hand count (spam left out): agent1: 4 dialogs (ig d, ig w, ig a, tg w) → 3 warm → 1 application → 0 paid;
    # agent2: 4 (ig paid, tg d, tg w, tg a) → 3 warm → 2 applications → 1 paid; anna: 2 → 1 → 0 → 0.
    assert counts(report) == [10, 7, 3, 1]
    assert {a["administrator"]: counts(a) for a in report["by_administrator"]} == {
        "agent1": [4, 3, 1, 0], "agent2": [4, 3, 2, 1], "anna": [2, 1, 0, 0]}
    # instagram: d, w, a, paid → 4 → 3 → 2 → 1; telegram: w, d, w, a → 4 → 3 → 1 → 0; manual: 2 → 1.
    assert {c["channel"]: counts(c) for c in report["by_channel"]} == {
        "instagram": [4, 3, 2, 1], "telegram": [4, 3, 1, 0], "manual": [2, 1, 0, 0]}
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["warm_leads"]["conversion_from_previous"] == 0.7
    one = await clients.call("GET", "/reports/funnel", params={"month": "2026-03", "manager": "agent2",
                                                               "channel": "telegram"})
    assert counts(one) == [3, 2, 1, 0]
    ranged = await clients.call("GET", "/reports/funnel", params={"from": "2026-02-01", "to": "2026-03-31"})
    assert counts(ranged)[0] == 11                                # February's dialog too
    bad = await clients.client.get("/api/clients/reports/funnel", params={"from": "2026-03-31", "to": "2026-03-01"},
                                   headers=TOKEN)
    assert bad.status_code == 422 and "to" in bad.text
