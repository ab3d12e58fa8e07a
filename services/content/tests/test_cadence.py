"""CO-5 through the HTTP API: the "Today" board and the daily missed-cadence check (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from .conftest import LEAD, MANAGER, OTHER, T0, local, lost, midnight, new_deal, period_opened, profile, stage


async def ready(api, deal: str, name: str, manager: str = "manager1") -> dict:
    """A current client (period 2 March → 1 April) with plan 1 approved; returns plan 1."""
    await api.feed(profile(f"client-{deal}", name, [deal], T0),
                   stage(deal, "questionnaire_received", T0, manager=manager, client=f"client-{deal}"),
                   period_opened(deal, 1, midnight(2026, 3, 2), midnight(2026, 4, 2), manager=manager,
                                 client=f"client-{deal}", at=T0))
    who = (manager, "content_manager")
    plan = (await api.plans(deal, as_=who))[0]
    for day, kind in (("2026-03-02", "feed"), ("2026-03-02", "story"), ("2026-03-03", "feed"),
                      ("2026-03-05", "feed"), ("2026-03-05", "story")):
        await api.ok("post", f"/plans/{plan['id']}/items", {"date": day, "kind": kind, "caption": ""}, as_=who)
    token = (await api.ok("post", f"/plans/{plan['id']}/submit", as_=who))["token"]
    await api.ok("post", f"/api/content/approvals/{token}", {"decision": "approve"}, as_="public")
    return (await api.plans(deal, as_=who))[0]


async def publish(api, item: dict, at, who=LEAD) -> None:
    await api.ok("post", f"/items/{item['id']}/published", {"published_at": at.isoformat()}, as_=who)


async def test_co5_board_and_daily_check_publish_each_miss_once(api_any) -> None:
    api = api_any
    a, b = new_deal(), new_deal()
    plan_a = await ready(api, a, "Айгерим")
    await ready(api, b, "Берик", manager="manager2")
    items = plan_a["items"]
    # Monday 2 March: A posts to the feed and a story at 13:00; B posts nothing.
    api.clock.set(local(2026, 3, 2, 13, 0))
    await publish(api, items[0], api.clock.now(), MANAGER)
    await publish(api, items[1], api.clock.now(), MANAGER)
    board = {r["deal_id"]: r for r in await api.ok("get", "/cadence?date=2026-03-02", as_=LEAD)}
    assert [r["client_name"] for r in await api.ok("get", "/cadence?date=2026-03-02", as_=LEAD)] == ["Айгерим",
                                                                                                     "Берик"]
    assert board[a] | {} == board[a] and board[a]["feed_done"] and board[a]["stories_done"]
    assert not board[b]["feed_done"] and board[b]["missed"] == []  # before 18:00 nothing is missed yet
    assert [r["deal_id"] for r in await api.ok("get", "/cadence?date=2026-03-02", as_=OTHER)] == [b]
    # 18:00: the check runs; B missed its feed post (stories are not due on day 1).
    await api.tick(hours=5)
    board = {r["deal_id"]: r for r in await api.ok("get", "/cadence?date=2026-03-02", as_=LEAD)}
    assert board[b]["missed"] == ["feed"] and board[a]["missed"] == []
    [missed] = await api.events("content.cadence.missed")
    assert (missed.deal_id, missed.day.isoformat(), missed.what, missed.manager) == (b, "2026-03-02", "feed",
                                                                                     "manager2")
    # Tuesday: A posts at 12:00. Wednesday: nobody posts; B's stories are due (nothing in 3 days).
    api.clock.set(local(2026, 3, 3, 12, 0))
    await publish(api, items[2], api.clock.now(), MANAGER)
    await api.tick(days=1, hours=7)  # Wednesday 19:00: the checks of Tuesday and Wednesday have run
    tuesday = {r["deal_id"]: r["missed"] for r in await api.ok("get", "/cadence?date=2026-03-03", as_=LEAD)}
    wednesday = {r["deal_id"]: r for r in await api.ok("get", "/cadence?date=2026-03-04", as_=LEAD)}
    assert tuesday == {a: [], b: ["feed"]}
    assert wednesday[a]["missed"] == ["feed"] and not wednesday[a]["stories_due"]
    assert wednesday[b]["missed"] == ["feed", "stories"] and wednesday[b]["stories_due"]
    misses = sorted((e.deal_id == a, e.day.isoformat(), e.what) for e in await api.events("content.cadence.missed"))
    assert misses == [(False, "2026-03-02", "feed"), (False, "2026-03-03", "feed"), (False, "2026-03-04", "feed"),
                      (False, "2026-03-04", "stories"), (True, "2026-03-04", "feed")]
    # A lost client is not current: from the day it is lost, no board row and no misses.
    await api.feed(lost(b, local(2026, 3, 5, 9, 0), manager="manager2"))
    await api.tick(days=1)
    assert [r["deal_id"] for r in await api.ok("get", "/cadence?date=2026-03-05", as_=LEAD)] == [a]
    thursday = [(e.deal_id, e.what) for e in await api.events("content.cadence.missed") if e.day.day == 5]
    assert sorted(thursday) == [(a, "feed"), (a, "stories")]  # A: no post, last story 2.03; B: lost
    bad = await api.call("get", "/cadence?date=5-3-2026", as_=LEAD)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "date"


async def test_co5_a_provisional_period_is_not_yet_a_current_client(api_any) -> None:
    api = api_any
    deal = new_deal()
    await api.feed(stage(deal, "questionnaire_received", T0))
    await api.tick(hours=7)
    assert await api.ok("get", "/cadence?date=2026-03-02", as_=LEAD) == []
    assert await api.events("content.cadence.missed") == []
    assert T0 + timedelta(hours=7) == api.clock.now()
