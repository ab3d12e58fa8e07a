"""CO-1…CO-4 and publishing by hand through the HTTP API (SQLite; the contract runs on both databases
in test_contract.py). The read model is fed with the events the clients service emits."""

from __future__ import annotations

from datetime import UTC, timedelta

from .conftest import (
    ANALYST,
    LEAD,
    MANAGER,
    OTHER,
    T0,
    assigned,
    local,
    lost,
    midnight,
    new_deal,
    period_opened,
    profile,
    renewed,
    stage,
)


async def launched(api, deal: str, approve_plan_1: bool = True) -> list[dict]:
    """A deal whose questionnaire came in at T0 and whose period 1 runs 2 March → 1 April (31 days)."""
    await api.feed(stage(deal, "questionnaire_received", T0),
                   period_opened(deal, 1, midnight(2026, 3, 2), midnight(2026, 4, 2), at=T0))
    plans = await api.plans(deal)
    if approve_plan_1:
        await approve(api, plans[0]["id"], "2026-03-02")
    return await api.plans(deal)


async def approve(api, plan_id: str, day: str) -> dict:
    item = await api.ok("post", f"/plans/{plan_id}/items", {"date": day, "kind": "feed", "caption": "Hello"})
    sent = await api.ok("post", f"/plans/{plan_id}/submit")
    token = sent["approval_url"].rsplit("/", 1)[1]
    await api.ok("post", f"/api/content/approvals/{token}", {"decision": "approve", "comments": []}, as_="public")
    return item


async def test_co1_period_opened_gives_three_plans_and_a_renewal_the_next_three(api_any) -> None:
    api = api_any
    deal = new_deal()
    await api.feed(period_opened(deal, 1, midnight(2026, 2, 1), midnight(2026, 3, 1)))
    plans = await api.plans(deal)
    assert [(p["period_no"], p["number"], p["first_day"], p["last_day"]) for p in plans] == [
        (1, 1, "2026-02-01", "2026-02-09"), (1, 2, "2026-02-10", "2026-02-18"), (1, 3, "2026-02-19", "2026-02-28")]
    assert {p["status"] for p in plans} == {"not_due"} and all(p["round"] == 0 for p in plans)
    # CL-14 renewal on 27 Feb: clients opens period 2 (27.02–26.03) and says renewed.
    await api.feed(period_opened(deal, 2, midnight(2026, 2, 27), midnight(2026, 3, 27)),
                   renewed(deal, midnight(2026, 2, 27), midnight(2026, 3, 27)))
    plans = await api.plans(deal)
    assert [(p["period_no"], p["number"]) for p in plans] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert plans[3]["first_day"] == "2026-02-27" and plans[5]["last_day"] == "2026-03-26"
    assert plans[3]["due_at"] == midnight(2026, 2, 27).isoformat()  # CO-2: the renewal's materials are in
    again = await api.plans(deal)
    await api.feed(period_opened(deal, 2, midnight(2026, 2, 27), midnight(2026, 3, 27)))  # a replay: nothing new
    assert await api.plans(deal) == again


async def test_co2_questionnaire_makes_plan_1_due_before_the_launch_then_the_launch_dates_the_period(api_any) -> None:
    api = api_any
    deal = new_deal()
    await api.feed(stage(deal, "questionnaire_received", T0))
    [plan_1, plan_2, _] = await api.plans(deal)
    assert plan_1["status"] == "due" and plan_1["due_at"] == T0.isoformat()
    assert (plan_1["first_day"], plan_1["last_day"]) == ("2026-03-02", "2026-03-10")  # provisional, from that day
    assert plan_2["status"] == "not_due" and plan_2["due_at"] is None
    await api.ok("post", f"/plans/{plan_1['id']}/items", {"date": "2026-03-04", "kind": "feed", "caption": "x"})
    # CL-8: launched with service start 4 March: the real period 4.03–3.04, plans follow, items keep their days.
    await api.feed(period_opened(deal, 1, midnight(2026, 3, 4), midnight(2026, 4, 4), at=T0 + timedelta(days=2)))
    [plan_1, plan_2, plan_3] = await api.plans(deal)
    assert (plan_1["first_day"], plan_1["last_day"], plan_3["last_day"]) == ("2026-03-04", "2026-03-12", "2026-04-03")
    assert plan_1["status"] == "draft" and plan_1["items"][0]["date"] == "2026-03-04"


async def test_co2_materials_button_makes_plan_1_due(api_any) -> None:
    api = api_any
    deal = new_deal()
    await api.feed(period_opened(deal, 1, midnight(2026, 3, 2), midnight(2026, 4, 2)))
    assert (await api.plans(deal))[0]["status"] == "not_due"
    api.clock.advance(timedelta(hours=1))
    plans = await api.ok("post", f"/deals/{deal}/materials-received", {})
    assert plans[0]["status"] == "due" and plans[0]["due_at"] == (T0 + timedelta(hours=1)).isoformat()
    early = await api.call("post", f"/deals/{deal}/materials-received", {"at": T0.isoformat()})
    assert early.status_code == 422 and early.json()["errors"][0]["field"] == "at"  # a manager cannot backdate


async def test_co2_publishing_before_plan_1_is_approved_is_409_naming_the_rule(api_any) -> None:
    api = api_any
    deal = new_deal()
    plans = await launched(api, deal, approve_plan_1=False)
    item = await api.ok("post", f"/plans/{plans[0]['id']}/items", {"date": "2026-03-02", "kind": "feed",
                                                                   "caption": "first"})
    response = await api.call("post", f"/items/{item['id']}/published", {"published_at": T0.isoformat()})
    assert response.status_code == 409 and "CO-2" in response.json()["detail"]
    assert response.json()["errors"][0]["rule"] == "CO-2"
    assert await api.events("content.post") == []
    # Approved at T0 + 1 h; the lead cannot backdate a publication to before the approval either.
    api.clock.advance(timedelta(hours=1))
    await api.ok("post", f"/plans/{plans[0]['id']}/submit")
    [sub] = [e for e in await api.events("content.plan.submitted")]
    token = (await api.ok("post", f"/plans/{plans[1]['id']}/items", {"date": "2026-03-11", "kind": "feed",
                                                                     "caption": "x"}))  # plan 2 is editable
    assert token["status"] == "planned" and sub.round == 1


async def test_items_dates_outside_the_plan_and_bad_fields_are_422_naming_the_field(api_any) -> None:
    api = api_any
    deal = new_deal()
    plans = await launched(api, deal, approve_plan_1=False)
    plan_1 = plans[0]["id"]
    for body, field in (({"date": "2026-03-11", "kind": "feed"}, "date"),
                        ({"date": "2026-03-01", "kind": "feed"}, "date"),
                        ({"date": "2026-03-05", "kind": "tiktok"}, "kind"),
                        ({"kind": "feed"}, "date"),
                        ({"date": "2026-03-05", "kind": "feed", "scheduled_at": "2026-03-05T10:00:00"}, "scheduled_at"),
                        ({"date": "5 March", "kind": "feed"}, "date")):
        response = await api.call("post", f"/plans/{plan_1}/items", body)
        assert response.status_code == 422, body
        assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert (await api.plans(deal))[0]["items"] == []


async def test_co4_roles_other_manager_sees_nothing_analyst_reads_lead_changes(api_any) -> None:
    api = api_any
    deal = new_deal()
    plans = await launched(api, deal, approve_plan_1=False)
    assert (await api.call("get", f"/deals/{deal}/plans", as_=OTHER)).status_code == 404
    assert (await api.call("post", f"/plans/{plans[0]['id']}/items", {"date": "2026-03-03", "kind": "feed"},
                           as_=OTHER)).status_code == 404
    assert len(await api.plans(deal, as_=ANALYST)) == 3
    assert (await api.call("post", f"/plans/{plans[0]['id']}/items", {"date": "2026-03-03", "kind": "feed"},
                           as_=ANALYST)).status_code == 403
    assert (await api.call("post", f"/plans/{plans[0]['id']}/items", {"date": "2026-03-03", "kind": "feed"},
                           as_=LEAD)).status_code == 201
    assert (await api.call("get", f"/deals/{deal}/plans", as_=("agent1", "care_agent"))).status_code == 404
    # CL-3 reassignment: manager2 now owns the deal.
    await api.feed(assigned(deal, "manager2", T0 + timedelta(hours=1)))
    assert len(await api.plans(deal, as_=OTHER)) == 3
    assert (await api.call("get", f"/deals/{deal}/plans", as_=MANAGER)).status_code == 404


async def test_co4_approval_link_expired_is_410_forged_is_404_and_an_answered_round_is_409(api_any) -> None:
    api = api_any
    deal = new_deal()
    plans = await launched(api, deal, approve_plan_1=False)
    plan_1 = plans[0]["id"]
    await api.ok("post", f"/plans/{plan_1}/items", {"date": "2026-03-03", "kind": "feed", "caption": "x"})
    sent = await api.ok("post", f"/plans/{plan_1}/submit")
    assert sent["approval_url"].startswith("https://zabota.example.kz/approve/")
    token = sent["token"]
    assert (await api.call("get", f"/api/content/approvals/{token}x", as_="public")).status_code == 404
    assert (await api.call("get", "/api/content/approvals/garbage", as_="public")).status_code == 404
    again = await api.call("post", f"/plans/{plan_1}/submit")
    assert again.status_code == 409  # already waiting for the client
    bad = await api.call("post", f"/api/content/approvals/{token}", {"decision": "maybe"}, as_="public")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "decision"
    bare = await api.call("post", f"/api/content/approvals/{token}", {"decision": "changes"}, as_="public")
    assert bare.status_code == 422 and bare.json()["errors"][0]["field"] == "comments"
    await api.ok("post", f"/public/content/approvals/{token}", {"decision": "approve"}, as_="public")
    answered = await api.call("post", f"/api/content/approvals/{token}", {"decision": "approve"}, as_="public")
    assert answered.status_code == 409
    api.clock.advance(timedelta(days=15))
    assert (await api.call("get", f"/api/content/approvals/{token}", as_="public")).status_code == 410


async def test_publishing_by_hand_backdating_only_by_the_lead_and_not_in_the_future(api_any) -> None:
    api = api_any
    deal = new_deal()
    plans = await launched(api, deal)
    item_id = plans[0]["items"][0]["id"]
    api.clock.advance(timedelta(hours=3))
    future = await api.call("post", f"/items/{item_id}/published",
                            {"published_at": (api.clock.now() + timedelta(minutes=5)).isoformat()})
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "published_at"
    old = await api.call("post", f"/items/{item_id}/published",
                         {"published_at": (api.clock.now() - timedelta(hours=2)).isoformat()})
    assert old.status_code == 422 and "backdate" in old.json()["errors"][0]["message"]
    naive = await api.call("post", f"/items/{item_id}/published", {"published_at": "2026-03-02T15:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "published_at"
    bad_link = await api.call("post", f"/items/{item_id}/published",
                              {"published_at": api.clock.now().isoformat(), "permalink": "not a url"})
    assert bad_link.status_code == 422 and bad_link.json()["errors"][0]["field"] == "permalink"
    at = api.clock.now() - timedelta(hours=2)
    done = await api.ok("post", f"/items/{item_id}/published",
                        {"published_at": at.isoformat(), "permalink": "https://instagram.com/p/abc"}, as_=LEAD)
    assert done["status"] == "published" and done["published_at"] == at.isoformat()
    same = await api.ok("post", f"/items/{item_id}/published", {"published_at": at.isoformat()}, as_=LEAD)
    assert same["published_at"] == at.isoformat()
    other = await api.call("post", f"/items/{item_id}/published", {"published_at": api.clock.now().isoformat()})
    assert other.status_code == 409
    [evt] = await api.events("content.post.published")
    assert (evt.deal_id, evt.post_id, evt.published_at, evt.kind) == (deal, item_id, at, "feed")


async def test_co3_first_post_sets_plan_2_and_3_due_and_submission_meets_the_deadline(api_any) -> None:
    api = api_any
    deal = new_deal()
    plans = await launched(api, deal)
    first_post = local(2026, 3, 2, 15, 0)  # Monday
    api.clock.set(first_post)
    await api.ok("post", f"/items/{plans[0]['items'][0]['id']}/published", {"published_at": first_post.isoformat()})
    [_, plan_2, plan_3, *_] = await api.plans(deal)
    assert plan_2["due_at"] == local(2026, 3, 8, 15, 0).astimezone(UTC).isoformat()      # Sunday
    assert plan_2["submit_by"] == local(2026, 3, 11, 20, 0).astimezone(UTC).isoformat()   # 3 working days
    assert plan_3["due_at"] == local(2026, 3, 17, 15, 0).astimezone(UTC).isoformat()
    assert plan_3["submit_by"] == local(2026, 3, 20, 15, 0).astimezone(UTC).isoformat()
    deadlines = await api.deadlines(deal)
    assert [(d["rule"], d["state"], d["owner"]) for d in deadlines] == [("CO-3", "open", "manager1")] * 2
    # Plan 2 sent on Wednesday 11 March 19:00: met.
    api.clock.set(local(2026, 3, 11, 19, 0))
    await api.ok("post", f"/plans/{plan_2['id']}/items", {"date": "2026-03-12", "kind": "feed", "caption": "y"})
    await api.ok("post", f"/plans/{plan_2['id']}/submit")
    # Plan 3 never sent: breached by the timer at Friday 20 March 15:00, once.
    await api.tick(days=9)
    states = {d["plan_id"]: d["state"] for d in await api.deadlines(deal)}
    assert states == {plan_2["id"]: "met", plan_3["id"]: "breached"}
    [met] = await api.events("content.deadline.met")
    [breached] = await api.events("content.deadline.breached")
    assert met.met_at == local(2026, 3, 11, 19, 0) and not met.revises_breach
    assert breached.due_at == local(2026, 3, 20, 15, 0) and breached.owner == "manager1" and breached.deal_id == deal
    assert (await api.events("content.post.published"))[0].published_at == first_post
    await api.tick(days=1)
    assert len(await api.events("content.deadline.breached")) == 1


async def test_co3_a_submission_dated_in_time_but_recorded_late_revises_the_breach(api_any) -> None:
    api = api_any
    deal = new_deal()
    plans = await launched(api, deal)
    first_post = local(2026, 3, 2, 15, 0)
    api.clock.set(first_post)
    await api.ok("post", f"/items/{plans[0]['items'][0]['id']}/published", {"published_at": first_post.isoformat()})
    plan_2 = (await api.plans(deal))[1]
    await api.ok("post", f"/plans/{plan_2['id']}/items", {"date": "2026-03-12", "kind": "feed", "caption": "y"})
    api.clock.set(local(2026, 3, 12, 9, 0))
    await api.tick(seconds=0)
    assert [d["state"] for d in await api.deadlines(deal)][0] == "breached"
    # The lead records the submission made (by e-mail) on Wednesday 18:00, before the due time.
    sent_at = local(2026, 3, 11, 18, 0)
    await api.ok("post", f"/plans/{plan_2['id']}/submit", {"at": sent_at.isoformat()}, as_=LEAD)
    [d2, _] = await api.deadlines(deal)
    assert d2["state"] == "met" and d2["resolved_at"] == sent_at.astimezone(UTC).isoformat()
    [met] = await api.events("content.deadline.met")
    assert met.revises_breach and met.met_at == sent_at


async def test_co3_plan_sent_before_it_became_due_meets_its_deadline_at_once(api_any) -> None:
    api = api_any
    deal = new_deal()
    plans = await launched(api, deal)
    await api.ok("post", f"/plans/{plans[1]['id']}/items", {"date": "2026-03-12", "kind": "story", "caption": ""})
    await api.ok("post", f"/plans/{plans[1]['id']}/submit")
    api.clock.advance(timedelta(hours=2))
    await api.ok("post", f"/items/{plans[0]['items'][0]['id']}/published", {"published_at": api.clock.now().isoformat()})
    states = [(d["plan_id"], d["state"]) for d in await api.deadlines(deal)]
    assert states == [(plans[1]["id"], "met"), (plans[2]["id"], "open")]


async def test_co3_a_lost_deal_waives_its_open_content_deadlines_and_stops_its_work(api_any) -> None:
    api = api_any
    deal = new_deal()
    plans = await launched(api, deal)
    first_post = local(2026, 3, 2, 15, 0)
    api.clock.set(first_post)
    await api.ok("post", f"/items/{plans[0]['items'][0]['id']}/published", {"published_at": first_post.isoformat()})
    # The loss on 15 March is consumed only on 21 March, after plan 2 (due 11.03) and plan 3 (due 20.03) were
    # breached by their timers: plan 2's breach stands (due before the loss), plan 3's is waived.
    api.clock.set(local(2026, 3, 21, 12, 0))
    await api.tick(seconds=0)
    await api.feed(lost(deal, local(2026, 3, 15, 12, 0)))
    states = [d["state"] for d in await api.deadlines(deal)]
    assert states == ["breached", "waived"]
    [waived] = await api.events("content.deadline.waived")
    assert waived.waived_by == "system" and "lost" in waived.reason
    response = await api.call("post", f"/plans/{plans[2]['id']}/items", {"date": "2026-03-25", "kind": "feed"})
    assert response.status_code == 409
    # A renewal afterwards brings the deal back (period 2's plans, editable).
    await api.feed(period_opened(deal, 2, midnight(2026, 3, 22), midnight(2026, 4, 22), at=local(2026, 3, 21, 13, 0)))
    plan = (await api.plans(deal))[3]
    assert (await api.call("post", f"/plans/{plan['id']}/items", {"date": "2026-03-23", "kind": "feed"})
            ).status_code == 201


async def test_read_model_keeps_the_client_profile(api_any) -> None:
    api = api_any
    deal = new_deal()
    await api.feed(profile("client-1", "Айгерим Сапарова", [deal], T0))
    await launched(api, deal, approve_plan_1=False)
    plan_1 = (await api.plans(deal))[0]["id"]
    await api.ok("post", f"/plans/{plan_1}/items", {"date": "2026-03-03", "kind": "feed", "caption": "x"})
    token = (await api.ok("post", f"/plans/{plan_1}/submit"))["token"]
    await api.feed(profile("client-1", "Old name", [deal], T0 - timedelta(days=1)))  # an older edit, late
    page = await api.ok("get", f"/api/content/approvals/{token}", as_="public")
    assert page["client_name"] == "Айгерим Сапарова"


async def test_co6_client_asks_to_publish_manager_declines_with_a_reason_client_sees_it(api_any) -> None:
    api = api_any
    deal = new_deal()
    plans = await launched(api, deal, approve_plan_1=False)
    plan_1 = plans[0]["id"]
    await api.ok("post", f"/plans/{plan_1}/items", {"date": "2026-03-03", "kind": "feed", "caption": "x"})
    token = (await api.ok("post", f"/plans/{plan_1}/submit"))["token"]
    empty = await api.call("post", f"/api/content/approvals/{token}/requests", {"text": " "}, as_="public")
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "text"
    one = await api.ok("post", f"/api/content/approvals/{token}/requests",
                       {"text": "Пост про 8 марта", "date": "2026-03-08"}, as_="public")
    two = await api.ok("post", f"/public/content/approvals/{token}/requests", {"text": "Видео с кухни"},
                       as_="public")
    assert [r["status"] for r in await api.ok("get", f"/deals/{deal}/requests")] == ["requested", "requested"]
    no_reason = await api.call("post", f"/requests/{one['id']}/answer", {"decision": "decline"})
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    assert (await api.call("post", f"/requests/{one['id']}/answer", {"decision": "approve"}, as_=OTHER)
            ).status_code == 404
    await api.ok("post", f"/requests/{one['id']}/answer", {"decision": "decline", "reason": "Не в концепции"})
    await api.ok("post", f"/requests/{two['id']}/answer", {"decision": "approve"})
    again = await api.call("post", f"/requests/{two['id']}/answer", {"decision": "decline", "reason": "x"})
    assert again.status_code == 409
    page = await api.ok("get", f"/api/content/approvals/{token}", as_="public")
    assert [(r["status"], r["reason"]) for r in page["requests"]] == [("declined", "Не в концепции"),
                                                                      ("approved", None)]
    assert [e.decision for e in await api.events("content.client_request.answered")] == ["declined", "approved"]
    assert len(await api.events("content.client_request.submitted")) == 2
