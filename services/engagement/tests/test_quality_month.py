"""EN-3 / EN-6 (issue 12): a month of synthetic conversations through the service, its agents' report checked
against a count done by hand.

The client account's care calendar is 09:00–13:00 and 14:00–21:00 every day (Asia/Almaty), the target 7 minutes
of business time. Every day of April 2026 four customers write on Telegram:

| customer | arrives | answered by | at                    | wall      | business        | within 7 min |
|----------|---------|-------------|-----------------------|-----------|-----------------|--------------|
| c0       | 08:30   | agent1      | 09:04                 | 34 min    | 4 min (opens 9) | yes          |
| c1       | 11:00   | agent2      | 11:05                 | 5 min     | 5 min           | yes          |
| c2       | 12:55   | agent1      | 14:05                 | 70 min    | 10 min (lunch)  | no           |
| c3       | 15:00   | agent2      | 15:00 + (day mod 10) min | same   | same            | if ≤ 7 min   |

By hand, over the 30 days:
- agent1: 60 answered; wall average (34 + 70) / 2 = 52 min = 3,120 s; business average (4 + 10) / 2 = 7 min = 420 s;
  within target 30 / 60 = 0.5; wall p90 (nearest rank, the 54th of 60) = 70 min = 4,200 s.
- agent2: 60 answered; c3's delays are 0…9 minutes three times each (days 1–30): 3 · 45 min = 8,100 s, plus
  30 · 300 s = 9,000 s → average 17,100 / 60 = 285 s (wall = business); within target 30 + 3 · 8 = 54 → 0.9;
  p90 = the 54th of [0×3, 60×3, 120×3, 180×3, 240×3, 300×33, 360×3, 420×3, 480×3, 540×3] = 420 s.
- Every first answer is one message: messages sent = answered. One extra answer per conversation on 1 April
  (a follow-up) counts as a message, not as another answer.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .payloads import TG_CONFIG, tg_private

ALMATY = ZoneInfo("Asia/Almaty")
TG_SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
AGENT1, AGENT2 = ("agent1", "care_agent"), ("agent2", "care_agent")
# (customer, arrives (h, m), agent, answered (h, m) — None: 15:00 + day mod 10 minutes)
DAY = [(0, (8, 30), AGENT1, (9, 4)), (1, (11, 0), AGENT2, (11, 5)), (2, (12, 55), AGENT1, (14, 5)),
       (3, (15, 0), AGENT2, None)]


def at(day: date, hm: tuple[int, int]) -> datetime:
    return datetime(day.year, day.month, day.day, *hm, tzinfo=ALMATY)


async def report_of(api, first: str, last: str) -> list[dict]:
    response = await api.get("/reports/agents", as_=("analyst1", "analyst"), **{"from": first, "to": last})
    assert response.status_code == 200, response.text
    return response.json()


async def test_en3_en6_a_month_of_conversations_reports_what_a_hand_count_gives(api) -> None:
    channel = await api.channel("telegram", TG_CONFIG)
    for agent in ("agent1", "agent2"):
        await api.ok("put", f"/staff/{agent}/accounts", {"accounts": ["deal-1"]})
    await api.ok("put", "/care-settings/deal-1", {"target_s": 420, "tz": "Asia/Almaty",
                                                  "hours": "09:00-13:00,14:00-21:00"})
    update, seen = 0, set()
    for n in range(30):
        day = date(2026, 4, 1) + timedelta(days=n)
        # The day's four customers write first (c3 at 15:00 after c2's 12:55), then the agents answer in order.
        events = []
        for customer, arrives, agent, answered in DAY:
            answered_at = at(day, answered) if answered else at(day, (15, 0)) + timedelta(minutes=day.day % 10)
            events.append((at(day, arrives), "in", customer, None))
            events.append((answered_at, "out", customer, agent))
        conversation_of: dict[int, str] = {}
        for when, kind, customer, agent in sorted(events, key=lambda e: (e[0], e[1] == "out")):
            api.clock.set(when)
            user = 100_000 + n * 10 + customer
            if kind == "in":
                update += 1
                payload = tg_private(update_id=update, message_id=update, user_id=user)
                payload["message"]["date"] = int(when.timestamp())
                await api.webhook(f"/webhooks/telegram/{channel['id']}", payload, TG_SECRET)
                await api.process()
                [new] = [c["id"] for c in await api.conversations(status="open") if c["id"] not in seen]
                seen.add(new)
                conversation_of[customer] = new
            else:
                cid = conversation_of[customer]
                await api.ok("post", f"/conversations/{cid}/replies", {"text": "Здравствуйте!"}, as_=agent,
                             status=202)
                if n == 0:
                    api.clock.set(when + timedelta(minutes=1))
                    await api.ok("post", f"/conversations/{cid}/replies", {"text": "Что-нибудь ещё?"}, as_=agent,
                                 status=202)
                await api.ok("post", f"/conversations/{cid}/status", {"status": "resolved"}, as_=agent)

    report = await report_of(api, "2026-04-01", "2026-04-30")
    by_agent = {r["agent"]: r for r in report}
    assert sorted(by_agent) == ["agent1", "agent2"]
    one, two = by_agent["agent1"], by_agent["agent2"]
    assert (one["answered"], one["resolved"], one["messages_sent"]) == (60, 60, 62)
    assert (one["first_response_avg_s"], one["first_response_business_avg_s"]) == (3120, 420)
    assert (one["first_response_p90_s"], one["within_target_share"]) == (4200, 0.5)
    assert (two["answered"], two["resolved"], two["messages_sent"]) == (60, 60, 62)
    assert (two["first_response_avg_s"], two["first_response_business_avg_s"]) == (285, 285)
    assert (two["first_response_p90_s"], two["within_target_share"]) == (420, 0.9)
    # One day: the same figures for that day alone (1 April: agent2's c3 waited 1 minute).
    first = {r["agent"]: r for r in await report_of(api, "2026-04-01", "2026-04-01")}
    assert (first["agent1"]["answered"], first["agent1"]["messages_sent"]) == (2, 4)
    assert first["agent2"]["first_response_avg_s"] == (300 + 60) // 2
