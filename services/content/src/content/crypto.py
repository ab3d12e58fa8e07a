"""The Instagram access token of a connected account is a secret, encrypted at rest with Fernet
(AES-128-CBC + HMAC-SHA256), as CL-8's credentials are in the clients service.

Keys: `settings.encryption_keys` (`ZABOTA_ENCRYPTION_KEYS`, newest first: every key decrypts, new writes
use the first — the scheme of clients' crypto.py, so one rotation procedure serves both) when the settings
carry them; the key derived from `settings.secret_key` under this service's own label is the last one
tried (and the only one where the settings have no encryption keys).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from shared.settings import Settings


def _fernet(label: bytes, material: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(label + material.encode()).digest()))


def keyring(settings: Settings) -> MultiFernet:
    keys = [_fernet(b"zabota-encryption-key:", k) for k in getattr(settings, "encryption_keys", ()) or ()]
    keys.append(_fernet(b"zabota-content-instagram-token:", settings.secret_key))
    return MultiFernet(keys)


def encrypt_token(settings: Settings, token: str) -> bytes:
    return keyring(settings).encrypt(token.encode())


def decrypt_token(settings: Settings, blob: bytes) -> str:
    try:
        return keyring(settings).decrypt(blob).decode()
    except InvalidToken as exc:  # a key was dropped before the data was re-encrypted
        raise ValueError("the access token cannot be decrypted with the configured keys") from exc


def rotate(settings: Settings, blob: bytes) -> bytes:
    """The same token, encrypted with the newest key (for a re-keying run)."""
    return keyring(settings).rotate(blob)
