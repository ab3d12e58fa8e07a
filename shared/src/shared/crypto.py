"""Secrets at rest (CL-8 credentials, import secret columns, Instagram tokens, channel secrets), encrypted
with Fernet (AES-128-CBC + HMAC-SHA256) under keys of their own (issue 8 item 6) — one scheme for every
service, so one rotation procedure serves them all.

`ZABOTA_ENCRYPTION_KEYS` lists key material, newest first (`settings.encryption_keys`): every key decrypts,
new writes use the first. Each entry becomes a Fernet key through one SHA-256 over a labelled string, so any
random string of ≥ 32 characters is a valid key. Data written before keys had their own setting (a key
derived from `ZABOTA_SECRET_KEY` under a service's own `legacy_label`) still decrypts — that key is tried
last. Rotation: prepend a new key, restart, run the service's re-key command, drop the old key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.settings import Settings

UNREADABLE = "cannot be decrypted with any of ZABOTA_ENCRYPTION_KEYS"


def _fernet(label: bytes, material: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(label + material.encode()).digest()))


def keyring(settings: Settings, legacy_label: bytes | None = None) -> MultiFernet:
    """All keys that decrypt, the one that encrypts first; a pre-rotation legacy key last."""
    keys = [_fernet(b"zabota-encryption-key:", k) for k in settings.encryption_keys]
    if legacy_label is not None:
        keys.append(_fernet(legacy_label, settings.secret_key))
    return MultiFernet(keys)


def encrypt(settings: Settings, plain: bytes, legacy_label: bytes | None = None) -> bytes:
    return keyring(settings, legacy_label).encrypt(plain)


def decrypt(settings: Settings, blob: bytes, legacy_label: bytes | None = None) -> bytes:
    try:
        return keyring(settings, legacy_label).decrypt(blob)
    except InvalidToken as exc:  # a key was dropped before the data was re-encrypted
        raise ValueError(UNREADABLE) from exc


def rotate(settings: Settings, blob: bytes, legacy_label: bytes | None = None) -> bytes:
    """The same plaintext, encrypted with the newest key (what a re-key command writes)."""
    try:
        return keyring(settings, legacy_label).rotate(blob)
    except InvalidToken as exc:
        raise ValueError(UNREADABLE) from exc


def encrypt_json(settings: Settings, value: Any, legacy_label: bytes | None = None) -> bytes:
    return encrypt(settings, json.dumps(value, ensure_ascii=False).encode(), legacy_label)


def decrypt_json(settings: Settings, blob: bytes, legacy_label: bytes | None = None) -> Any:
    return json.loads(decrypt(settings, blob, legacy_label))
