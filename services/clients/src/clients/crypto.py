"""Secrets at rest of the clients service (CL-8 credentials, secret columns of an import), in the shared
scheme of `shared.crypto` (ZABOTA_ENCRYPTION_KEYS, newest first); `python -m clients.rekey` re-encrypts
everything stored with the newest key. The credentials ciphertext holds login and password together, so
neither leaks on its own."""

from __future__ import annotations

import json
from typing import Any

from shared.settings import Settings

from shared import crypto

LEGACY = b"zabota-clients-credentials:"  # the key derived from ZABOTA_SECRET_KEY before issue 8


def keyring(settings: Settings):
    return crypto.keyring(settings, LEGACY)


def encrypt(settings: Settings, plain: bytes) -> bytes:
    return crypto.encrypt(settings, plain, LEGACY)


def decrypt(settings: Settings, blob: bytes) -> bytes:
    return crypto.decrypt(settings, blob, LEGACY)


def rotate(settings: Settings, blob: bytes) -> bytes:
    return crypto.rotate(settings, blob, LEGACY)


def encrypt_json(settings: Settings, value: Any) -> str:
    return crypto.encrypt_json(settings, value, LEGACY).decode("ascii")


def decrypt_json(settings: Settings, token: str) -> Any:
    return crypto.decrypt_json(settings, token.encode("ascii"), LEGACY)


def encrypt_credentials(settings: Settings, login: str, password: str) -> bytes:
    return encrypt(settings, json.dumps({"login": login, "password": password}).encode())


def decrypt_credentials(settings: Settings, blob: bytes) -> dict[str, str]:
    return json.loads(decrypt(settings, blob))
