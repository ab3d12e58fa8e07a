"""Issue 15: the lead panel of an inbox conversation (`/inbox/{id}/lead`), the lead card's conversations and the
funnel's filters — against REAL clients and engagement services (processes of their own, SQLite, the test's
nats-server), the gateway in-process. A Direct message on the agency's sales Instagram reaches engagement's
webhook; everything after it travels as events."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from litestar.testing import AsyncTestClient
from shared.settings import Settings
from shared.testing import default_settings, staff_headers

from .backends import Backend, roster, serve_clients
from .conftest import down_service_urls, gateway_settings, sign_in
from .test_clients_pages import text_of

APP_SECRET = "sales-pages-app-secret"
IG_SALES = "17841400000000555"


@pytest.fixture
def backends(service_process, nats_server) -> dict[str, str]:
    clients = serve_clients(service_process, nats_server.url)
    engagement = service_process("engagement", nats_url=nats_server.url, env={
        "META_APP_SECRET": APP_SECRET, "INSTAGRAM_GRAPH_URL": "http://127.0.0.1:1/graph"})   # never the real Graph
    return {"clients": clients, "engagement": engagement}


@pytest.fixture
def settings(tmp_path, backends: dict[str, str]) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), **backends})


def as_lead(service: str) -> dict[str, str]:
    return staff_headers("lead", "lead", default_settings(service))


def direct(engagement_url: str, sender: str, text: str, mid: str) -> None:
    now = int(datetime.now(UTC).timestamp() * 1000)
    body = {"object": "instagram", "entry": [{"id": IG_SALES, "time": now, "messaging": [
        {"sender": {"id": sender}, "recipient": {"id": IG_SALES}, "timestamp": now,
         "message": {"mid": mid, "text": text}}]}]}
    raw = json.dumps(body, ensure_ascii=False).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    response = httpx.post(f"{engagement_url}/webhooks/instagram", content=raw, timeout=30,
                          headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature})
    assert response.status_code == 200, response.text


def wait_for(fn, message: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.1)


async def test_issue15_the_lead_panel_of_a_sales_conversation_and_the_funnel(
        client: AsyncTestClient, backends: dict[str, str]) -> None:
    clients = Backend(backends["clients"], "clients")
    roster(clients)
    engagement = backends["engagement"]
    ig = httpx.post(f"{engagement}/api/engagement/channels", headers=as_lead("engagement"), timeout=30, json={
        "kind": "instagram", "name": "Агентство", "sales": True,
        "config": {"ig_user_id": IG_SALES, "access_token": "IGA-pages"}}).json()
    assert ig["sales"] is True
    httpx.put(f"{engagement}/api/engagement/staff/agent1/accounts", headers=as_lead("engagement"), timeout=30,
              json={"accounts": ["agency"]}).raise_for_status()
    direct(engagement, "5556667778889990", "Здравствуйте! Хочу продвижение <b>магазина</b>", "mid-pages-1")

    def conversation_id() -> str | None:
        items = httpx.get(f"{engagement}/api/engagement/conversations", headers=as_lead("engagement"),
                          timeout=30).json()
        return items[0]["id"] if items else None

    cid = wait_for(conversation_id, "the conversation")

    def lead() -> dict | None:
        r = httpx.get(f"{backends['clients']}/api/clients/leads/by-conversation/{cid}", headers=as_lead("clients"),
                      timeout=30)
        return r.json() if r.status_code == 200 else None

    registered = wait_for(lead, "the lead registered from the conversation")
    httpx.post(f"{engagement}/api/engagement/conversations/{cid}/replies", timeout=30, json={"text": "Здравствуйте!"},
               headers=staff_headers("agent1", "care_agent", default_settings("engagement"))).raise_for_status()
    wait_for(lambda: lead()["owner"] == "agent1", "agent1, who answered first, is the administrator")

    token = await sign_in(client, "agent1")
    panel = await client.get(f"/inbox/{cid}/lead?lang=en", headers={"HX-Request": "true"})
    assert panel.status_code == 200, panel.text
    assert 'id="inbox-lead"' in panel.text and "Dialog" in text_of(panel.text)
    assert 'id="inbox-lead-to-warm_lead"' in panel.text and 'id="inbox-lead-spam"' in panel.text

    # CL-1 fields from the conversation; a bad e-mail is named, nothing half-written.
    bad = await client.post(f"/inbox/{cid}/lead", headers={"HX-Request": "true"}, data={
        "_csrf": token, "full_name": "Дана", "phone": "+7 701 222 33 44", "email": "dana-at-mail"})
    assert bad.status_code == 422 and "Enter an e-mail address" in bad.text
    assert lead()["phone"] == ""
    saved = await client.post(f"/inbox/{cid}/lead", headers={"HX-Request": "true"}, data={
        "_csrf": token, "full_name": "Дана Омарова", "phone": "+7 701 222 33 44", "email": "dana@example.kz",
        "product": "продвижение", "payer_type": "individual"})
    assert saved.status_code == 200 and "Lead saved." in saved.text
    assert lead()["phone"] == "+7 701 222 33 44"

    # One click each: warm lead, then application.
    for stage, shown in (("warm_lead", "Warm lead"), ("application", "Application")):
        moved = await client.post(f"/inbox/{cid}/lead/stage", headers={"HX-Request": "true"},
                                  data={"_csrf": token, "stage": stage})
        assert moved.status_code == 200 and shown in text_of(moved.text), moved.text
    assert lead()["stage"] == "application"
    again = await client.post(f"/inbox/{cid}/lead/stage", headers={"HX-Request": "true"},
                              data={"_csrf": token, "stage": "warm_lead"})
    assert again.status_code == 422

    # A payment converts the lead; the panel shows the deal as the inbox recorded it.
    paid = clients.call("POST", "/payments", {
        "external_id": "pages-sales-1", "paid_at": datetime.now(UTC).isoformat(), "amount": "60000.00",
        "currency": "KZT", "service_kind": "account_management", "responsible_manager": "manager1",
        "lead_id": registered["id"], "client": {"full_name": "Дана Омарова", "phone": "+7 701 222 33 44",
                                                "payer_type": "individual"}})

    def recorded() -> bool:
        detail = httpx.get(f"{engagement}/api/engagement/conversations/{cid}", headers=as_lead("engagement"),
                           timeout=30).json()
        return (detail.get("lead") or {}).get("deal_id") == paid["deal_id"]

    wait_for(recorded, "engagement recorded the deal")
    panel = await client.get(f"/inbox/{cid}/lead?lang=en", headers={"HX-Request": "true"})
    assert f"Paid — deal {paid['deal_id'][:8]}" in panel.text

    # The lead card: its conversation with the customer's message, escaped.
    await client.post("/logout", data={"_csrf": token})
    await sign_in(client, "lead")
    card = await client.get(f"/leads/{registered['id']}?lang=en")
    assert card.status_code == 200, card.text
    assert 'id="lead-conversations"' in card.text and "&lt;b&gt;магазина&lt;/b&gt;" in card.text
    assert "<b>магазина</b>" not in card.text

    # The funnel: filters, per administrator (agent1's full name) and per channel.
    funnel = await client.get("/reports/funnel?lang=en&channel=instagram")
    assert funnel.status_code == 200, funnel.text
    text = text_of(funnel.text)
    assert "By administrator" in text and "By channel" in text, text
    assert "By administrator Administrator Dialogs Warm leads Applications Paid Асель Жумабаева 1" in text, text
    assert 'option value="instagram" selected' in funnel.text


async def test_issue15_a_conversation_the_agent_does_not_serve_is_404_and_no_lead_is_said(
        client: AsyncTestClient, backends: dict[str, str]) -> None:
    engagement = backends["engagement"]
    httpx.post(f"{engagement}/api/engagement/channels", headers=as_lead("engagement"), timeout=30, json={
        "kind": "instagram", "name": "Клиент", "deal_id": "deal-of-a-client",
        "config": {"ig_user_id": IG_SALES, "access_token": "IGA-pages"}}).raise_for_status()
    direct(engagement, "1112223334445556", "Где заказ?", "mid-pages-2")

    def conversation_id() -> str | None:
        items = httpx.get(f"{engagement}/api/engagement/conversations", headers=as_lead("engagement"),
                          timeout=30).json()
        return items[0]["id"] if items else None

    cid = wait_for(conversation_id, "the conversation")
    await sign_in(client, "agent1")   # serves no account
    assert (await client.get(f"/inbox/{cid}/lead?lang=en", headers={"HX-Request": "true"})).status_code == 404
    await sign_in(client, "senior1")
    panel = await client.get(f"/inbox/{cid}/lead?lang=en", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "No lead for this conversation" in panel.text
    await sign_in(client, "manager1")
    assert (await client.get(f"/inbox/{cid}/lead?lang=en")).status_code == 403
