"""The API contract on SQLite and PostgreSQL: payments (CL-3) with idempotency, 401, 422 naming the
field, and backdated facts evaluated on their own timestamps (CL-3, CL-11, CL-13)."""

from __future__ import annotations

from datetime import timedelta

from shared.auth import sign

from .conftest import T0, payment


async def test_cl3_payment_creates_client_deal_and_first_call_task_and_is_idempotent(api_any) -> None:
    api = api_any
    first = await api.client.post("/api/clients/payments", json=payment("p-1"), headers=api.headers(None))
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["stage"] == "new" and body["responsible_manager"] == "manager1"
    assert body["deal_id"] and body["client_id"]
    [task] = body["tasks"]
    assert task["kind"] == "first_call" and task["rule"] == "CL-3" and task["status"] == "open"
    assert task["script"] == "#3"
    assert task["due_at"] == (T0 + timedelta(hours=1)).isoformat()

    again = await api.client.post("/api/clients/payments", json=payment("p-1"), headers=api.headers(None))
    assert again.status_code == 200
    assert again.json()["deal_id"] == body["deal_id"] and len(again.json()["tasks"]) == 1
    assert len(await api.events("clients.deal.paid")) == 1
    assert len(await api.ok("get", "/deals")) == 1


async def test_api_needs_a_token_or_a_signature(api_any) -> None:
    api = api_any
    assert (await api.client.post("/api/clients/payments", json=payment())).status_code == 401
    assert (await api.client.get("/api/clients/deals", headers={"Authorization": "Bearer nope"})).status_code == 401
    raw = __import__("json").dumps(payment("signed")).encode()
    signed = await api.client.post("/api/clients/payments", content=raw, headers={
        "X-Zabota-Signature": sign(raw, "dev-webhook-secret"), "Content-Type": "application/json"})
    assert signed.status_code == 201, signed.text
    forged = await api.client.post("/api/clients/payments", content=raw, headers={
        "X-Zabota-Signature": sign(raw, "guess"), "Content-Type": "application/json"})
    assert forged.status_code == 401
    # A signature is for payment providers: it opens payments and refunds, nothing else.
    deals = await api.client.get("/api/clients/deals", headers={"X-Zabota-Signature": sign(b"", "dev-webhook-secret")})
    assert deals.status_code == 403


async def test_invalid_body_is_422_naming_the_field_and_writes_nothing(api_any) -> None:
    api = api_any
    cases = [
        (payment() | {"amount": "-5"}, "amount"),
        (payment() | {"paid_at": "2026-03-02T10:00:00"}, "paid_at"),
        (payment() | {"service_kind": "seo"}, "service_kind"),
        (payment(payer="legal") | {"client": payment()["client"] | {"payer_type": "legal"}}, "client.bin"),
        ({k: v for k, v in payment().items() if k != "external_id"}, "external_id"),
        (payment() | {"client": {"phone": "+7 701 000 00 00", "payer_type": "individual"}}, "client.full_name"),
        (payment() | {"currency": "tenge"}, "currency"),
        (payment() | {"paid_at": (T0 + timedelta(days=1)).isoformat()}, "paid_at"),
    ]
    for body, field in cases:
        response = await api.post("/payments", body)
        assert response.status_code == 422, (field, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (field, response.json())
    assert await api.ok("get", "/deals") == []
    assert await api.events("clients.") == []


async def test_cl3_backdated_payment_45_days_ago_shows_a_breached_first_call(api_any) -> None:
    api = api_any
    deal = await api.pay(payment("late-webhook", paid_at=T0 - timedelta(days=45)))
    [deadline] = deal["deadlines"]
    assert deadline["rule"] == "CL-3" and deadline["state"] == "breached"
    [breached] = await api.events("clients.deadline.breached")
    assert breached.deal_id == deal["deal_id"] and breached.owner == "manager1"
    assert breached.occurred_at == T0 - timedelta(days=45) + timedelta(hours=1)  # dated at the fact
    # The money-back window (CL-15) of a payment 45 days ago is long over, and says so at once.
    [ended] = await api.events("clients.deal.money_back_window_ended")
    assert ended.refunded is False


async def test_cl11_cl13_launch_40_days_ago_has_overdue_renewal_task_and_is_lost_then_late_payment_undoes_it(
        api_any) -> None:
    api = api_any
    paid = T0 - timedelta(days=45)
    deal = await api.pay(payment("old", paid_at=paid))
    deal_id = deal["deal_id"]
    start = (T0 - timedelta(days=40)).date()
    launched = await api.ok("post", f"/deals/{deal_id}/stage", {
        "stage": "project_launched", "at": (T0 - timedelta(days=40)).isoformat(), "service_start": start.isoformat(),
        "instagram_login": "aigerim.cakes", "instagram_password": "s3cret"})
    renewal = [t for t in launched["tasks"] if t["kind"] == "renewal_call"]
    assert renewal and renewal[0]["status"] == "cancelled"  # it was overdue, then the deal was lost
    renewal_deadline = next(d for d in launched["deadlines"] if d["rule"] == "CL-11")
    assert renewal_deadline["state"] == "breached"
    assert launched["stage"] == "lost" and launched["lost_reason"] == "unpaid"
    [lost] = await api.events("clients.deal.lost")
    assert lost.reason == "unpaid" and lost.after_full_month

    # A renewal payment dated before that loss, posted afterwards, undoes it (CL-13).
    paid_late = lost.occurred_at - timedelta(days=2)
    renewed = await api.pay(payment("renewal-1", paid_at=paid_late) | {"deal_id": deal_id})
    assert renewed["stage"] == "project_launched" and renewed["period"]["no"] == 2
    [undone] = await api.events("clients.deal.loss_undone")
    assert undone.lost_event_id == lost.event_id
    [dealrenewed] = await api.events("clients.deal.renewed")
    assert dealrenewed.after_full_month
