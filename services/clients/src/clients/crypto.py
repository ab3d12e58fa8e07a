"""CL-8: Instagram credentials are secrets, encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

The key is derived from `settings.secret_key` (HKDF-free on purpose: one SHA-256 over a labelled
secret is enough for a 32-byte Fernet key and keeps rotation simple — rotate by re-encrypting with a
new secret_key). The ciphertext holds login and password together, so neither leaks on its own.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"zabota-clients-credentials:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_credentials(secret_key: str, login: str, password: str) -> bytes:
    return _fernet(secret_key).encrypt(json.dumps({"login": login, "password": password}).encode())


def decrypt_credentials(secret_key: str, blob: bytes) -> dict[str, str]:
    try:
        return json.loads(_fernet(secret_key).decrypt(blob))
    except InvalidToken as exc:  # the secret key changed without re-encrypting
        raise ValueError("credentials cannot be decrypted with the current secret key") from exc
