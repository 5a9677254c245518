"""Random ids of stored objects: a prefix and lowercase base32 of random bytes."""

from __future__ import annotations

import base64
import secrets


def random_id(prefix: str, *, random_bytes: int = 16) -> str:
    """`prefix` + lowercase base32 of `random_bytes` random bytes, without padding.

    16 bytes (128 bits) give 26 characters; 15 bytes (120 bits) give 24.
    """
    encoded = base64.b32encode(secrets.token_bytes(random_bytes)).decode()
    return prefix + encoded.rstrip("=").lower()
