"""Issue 11 §conversations and §API contract: channel accounts (secrets encrypted, never answered), the inbox
list and a conversation (EN-2), status / assignment / tags, and who sees what (EN-6)."""

from __future__ import annotations

import logging
from datetime import timedelta

from engagement.models import Channel

from .payloads import TG_CONFIG, VK_CONFIG, tg_group, tg_private, vk_message

TG_SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
AGENT1, AGENT2 = ("agent1", "care_agent"), ("agent2", "care_agent")
LEAD_ACTOR = ("aliya", "lead")
SENIOR, MONITOR, ANALYST = ("senior", "senior_agent"), ("monitor1", "monitoring"), ("analyst1", "analyst")
SECRET_VALUES = [TG_CONFIG["bot_token"], TG_CONFIG["secret_token"], VK_CONFIG["access_token"], VK_CONFIG["secret"],
                 VK_CONFIG["confirmation"]]


async def _tg(api, update: dict, channel: dict) -> None:
    assert (await api.webhook(f"/webhooks/telegram/{channel['id']}", update, TG_SECRET)).status_code == 200


# ---------------------------------------------------------------- channel accounts


async def test_issue11_channel_created_by_the_lead_with_secrets_encrypted_and_never_answered(api_any, caplog) -> None:
    api = api_any
    caplog.set_level(logging.DEBUG)
    tg = await api.channel("telegram", TG_CONFIG)
    vk = await api.channel("vk", VK_CONFIG, deal_id=None, name="Агентство ВК")
    assert set(tg) >= {"id", "kind", "webhook_url"} and tg["kind"] == "telegram"
    assert vk["webhook_url"] == f"https://zabota.example/webhooks/vk/{vk['id']}" and vk["account"] == "agency"
    assert vk["config"] == {"group_id": 171104414}
    listed = await api.get("/channels")
    everything = str(tg) + str(vk) + listed.text + caplog.text
    for secret in SECRET_VALUES:
        assert secret not in everything
    for row in await api.rows(Channel):
        for secret in SECRET_VALUES:
            assert secret.encode() not in row.secrets and secret not in str(row.config)
    events = await api.events()
    assert all(secret not in str(e) for e in events for secret in SECRET_VALUES)


async def test_issue11_missing_config_keys_are_a_422_naming_them(api_any) -> None:
    api = api_any
    response = await api.post("/channels", {"kind": "vk", "name": "ВК", "config": {"group_id": 1, "secret": ""}})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"config.access_token", "config.secret", "config.confirmation"}
    bad_kind = await api.post("/channels", {"kind": "myspace", "name": "x", "config": {}})
    assert bad_kind.status_code == 422 and bad_kind.json()["errors"][0]["field"] == "kind"
    assert await api.count(Channel) == 0


async def test_issue11_only_the_lead_creates_channel_accounts(api) -> None:
    for who in (SENIOR, AGENT1, MONITOR, None):
        response = await api.post("/channels", {"kind": "telegram", "name": "bot", "config": TG_CONFIG}, as_=who)
        assert response.status_code == 403, who
    assert await api.count(Channel) == 0


# ---------------------------------------------------------------- the inbox


async def test_issue11_en2_list_newest_activity_first_with_filters_and_total(api_any) -> None:
    api = api_any
    channel = await api.channel("telegram", TG_CONFIG)
    await _tg(api, tg_private(update_id=1, user_id=101, text="Где мой заказ?"), channel)
    await api.process()
    api.clock.advance(timedelta(minutes=1))
    group = tg_group(update_id=2)
    group["message"]["date"] += 60
    await _tg(api, group, channel)
    await api.process()
    api.clock.advance(timedelta(minutes=1))
    third = tg_private(update_id=3, user_id=303, text="Спасибо, всё пришло")
    third["message"]["date"] += 120
    await _tg(api, third, channel)
    await api.process()

    response = await api.get("/conversations", limit=2)
    assert response.headers["x-total-count"] == "3"
    first_page = response.json()
    assert [c["last_message"]["text"] for c in first_page] == ["Спасибо, всё пришло", "А до какого числа акция?"]
    assert set(first_page[0]) >= {"id", "channel_id", "kind", "status", "assignee", "customer", "last_message",
                                  "tags"}
    rest = (await api.get("/conversations", limit=2, offset=2)).json()
    assert [c["last_message"]["text"] for c in rest] == ["Где мой заказ?"]

    assert [c["customer"]["name"] for c in await api.conversations(q="акция")] == ["Brand Club"]
    assert len(await api.conversations(channel="telegram")) == 3
    assert await api.conversations(channel="vk") == []
    assert len(await api.conversations(channel=channel["id"])) == 3
    bad = await api.get("/conversations", status="closed")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"


async def test_issue11_en2_status_assign_tags_and_reopen_by_a_new_message(api_any) -> None:
    api = api_any
    channel = await api.channel("telegram", TG_CONFIG)
    await _tg(api, tg_private(update_id=1), channel)
    await api.process()
    [c] = await api.conversations()
    cid = c["id"]
    assert c["status"] == "open" and c["assignee"] is None and c["tags"] == []

    assert (await api.ok("post", f"/conversations/{cid}/assign", {"agent": "agent1"}))["assignee"] == "agent1"
    tags = await api.ok("post", f"/conversations/{cid}/tags", {"add": ["Доставка", "vip ", "vip"], "remove": []})
    assert tags["tags"] == ["vip", "доставка"]
    tags = await api.ok("post", f"/conversations/{cid}/tags", {"add": [], "remove": ["VIP"]})
    assert tags["tags"] == ["доставка"]
    assert [x["id"] for x in await api.conversations(tag="Доставка")] == [cid]
    assert [x["id"] for x in await api.conversations(assignee="agent1")] == [cid]
    assert await api.conversations(assignee="none") == []

    assert (await api.ok("post", f"/conversations/{cid}/status", {"status": "waiting_client"}))["status"] == \
        "waiting_client"
    bad = await api.post(f"/conversations/{cid}/status", {"status": "closed"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"
    await api.ok("post", f"/conversations/{cid}/status", {"status": "resolved"})
    assert [x["id"] for x in await api.conversations(status="resolved")] == [cid]

    await _tg(api, tg_private(update_id=2, message_id=53, text="Ещё вопрос"), channel)
    await api.process()
    [again] = await api.conversations()
    assert again["id"] == cid and again["status"] == "open" and again["assignee"] == "agent1"
    [_, reopened] = await api.events("engagement.message.received.v1")
    assert reopened.reopened is True and reopened.conversation_id == cid
    missing = await api.post("/conversations/nope/status", {"status": "open"})
    assert missing.status_code == 404


# ---------------------------------------------------------------- roles (EN-6)


async def test_en6_care_agent_sees_only_the_accounts_they_serve(api_any) -> None:
    api = api_any
    tg = await api.channel("telegram", TG_CONFIG, deal_id="deal-1")
    vk = await api.channel("vk", VK_CONFIG, deal_id="deal-2")
    await _tg(api, tg_private(update_id=1), tg)
    await api.webhook(f"/webhooks/vk/{vk['id']}", vk_message(VK_CONFIG["secret"]))
    await api.process()
    assert (await api.put("/staff/agent1/accounts", {"accounts": ["deal-1"]}, as_=AGENT1)).status_code == 403
    await api.ok("put", "/staff/agent1/accounts", {"accounts": ["deal-1"]}, as_=SENIOR)

    mine = await api.conversations(as_=AGENT1)
    assert [c["kind"] for c in mine] == ["telegram"]
    assert await api.conversations(as_=AGENT2) == []
    vk_conversation = next(c for c in await api.conversations() if c["kind"] == "vk")
    assert (await api.get(f"/conversations/{vk_conversation['id']}", as_=AGENT1)).status_code == 404
    refused = await api.post(f"/conversations/{vk_conversation['id']}/replies", {"text": "x"}, as_=AGENT1)
    assert refused.status_code == 404

    # A care agent answers their account's conversation and takes it; reassigning is for seniors.
    reply = await api.post(f"/conversations/{mine[0]['id']}/replies", {"text": "Здравствуйте!"}, as_=AGENT1)
    assert reply.status_code == 202
    [taken] = await api.conversations(as_=AGENT1)
    assert taken["assignee"] == "agent1"
    steal = await api.post(f"/conversations/{taken['id']}/assign", {"agent": "agent2"}, as_=AGENT1)
    assert steal.status_code == 403
    await api.ok("post", f"/conversations/{taken['id']}/assign", {"agent": "agent2"}, as_=SENIOR)


async def test_en6_senior_and_monitoring_see_all_monitoring_and_analyst_change_nothing(api) -> None:
    tg = await api.channel("telegram", TG_CONFIG)
    await _tg(api, tg_private(update_id=1), tg)
    await api.process()
    assert len(await api.conversations(as_=SENIOR)) == 1
    [c] = await api.conversations(as_=MONITOR)
    for path, body in (("replies", {"text": "x"}), ("status", {"status": "resolved"}),
                       ("tags", {"add": ["x"]}), ("assign", {"agent": "monitor1"})):
        assert (await api.post(f"/conversations/{c['id']}/{path}", body, as_=MONITOR)).status_code == 403, path
    assert await api.conversations(as_=ANALYST) == []
    assert (await api.get(f"/conversations/{c['id']}", as_=ANALYST)).status_code == 404


# ---------------------------------------------------------------- tags by rules (EN-7)


async def test_en7_tag_rules_by_keyword_channel_account_and_campaign(api_any) -> None:
    api = api_any
    for kind, value, tag in (("keyword", "заказ", "Доставка"), ("channel", "telegram", "tg"),
                             ("account", "deal-1", "клиент-1"), ("campaign", "spring_sale", "весна")):
        await api.ok("post", "/tag-rules", {"kind": kind, "value": value, "tag": tag}, as_=SENIOR)
    assert (await api.post("/tag-rules", {"kind": "keyword", "value": "x", "tag": "y"}, as_=AGENT1)
            ).status_code == 403
    bad = await api.post("/tag-rules", {"kind": "keyword", "value": " ", "tag": "y"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "value"
    channel = await api.channel("telegram", TG_CONFIG, deal_id="deal-1")
    await _tg(api, tg_private(update_id=1, user_id=1, text="Где мой ЗАКАЗ?"), channel)
    await _tg(api, tg_private(update_id=2, user_id=2, text="/start spring_sale"), channel)
    await api.process()
    tags = sorted(sorted(c["tags"]) for c in await api.conversations())
    assert tags == [["tg", "весна", "клиент-1"], ["tg", "доставка", "клиент-1"]]
    rules = await api.ok("get", "/tag-rules")
    assert len(rules) == 4
    assert (await api.client.delete(f"/api/engagement/tag-rules/{rules[0]['id']}",
                                    headers=api.headers(LEAD_ACTOR))).status_code == 204
    assert len(await api.ok("get", "/tag-rules")) == 3
