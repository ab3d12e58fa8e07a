"""EN-3 through the service (issue 12): the conversation answer carries its clock, the first-response deadline
is a stored fact with events (met / breached by the timer / waived by an early resolve), care settings are
validated, and the agents' report sums per agent without double counting a replay."""

from __future__ import annotations

from datetime import timedelta

from engagement.quality_models import AgentDay, CareDeadline, ResponseFact

from .payloads import TG_CONFIG, tg_private

TG_SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
AGENT1 = ("agent1", "care_agent")
AGENT2 = ("agent2", "care_agent")


async def _conversation(api, update_id: int = 734512001, user_id: int = 1111111) -> dict:
    channel = (await api.ok("get", "/channels")) or [await api.channel("telegram", TG_CONFIG)]
    await api.webhook(f"/webhooks/telegram/{channel[0]['id']}", tg_private(update_id=update_id, user_id=user_id,
                                                                            message_id=update_id), TG_SECRET)
    await api.process()
    return next(c for c in await api.conversations() if c["customer"]["handle"] or True)


async def _serve(api) -> None:
    for agent in ("agent1", "agent2"):
        await api.ok("put", f"/staff/{agent}/accounts", {"accounts": ["deal-1"]})


async def test_en3_first_response_in_time_is_met_with_wall_and_business_seconds(api_any) -> None:
    api = api_any
    c = await _conversation(api)
    await _serve(api)
    detail = await api.ok("get", f"/conversations/{c['id']}")
    assert detail["sla"] == "running" and detail["target_s"] == 420 and detail["first_response_s"] is None
    api.clock.advance(timedelta(minutes=5))
    await api.ok("post", f"/conversations/{c['id']}/replies", {"text": "Здравствуйте! Проверяю."}, as_=AGENT1,
                 status=202)
    detail = await api.ok("get", f"/conversations/{c['id']}")
    assert detail["sla"] == "met" and detail["first_response_s"] == 300 and detail["first_response_business_s"] == 300
    [met] = await api.events("engagement.deadline.met.v1")
    assert met.rule == "EN-3" and met.owner == "agent1" and not met.revises_breach
    assert await api.events("engagement.deadline.breached.v1") == []


async def test_en3_the_timer_records_a_breach_on_time_and_the_late_answer_keeps_it(api_any) -> None:
    api = api_any
    c = await _conversation(api)
    await _serve(api)
    await api.ok("post", f"/conversations/{c['id']}/assign", {"agent": "agent2"})
    api.clock.advance(timedelta(minutes=8))
    api.in_app(api.runtime.scheduler.run_due)
    [breach] = await api.events("engagement.deadline.breached.v1")
    assert breach.rule == "EN-3" and breach.owner == "agent2" and breach.conversation_id == c["id"]
    assert (await api.ok("get", f"/conversations/{c['id']}"))["sla"] == "breached"
    await api.ok("post", f"/conversations/{c['id']}/replies", {"text": "Извините за ожидание"}, as_=AGENT2,
                 status=202)
    assert len(await api.events("engagement.deadline.breached.v1")) == 1
    assert await api.events("engagement.deadline.met.v1") == []
    [deadline] = await api.rows(CareDeadline)
    assert deadline.state == "breached"


async def test_en3_resolved_before_the_target_without_an_answer_is_waived(api) -> None:
    c = await _conversation(api)
    api.clock.advance(timedelta(minutes=2))
    await api.ok("post", f"/conversations/{c['id']}/status", {"status": "resolved"})
    [waived] = await api.events("engagement.deadline.waived.v1")
    assert waived.rule == "EN-3"
    api.clock.advance(timedelta(minutes=20))
    api.in_app(api.runtime.scheduler.run_due)
    assert await api.events("engagement.deadline.breached.v1") == []


async def test_en3_waiting_for_the_client_pauses_the_deadline(api) -> None:
    c = await _conversation(api)
    await _serve(api)
    api.clock.advance(timedelta(minutes=2))
    asked = await api.ok("post", f"/conversations/{c['id']}/ask-client", {"question": "Доставка?"}, as_=AGENT1,
                         status=201)
    assert (await api.ok("get", f"/conversations/{c['id']}"))["sla"] == "paused"
    api.clock.advance(timedelta(hours=2))
    api.in_app(api.runtime.scheduler.run_due)
    assert await api.events("engagement.deadline.breached.v1") == []
    assert (await api.client.post(f"/ask/{asked['token']}", json={"answer": "Да"})).status_code == 200
    api.clock.advance(timedelta(minutes=4))
    await api.ok("post", f"/conversations/{c['id']}/replies", {"text": "Да, доставим"}, as_=AGENT1, status=202)
    detail = await api.ok("get", f"/conversations/{c['id']}")
    assert detail["sla"] == "met" and detail["first_response_s"] == 6 * 60


async def test_en3_care_settings_validated_and_the_business_clock_follows_them(api) -> None:
    bad = await api.put("/care-settings/deal-1", {"target_s": 5, "hours": "9-18", "days": "0-9"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"target_s", "hours", "days"}
    refused = await api.put("/care-settings/deal-1", {"target_s": 600}, as_=AGENT1)
    assert refused.status_code == 403
    saved = await api.ok("put", "/care-settings/deal-1", {"target_s": 600, "tz": "Asia/Almaty",
                                                          "hours": "09:00-13:00,14:00-21:00"})
    assert saved["target_s"] == 600 and saved["hours"] == "09:00-13:00,14:00-21:00"
    assert (await api.ok("get", "/care-settings/deal-1", as_=("senior1", "senior_agent")))["target_s"] == 600
    assert (await api.get("/care-settings/deal-1", as_=AGENT1)).status_code == 403


async def test_en3_agents_report_sums_per_agent_and_a_replay_changes_nothing(api_any) -> None:
    api = api_any
    await _serve(api)
    first = await _conversation(api, 1, 1001)
    api.clock.advance(timedelta(minutes=3))
    await api.ok("post", f"/conversations/{first['id']}/replies", {"text": "Ответ 1"}, as_=AGENT1, status=202)
    await api.ok("post", f"/conversations/{first['id']}/replies", {"text": "Ответ 1b"}, as_=AGENT1, status=202)
    second = [c for c in await _all(api) if c["id"] != first["id"]]
    assert second == []
    await api.webhook(f"/webhooks/telegram/{first['channel_id']}", tg_private(update_id=2, user_id=2002,
                                                                              message_id=2), TG_SECRET)
    await api.process()
    [other] = [c for c in await _all(api) if c["id"] != first["id"]]
    api.clock.advance(timedelta(minutes=10))
    await api.ok("post", f"/conversations/{other['id']}/replies", {"text": "Ответ 2"}, as_=AGENT2, status=202)
    await api.ok("post", f"/conversations/{other['id']}/status", {"status": "resolved"}, as_=AGENT2)
    # A redelivered webhook and a second refresh change no figure.
    await api.webhook(f"/webhooks/telegram/{first['channel_id']}", tg_private(update_id=2, user_id=2002,
                                                                              message_id=2), TG_SECRET)
    await api.process()
    report = await api.ok("get", "/reports/agents", as_=("analyst1", "analyst"))
    by_agent = {r["agent"]: r for r in report}
    assert by_agent["agent1"]["answered"] == 1 and by_agent["agent1"]["messages_sent"] == 2
    assert by_agent["agent1"]["within_target_share"] == 1.0
    assert by_agent["agent2"]["answered"] == 1 and by_agent["agent2"]["resolved"] == 1
    assert by_agent["agent2"]["within_target_share"] == 0.0
    # T0 is the same instant for both customers' messages: the second waited 13 minutes.
    assert by_agent["agent2"]["first_response_avg_s"] == 13 * 60
    assert by_agent["agent2"]["first_response_p90_s"] == 13 * 60
    refused = await api.post(f"/conversations/{first['id']}/quality-mark", {"score": 5}, as_=AGENT2)
    assert refused.status_code == 403
    bad = await api.post(f"/conversations/{first['id']}/quality-mark", {"score": 9}, as_=("senior1", "senior_agent"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "score"
    await api.ok("post", f"/conversations/{first['id']}/quality-mark", {"score": 4, "note": "вежливо"},
                 as_=("senior1", "senior_agent"))
    await api.ok("post", f"/conversations/{first['id']}/quality-mark", {"score": 5}, as_=("lead", "lead"))
    marked = {r["agent"]: r for r in await api.ok("get", "/reports/agents", as_=("analyst1", "analyst"))}
    assert marked["agent1"]["quality_avg"] == 4.5 and marked["agent2"]["quality_avg"] is None
    by_channel = await api.get("/reports/agents", as_=("analyst1", "analyst"), channel="vk")
    assert by_channel.status_code == 200 and by_channel.json() == []             # everything was on Telegram
    telegram = await api.get("/reports/agents", as_=("analyst1", "analyst"), channel="telegram")
    assert {r["agent"] for r in telegram.json()} == {"agent1", "agent2"}
    own = await api.ok("get", "/reports/agents", as_=AGENT1)
    assert [r["agent"] for r in own] == ["agent1"]
    assert len(await api.rows(ResponseFact)) == 3
    assert sum(d.answered for d in await api.rows(AgentDay)) == 2
    bad = await api.get("/reports/agents", **{"from": "2026-13-01"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "from"


async def _all(api) -> list[dict]:
    return await api.conversations()
