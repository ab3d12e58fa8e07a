"""Channel secrets (tokens, webhook secrets, passwords) encrypted at rest with Fernet, as CL-8 credentials are
in the clients service (`shared.crypto`: ZABOTA_ENCRYPTION_KEYS, newest first). Secrets are decrypted only to
call the channel's API; they never appear in an answer, a log line or an event.

Webhook secrets are also kept as a SHA-256 digest, so an inbound delivery is checked (constant-time) without
decrypting anything on the hot path.
"""

from __future__ import annotations

import hashlib
import hmac

from shared.settings import Settings

from shared import crypto

LEGACY = b"zabota-engagement-channel-secrets:"  # secrets written before the shared scheme


def encrypt_secrets(settings: Settings, secrets: dict[str, str]) -> bytes:
    return crypto.encrypt_json(settings, secrets, LEGACY)


def decrypt_secrets(settings: Settings, blob: bytes) -> dict[str, str]:
    return crypto.decrypt_json(settings, blob, LEGACY)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def matches_digest(given: str | None, expected_digest: str | None) -> bool:
    """Constant-time: does `given` hash to the stored digest? Missing either side → False."""
    if not given or not expected_digest:
        return False
    return hmac.compare_digest(digest(given), expected_digest)
