"""Issue 8 item 1: only the gateway speaks for a staff member (a signed, short-lived, per-service assertion);
an integration token acts as the integration it names, and identity headers without an assertion are refused."""

from __future__ import annotations

import time
from dataclasses import replace

from shared.auth import ASSERTION_HEADER, make_assertion
from shared.testing import staff_headers

from .conftest import TOKEN, payment

LAUNCH = {"stage": "project_launched", "instagram_login": "aigerim.cakes", "instagram_password": "s3cret",
          "service_start": "2026-03-02"}


async def launched(api) -> str:
    deal = await api.pay(payment("id-1"))
    await api.ok("post", f"/deals/{deal['deal_id']}/stage", LAUNCH)
    return deal["deal_id"]


async def audit(api) -> list[dict]:
    return await api.ok("get", "/audit", as_=("boss", "lead"))


async def test_issue8_1_cl8_integration_token_with_lead_headers_cannot_reveal_credentials(api) -> None:
    deal_id = await launched(api)
    before = len(await audit(api))
    for spoof in ({"X-Zabota-Role": "lead"}, {"X-Zabota-Actor": "boss", "X-Zabota-Role": "lead"},
                  {"X-Zabota-Actor": "manager1"}):
        response = await api.client.post(f"/api/clients/deals/{deal_id}/credentials/reveal",
                                         headers=TOKEN | spoof)
        assert response.status_code == 403, response.text
        body = response.json()
        assert "X-Zabota-Assertion" in body["detail"]
        assert body["errors"][0]["field"] in ("X-Zabota-Role", "X-Zabota-Actor")
        assert "s3cret" not in response.text
    # the integration itself may not reveal either (CL-8 names lead, responsible manager, growth specialist)
    assert (await api.post(f"/deals/{deal_id}/credentials/reveal")).status_code == 403
    assert len(await audit(api)) == before   # nothing was written, under any name


async def test_issue8_1_integration_token_cannot_write_an_audit_row_as_someone_else(api) -> None:
    spoofed = await api.client.put("/api/clients/staff/newbie", json={"role": "content_manager"},
                                   headers=TOKEN | {"X-Zabota-Actor": "manager1", "X-Zabota-Role": "lead"})
    assert spoofed.status_code == 403
    assert not [a for a in await audit(api) if a["target"] == "newbie" or a["actor"] == "manager1"]
    # the same change by the integration is audited under the integration's own name ("api": an unnamed token)
    await api.ok("put", "/staff/newbie", {"role": "content_manager"})
    rows = [a for a in await audit(api) if a["target"] == "newbie"]
    assert [(a["actor"], a["role"]) for a in rows] == [("api", "integration")]


async def test_issue8_1_named_integration_tokens_act_under_their_name(api) -> None:
    api.app.state.settings = replace(api.app.state.settings, api_token="dev-token,partner:partner-secret-token")
    response = await api.client.put("/api/clients/staff/newbie", json={"role": "content_manager"},
                                    headers={"Authorization": "Bearer partner-secret-token"})
    assert response.status_code == 200, response.text
    rows = [a for a in await audit(api) if a["target"] == "newbie"]
    assert [(a["actor"], a["role"]) for a in rows] == [("partner", "integration")]
    wrong = await api.client.get("/api/clients/deals", headers={"Authorization": "Bearer partner:partner-secret-token"})
    assert wrong.status_code == 401


async def test_issue8_1_expired_forged_and_other_service_assertions_are_refused(api) -> None:
    settings = api.app.state.settings
    deal_id = await launched(api)
    path = f"/api/clients/deals/{deal_id}/credentials/reveal"
    cases = {
        "expired": make_assertion("boss", "lead", audience="clients", secret=settings.gateway_secret,
                                  now=time.time() - 120),
        "forged": make_assertion("boss", "lead", audience="clients", secret="not-the-gateway-secret-" * 2),
        "other service": make_assertion("boss", "lead", audience="payroll", secret=settings.gateway_secret),
        "garbage": "not-an-assertion",
    }
    reasons = {}
    for case, assertion in cases.items():
        response = await api.client.post(path, headers={ASSERTION_HEADER: assertion})
        assert response.status_code == 401, (case, response.text)
        assert "s3cret" not in response.text
        reasons[case] = response.json()["detail"]
    assert "expired" in reasons["expired"]
    assert "invalid signature" in reasons["forged"]
    assert "payroll" in reasons["other service"]
    # a valid assertion with a contradicting identity header is refused too
    mixed = await api.client.post(path, headers=staff_headers("boss", "lead", settings) | {"X-Zabota-Actor": "x"})
    assert mixed.status_code == 403
    # the genuine one works, and the audit row carries the asserted identity
    ok = await api.client.post(path, headers=staff_headers("boss", "lead", settings))
    assert ok.status_code == 200 and ok.json()["instagram_password"] == "s3cret"
    reveals = [a for a in await audit(api) if a["action"] == "credentials.revealed"]
    assert [(a["actor"], a["role"]) for a in reveals] == [("boss", "lead")]


async def test_issue8_1_webhook_signature_cannot_name_a_staff_member(api) -> None:
    import json

    from shared.auth import sign

    raw = json.dumps(payment("id-4")).encode()
    response = await api.client.post("/api/clients/payments", content=raw, headers={
        "X-Zabota-Signature": sign(raw, api.app.state.settings.webhook_secret), "Content-Type": "application/json",
        "X-Zabota-Actor": "boss", "X-Zabota-Role": "lead"})
    assert response.status_code == 403 and response.json()["errors"][0]["field"] == "X-Zabota-Role"
