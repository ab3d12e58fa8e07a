"""How the security suite speaks to a service on its own port: as a staff member, as an integration,
as a signed webhook, or forging a staff identity.

Staff requests are built here and only here, so the suite follows the identity mechanism the services
believe (issue 8 §1): once `shared.testing.staff_headers(login, role)` exists (the gateway's signed
assertion of a staff identity), it is used; until then the suite falls back to the bearer token plus
`X-Zabota-Actor` / `X-Zabota-Role`, which is what the gateway sends today.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# One place for the stack's secrets: every process of the stack gets these (see stack.py). They are long
# and not the built-in defaults, so the stack runs as production would (issue 8 §6).
GATEWAY_TOKEN = "sec-suite-gateway-token-4f1c9a7e2b6d8035c1e9"
INTEGRATION_TOKEN = "sec-suite-partner-token-9d2e7b1a5c3f6048e2a7"
WEBHOOK_SECRET = "sec-suite-webhook-secret-1b7d3e9c5a2f8064d3b1"
SECRET_KEY = "sec-suite-secret-key-6a9c2e4f8b1d7035a6c9e2f4b8d1a703"
OTHER_SECRET = "a-secret-that-is-not-ours-0123456789abcdef"

try:   # h5: the gateway's signed assertion of a staff identity
    from shared.testing import staff_headers as _shared_staff_headers  # type: ignore[attr-defined]
except ImportError:   # today: bearer + identity headers
    _shared_staff_headers = None


def staff_headers(login: str, role: str) -> dict[str, str]:
    """Headers with which the gateway speaks for `login` acting as `role`.

    The shared helper is called with the stack's environment in place (it may read its key from the
    environment, as the services do) and then with `secret_key=` if it takes one."""
    if _shared_staff_headers is not None:
        with _stack_environment():
            try:
                return dict(_shared_staff_headers(login, role, secret_key=SECRET_KEY))
            except TypeError:
                return dict(_shared_staff_headers(login, role))
    return {"Authorization": f"Bearer {GATEWAY_TOKEN}", "X-Zabota-Actor": login, "X-Zabota-Role": role}


@contextmanager
def _stack_environment() -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in stack_env()}
    os.environ.update(stack_env())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def integration_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {INTEGRATION_TOKEN}"}


def forged_lead_headers() -> dict[str, str]:
    """An integration token claiming to be the project lead (issue 8 §1: must act as an integration)."""
    return {**integration_headers(), "X-Zabota-Actor": "lead", "X-Zabota-Role": "lead"}


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {"X-Zabota-Signature": sign(body, secret)}


def stack_env() -> dict[str, Any]:
    """Environment of every process of the stack (services and gateway)."""
    return {
        "ZABOTA_API_TOKEN": f"{GATEWAY_TOKEN},{INTEGRATION_TOKEN}",
        "ZABOTA_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ZABOTA_SECRET_KEY": SECRET_KEY,
        # Demo staff accounts in the gateway (lead, manager1, manager2, …); every secret above is set.
        "ZABOTA_DEMO": "1",
        "ZABOTA_DEMO_PASSWORD": "demo",
    }
