"""CL-15 / issue 8: a payment provider's signed webhook posts a refund against the deal it names
(`access.require_refund_target`) — it cannot read the deal; three deliveries are one refund; the same
`external_id` with another body is a 409 naming each differing field (issue 8 §11)."""

from __future__ import annotations

import json
from datetime import timedelta

from shared.auth import sign

from .conftest import payment


async def _signed(api, path: str, body: dict) -> object:
    raw = json.dumps(body).encode()
    return await api.client.post(f"/api/clients{path}", content=raw, headers={
        "X-Zabota-Signature": sign(raw, api.app.state.settings.webhook_secret), "Content-Type": "application/json"})


async def test_cl15_issue8_a_signed_webhook_posts_a_refund_once_for_three_deliveries(api_any) -> None:
    deal = await api_any.pay(payment("pay-wh-refund-1"))
    api_any.clock.advance(timedelta(days=2))
    body = {"external_id": "wh-rf-1", "amount": "1000.00", "currency": "KZT",
            "refunded_at": api_any.clock.now().isoformat()}
    answers = [await _signed(api_any, f"/deals/{deal['deal_id']}/refunds", body) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 200, 200], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert "client" not in answers[0].json() and "Айгерим" not in answers[0].text   # the refund, not the deal
    assert len((await api_any.deal(deal["deal_id"]))["refunds"]) == 1
    assert len(await api_any.events("clients.refund.recorded")) == 1
    # Another body under the same external_id: 409 naming each field, nothing written.
    other = await _signed(api_any, f"/deals/{deal['deal_id']}/refunds", body | {"amount": "2000.00"})
    assert other.status_code == 409 and [e["field"] for e in other.json()["errors"]] == ["amount"]
    # The webhook still reads nothing, and an unknown deal is a 404.
    raw = b""
    read = await api_any.client.get(f"/api/clients/deals/{deal['deal_id']}", headers={
        "X-Zabota-Signature": sign(raw, api_any.app.state.settings.webhook_secret)})
    assert read.status_code in (403, 404)
    missing = await _signed(api_any, "/deals/no-such-deal/refunds", body | {"external_id": "wh-rf-2"})
    assert missing.status_code == 404
