"""Issue 8 item 1 in payroll: a lead's identity is believed only from the gateway's assertion; an integration
token naming a lead is refused and closes nothing."""

from __future__ import annotations

from .conftest import TOKEN


async def test_issue8_1_integration_token_with_lead_headers_cannot_close_a_month_or_read_statements(payroll) -> None:
    spoof = TOKEN | {"X-Zabota-Actor": "aliya", "X-Zabota-Role": "lead"}
    closed = await payroll.client.post("/api/payroll/months/2026-03/close", headers=spoof)
    assert closed.status_code == 403 and closed.json()["errors"][0]["field"] == "X-Zabota-Role"
    read = await payroll.client.get("/api/payroll/statements", params={"month": "2026-03"}, headers=spoof)
    assert read.status_code == 403
    assert (await payroll.month("2026-03"))["state"] != "closed"
    # the lead through the gateway's assertion may
    closed = await payroll.post("/months/2026-03/close")
    assert closed.status_code == 200 and closed.json()["closed_by"] == "aliya"
