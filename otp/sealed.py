"""Secrets at rest in the store, sealed with the payload codec's AES-GCM keys.

`seal` writes with the current write key; `unseal` reads any configured key id, so
rotating `OTP_CODEC_KEYS` (new key first, old ones kept) keeps old rows readable.
Format: `v1.<key id>.<base64url(nonce ‖ ciphertext)>`. The purpose string is bound as
associated data: a value sealed for one column cannot be moved to another.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from otp.settings import Secrets

_VERSION = "v1"


class SealError(ValueError):
    """A sealed value could not be opened (unknown key id, tampered or truncated)."""


def seal(secrets: Secrets, plaintext: str, *, purpose: str) -> str:
    key_id = secrets.codec_write_key_id
    nonce = os.urandom(12)
    ct = AESGCM(secrets.codec_keys[key_id]).encrypt(nonce, plaintext.encode(), purpose.encode())
    return f"{_VERSION}.{key_id}.{base64.urlsafe_b64encode(nonce + ct).decode()}"


def unseal(secrets: Secrets, sealed: str, *, purpose: str) -> str:
    try:
        version, key_id, body = sealed.split(".", 2)
    except ValueError:
        raise SealError("not a sealed value") from None
    key = secrets.codec_keys.get(key_id)
    if version != _VERSION or key is None:
        raise SealError(f"no key with id {key_id!r} to open this value")
    try:
        raw = base64.urlsafe_b64decode(body.encode())
        return AESGCM(key).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
    except Exception as exc:  # InvalidTag, binascii.Error, UnicodeDecodeError
        raise SealError("sealed value failed authentication") from exc
