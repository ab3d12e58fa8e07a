"""Issue 11, the inbox pages' API: templates and scripts per category (EN-5), private notes with @mentions,
category and priority (EN-2), per-person counts, and the change feed the gateway follows for live updates."""

from __future__ import annotations

from engagement.templates import fill

from .payloads import tg_private
from .test_replies import TG_SECRET, _reply, _telegram_conversation

SENIOR = ("senior1", "senior_agent")
AGENT = ("agent1", "care_agent")


async def test_issue11_seeded_scripts_3_and_4_and_template_crud_by_senior_only(api) -> None:
    listed = await api.ok("get", "/templates", as_=AGENT)
    titles = {t["title"] for t in listed}
    assert {"Скрипт №3: первый звонок", "Скрипт №4: продление"} <= titles
    created = await api.ok("post", "/templates", {"title": "Доставка", "body": "{customer_name}, заказ едет",
                                                  "category": "Delivery"}, as_=SENIOR, status=201)
    assert created["category"] == "delivery"
    refused = await api.post("/templates", {"title": "x", "body": "y"}, as_=AGENT)
    assert refused.status_code == 403
    bad = await api.post("/templates", {"title": " ", "body": "", "kind": "poem"}, as_=SENIOR)
    assert bad.status_code == 400 or bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"title", "body", "kind"}
    updated = await api.ok("put", f"/templates/{created['id']}", {"title": "Доставка", "body": "новый текст",
                                                                  "category": "delivery"}, as_=SENIOR)
    assert updated["body"] == "новый текст"
    only = (await api.get("/templates", AGENT, category="delivery")).json()
    assert {t["category"] for t in only} <= {"delivery", ""}
    gone = await api.client.delete(f"/api/engagement/templates/{created['id']}", headers=api.headers(SENIOR))
    assert gone.status_code == 204


def test_issue11_template_variables_filled_and_others_left() -> None:
    assert fill("{customer_name}, это {agent_name} из {client_name} {other}", customer_name="Алия",
                agent_name="Дана", client_name="Cakes") == "Алия, это Дана из Cakes {other}"


async def test_issue11_notes_mentions_reach_counts_until_seen(api) -> None:
    _, conversation = await _telegram_conversation(api)
    cid = conversation["id"]
    note = await api.ok("post", f"/conversations/{cid}/notes", {"text": "@senior1 посмотри, и @lead тоже. @lead"},
                        as_=("lead", "lead"), status=201)
    assert note["mentions"] == ["senior1"]   # the author is not mentioned to themselves
    counts = await api.ok("get", "/counts", as_=SENIOR)
    assert counts["mentions"] == 1
    detail = await api.ok("get", f"/conversations/{cid}", as_=SENIOR)
    assert detail["notes"][0]["text"].startswith("@senior1")
    await api.ok("post", f"/conversations/{cid}/seen", as_=SENIOR)
    assert (await api.ok("get", "/counts", as_=SENIOR))["mentions"] == 0
    empty = await api.post(f"/conversations/{cid}/notes", {"text": "  "})
    assert empty.status_code in (400, 422) and empty.json()["errors"][0]["field"] == "text"


async def test_issue11_category_and_priority_set_and_filtered(api) -> None:
    _, conversation = await _telegram_conversation(api)
    cid = conversation["id"]
    await api.ok("post", f"/conversations/{cid}/category", {"category": "Delivery"})
    await api.ok("post", f"/conversations/{cid}/priority", {"priority": "urgent"})
    bad = await api.post(f"/conversations/{cid}/priority", {"priority": "asap"})
    assert bad.status_code in (400, 422) and bad.json()["errors"][0]["field"] == "priority"
    [row] = await api.conversations(category="delivery", priority="urgent")
    assert row["category"] == "delivery" and row["priority"] == "urgent"
    assert await api.conversations(priority="low") == []
    assert len(await api.conversations(account="deal-1")) == 1
    assert await api.conversations(account="deal-2") == []
    assert "delivery" in await api.ok("get", "/categories")


async def test_issue11_counts_of_an_agent(api) -> None:
    await api.ok("put", "/staff/agent1/accounts", {"accounts": ["deal-1"]})
    _, conversation = await _telegram_conversation(api)
    counts = await api.ok("get", "/counts", as_=AGENT)
    assert counts["unassigned"] == 1 and counts["mine_open"] == 0
    await api.ok("post", f"/conversations/{conversation['id']}/assign", {"agent": "agent1"}, as_=AGENT)
    counts = await api.ok("get", "/counts", as_=AGENT)
    assert counts == {"mine_open": 1, "mine_awaiting_answer": 1, "mine_waiting_client": 0, "unassigned": 0,
                      "mentions": 0}


async def feed(api, as_=("lead", "lead"), **params) -> dict:
    response = await api.get("/changes", as_, **params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_issue11_change_feed_signals_inbound_replies_and_delivery(api, stand_in) -> None:
    start = await feed(api)
    assert start["conversations"] == []
    channel, conversation = await _telegram_conversation(api)
    cid = conversation["id"]
    after_inbound = await feed(api, since=start['cursor'])
    assert after_inbound["conversations"] == [cid] and after_inbound["cursor"] > start["cursor"]
    quiet = await feed(api, since=after_inbound['cursor'], wait=0)
    assert quiet["conversations"] == [] and quiet["cursor"] == after_inbound["cursor"]
    await _reply(api, cid)
    replied = await feed(api, since=after_inbound['cursor'])
    assert replied["conversations"] == [cid]
    await api.send()
    delivered = await feed(api, since=replied['cursor'])
    assert delivered["conversations"] == [cid]   # the delivery state changed
    # A care agent who does not serve the account is not told about it.
    other = await feed(api, AGENT, since=start['cursor'])
    assert other["conversations"] == []
    await api.webhook(f"/webhooks/telegram/{channel['id']}", tg_private(update_id=734512099, message_id=53),
                      TG_SECRET)
    await api.process()
    again = await feed(api, since=delivered['cursor'], wait=5)
    assert again["conversations"] == [cid]
    bad = await api.get("/changes", since=-1)
    assert bad.status_code in (400, 422)


