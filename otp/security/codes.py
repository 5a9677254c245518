"""One-time code derivation and keyed digests.

The code is never stored anywhere. Any worker re-derives it from the server's code
secret, the verification id and a per-issue nonce (HMAC-SHA256, reduced to the code
alphabet), so a fallback channel or a resend delivers the same code. Workflow
history keeps only a keyed digest, which the API computes for a submitted code and
the workflow compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from otp.domain import CodeType

NUMERIC_ALPHABET = "0123456789"
# No 0/O, 1/I/L, or U/V lookalikes: easy to read aloud and to type from a lock screen.
ALPHANUMERIC_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"

_DERIVE_LABEL = b"otp/code/v1"
_DIGEST_LABEL = b"otp/digest/v1"


def alphabet_for(code_type: CodeType) -> str:
    return NUMERIC_ALPHABET if code_type is CodeType.NUMERIC else ALPHANUMERIC_ALPHABET


def new_nonce() -> str:
    """A fresh per-issue nonce (128 random bits, hex)."""
    return secrets.token_hex(16)


def derive_code(
    secret: bytes, verification_id: str, nonce: str, length: int, code_type: CodeType
) -> str:
    """Derive the code for (verification, nonce): deterministic for anyone holding the secret."""
    alphabet = alphabet_for(code_type)
    mac = hmac.new(
        secret, b"|".join((_DERIVE_LABEL, verification_id.encode(), nonce.encode())), hashlib.sha256
    ).digest()
    # A 256-bit integer reduced to |alphabet|^length (at most ~2^50): the bias is below 2^-200.
    value = int.from_bytes(mac, "big") % (len(alphabet) ** length)
    out = []
    for _ in range(length):
        value, index = divmod(value, len(alphabet))
        out.append(alphabet[index])
    return "".join(reversed(out))


def normalize_submitted(code: str) -> str:
    """Canonical form of what a user typed: no spaces or dashes, upper case."""
    return "".join(ch for ch in code if ch not in " -\t").upper()


def code_digest(secret: bytes, verification_id: str, code: str) -> str:
    """Keyed digest of a code for one verification (hex). Safe to keep in history."""
    return hmac.new(
        secret,
        b"|".join((_DIGEST_LABEL, verification_id.encode(), normalize_submitted(code).encode())),
        hashlib.sha256,
    ).hexdigest()


def digests_match(expected: str, submitted: str) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(expected.encode(), submitted.encode())
