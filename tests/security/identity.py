"""How the security suite speaks to a service on its own port: as a staff member, as an integration,
as a signed webhook, or forging a staff identity.

Staff requests are built here and only here, so the suite follows the identity mechanism the services
believe (issue 8 §1; shared/auth.py): the gateway's signed, short-lived `X-Zabota-Assertion` of a staff
identity, made with the stack's `ZABOTA_GATEWAY_SECRET` for one target service
(`shared.testing.staff_headers`). Identity headers on any other credential are refused.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from shared.testing import staff_headers as _shared_staff_headers

# One place for the stack's secrets: every process of the stack gets these (see stack.py). They are long
# (>= 32 characters) and not the built-in defaults, so the stack runs as production would (issue 8 §6).
GATEWAY_TOKEN = "sec-suite-gateway-token-4f1c9a7e2b6d8035c1e9"
INTEGRATION_TOKEN = "sec-suite-partner-token-9d2e7b1a5c3f6048e2a7"
WEBHOOK_SECRET = "sec-suite-webhook-secret-1b7d3e9c5a2f8064d3b1"
SECRET_KEY = "sec-suite-secret-key-6a9c2e4f8b1d7035a6c9e2f4b8d1a703"
GATEWAY_SECRET = "sec-suite-gateway-secret-3e8a1c7d9b2f4065e1c8a3d7"
ENCRYPTION_KEYS = "sec-suite-encryption-key-new-7c2e9a4d1b8f6035c7e2,sec-suite-encryption-key-old-5b1d8e3a9c2f7046b5d1"
META_APP_SECRET = "sec-suite-meta-app-secret-8e3b1d7c9a2f5064e8b3"
CLOSED_URL = "http://127.0.0.1:9"   # the discard port: nothing listens, a connection is refused at once
OTHER_SECRET = "a-secret-that-is-not-ours-0123456789abcdef"


def staff_headers(login: str, role: str, service: str) -> dict[str, str]:
    """Headers with which the gateway speaks for `login` acting as `role` in a call to `service`."""
    return dict(_shared_staff_headers(login, role, GATEWAY_SECRET, service=service))


def foreign_assertion_headers(login: str, role: str, service: str) -> dict[str, str]:
    """A genuine assertion, but signed with a secret that is not the stack's (a forged gateway)."""
    return dict(_shared_staff_headers(login, role, OTHER_SECRET, service=service))


def integration_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {INTEGRATION_TOKEN}"}


def forged_lead_headers() -> dict[str, str]:
    """An integration token claiming to be the project lead (issue 8 §1: must act as an integration)."""
    return {**integration_headers(), "X-Zabota-Actor": "lead", "X-Zabota-Role": "lead"}


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {"X-Zabota-Signature": sign(body, secret)}


def meta_signature(body: bytes, secret: str = META_APP_SECRET) -> str:
    """Instagram's `X-Hub-Signature-256` (the Meta app secret's HMAC-SHA256 of the raw body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def stack_env() -> dict[str, Any]:
    """Environment of every process of the stack (services and gateway)."""
    return {
        "ZABOTA_API_TOKEN": f"{GATEWAY_TOKEN},{INTEGRATION_TOKEN}",
        "ZABOTA_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ZABOTA_SECRET_KEY": SECRET_KEY,
        "ZABOTA_GATEWAY_SECRET": GATEWAY_SECRET,
        "ZABOTA_ENCRYPTION_KEYS": ENCRYPTION_KEYS,
        # Demo staff accounts in the gateway (lead, manager1, manager2, …); every secret above is set.
        "ZABOTA_DEMO": "1",
        "ZABOTA_DEMO_PASSWORD": "demo",
        # The care inbox's channels (issue 11): Meta signs Instagram deliveries with the app secret; the
        # platforms' APIs are a closed local port, so nothing leaves the machine and a send fails at once.
        "META_APP_SECRET": META_APP_SECRET,
        "META_VERIFY_TOKEN": "sec-suite-meta-verify-token",
        "INSTAGRAM_GRAPH_URL": CLOSED_URL,
        "TELEGRAM_API_URL": CLOSED_URL,
        "VK_API_URL": CLOSED_URL,
    }
