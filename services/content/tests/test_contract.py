"""The issue 10 API contract on SQLite and PostgreSQL: the CO-4 approval loop over two revision rounds
through the public API, then publishing by hand with `content.post.published.v1` in the outbox."""

from __future__ import annotations

from datetime import timedelta

from .conftest import LEAD, T0, midnight, new_deal, period_opened, stage

PLAN_KEYS = {"id", "period_no", "number", "first_day", "last_day", "status", "due_at", "submit_by", "round",
             "items", "comments"}
ITEM_KEYS = {"id", "date", "kind", "caption", "status", "published_at"}
COMMENT_KEYS = {"id", "item_id", "text", "round", "resolved"}


async def test_co4_approval_loop_over_two_revision_rounds_then_publish(api_any) -> None:
    api = api_any
    deal = new_deal()
    await api.feed(stage(deal, "questionnaire_received", T0),
                   period_opened(deal, 1, midnight(2026, 3, 2), midnight(2026, 4, 2), at=T0))
    plans = await api.plans(deal)
    assert [(p["period_no"], p["number"]) for p in plans] == [(1, 1), (1, 2), (1, 3)]
    assert PLAN_KEYS <= plans[0].keys() and plans[0]["status"] == "due"
    plan_id = plans[0]["id"]

    # The manager writes plan 1.
    a = await api.ok("post", f"/plans/{plan_id}/items", {"date": "2026-03-03", "kind": "feed", "caption": "Торт"})
    b = await api.ok("post", f"/plans/{plan_id}/items", {"date": "2026-03-04", "kind": "story", "caption": "",
                                                          "scheduled_at": "2026-03-04T10:00:00+05:00"})
    assert ITEM_KEYS <= a.keys() and a["status"] == "planned" and b["status"] == "scheduled"
    outside = await api.call("post", f"/plans/{plan_id}/items", {"date": "2026-03-11", "kind": "feed", "caption": ""})
    assert outside.status_code == 422 and outside.json()["errors"][0]["field"] == "date"

    # Round 1: the client asks for changes on the plan and on item a.
    sent = await api.ok("post", f"/plans/{plan_id}/submit")
    assert sent["status"] == "in_approval" and sent["round"] == 1 and "/approve/" in sent["approval_url"]
    token = sent["approval_url"].rsplit("/", 1)[1]
    page = await api.ok("get", f"/api/content/approvals/{token}", as_="public")
    assert page["can_answer"] and page["round"] == 1 and page["revision_rounds"] == 0
    assert [i["caption"] for i in page["items"]] == ["Торт", ""]
    await api.ok("post", f"/api/content/approvals/{token}", {"decision": "changes", "comments": [
        {"text": "Больше видео"}, {"item_id": a["id"], "text": "Другое фото торта"}]}, as_="public")
    [plan] = [p for p in await api.plans(deal) if p["id"] == plan_id]
    assert plan["status"] == "changes_requested" and plan["round"] == 1
    assert all(COMMENT_KEYS <= c.keys() for c in plan["comments"])
    assert [(c["item_id"], c["round"], c["resolved"]) for c in plan["comments"]] == [(None, 1, False),
                                                                                    (a["id"], 1, False)]
    # Resubmitting with comments not addressed → 422 listing both.
    blocked = await api.call("post", f"/plans/{plan_id}/submit")
    assert blocked.status_code == 422
    assert {e["comment_id"] for e in blocked.json()["errors"]} == {c["id"] for c in plan["comments"]}
    await api.ok("patch", f"/items/{a['id']}", {"caption": "Торт, новое фото", "date": "2026-03-05"})
    await api.ok("post", f"/plans/{plan_id}/comments/{plan['comments'][0]['id']}/resolve", {"reply": "Добавили рилс"})
    still = await api.call("post", f"/plans/{plan_id}/submit")
    assert still.status_code == 422 and [e["comment_id"] for e in still.json()["errors"]] == [plan["comments"][1]["id"]]
    await api.ok("post", f"/plans/{plan_id}/comments/{plan['comments'][1]['id']}/resolve", {})

    # Round 2: changes again, on item b.
    token = (await api.ok("post", f"/plans/{plan_id}/submit"))["token"]
    page = await api.ok("get", f"/public/content/approvals/{token}", as_="public")
    assert page["round"] == 2 and page["revision_rounds"] == 1
    assert page["rounds"][1]["changes"] == {"added": [], "removed": [],
                                            "changed": [{"item_id": a["id"], "fields": ["caption", "date"]}]}
    assert page["comments"][0]["reply"] == "Добавили рилс"
    await api.ok("post", f"/api/content/approvals/{token}", {"decision": "changes", "comments": [
        {"item_id": b["id"], "text": "Сторис с акцией"}]}, as_="public")
    comment = [c for c in (await api.plans(deal))[0]["comments"] if c["round"] == 2][0]
    await api.ok("patch", f"/items/{b['id']}", {"caption": "Акция −10%"})
    await api.ok("post", f"/plans/{plan_id}/comments/{comment['id']}/resolve")

    # Round 3: approved.
    api.clock.advance(timedelta(hours=1))
    sent = await api.ok("post", f"/plans/{plan_id}/submit")
    assert sent["round"] == 3
    old = await api.call("post", f"/api/content/approvals/{token}", {"decision": "approve"}, as_="public")
    assert old.status_code == 409  # round 2's link no longer answers
    await api.ok("post", f"/api/content/approvals/{sent['token']}", {"decision": "approve", "comments": []},
                 as_="public")
    page = await api.ok("get", f"/api/content/approvals/{sent['token']}", as_="public")
    assert page["status"] == "approved" and not page["can_answer"] and page["revision_rounds"] == 2
    assert [r["decision"] for r in page["rounds"]] == ["changes", "changes", "approve"]
    plan = (await api.plans(deal))[0]
    assert plan["status"] == "approved" and plan["round"] == 3 and all(c["resolved"] for c in plan["comments"])
    late = await api.call("post", f"/plans/{plan_id}/items", {"date": "2026-03-06", "kind": "feed", "caption": ""})
    assert late.status_code == 409

    # Published by hand → 200 and the event in the outbox.
    api.clock.advance(timedelta(minutes=30))
    now = api.clock.now()
    done = await api.ok("post", f"/items/{a['id']}/published",
                        {"published_at": now.isoformat(), "permalink": "https://www.instagram.com/reel/xyz/"})
    assert done["status"] == "published" and done["published_at"] == now.isoformat()
    [evt] = await api.events("content.post.published")
    assert (evt.deal_id, evt.post_id, evt.published_at, evt.kind) == (deal, a["id"], now, "feed")
    subjects = [e.subject for e in await api.events("content.plan")]
    assert subjects == ["content.plan.submitted.v1", "content.plan.changes_requested.v1"] * 2 + [
        "content.plan.submitted.v1", "content.plan.approved.v1"]
    deadlines = await api.ok("get", f"/deals/{deal}/deadlines", as_=LEAD)
    assert [d["state"] for d in deadlines] == ["open", "open"]  # plans 2 and 3, counted from this first post


async def test_co4_two_answers_racing_on_one_round_one_wins(api_any) -> None:
    import asyncio

    api = api_any
    deal = new_deal()
    await api.feed(stage(deal, "questionnaire_received", T0),
                   period_opened(deal, 1, midnight(2026, 3, 2), midnight(2026, 4, 2), at=T0))
    plan_id = (await api.plans(deal))[0]["id"]
    await api.ok("post", f"/plans/{plan_id}/items", {"date": "2026-03-03", "kind": "feed", "caption": "a"})
    token = (await api.ok("post", f"/plans/{plan_id}/submit"))["token"]
    answers = await asyncio.gather(
        api.call("post", f"/api/content/approvals/{token}", {"decision": "approve"}, as_="public"),
        api.call("post", f"/api/content/approvals/{token}", {"decision": "changes", "comments": [{"text": "x"}]},
                 as_="public"))
    assert sorted(r.status_code for r in answers) == [200, 409]
    decided = [e.subject for e in await api.events("content.plan") if not e.subject.endswith("submitted.v1")]
    assert len(decided) == 1
