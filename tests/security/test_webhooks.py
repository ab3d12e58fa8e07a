"""Forged and replayed webhooks (issue 8, "The suite that keeps it so"; DESIGN 8, 9).

A payment provider signs the raw body: `X-Zabota-Signature: sha256=<HMAC-SHA256(body, webhook secret)>`.
Every forgery — no signature, garbage, another secret, a signature of another body, a valid signature
with identity headers added — is refused and stores nothing, on the service's own port and through the
gateway. The same signed delivery three times has one effect (the payment's `external_id`, the
refund's `external_id`); the same `external_id` with another body is a conflict (issue 8 §11).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from .figures import record
from .identity import OTHER_SECRET, integration_headers, sign, webhook_headers
from .stack import FOREIGN_PASSWORD, Stack, payment_body


def deals_total(stack: Stack) -> int:
    response = httpx.get(f"{stack.urls['clients']}/api/clients/deals", params={"limit": 1},
                         headers=integration_headers(), timeout=30)
    assert response.status_code == 200, response.text
    return int(response.headers["x-total-count"])


def payments_url(stack: Stack, via: str) -> str:
    base = stack.gateway if via == "gateway" else stack.urls["clients"]
    return f"{base}/api/clients/payments"


def forgeries(body: bytes) -> dict[str, dict[str, str]]:
    """Header sets that must not authenticate `body`."""
    other_body = body.replace(b'"60000.00"', b'"1.00"').replace(b'"1000.00"', b'"1.00"') + b" "
    good = sign(body)
    return {
        "no signature": {},
        "empty signature": {"X-Zabota-Signature": ""},
        "garbage": {"X-Zabota-Signature": "sha256=deadbeef"},
        "other secret": webhook_headers(body, OTHER_SECRET),
        "signature of another body": {"X-Zabota-Signature": sign(other_body)},
        "bare hex without scheme": {"X-Zabota-Signature": good.removeprefix("sha256=")},
        "sha1 scheme": {"X-Zabota-Signature": "sha1=" + good.removeprefix("sha256=")},
        "upper-cased digest": {"X-Zabota-Signature": "sha256=" + good.removeprefix("sha256=").upper()}
        if good.removeprefix("sha256=").upper() != good.removeprefix("sha256=") else {"X-Zabota-Signature": "x"},
        "truncated digest": {"X-Zabota-Signature": good[:-2]},
        "bearer of nobody": {"Authorization": "Bearer not-a-token"},
    }


@pytest.mark.parametrize("via", ["service", "gateway"])
def test_issue8_forged_payment_webhooks_are_refused_and_store_nothing(stack: Stack, via: str) -> None:
    before = deals_total(stack)
    tried = refused = 0
    accepted: list[str] = []
    for name, headers in forgeries(b"").items():
        body = json.dumps(payment_body(f"forged-{via}-{uuid.uuid4().hex[:8]}", name=f"Forged {name}")).encode()
        headers = forgeries(body)[name]
        response = httpx.post(payments_url(stack, via), content=body,
                              headers={**headers, "Content-Type": "application/json"}, timeout=30)
        tried += 1
        if response.status_code in (401, 403):
            refused += 1
        else:
            accepted.append(f"{name}: {response.status_code}")
    record(f"forged payment webhooks ({via})", tried, refused)
    assert not accepted, accepted
    assert deals_total(stack) == before, "a forged webhook stored a deal"


def test_issue8_a_signature_speaks_for_a_webhook_only_whatever_headers_it_carries(stack: Stack) -> None:
    """A valid signature on a request that also claims a staff identity is still only a webhook: it may post
    payments and refunds, never read a deal or reveal credentials."""
    tried = refused = 0
    for method, path in (("GET", "/deals"), ("GET", f"/deals/{stack.foreign.deal_id}"),
                         ("POST", f"/deals/{stack.foreign.deal_id}/credentials/reveal"), ("GET", "/audit")):
        body = b""
        headers = {**webhook_headers(body), "X-Zabota-Actor": "lead", "X-Zabota-Role": "lead"}
        response = httpx.request(method, f"{stack.urls['clients']}/api/clients{path}", content=body, headers=headers,
                                 timeout=30)
        tried += 1
        refused += response.status_code in (401, 403, 404)
        assert response.status_code in (401, 403, 404), (method, path, response.status_code)
        assert FOREIGN_PASSWORD not in response.text
    record("signed webhook claiming a staff role", tried, refused)


@pytest.mark.parametrize("via", ["service", "gateway"])
def test_issue8_the_same_signed_payment_three_times_has_one_effect(stack: Stack, via: str) -> None:
    body = json.dumps(payment_body(f"replay-{via}-{uuid.uuid4().hex[:8]}", name=f"Replayed {via}")).encode()
    before = deals_total(stack)
    answers = [httpx.post(payments_url(stack, via), content=body,
                          headers={**webhook_headers(body), "Content-Type": "application/json"}, timeout=30)
               for _ in range(3)]
    statuses = [a.status_code for a in answers]
    assert statuses == [201, 200, 200], [a.text[:200] for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert deals_total(stack) == before + 1
    deal = stack.api("clients", "GET", f"/deals/{answers[0].json()['id']}")
    assert len(deal["payments"]) == 1 and len(deal["tasks"]) == 1
    record(f"replayed signed payment x3 ({via})", 3, 2, "one deal, one payment, one task")


def signed_refund_target(stack: Stack) -> tuple[str, bytes]:
    deal = stack.api("clients", "POST", "/payments", json=payment_body(f"refund-{uuid.uuid4().hex[:8]}"))
    body = json.dumps({"external_id": f"rf-{uuid.uuid4().hex[:8]}", "amount": "1000.00", "currency": "KZT",
                       "refunded_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}).encode()
    return f"{stack.urls['clients']}/api/clients/deals/{deal['id']}/refunds", body


def test_issue8_forged_refund_webhooks_are_refused_and_store_nothing(stack: Stack) -> None:
    url, body = signed_refund_target(stack)
    tried = refused = 0
    for name, headers in forgeries(body).items():
        forged = httpx.post(url, content=body, headers={**headers, "Content-Type": "application/json"}, timeout=30)
        tried += 1
        refused += forged.status_code in (401, 403)
        assert forged.status_code in (401, 403), (name, forged.status_code)
    assert stack.api("clients", "GET", url.split("/api/clients")[1].removesuffix("/refunds"))["refunds"] == []
    record("forged refund webhooks", tried, refused)


def test_issue8_the_same_signed_refund_three_times_has_one_effect(stack: Stack) -> None:
    """access.py: a signed webhook posts payments AND refunds (DOMAIN CL-15)."""
    url, body = signed_refund_target(stack)
    answers = [httpx.post(url, content=body, headers={**webhook_headers(body), "Content-Type": "application/json"},
                          timeout=30) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 200, 200], [a.text[:200] for a in answers]
    assert len(stack.api("clients", "GET", url.split("/api/clients")[1].removesuffix("/refunds"))["refunds"]) == 1
    record("replayed signed refund x3", 3, 2, "one refund")


def test_issue8_11_the_same_external_id_with_another_body_is_a_conflict_naming_the_fields(stack: Stack) -> None:
    """Issue 8 §11 (with the correctness issue): a replay must be the same delivery; a different body under
    the same `external_id` is a 409 naming the differing fields, and changes nothing."""
    external_id = f"conflict-{uuid.uuid4().hex[:8]}"
    first = json.dumps(payment_body(external_id, name="Conflict First")).encode()
    created = httpx.post(payments_url(stack, "service"), content=first,
                         headers={**webhook_headers(first), "Content-Type": "application/json"}, timeout=30)
    assert created.status_code == 201, created.text
    changed = payment_body(external_id, name="Conflict First")
    changed["amount"] = "1.00"
    second = json.dumps(changed).encode()
    answer = httpx.post(payments_url(stack, "service"), content=second,
                        headers={**webhook_headers(second), "Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 409, (answer.status_code, answer.text[:300])
    assert "amount" in answer.text
    deal = stack.api("clients", "GET", f"/deals/{created.json()['id']}")
    assert [p["amount"] for p in deal["payments"]] == ["60000.00"]
