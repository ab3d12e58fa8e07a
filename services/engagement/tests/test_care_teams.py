"""EN-6 teams (issue 12): the lead names care teams; a senior agent reads their team's report (everyone when they
have none); analysts and the lead narrow any report to a team; the care team list shows shift, cap, team and
served accounts."""

from __future__ import annotations

from datetime import timedelta

from .payloads import TG_CONFIG, tg_private

TG_SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
SENIOR = ("senior1", "senior_agent")


async def _answered_by(api, agents: list[str]) -> None:
    channel = await api.channel("telegram", TG_CONFIG)
    seen: set[str] = set()
    for n, agent in enumerate(agents, start=1):
        await api.webhook(f"/webhooks/telegram/{channel['id']}", tg_private(update_id=n, message_id=n,
                                                                          user_id=5000 + n), TG_SECRET)
        await api.process()
        [new] = [c["id"] for c in await api.conversations(status="open") if c["id"] not in seen]
        seen.add(new)
        api.clock.advance(timedelta(minutes=2))
        await api.ok("post", f"/conversations/{new}/replies", {"text": "Добрый день!"}, as_=(agent, "care_agent"),
                     status=202)


async def test_en6_a_senior_agent_reads_their_team_and_the_lead_narrows_to_a_team(api_any) -> None:
    api = api_any
    for agent in ("agent1", "agent2", "agent3"):
        await api.ok("put", f"/staff/{agent}/accounts", {"accounts": ["deal-1"]})
    await _answered_by(api, ["agent1", "agent2", "agent3"])
    senior_all = await api.ok("get", "/reports/agents", as_=SENIOR)
    assert [r["agent"] for r in senior_all] == ["agent1", "agent2", "agent3"]   # no team yet: everyone

    for login, team in (("agent1", "Алматы"), ("agent2", "Алматы"), ("senior1", "Алматы"), ("agent3", "Астана")):
        saved = await api.ok("put", f"/agents/{login}", {"team": team})
        assert saved["team"] == team
    own_team = await api.ok("get", "/reports/agents", as_=SENIOR)
    assert [(r["agent"], r["team"]) for r in own_team] == [("agent1", "Алматы"), ("agent2", "Алматы")]
    # Asking for another team is narrowed to what the senior agent may read: nothing.
    assert (await api.get("/reports/agents", as_=SENIOR, team="Астана")).json() == []
    astana = (await api.get("/reports/agents", as_=("analyst1", "analyst"), team="Астана")).json()
    assert [r["agent"] for r in astana] == ["agent3"]

    # Only the lead names teams; an agent still puts themselves on shift.
    refused = await api.put("/agents/agent1", {"team": "Шымкент"}, as_=SENIOR)
    assert refused.status_code == 403
    refused = await api.put("/agents/agent1", {"team": "Шымкент"}, as_=("agent1", "care_agent"))
    assert refused.status_code == 403
    await api.ok("put", "/agents/agent1", {"on_shift": True}, as_=("agent1", "care_agent"))
    long_name = await api.put("/agents/agent1", {"team": "x" * 101})
    assert long_name.status_code == 422 and long_name.json()["errors"][0]["field"] == "team"

    team = {a["login"]: a for a in await api.ok("get", "/agents", as_=SENIOR)}
    assert team["agent1"] == {"login": "agent1", "on_shift": True, "team": "Алматы", "cap": team["agent1"]["cap"],
                              "cap_is_default": True, "accounts": ["deal-1"]}
    assert team["senior1"]["accounts"] == [] and team["agent3"]["team"] == "Астана"
    await api.ok("put", "/agents/agent3", {"team": ""})
    assert (await api.ok("get", "/agents"))[2]["team"] is None
    assert (await api.get("/agents", as_=("agent1", "care_agent"))).status_code == 403
