"""Issue 7 §1 (DESIGN 5, CAL-3): a fact is judged on its own time, even when it is recorded late.

Before a fact dated `t` is applied only the deal's timers due strictly before `t` fire; a fact at
exactly the due time meets its deadline; a breach the timer made is retracted by a later-recorded
fact dated in time (`DeadlineMet.revises_breach_event_id`). On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.events import decode, encode
from shared.events.content import PostPublished

from .conftest import T0, payment

LEAD = ("boss", "lead")


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def deliver_post(api, deal_id: str, published_at: datetime, kind: str = "feed") -> None:
    """content.post.published.v1 through the clients consumer's handler (handlers.py), as the
    consumer calls it: in one transaction with the processed event id."""
    [subscription] = [s for s in api.app.state.runtime.spec.subscriptions(api.app.state.runtime)
                      if s.name == "clients-content"]
    handler = subscription.handlers[PostPublished.subject]
    event = PostPublished(deal_id=deal_id, post_id=f"post-{kind}", published_at=published_at, kind=kind)
    event = decode(PostPublished.subject, encode(event))  # the wire form: any kind decodes

    async def run() -> None:
        async with api.app.state.runtime.db.transaction() as session:
            await handler(event, session)

    api.in_app(run)


async def cl9_deal(api, external_id: str = "p") -> tuple[str, datetime]:
    deal = await api.pay(payment(external_id))
    after = await api.ok("post", f"/deals/{deal['deal_id']}/questionnaire", {"answers": {"a": 1}})
    [cl9] = [d for d in after["deadlines"] if d["rule"] == "CL-9"]
    return deal["deal_id"], ts(cl9["due_at"])


def cl9_of(deal: dict) -> dict:
    [cl9] = [d for d in deal["deadlines"] if d["rule"] == "CL-9"]
    return cl9


async def test_cl9_post_published_before_due_but_consumed_late_meets(api_any) -> None:
    api = api_any
    deal_id, due = await cl9_deal(api)
    api.clock.set(due + timedelta(days=1))  # the event arrives a day after the due time, the timer not yet fired
    await deliver_post(api, deal_id, due - timedelta(hours=2), kind="reel")  # any kind counts
    deal = await api.deal(deal_id)
    assert cl9_of(deal)["state"] == "met" and deal["first_post_at"] == (due - timedelta(hours=2)).isoformat()
    assert [e for e in await api.events("clients.deadline.breached") if e.rule == "CL-9"] == []
    [met] = [e for e in await api.events("clients.deadline.met") if e.rule == "CL-9"]
    assert met.met_at == due - timedelta(hours=2) and met.revises_breach_event_id is None


async def test_cl9_post_published_before_due_retracts_the_breach_the_timer_made(api_any) -> None:
    api = api_any
    deal_id, due = await cl9_deal(api)
    api.clock.set(due + timedelta(days=1))
    await api.run_due()  # the timer breaches CL-9: no post known yet
    assert cl9_of(await api.deal(deal_id))["state"] == "breached"
    [breach] = [e for e in await api.events("clients.deadline.breached") if e.rule == "CL-9"]

    await deliver_post(api, deal_id, due - timedelta(minutes=5))
    deal = await api.deal(deal_id)
    assert cl9_of(deal)["state"] == "met"
    [met] = [e for e in await api.events("clients.deadline.met") if e.rule == "CL-9"]
    assert met.revises_breach_event_id == breach.event_id and met.occurred_at == due - timedelta(minutes=5)
    codes = [entry["code"] for entry in deal["timeline"]]
    assert "deadline.breach_retracted" in codes
    # Redelivered: nothing changes (only the first post counts; the deadline is met).
    await deliver_post(api, deal_id, due - timedelta(minutes=5))
    assert len([e for e in await api.events("clients.deadline.met") if e.rule == "CL-9"]) == 1


async def test_cl9_post_after_the_due_time_still_breaches(api_any) -> None:
    api = api_any
    deal_id, due = await cl9_deal(api)
    api.clock.set(due + timedelta(days=1))
    await deliver_post(api, deal_id, due + timedelta(minutes=1))
    assert cl9_of(await api.deal(deal_id))["state"] == "breached"
    assert [e for e in await api.events("clients.deadline.met") if e.rule == "CL-9"] == []


async def test_cl3_first_call_completed_exactly_at_its_due_time_is_met(api_any) -> None:
    api = api_any
    deal = await api.pay(payment("exact"))
    [task] = deal["tasks"]
    due = ts(task["due_at"])
    api.clock.set(due + timedelta(minutes=20))  # reported 20 minutes later by the lead, dated at the due time
    done = await api.ok("post", f"/tasks/{task['id']}/complete", {"at": due.isoformat()}, as_=LEAD)
    assert done["status"] == "done"
    after = await api.deal(deal["deal_id"])
    assert after["deadlines"][0]["state"] == "met" and after["stage"] == "contacted"
    assert await api.events("clients.deadline.breached") == []


async def test_cl3_call_at_due_time_reported_after_the_timer_breached_retracts_the_breach(api_any) -> None:
    api = api_any
    deal = await api.pay(payment("late-report"))
    [task] = deal["tasks"]
    due = ts(task["due_at"])
    await api.tick(hours=2)
    assert (await api.deal(deal["deal_id"]))["deadlines"][0]["state"] == "breached"
    [breach] = await api.events("clients.deadline.breached")
    await api.ok("post", f"/deals/{deal['deal_id']}/stage", {"stage": "contacted", "at": due.isoformat()}, as_=LEAD)
    after = await api.deal(deal["deal_id"])
    assert after["deadlines"][0]["state"] == "met"
    [met] = await api.events("clients.deadline.met")
    assert met.revises_breach_event_id == breach.event_id and met.met_at == due


async def test_pay5_pay4_refund_dated_in_window_recorded_after_the_window_ended(api_any) -> None:
    api = api_any
    deal = await api.pay(payment("mb"))
    api.clock.set(T0 + timedelta(days=12))
    await api.run_due()  # the window-end timer fired: not refunded (PAY-5 would be booked)
    [ended] = await api.events("clients.deal.money_back_window_ended")
    assert ended.refunded is False
    refund = {"external_id": "r1", "amount": "20000.00", "currency": "KZT",
              "refunded_at": (T0 + timedelta(days=5)).isoformat()}
    recorded = await api.ok("post", f"/deals/{deal['deal_id']}/refunds", refund, status=201)
    assert recorded["within_window"] is True  # judged on the refund's own time
    [evt] = await api.events("clients.refund.recorded")
    assert evt.within_window and evt.refunded_at == T0 + timedelta(days=5)
    assert (await api.deal(deal["deal_id"]))["stage"] != "lost"  # a partial refund does not end the deal
    # The rest of the payment, also dated inside the window: the client is refunded in full → lost.
    rest = refund | {"external_id": "r2", "amount": "40000.00", "refunded_at": (T0 + timedelta(days=6)).isoformat()}
    await api.ok("post", f"/deals/{deal['deal_id']}/refunds", rest, status=201)
    after = await api.deal(deal["deal_id"])
    assert after["stage"] == "lost" and after["lost_reason"] == "refunded"
    assert after["lost_at"] == (T0 + timedelta(days=6)).isoformat()
    [lost] = await api.events("clients.deal.lost")
    assert lost.reason == "refunded" and lost.after_full_month is False
    # The first call was breached before the refund: that fact stays (it was due before the client left).
    assert after["deadlines"][0]["state"] == "breached"


async def test_cl15_full_refund_inside_the_10_days_ends_the_deal(api_any) -> None:
    api = api_any
    deal = await api.pay(payment("full"))
    api.clock.advance(timedelta(minutes=30))
    refund = {"external_id": "rf", "amount": "60000.00", "currency": "KZT", "refunded_at": api.clock.now().isoformat()}
    await api.ok("post", f"/deals/{deal['deal_id']}/refunds", refund, status=201)
    after = await api.deal(deal["deal_id"])
    assert after["stage"] == "lost" and after["lost_reason"] == "refunded"
    [task] = after["tasks"]
    assert task["status"] == "cancelled"
    assert after["deadlines"][0]["state"] == "waived"  # the first call was still in the future
    [lost] = await api.events("clients.deal.lost")
    assert lost.reason == "refunded" and not lost.after_full_month
    api.clock.set(T0 + timedelta(days=11))
    await api.run_due()
    [ended] = await api.events("clients.deal.money_back_window_ended")
    assert ended.refunded is True
    assert await api.events("clients.deadline.breached") == []


async def test_cl9_demo_deal_olga_kim_backdated_first_post_before_due_is_met(api_any) -> None:
    """The demo's "Ольга Ким" (scripts/seed_demo.py): paid 13 days ago, launched 10 days ago, every
    fact posted now with its own date. The first post came a day after the questionnaire: CL-9 met,
    never breached (no PAY-6 line)."""
    api = api_any
    now = T0 + timedelta(days=13)
    api.clock.set(now)
    deal = await api.pay(payment("demo-pay-006", paid_at=now - timedelta(days=13), kind="complex_promotion"))
    deal_id, at = deal["deal_id"], now - timedelta(days=10)
    await api.ok("post", f"/deals/{deal_id}/stage", {"stage": "contacted", "at": (at - timedelta(days=2)).isoformat()})
    # The seed records the first post before the questionnaire (any order: each fact is judged on its
    # own time). In the other order the questionnaire's response would already breach CL-9 — its due
    # time passed with no post known — and the post would then retract that breach.
    await api.ok("post", f"/deals/{deal_id}/first-post", {"published_at": at.isoformat()})
    await api.ok("post", f"/deals/{deal_id}/questionnaire", {"answers": {"niche": "demo"},
                                                              "received_at": (at - timedelta(days=1)).isoformat()})
    launched = await api.ok("post", f"/deals/{deal_id}/stage", {
        "stage": "project_launched", "at": at.isoformat(), "service_start": at.date().isoformat(),
        "instagram_login": "stroymart.kz", "instagram_password": "demo-password"})
    assert cl9_of(launched)["state"] == "met"
    assert [e for e in await api.events("clients.deadline.breached") if e.rule == "CL-9"] == []
