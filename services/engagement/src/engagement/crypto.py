"""Channel secrets (tokens, webhook secrets, passwords) encrypted at rest with Fernet, as CL-8 credentials are
in the clients service: the key is a labelled SHA-256 of `settings.secret_key`. Secrets are decrypted only to
call the channel's API; they never appear in an answer, a log line or an event.

Webhook secrets are also kept as a SHA-256 digest, so an inbound delivery is checked (constant-time) without
decrypting anything on the hot path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"zabota-engagement-channel-secrets:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secrets(secret_key: str, secrets: dict[str, str]) -> bytes:
    return _fernet(secret_key).encrypt(json.dumps(secrets).encode())


def decrypt_secrets(secret_key: str, blob: bytes) -> dict[str, str]:
    try:
        return json.loads(_fernet(secret_key).decrypt(blob))
    except InvalidToken as exc:
        raise ValueError("channel secrets cannot be decrypted with the current secret key") from exc


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def matches_digest(given: str | None, expected_digest: str | None) -> bool:
    """Constant-time: does `given` hash to the stored digest? Missing either side → False."""
    if not given or not expected_digest:
        return False
    return hmac.compare_digest(digest(given), expected_digest)
