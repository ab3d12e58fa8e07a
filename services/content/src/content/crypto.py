"""The Instagram access token of a connected account is a secret, encrypted at rest in the shared scheme
(`shared.crypto`: ZABOTA_ENCRYPTION_KEYS, newest first), as CL-8's credentials are in the clients service."""

from __future__ import annotations

from shared.settings import Settings

from shared import crypto

LEGACY = b"zabota-content-instagram-token:"  # tokens written before the shared scheme


def encrypt_token(settings: Settings, token: str) -> bytes:
    return crypto.encrypt(settings, token.encode(), LEGACY)


def decrypt_token(settings: Settings, blob: bytes) -> str:
    try:
        return crypto.decrypt(settings, blob, LEGACY).decode()
    except ValueError as exc:
        raise ValueError("the access token cannot be decrypted with the configured keys") from exc


def rotate(settings: Settings, blob: bytes) -> bytes:
    """The same token, encrypted with the newest key (for a re-keying run)."""
    return crypto.rotate(settings, blob, LEGACY)
