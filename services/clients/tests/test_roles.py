"""DOMAIN "Roles": no role sees or changes more than it is given (access.py), walked route by route."""

from __future__ import annotations

from .conftest import T0, payment

M1, M2 = ("manager1", "content_manager"), ("manager2", "content_manager")
AD, GROWTH, ANALYST, LEAD, CARE = (("admanager", "ad_manager"), ("growth", "growth"), ("analyst", "analyst"),
                                   ("boss", "lead"), ("agent1", "care_agent"))


async def test_roles_a_manager_cannot_open_or_change_another_managers_deal(api) -> None:
    mine = (await api.pay(payment("m1")))["deal_id"]           # → manager1
    theirs = (await api.pay(payment("m2")))["deal_id"]         # → manager2
    assert (await api.get(f"/deals/{mine}", as_=M1)).status_code == 200
    assert (await api.get(f"/deals/{theirs}", as_=M1)).status_code == 404
    assert (await api.post(f"/deals/{theirs}/stage", {"stage": "contacted"}, as_=M1)).status_code == 404
    assert (await api.post(f"/deals/{theirs}/questionnaire", {"answers": {}}, as_=M1)).status_code == 404
    assert [d["id"] for d in await api.ok("get", "/deals", as_=M1)] == [mine]
    theirs_task = (await api.deal(theirs))["tasks"][0]["id"]
    assert (await api.post(f"/tasks/{theirs_task}/complete", {}, as_=M1)).status_code == 404
    assert {t["deal_id"] for t in await api.ok("get", "/tasks", as_=M1)} == {mine}
    assert (await api.post(f"/deals/{mine}/stage", {"stage": "contacted"}, as_=M1)).status_code == 200
    # Payments, refunds, settings, roster, reassignment, waivers, audit, imports: not a manager's.
    assert (await api.post("/payments", payment("x"), as_=M1)).status_code == 403
    assert (await api.put("/staff/manager1", {"role": "content_manager"}, as_=M1)).status_code == 403
    assert (await api.post(f"/deals/{mine}/manager", {"manager": "manager2"}, as_=M1)).status_code == 403
    assert (await api.get("/audit", as_=M1)).status_code == 403
    assert (await api.get("/settings", as_=M1)).status_code == 403


async def test_roles_ad_manager_sees_complex_promotion_only_and_answers_renewals(api) -> None:
    account = (await api.pay(payment("a")))["deal_id"]
    complex_ = (await api.pay(payment("c", kind="complex_promotion")))["deal_id"]
    assert [d["id"] for d in await api.ok("get", "/deals", as_=AD)] == [complex_]
    assert (await api.get(f"/deals/{account}", as_=AD)).status_code == 404
    assert (await api.get(f"/deals/{complex_}", as_=AD)).status_code == 200
    assert (await api.post(f"/deals/{complex_}/stage", {"stage": "contacted"}, as_=AD)).status_code == 403
    # renewal answers need a launched deal: the role passes, the stage check answers 409
    assert (await api.post(f"/deals/{complex_}/renewal-answer", {"continues": True}, as_=AD)).status_code == 409


async def test_roles_growth_sees_deals_with_their_growth_task_and_may_reveal_their_credentials(api) -> None:
    deal_id = (await api.pay(payment("g")))["deal_id"]
    other = (await api.pay(payment("h")))["deal_id"]
    assert (await api.get(f"/deals/{deal_id}", as_=GROWTH)).status_code == 404  # no growth task yet
    await api.ok("post", f"/deals/{deal_id}/questionnaire", {"answers": {"a": 1}})
    await api.ok("post", f"/deals/{deal_id}/stage", {"stage": "project_launched", "service_start": T0.date().isoformat(),
                                                     "instagram_login": "x", "instagram_password": "y"})
    assert (await api.get(f"/deals/{deal_id}", as_=GROWTH)).status_code == 200
    assert [d["id"] for d in await api.ok("get", "/deals", as_=GROWTH)] == [deal_id]
    assert (await api.get(f"/deals/{other}", as_=GROWTH)).status_code == 404
    assert (await api.post(f"/deals/{deal_id}/credentials/reveal", as_=GROWTH)).status_code == 200
    assert (await api.post(f"/deals/{deal_id}/stage", {"stage": "lost"}, as_=GROWTH)).status_code == 403
    task = next(t for t in (await api.deal(deal_id))["tasks"] if t["kind"] == "growth_start")
    assert (await api.ok("post", f"/tasks/{task['id']}/complete", {}, as_=GROWTH))["status"] == "done"


async def test_roles_analyst_reads_everything_and_changes_nothing(api) -> None:
    deal_id = (await api.pay(payment("a")))["deal_id"]
    assert (await api.get(f"/deals/{deal_id}", as_=ANALYST)).status_code == 200
    assert (await api.get("/reports/funnel?month=2026-03", as_=ANALYST)).status_code == 200
    assert (await api.get("/settings", as_=ANALYST)).status_code == 200
    for path, body in ((f"/deals/{deal_id}/stage", {"stage": "contacted"}),
                       (f"/deals/{deal_id}/questionnaire", {"answers": {}}),
                       (f"/deals/{deal_id}/credentials/reveal", None), ("/leads", {"full_name": "x", "phone": "1"}),
                       ("/payments", payment("b"))):
        assert (await api.post(path, body, as_=ANALYST)).status_code == 403, path
    assert (await api.put("/settings", {"values": {"loss_after_days": 3}}, as_=ANALYST)).status_code == 403
    assert (await api.get("/audit", as_=ANALYST)).status_code == 403


async def test_roles_staff_outside_the_clients_domain_see_nothing(api) -> None:
    deal_id = (await api.pay(payment("a")))["deal_id"]
    assert (await api.get(f"/deals/{deal_id}", as_=CARE)).status_code == 404
    assert await api.ok("get", "/deals", as_=CARE) == []
    assert (await api.post(f"/deals/{deal_id}/stage", {"stage": "contacted"}, as_=CARE)).status_code == 404


async def test_roles_lead_does_everything_including_reassignment(api) -> None:
    deal_id = (await api.pay(payment("a")))["deal_id"]
    moved = await api.ok("post", f"/deals/{deal_id}/manager", {"manager": "manager2"}, as_=LEAD)
    assert moved["responsible_manager"] == "manager2" and moved["tasks"][0]["assignee"] == "manager2"
    [_assigned, reassigned] = await api.events("clients.deal.manager_assigned")
    assert reassigned.previous_manager == "manager1" and reassigned.manager == "manager2"
    assert (await api.get(f"/deals/{deal_id}", as_=M1)).status_code == 404
    assert (await api.get(f"/deals/{deal_id}", as_=M2)).status_code == 200
    assert any(a["action"] == "deal.manager_assigned" for a in await api.ok("get", "/audit", as_=LEAD))
