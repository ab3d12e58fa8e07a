"""The service around the rules: migrations match the models (SQLite and PostgreSQL), the API needs a
bearer token except for the client's signed links, settings are the lead's, staff see every round."""

from __future__ import annotations

from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from content.models import Base
from shared.infra import InfraBase

from .conftest import ANALYST, LEAD, T0, midnight, new_deal, period_opened, stage


async def test_migrations_at_head_match_the_models(api_any) -> None:
    engine = api_any.app.state.runtime.db.engine

    async def diff() -> list:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), [Base.metadata, InfraBase.metadata]))

    assert api_any.in_app(diff) == []


async def test_api_needs_a_bearer_token_but_the_signed_link_does_not(api) -> None:
    deal = new_deal()
    await api.feed(stage(deal, "questionnaire_received", T0))
    for path in (f"/api/content/deals/{deal}/plans", "/api/content/cadence", "/api/content/settings"):
        assert (await api.client.get(path)).status_code == 401
        assert (await api.client.get(path, headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await api.client.get("/api/content/approvals/abc.def")).status_code == 404


async def test_settings_are_the_leads_with_an_effective_date_and_validated(api) -> None:
    assert (await api.call("put", "/settings", {"values": {"plan_2_after_days": 7}}, as_=ANALYST)).status_code == 403
    bad = await api.call("put", "/settings", {"values": {"plan_2_after_days": 0, "nope": 1,
                                                         "cadence_check_time": "25:00"}}, as_=LEAD)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"values.plan_2_after_days", "values.nope",
                                                         "values.cadence_check_time"}
    order = await api.call("put", "/settings", {"values": {"plan_1_last_day": 20}}, as_=LEAD)
    assert order.status_code == 422 and order.json()["errors"][0]["field"] == "values"
    ok = await api.ok("put", "/settings", {"values": {"plan_2_after_days": 7, "stories_every_days": 2},
                                           "effective_from": (T0 + timedelta(days=1)).isoformat()}, as_=LEAD)
    assert ok["values"]["plan_2_after_days"] == 7
    now = await api.ok("get", "/settings", as_=ANALYST)
    assert now["values"]["plan_2_after_days"] == 6  # not in effect yet
    later = await api.ok("get", f"/settings?at={(T0 + timedelta(days=2)).isoformat().replace('+', '%2B')}",
                         as_=LEAD)
    assert later["values"]["plan_2_after_days"] == 7 and len(later["history"]) == 2


async def test_co4_staff_see_every_round_and_can_mint_a_fresh_link(api) -> None:
    deal = new_deal()
    await api.feed(stage(deal, "questionnaire_received", T0),
                   period_opened(deal, 1, midnight(2026, 3, 2), midnight(2026, 4, 2), at=T0))
    plan_id = (await api.plans(deal))[0]["id"]
    assert (await api.call("post", f"/plans/{plan_id}/link")).status_code == 409  # nothing sent yet
    item = await api.ok("post", f"/plans/{plan_id}/items", {"date": "2026-03-03", "kind": "feed", "caption": "a"})
    first = await api.ok("post", f"/plans/{plan_id}/submit")
    await api.ok("post", f"/api/content/approvals/{first['token']}",
                 {"decision": "changes", "comments": [{"item_id": item["id"], "text": "b"}]}, as_="public")
    plan = await api.ok("get", f"/plans/{plan_id}")
    await api.ok("patch", f"/items/{item['id']}", {"caption": "b"})
    await api.ok("post", f"/plans/{plan_id}/comments/{plan['comments'][0]['id']}/resolve", {"reply": "done"})
    await api.ok("post", f"/plans/{plan_id}/submit")
    api.clock.advance(timedelta(days=20))  # the round-2 link has expired
    fresh = await api.ok("post", f"/plans/{plan_id}/link")
    assert fresh["round"] == 2
    page = await api.ok("get", f"/api/content/approvals/{fresh['token']}", as_="public")
    assert page["can_answer"]
    plan = await api.ok("get", f"/plans/{plan_id}")
    assert plan["revision_rounds"] == 1 and [r["decision"] for r in plan["rounds"]] == ["changes", None]
    assert plan["rounds"][1]["changes"]["changed"] == [{"item_id": item["id"], "fields": ["caption"]}]
    assert plan["comments"][0]["reply"] == "done"
