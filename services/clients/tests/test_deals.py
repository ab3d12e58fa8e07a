"""Each rule through the HTTP API on SQLite (the contract runs on both databases in test_contract.py)."""

from __future__ import annotations

from datetime import UTC, timedelta

from clients.models import Deal
from sqlalchemy import select

from .conftest import T0, local, payment

LAUNCH = {"stage": "project_launched", "instagram_login": "aigerim.cakes", "instagram_password": "s3cret"}
LEAD = ("boss", "lead")


async def launched_deal(api, external_id: str = "p", kind: str = "account_management", payer: str = "individual"):
    deal = await api.pay(payment(external_id, kind=kind, payer=payer))
    await api.ok("post", f"/deals/{deal['deal_id']}/stage",
                 LAUNCH | {"service_start": T0.astimezone(local(2026, 1, 1).tzinfo).date().isoformat()})
    return deal["deal_id"]


async def test_cl1_client_card_and_cl2_service_kind(api) -> None:
    deal = await api.pay(payment("p", kind="complex_promotion", payer="legal"))
    assert deal["service_kind"] == "complex_promotion"
    assert deal["client"]["payer_type"] == "legal" and deal["client"]["bin"] == "123456789012"
    assert deal["client"]["company_name"] == "ТОО «Сладкий дом»"
    assert deal["ad_manager"] == "admanager"  # CL-2: the kind decides who does the CL-7 / CL-11 steps


async def test_cl3_least_loaded_manager_ties_by_login_and_override(api) -> None:
    assert (await api.pay(payment("a")))["responsible_manager"] == "manager1"
    assert (await api.pay(payment("b")))["responsible_manager"] == "manager2"
    assert (await api.pay(payment("c")))["responsible_manager"] == "manager1"
    forced = await api.pay(payment("d", responsible_manager="manager2"))
    assert forced["responsible_manager"] == "manager2"
    bad = await api.post("/payments", payment("e", responsible_manager="nobody"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "responsible_manager"
    [assigned, *_] = await api.events("clients.task.assigned")
    assert assigned.assignee == "manager1" and assigned.kind == "first_call"  # the manager is notified


async def test_cl3_payment_after_20_is_due_next_morning_11(api) -> None:
    api.clock.set(local(2026, 3, 2, 22, 0))
    deal = await api.pay(payment("night", paid_at=local(2026, 3, 2, 20, 30)))
    assert deal["tasks"][0]["due_at"] == local(2026, 3, 3, 11, 0).astimezone(UTC).isoformat()


async def test_cl3_first_call_breached_by_the_timer_when_nobody_calls(api) -> None:
    deal = await api.pay(payment())
    await api.tick(minutes=59)
    assert (await api.deal(deal["deal_id"]))["deadlines"][0]["state"] == "open"
    await api.tick(minutes=2)
    assert (await api.deal(deal["deal_id"]))["deadlines"][0]["state"] == "breached"
    assert len(await api.events("clients.deadline.breached")) == 1


async def test_cl4_contacted_completes_the_first_call_in_time(api) -> None:
    deal = await api.pay(payment())
    api.clock.advance(timedelta(minutes=30))
    after = await api.ok("post", f"/deals/{deal['deal_id']}/stage", {"stage": "contacted"},
                         as_=("manager1", "content_manager"))
    assert after["stage"] == "contacted"
    assert after["tasks"][0]["status"] == "done" and after["deadlines"][0]["state"] == "met"
    [met] = await api.events("clients.deadline.met")
    assert met.rule == "CL-3" and met.owner == "manager1"
    again = await api.post(f"/deals/{deal['deal_id']}/stage", {"stage": "contacted"})
    assert again.status_code == 409


async def test_cl4_staff_cannot_backdate_to_meet_a_deadline(api) -> None:
    deal = await api.pay(payment())
    api.clock.advance(timedelta(hours=3))
    response = await api.post(f"/deals/{deal['deal_id']}/stage", {"stage": "contacted", "at": T0.isoformat()},
                              as_=("manager1", "content_manager"))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "at"


async def test_cl5_cl6_cl7_cl9_questionnaire_by_signed_link_creates_tasks_and_deadlines(api) -> None:
    deal = await api.pay(payment())
    deal_id = deal["deal_id"]
    link = await api.ok("post", f"/deals/{deal_id}/questionnaire-link", as_=("manager1", "content_manager"))
    page = await api.client.get(link["path"])
    assert page.status_code == 200 and page.json()["submitted"] is False
    tampered = await api.client.post(link["path"][:-2] + "xx", json={"answers": {"niche": "cakes"}})
    assert tampered.status_code == 404
    sent = await api.client.post(link["path"], json={"answers": {"niche": "cakes"}})
    assert sent.status_code == 200, sent.text
    after = await api.deal(deal_id)
    assert after["stage"] == "questionnaire_received" and after["questionnaire"] == {"niche": "cakes"}
    kinds = {t["kind"]: t for t in after["tasks"]}
    assert kinds["concept"]["due_at"] == (T0 + timedelta(hours=24)).isoformat()
    assert len(kinds["concept"]["checklist"]) == 4
    assert kinds["growth_start"]["assignee"] == "growth"          # CL-6, account_management only
    assert kinds["account_setup"]["assignee"] == "manager1"       # CL-7
    cl9 = next(d for d in after["deadlines"] if d["rule"] == "CL-9")
    assert cl9["due_at"] == local(2026, 3, 5, 12, 0).astimezone(UTC).isoformat()  # 3 working days
    # CL-9: the first post two days later meets it.
    api.clock.advance(timedelta(days=2))
    posted = await api.ok("post", f"/deals/{deal_id}/first-post", {"published_at": api.clock.now().isoformat()})
    assert next(d for d in posted["deadlines"] if d["rule"] == "CL-9")["state"] == "met"
    api.clock.advance(timedelta(days=30))
    assert (await api.client.post(link["path"], json={"answers": {}})).status_code == 410  # expired: Gone


async def test_cl7_complex_promotion_setup_goes_to_the_ad_manager(api) -> None:
    deal = await api.pay(payment(kind="complex_promotion"))
    after = await api.ok("post", f"/deals/{deal['deal_id']}/questionnaire", {"answers": {"a": 1}})
    kinds = {t["kind"]: t for t in after["tasks"]}
    assert kinds["account_setup"]["assignee"] == "admanager" and "growth_start" not in kinds


async def test_cl9_post_published_event_meets_the_first_post_deadline(api) -> None:
    from shared.events.content import PostPublished

    deal = await api.pay(payment())
    await api.ok("post", f"/deals/{deal['deal_id']}/questionnaire", {"answers": {"a": 1}})
    api.clock.advance(timedelta(days=6))  # Sunday: 3 working days have passed, but the timer has not fired
    [subscription] = [s for s in api.app.state.runtime.spec.subscriptions(api.app.state.runtime)
                      if s.name == "clients-content"]
    handler = subscription.handlers[PostPublished.subject]

    async def deliver() -> None:
        async with api.app.state.runtime.db.transaction() as session:
            await handler(PostPublished(deal_id=deal["deal_id"], post_id="post-1",
                                        published_at=T0 + timedelta(days=4)), session)

    api.in_app(deliver)
    after = await api.deal(deal["deal_id"])
    assert next(d for d in after["deadlines"] if d["rule"] == "CL-9")["state"] == "breached"  # day 4 > 3 working days
    [breach] = [e for e in await api.events("clients.deadline.breached") if e.rule == "CL-9"]
    assert breach.owner == "manager1"


async def test_cl8_launch_requires_fields_and_stores_credentials_encrypted_and_reveals_are_audited(api) -> None:
    deal = await api.pay(payment())
    deal_id = deal["deal_id"]
    missing = await api.post(f"/deals/{deal_id}/stage", {"stage": "project_launched"})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"service_start", "instagram_login",
                                                              "instagram_password"}
    await api.ok("post", f"/deals/{deal_id}/stage", LAUNCH | {"service_start": "2026-03-02"})

    async def stored() -> bytes:
        async with api.app.state.runtime.db.transaction() as session:
            return (await session.execute(select(Deal.credentials))).scalar_one()

    assert b"s3cret" not in api.in_app(stored)
    revealed = await api.ok("post", f"/deals/{deal_id}/credentials/reveal", as_=("manager1", "content_manager"))
    assert revealed == {"instagram_login": "aigerim.cakes", "instagram_password": "s3cret"}
    for who in (("manager2", "content_manager"), ("analyst", "analyst"), ("admanager", "ad_manager")):
        assert (await api.post(f"/deals/{deal_id}/credentials/reveal", as_=who)).status_code in (403, 404)
    assert (await api.post(f"/deals/{deal_id}/credentials/reveal")).status_code == 403  # integration
    audit = await api.ok("get", "/audit", as_=LEAD)
    reveals = [a for a in audit if a["action"] == "credentials.revealed"]
    assert len(reveals) == 1 and reveals[0]["actor"] == "manager1" and reveals[0]["target"] == deal_id
    assert (await api.get("/audit", as_=("manager1", "content_manager"))).status_code == 403


async def test_cl10_cl14_renewal_starts_the_next_period_on_the_payment_date(api) -> None:
    deal_id = await launched_deal(api)
    deal = await api.deal(deal_id)
    assert deal["period_start"] == local(2026, 3, 2, 0, 0).astimezone(UTC).isoformat()
    assert deal["period_end"] == local(2026, 4, 2, 0, 0).astimezone(UTC).isoformat()
    api.clock.set(local(2026, 4, 1, 15, 0))
    renewed = await api.pay(payment("r1", paid_at=local(2026, 4, 1, 14, 0)) | {"deal_id": deal_id})
    assert renewed["stage"] == "project_launched" and renewed["service_start"] == "2026-04-01"
    assert renewed["period_end"] == local(2026, 5, 1, 0, 0).astimezone(UTC).isoformat()
    [evt] = await api.events("clients.deal.renewed")
    assert evt.after_full_month and evt.manager == "manager1"
    [opened1, opened2] = await api.events("clients.deal.period_opened")
    assert (opened1.period_no, opened2.period_no) == (1, 2)
    # The renewal task of period 1 was done by the payment; its deadline met.
    renewal_deadline = next(d for d in renewed["deadlines"] if d["rule"] == "CL-11")
    assert renewal_deadline["state"] == "met"


async def test_cl11_renewal_call_needs_a_recording_attached(api) -> None:
    deal_id = await launched_deal(api)
    api.clock.set(local(2026, 3, 30, 12, 0))
    await api.run_due()
    deal = await api.deal(deal_id)
    task = next(t for t in deal["tasks"] if t["kind"] == "renewal_call")
    assert task["script"] == "#4" and task["rule"] == "CL-11" and task["assignee"] == "manager1"
    assert task["due_at"] == deal["period_end"]
    refused = await api.post(f"/tasks/{task['id']}/complete", {}, as_=("manager1", "content_manager"))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "attachment"
    wrong = await api.client.post(f"/api/clients/deals/{deal_id}/attachments", headers=api.headers(None),
                                  files={"file": ("notes.txt", b"hello", "text/plain")})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "file"
    upload = await api.client.post(f"/api/clients/deals/{deal_id}/attachments",
                                   headers=api.headers(("manager1", "content_manager")),
                                   files={"file": ("call.mp3", b"ID3fake-audio", "audio/mpeg")})
    assert upload.status_code == 201, upload.text
    download = await api.client.get(upload.json()["url"], headers=api.headers(("manager1", "content_manager")))
    assert download.status_code == 200 and download.content == b"ID3fake-audio"
    done = await api.ok("post", f"/tasks/{task['id']}/complete", {}, as_=("manager1", "content_manager"))
    assert done["status"] == "done"
    assert next(d for d in (await api.deal(deal_id))["deadlines"] if d["rule"] == "CL-11")["state"] == "met"


async def test_cl11_complex_promotion_asks_the_ad_manager_and_cl12_continues_renders_an_invoice(api) -> None:
    deal_id = await launched_deal(api, kind="complex_promotion", payer="legal")
    api.clock.set(local(2026, 3, 30, 12, 0))
    await api.run_due()
    task = next(t for t in (await api.deal(deal_id))["tasks"] if t["kind"] == "ask_ad_manager")
    assert task["assignee"] == "admanager"
    answered = await api.ok("post", f"/deals/{deal_id}/renewal-answer", {"continues": True},
                            as_=("admanager", "ad_manager"))
    assert answered["stage"] == "notification_sent"
    assert next(t for t in answered["tasks"] if t["kind"] == "ask_ad_manager")["status"] == "done"
    document = await api.get(f"/deals/{deal_id}/document")
    assert document.status_code == 200 and "text/html" in document.headers["content-type"]
    assert "Счёт на оплату" in document.text and "123456789012" in document.text and "60 000.00" in document.text


async def test_cl12_individual_gets_payment_details_and_declining_loses_the_client(api) -> None:
    deal_id = await launched_deal(api)
    api.clock.set(local(2026, 3, 30, 12, 0))
    await api.ok("post", f"/deals/{deal_id}/renewal-answer", {"continues": True})
    assert "Реквизиты для оплаты" in (await api.get(f"/deals/{deal_id}/document")).text
    other = await launched_deal(api, "p2")
    lost = await api.ok("post", f"/deals/{other}/renewal-answer", {"continues": False})
    assert lost["stage"] == "lost" and lost["lost_reason"] == "declined"
    [evt] = await api.events("clients.deal.lost")
    assert evt.reason == "declined" and evt.after_full_month


async def test_cl13_unpaid_7_days_after_the_period_end_is_lost_by_the_timer(api) -> None:
    deal_id = await launched_deal(api)
    api.clock.set(local(2026, 4, 8, 23, 59))
    await api.run_due()
    assert (await api.deal(deal_id))["stage"] == "project_launched"
    await api.tick(minutes=2)
    deal = await api.deal(deal_id)
    assert deal["stage"] == "lost" and deal["lost_at"] == local(2026, 4, 9, 0, 0).astimezone(UTC).isoformat()
    # A payment dated after the loss brings the client back without undoing the loss.
    back = await api.pay(payment("back", paid_at=api.clock.now()) | {"deal_id": deal_id})
    assert back["stage"] == "project_launched" and await api.events("clients.deal.loss_undone") == []


async def test_cl15_refund_within_window_idempotent_and_money_back_window_event(api) -> None:
    deal = await api.pay(payment())
    deal_id = deal["deal_id"]
    api.clock.advance(timedelta(days=3))
    body = {"external_id": "rf-1", "amount": "60000.00", "currency": "KZT",
            "refunded_at": api.clock.now().isoformat()}
    first = await api.post(f"/deals/{deal_id}/refunds", body)
    assert first.status_code == 201 and first.json()["within_window"] is True
    again = await api.post(f"/deals/{deal_id}/refunds", body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    too_much = await api.post(f"/deals/{deal_id}/refunds", body | {"external_id": "rf-2", "amount": "1.00"})
    assert too_much.status_code == 422 and too_much.json()["errors"][0]["field"] == "amount"
    [recorded] = await api.events("clients.refund.recorded")
    assert recorded.within_window and recorded.payment_id == deal["payments"][0]["id"]
    await api.tick(days=7)
    [ended] = await api.events("clients.deal.money_back_window_ended")
    assert ended.refunded is True and ended.occurred_at == T0 + timedelta(days=10)


async def test_cal3_lead_waives_a_breached_deadline(api) -> None:
    deal = await api.pay(payment(paid_at=T0 - timedelta(days=2)))
    deadline = deal["deadlines"][0]
    assert deadline["state"] == "breached"
    assert (await api.post(f"/deadlines/{deadline['id']}/waive", {"reason": "x"},
                           as_=("manager1", "content_manager"))).status_code == 403
    missing = await api.post(f"/deadlines/{deadline['id']}/waive", {}, as_=LEAD)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "reason"
    waived = await api.ok("post", f"/deadlines/{deadline['id']}/waive", {"reason": "bank holiday outage"}, as_=LEAD)
    assert waived["state"] == "waived" and waived["waived_by"] == "boss"
    [evt] = await api.events("clients.deadline.waived")
    assert evt.reason == "bank holiday outage" and evt.deadline_id == deadline["id"]


async def test_settings_have_an_effective_date_and_rules_read_them_at_the_facts_time(api) -> None:
    change = {"values": {"first_call_within_hours": 2}, "effective_from": (T0 + timedelta(days=1)).isoformat()}
    assert (await api.put("/settings", change, as_=("manager1", "content_manager"))).status_code == 403
    assert (await api.put("/settings", {"values": {"loss_after_days": "x"}}, as_=LEAD)).status_code == 422
    await api.ok("put", "/settings", change, as_=LEAD)
    before = await api.pay(payment("before"))
    assert before["tasks"][0]["due_at"] == (T0 + timedelta(hours=1)).isoformat()
    api.clock.advance(timedelta(days=1))
    after = await api.pay(payment("after", paid_at=api.clock.now()))
    assert after["tasks"][0]["due_at"] == (api.clock.now() + timedelta(hours=2)).isoformat()
    current = await api.ok("get", "/settings", as_=LEAD)
    assert current["values"]["first_call_within_hours"] == 2 and current["defaults"]["first_call_within_hours"] == 1


async def test_cl16_leads_funnel_and_conversion_by_payment(api) -> None:
    manager = ("manager1", "content_manager")
    leads = [await api.ok("post", "/leads", {"full_name": f"Person {i}", "instagram": f"@p{i}",
                                             "source": "instagram"}, as_=manager) for i in range(4)]
    assert (await api.post("/leads", {"full_name": "No contact"}, as_=manager)).status_code == 422
    for lead in leads[:2]:
        await api.ok("post", f"/leads/{lead['id']}/stage", {"stage": "warm_lead"}, as_=manager)
    await api.ok("post", f"/leads/{leads[0]['id']}/stage", {"stage": "application"}, as_=manager)
    back = await api.post(f"/leads/{leads[0]['id']}/stage", {"stage": "dialog"}, as_=manager)
    assert back.status_code == 409
    paid = await api.pay(payment("lead-pay", lead_id=leads[0]["id"]))
    [converted] = [lead for lead in await api.ok("get", "/leads", as_=manager) if lead["id"] == leads[0]["id"]]
    assert converted["stage"] == "paid" and converted["deal_id"] == paid["deal_id"]
    report = await api.ok("get", "/reports/funnel?month=2026-03&manager=manager1", as_=LEAD)
    counts = {s["step"]: s["count"] for s in report["steps"]}
    assert counts == {"dialogs": 4, "warm_leads": 2, "applications": 1, "paid": 1, "launched": 0, "renewed": 0,
                      "lost": 0}
    assert report["steps"][1]["conversion_from_previous"] == 0.5
    assert (await api.get("/reports/funnel?month=2026-03&manager=manager2", as_=manager)).status_code == 403
    assert (await api.get("/reports/funnel?month=March", as_=LEAD)).status_code == 422


async def test_deal_timeline_lists_the_facts_in_order(api) -> None:
    deal_id = await launched_deal(api)
    timeline = (await api.deal(deal_id))["timeline"]
    kinds = [entry["kind"] for entry in timeline]
    assert kinds[0] == "payment" and "period" in kinds and kinds.count("stage") == 2
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
