"""EN-4 check rounds (issue 12) with an injectable clock: at 11:00 and 19:00 local a round per current client in
rounds mode; done when nothing waiting since before the round is left unanswered or unmarked; missed when still
open one working hour later (an EN-4 deadline breach for payroll); an account that stopped being current has no
more rounds. The client accounts come from clients events (applied through the consumer's handlers).

The clock starts at T0 = Monday 2026-03-02 11:00 Almaty; the agency works 10:00–20:00, Monday to Friday."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

from engagement import rounds_handlers
from shared.events.clients import DealLost, DealPeriodOpened

from .payloads import T0, TG_CONFIG, tg_private

TG_SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]}
MANAGER1 = ("manager1", "content_manager")


def apply(api, evt) -> None:
    async def run() -> None:
        async with api.runtime.db.transaction() as session:
            await rounds_handlers.handlers(api.runtime)[evt.subject](evt, session)
    api.in_app(run)


def fire(api) -> None:
    api.in_app(api.runtime.scheduler.run_due)


async def _client_in_rounds(api) -> dict:
    await api.ok("put", "/care-settings/deal-1", {"mode": "rounds"})
    apply(api, DealPeriodOpened(deal_id="deal-1", manager="manager1", service_kind="smm", period_no=1,
                                period_start=T0, period_end=T0 + timedelta(days=30), occurred_at=T0))
    return await api.channel("telegram", TG_CONFIG)


async def _message(api, channel: dict, update_id: int, user_id: int, at: datetime) -> None:
    body = copy.deepcopy(tg_private(update_id=update_id, user_id=user_id, message_id=update_id))
    body["message"]["date"] = int(at.timestamp())
    await api.webhook(f"/webhooks/telegram/{channel['id']}", body, TG_SECRET)
    await api.process()


async def test_en4_round_done_when_the_manager_answers_and_missed_when_left_open(api_any) -> None:
    api = api_any
    channel = await _client_in_rounds(api)
    await _message(api, channel, 1, 1001, T0 - timedelta(minutes=30))
    fire(api)                                                              # 11:00: the round is made
    [r11] = await api.ok("get", "/check-rounds", as_=MANAGER1)
    assert (r11["round"], r11["state"], r11["left"], r11["manager"]) == ("11:00", "open", 1, "manager1")

    [conversation] = await api.conversations(as_=MANAGER1)                 # the manager sees their client's inbox
    api.clock.advance(timedelta(minutes=30))
    await api.ok("post", f"/conversations/{conversation['id']}/replies", {"text": "Спасибо за отзыв!"},
                 as_=MANAGER1, status=202)
    [r11] = await api.ok("get", "/check-rounds", as_=MANAGER1)
    assert (r11["state"], r11["left"]) == ("done", 0)
    [met] = [e for e in await api.events("engagement.deadline.met.v1") if e.rule == "EN-4"]
    assert met.owner == "manager1" and met.deadline_id == r11["id"]

    await _message(api, channel, 2, 1002, T0 + timedelta(hours=7))         # 18:00, nobody answers
    api.clock.advance(timedelta(hours=7, minutes=30))                      # 19:00
    fire(api)
    rounds = {r["round"]: r for r in await api.ok("get", "/check-rounds", as_=("lead", "lead"))}
    assert (rounds["19:00"]["state"], rounds["19:00"]["left"]) == ("open", 1)
    api.clock.advance(timedelta(hours=1, seconds=1))                       # 20:00:01, one working hour later
    fire(api)
    rounds = {r["round"]: r for r in await api.ok("get", "/check-rounds", as_=("lead", "lead"))}
    assert rounds["19:00"]["state"] == "missed"
    [breach] = [e for e in await api.events("engagement.deadline.breached.v1") if e.rule == "EN-4"]
    assert breach.owner == "manager1" and breach.deal_id == "deal-1"


async def test_en4_marking_seen_completes_the_round_and_other_managers_see_nothing(api) -> None:
    channel = await _client_in_rounds(api)
    await _message(api, channel, 1, 1001, T0 - timedelta(minutes=5))
    fire(api)
    assert await api.ok("get", "/check-rounds", as_=("manager2", "content_manager")) == []
    assert await api.conversations(as_=("manager2", "content_manager")) == []
    [conversation] = await api.conversations(as_=MANAGER1)
    seen = await api.ok("post", f"/conversations/{conversation['id']}/checked", as_=MANAGER1)
    assert seen["seen_until"]
    [r11] = await api.ok("get", "/check-rounds", as_=MANAGER1)
    assert r11["state"] == "done"


async def test_en4_an_account_with_nothing_waiting_is_done_at_once_and_a_lost_client_has_no_rounds(api) -> None:
    await _client_in_rounds(api)
    fire(api)
    [r11] = await api.ok("get", "/check-rounds", as_=MANAGER1)
    assert r11["state"] == "done"
    apply(api, DealLost(deal_id="deal-1", manager="manager1", reason="declined", occurred_at=T0 + timedelta(hours=1)))
    api.clock.advance(timedelta(hours=8))
    fire(api)
    assert [r["round"] for r in await api.ok("get", "/check-rounds", as_=MANAGER1)] == ["11:00"]


async def test_en4_no_rounds_on_the_weekend_and_brand_accounts_have_none(api) -> None:
    channel = await api.channel("telegram", TG_CONFIG)                     # brand mode (the default)
    apply(api, DealPeriodOpened(deal_id="deal-1", manager="manager1", service_kind="smm", period_no=1,
                                period_start=T0, period_end=T0 + timedelta(days=30), occurred_at=T0))
    await _message(api, channel, 1, 1001, T0)
    fire(api)
    assert await api.ok("get", "/check-rounds", as_=("lead", "lead")) == []
    await api.ok("put", "/care-settings/deal-1", {"mode": "rounds"})
    api.clock.advance(timedelta(days=5))                                   # Saturday 11:00
    fire(api)
    saturday = (T0 + timedelta(days=5)).date().isoformat()
    answer = await api.get("/check-rounds", as_=("lead", "lead"), date=saturday)
    assert answer.status_code == 200 and answer.json() == []
    bad = await api.get("/check-rounds", date="someday")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "date"
