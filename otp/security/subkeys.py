"""One subkey per use, derived from each configured `OTP_CODEC_KEYS` key.

The payload codec (`otp.security.codec`) and the at-rest sealing (`otp.security.sealing`) never use a
configured key directly: each derives its own 256-bit subkey with HKDF-SHA256 (no salt,
a purpose-specific `info`), so a ciphertext of one use never opens under the other and
each use's nonce budget is its own. Values written before the derivation existed were
encrypted with the raw key; readers recognise them by their format and still open them.

Nonce budget: both uses draw random 96-bit AES-GCM nonces, which stay safe well below
2^32 encryptions per key. A verification writes roughly 10 to 30 payloads (input,
activity inputs and results, update arguments and results, memo, failures), so one key
covers on the order of 100 million verifications; rotate well before that.
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PAYLOAD_CODEC_INFO = b"otp/payload-codec/v1"
SEAL_INFO = b"otp/seal/v1"


@functools.lru_cache(maxsize=64)
def derive_subkey(key: bytes, info: bytes) -> bytes:
    """The 32-byte subkey of `key` for the use named by `info` (HKDF-SHA256); derived once
    per process for each configured key (sealing asks on every call)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)
