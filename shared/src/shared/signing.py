"""Signed, expiring links (DESIGN 8): the client's questionnaire (CL-5) and plan approvals (CO-4).

A token is `<payload>.<signature>`, both base64url without padding, safe in a URL path or query:
the payload is JSON `{"p": purpose, "d": data, "e": expiry (unix seconds)}` and the signature is
HMAC-SHA256 over the encoded payload with a key derived from `settings.secret_key` and the purpose —
so a token minted for one purpose (a questionnaire) never opens another (a plan approval), and the
expiry cannot be changed without breaking the signature.

    token = make_token({"deal_id": d}, secret_key=s.secret_key, purpose="questionnaire", expires_at=t)
    data = read_token(token, secret_key=s.secret_key, purpose="questionnaire", now=clock.now())
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["BadToken", "ExpiredToken", "make_token", "read_token"]


class BadToken(ValueError):
    """Malformed, forged, or minted for another purpose."""


class ExpiredToken(BadToken):
    """Genuine, but its time is up."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), b"zabota-signed-link:" + purpose.encode(), hashlib.sha256).digest()


def _signature(secret_key: str, purpose: str, body: str) -> str:
    return _b64(hmac.new(_key(secret_key, purpose), body.encode("ascii"), hashlib.sha256).digest())


def make_token(data: Any, *, secret_key: str, purpose: str, expires_at: datetime) -> str:
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    payload = {"p": purpose, "d": data, "e": int(expires_at.timestamp())}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_signature(secret_key, purpose, body)}"


def read_token(token: str, *, secret_key: str, purpose: str, now: datetime) -> Any:
    """The data a genuine, unexpired token of this purpose carries; else BadToken / ExpiredToken."""
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature:
        raise BadToken("malformed token")
    try:
        expected = _signature(secret_key, purpose, body)
    except (UnicodeEncodeError, ValueError):
        raise BadToken("malformed token") from None
    if not hmac.compare_digest(signature, expected):
        raise BadToken("invalid signature")
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        raise BadToken("malformed token") from None
    if payload.get("p") != purpose:
        raise BadToken("token for another purpose")
    if now.astimezone(UTC).timestamp() >= payload["e"]:
        raise ExpiredToken("link expired")
    return payload["d"]


def expires_at_of(token: str) -> datetime:
    """When a (well-formed) token expires, without verifying it — for display only."""
    payload = json.loads(_unb64(token.partition(".")[0]))
    return datetime.fromtimestamp(payload["e"], UTC)
