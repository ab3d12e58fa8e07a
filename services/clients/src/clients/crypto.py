"""Secrets at rest (CL-8 credentials, secret columns of an import), encrypted with Fernet
(AES-128-CBC + HMAC-SHA256) under keys of their own (issue 8 item 6).

`ZABOTA_ENCRYPTION_KEYS` lists key material, newest first (`settings.encryption_keys`): every key
decrypts, new writes use the first. Each entry becomes a Fernet key through one SHA-256 over a labelled
string, so any random string of ≥ 32 characters is a valid key. Data written before keys had their own
setting (the key derived from `ZABOTA_SECRET_KEY`) still decrypts — the legacy key is tried last — and
`python -m clients.rekey` re-encrypts everything stored with the newest key (rotation: prepend a new
key, run the command, then drop the old key).

The credentials ciphertext holds login and password together, so neither leaks on its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from shared.settings import Settings


def _fernet(label: bytes, material: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(label + material.encode()).digest()))


def keyring(settings: Settings) -> MultiFernet:
    """All keys that decrypt, the one that encrypts first; the pre-rotation legacy key last."""
    keys = [_fernet(b"zabota-encryption-key:", k) for k in settings.encryption_keys]
    keys.append(_fernet(b"zabota-clients-credentials:", settings.secret_key))  # legacy: before issue 8
    return MultiFernet(keys)


def encrypt(settings: Settings, plain: bytes) -> bytes:
    return keyring(settings).encrypt(plain)


def decrypt(settings: Settings, blob: bytes) -> bytes:
    try:
        return keyring(settings).decrypt(blob)
    except InvalidToken as exc:  # a key was dropped before the data was re-encrypted
        raise ValueError("cannot be decrypted with any of ZABOTA_ENCRYPTION_KEYS") from exc


def rotate(settings: Settings, blob: bytes) -> bytes:
    """The same plaintext, encrypted with the newest key (what `clients.rekey` writes)."""
    try:
        return keyring(settings).rotate(blob)
    except InvalidToken as exc:
        raise ValueError("cannot be decrypted with any of ZABOTA_ENCRYPTION_KEYS") from exc


def encrypt_json(settings: Settings, value: Any) -> str:
    return encrypt(settings, json.dumps(value, ensure_ascii=False).encode()).decode("ascii")


def decrypt_json(settings: Settings, token: str) -> Any:
    return json.loads(decrypt(settings, token.encode("ascii")))


def encrypt_credentials(settings: Settings, login: str, password: str) -> bytes:
    return encrypt(settings, json.dumps({"login": login, "password": password}).encode())


def decrypt_credentials(settings: Settings, blob: bytes) -> dict[str, str]:
    return json.loads(decrypt(settings, blob))
