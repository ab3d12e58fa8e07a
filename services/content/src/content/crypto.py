"""The Instagram access token of a connected account is a secret, encrypted at rest with Fernet
(AES-128-CBC + HMAC-SHA256) under a key derived from `settings.secret_key`, as CL-8's credentials are in
the clients service (its own label, so the two services' ciphertexts are not interchangeable)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"zabota-content-instagram-token:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_token(secret_key: str, token: str) -> bytes:
    return _fernet(secret_key).encrypt(token.encode())


def decrypt_token(secret_key: str, blob: bytes) -> str:
    try:
        return _fernet(secret_key).decrypt(blob).decode()
    except InvalidToken as exc:  # the secret key changed without re-encrypting
        raise ValueError("the access token cannot be decrypted with the current secret key") from exc
