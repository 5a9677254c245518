"""Secrets at rest in the store, sealed with AES-GCM under the `OTP_CODEC_KEYS` keys.

`seal` writes with the current write key; `unseal` reads any configured key id, so
rotating `OTP_CODEC_KEYS` (new key first, old ones kept) keeps old rows readable.
Format: `v2.<key id>.<base64url(nonce ‖ ciphertext)>`, encrypted with the sealing
subkey of the key (HKDF-SHA256, `otp.security.subkeys`), never the payload codec's; values in the
older `v1.` format were sealed with the raw key and are still opened with it. The
purpose string is bound as associated data: a value sealed for one column cannot be
moved to another.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from otp.security.subkeys import SEAL_INFO, derive_subkey
from otp.settings import Secrets

_VERSION = "v2"  # the sealing subkey
_LEGACY_VERSION = "v1"  # the raw key


class SealError(ValueError):
    """A sealed value could not be opened (unknown key id, tampered or truncated)."""


def seal(secrets: Secrets, plaintext: str, *, purpose: str) -> str:
    key_id = secrets.codec_write_key_id
    nonce = os.urandom(12)
    key = derive_subkey(secrets.codec_keys[key_id], SEAL_INFO)
    ct = AESGCM(key).encrypt(nonce, plaintext.encode(), purpose.encode())
    return f"{_VERSION}.{key_id}.{base64.urlsafe_b64encode(nonce + ct).decode()}"


def unseal(secrets: Secrets, sealed: str, *, purpose: str) -> str:
    try:
        version, key_id, body = sealed.split(".", 2)
    except ValueError:
        raise SealError("not a sealed value") from None
    key = secrets.codec_keys.get(key_id)
    if version not in (_VERSION, _LEGACY_VERSION) or key is None:
        raise SealError(f"no key with id {key_id!r} to open this value")
    if version == _VERSION:
        key = derive_subkey(key, SEAL_INFO)
    try:
        raw = base64.urlsafe_b64decode(body.encode())
        return AESGCM(key).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
    except Exception as exc:  # InvalidTag, binascii.Error, UnicodeDecodeError
        raise SealError("sealed value failed authentication") from exc
