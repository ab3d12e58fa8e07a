"""EN-5 "ask the client" (issue 11): the agent forwards a question to the client account's contact person on a
signed link; the conversation waits for the client, its response clock paused, and returns with the answer."""

from __future__ import annotations

from datetime import timedelta

from .payloads import TG_CONFIG, tg_private

TG_SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
AGENT1 = ("agent1", "care_agent")


async def _conversation(api) -> dict:
    channel = await api.channel("telegram", TG_CONFIG)
    await api.webhook(f"/webhooks/telegram/{channel['id']}", tg_private(), TG_SECRET)
    await api.process()
    [conversation] = await api.conversations()
    return conversation


async def test_en5_ask_the_client_waits_pauses_the_clock_and_returns_with_the_answer(api_any) -> None:
    api = api_any
    conversation = await _conversation(api)
    cid = conversation["id"]
    await api.ok("put", "/staff/agent1/accounts", {"accounts": ["deal-1"]})
    api.clock.advance(timedelta(minutes=2))
    asked = await api.ok("post", f"/conversations/{cid}/ask-client", {"question": "Есть ли доставка в Шымкент?"},
                         as_=AGENT1, status=201)
    assert asked["deal_id"] == "deal-1" and asked["token"]
    [waiting] = await api.conversations(status="waiting_client")
    assert waiting["id"] == cid

    page = await api.client.get(f"/ask/{asked['token']}")
    assert page.status_code == 200 and page.json()["question"] == "Есть ли доставка в Шымкент?"
    assert (await api.client.get(f"/ask/{asked['token']}x")).status_code == 404
    api.clock.advance(timedelta(hours=1))
    answered = await api.client.post(f"/ask/{asked['token']}", json={"answer": "Да, за 2 дня"})
    assert answered.status_code == 200
    again = await api.client.post(f"/ask/{asked['token']}", json={"answer": "Передумали"})
    assert again.status_code == 409

    detail = await api.ok("get", f"/conversations/{cid}", as_=AGENT1)
    assert detail["status"] == "open"
    [question] = detail["client_questions"]
    assert question["answer"] == "Да, за 2 дня" and question["asked_by"] == "agent1"

    api.clock.advance(timedelta(minutes=3))
    await api.ok("post", f"/conversations/{cid}/replies", {"text": "Да, доставим за 2 дня"}, as_=AGENT1)
    [answered_event] = await api.events("engagement.conversation.answered.v1")
    assert answered_event.response_seconds == 5 * 60       # 2 + 3 minutes: the hour waiting for the client paused


async def test_en5_the_link_expires_and_monitoring_cannot_ask(api) -> None:
    conversation = await _conversation(api)
    refused = await api.post(f"/conversations/{conversation['id']}/ask-client", {"question": "?"},
                             as_=("monitor1", "monitoring"))
    assert refused.status_code == 403
    empty = await api.post(f"/conversations/{conversation['id']}/ask-client", {"question": " "})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "question"
    asked = await api.ok("post", f"/conversations/{conversation['id']}/ask-client", {"question": "Цена?"},
                         status=201)
    api.clock.advance(timedelta(days=8))
    assert (await api.client.post(f"/ask/{asked['token']}", json={"answer": "1000"})).status_code == 410


async def test_en5_the_contact_person_is_told_by_email_through_a_real_smtp_server(api, mailserver) -> None:
    from .mailserver import SUPPORT

    conversation = await _conversation(api)            # a Telegram conversation of deal-1
    await api.ok("post", "/channels", {"kind": "email", "name": "Агентство", "config": mailserver.config()},
                 status=201)                            # the agency's own mailbox sends the notice
    bad = await api.put("/care-settings/deal-1", {"contact_email": "не почта", "contact_telegram": "@anna"})
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"contact_email",
                                                                                    "contact_telegram"}
    await api.ok("put", "/care-settings/deal-1", {"contact_email": SUPPORT})
    asked = await api.ok("post", f"/conversations/{conversation['id']}/ask-client",
                         {"question": "Есть ли доставка в Шымкент?"}, status=201)
    assert asked["notice"] == {"via": "email", "to": SUPPORT, "state": "pending", "error": None, "sent_at": None}
    assert await api.send() == 1
    [mail] = mailserver.inbox(SUPPORT)
    assert mail["Subject"] == "Вопрос от службы поддержки"
    body = mail.get_content()
    assert "«Есть ли доставка в Шымкент?»" in body and f"https://zabota.example/answer/{asked['token']}" in body
    detail = await api.ok("get", f"/conversations/{conversation['id']}")
    [question] = detail["client_questions"]
    assert question["notice"]["state"] == "sent" and question["notice"]["sent_at"]
    assert await api.send() == 0                         # sent once


async def test_en5_the_contact_person_is_told_by_telegram_and_a_missing_channel_fails_with_the_reason(
        api, stand_in) -> None:
    conversation = await _conversation(api)
    await api.ok("put", "/care-settings/deal-1", {"contact_telegram": "555001"})
    asked = await api.ok("post", f"/conversations/{conversation['id']}/ask-client", {"question": "Цена?"},
                         status=201)
    await api.send()
    [notice] = [c for c in stand_in.delivered if c["body"].get("chat_id") == 555001]
    assert "Цена?" in notice["body"]["text"] and asked["token"] in notice["body"]["text"]

    await api.ok("put", "/care-settings/deal-1", {"contact_email": "owner@client.kz"})   # no e-mail channel
    await api.ok("post", f"/conversations/{conversation['id']}/ask-client", {"question": "И ещё?"}, status=201)
    await api.send()
    questions = (await api.ok("get", f"/conversations/{conversation['id']}"))["client_questions"]
    failed = next(q for q in questions if q["question"] == "И ещё?")["notice"]
    assert failed["state"] == "failed" and failed["error"] == "no active email channel to send the notice through"
