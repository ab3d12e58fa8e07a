"""Issue 11 §assignment: round-robin among the care agents serving the account who are on shift, with a per-agent
cap of open conversations; senior agents reassign."""

from __future__ import annotations

from datetime import datetime

from engagement.rules import pick_round_robin

from .payloads import T0, TG_CONFIG, tg_private

TG_SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
SENIOR = ("senior", "senior_agent")


def test_issue11_round_robin_picks_the_longest_waiting_agent_under_the_cap() -> None:
    t1, t2 = T0, T0.replace(hour=7)
    assert pick_round_robin([("b", 0, 5, t1), ("a", 0, 5, t2)]) == "b"
    assert pick_round_robin([("b", 0, 5, t1), ("c", 3, 5, None)]) == "c"     # never given one: first
    assert pick_round_robin([("a", 0, 5, None), ("b", 0, 5, None)]) == "a"   # ties by login
    assert pick_round_robin([("a", 5, 5, None), ("b", 4, 5, datetime.now(T0.tzinfo))]) == "b"
    assert pick_round_robin([("a", 5, 5, None), ("b", 2, 2, None)]) is None


async def test_issue11_new_conversations_go_round_robin_to_agents_on_shift_serving_the_account(api_any) -> None:
    api = api_any
    channel = await api.channel("telegram", TG_CONFIG, deal_id="deal-1")
    for login in ("agent1", "agent2", "agent3"):
        await api.ok("put", f"/staff/{login}/accounts", {"accounts": ["deal-1" if login != "agent3" else "deal-9"]},
                     as_=SENIOR)
        await api.ok("put", f"/agents/{login}", {"on_shift": True}, as_=(login, "care_agent"))
    await api.ok("put", "/agents/agent2", {"cap": 1}, as_=SENIOR)
    assert (await api.put("/agents/agent1", {"cap": 50}, as_=("agent1", "care_agent"))).status_code == 403
    assert (await api.put("/agents/agent2", {"on_shift": False}, as_=("agent1", "care_agent"))).status_code == 403

    for n in range(4):
        await api.webhook(f"/webhooks/telegram/{channel['id']}", tg_private(update_id=n, user_id=100 + n), TG_SECRET)
        await api.process()
    by_customer = {c["id"]: c["assignee"] for c in await api.conversations()}
    # agent1, agent2 (now at cap 1), agent1, agent1 — agent3 serves another account.
    assert sorted(by_customer.values()) == ["agent1", "agent1", "agent1", "agent2"]

    await api.ok("put", "/agents/agent1", {"on_shift": False}, as_=("agent1", "care_agent"))
    await api.webhook(f"/webhooks/telegram/{channel['id']}", tg_private(update_id=9, user_id=999), TG_SECRET)
    await api.process()
    [newest] = [c for c in await api.conversations() if c["id"] not in by_customer]
    assert newest["assignee"] is None                 # agent2 is at the cap, agent1 off shift: unassigned
    assert [c["id"] for c in await api.conversations(assignee="none")] == [newest["id"]]
