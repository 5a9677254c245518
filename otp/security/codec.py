"""AES-GCM payload encryption for everything the service puts into Temporal.

Destinations (phone numbers, email addresses) travel in workflow inputs and
results; this codec makes every payload ciphertext on the server. The key id
rides in the payload metadata so several keys can be read while one writes.

New payloads are encrypted with the codec's HKDF subkey of the key (`otp.security.subkeys`) and
say so in the metadata (`encryption-key-derivation: hkdf-sha256-v1`); payloads without
that entry were written with the raw key and are still read with it.

Rotation: add the new key to `OTP_CODEC_KEYS` in every process first (readers), then put
it first (the writer), and keep the old ids until Temporal's retention and the store's
record retention have both passed; see `otp.security.subkeys` for when a key is worn out.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from otp.security.subkeys import PAYLOAD_CODEC_INFO, derive_subkey
from otp.settings import Secrets

ENCODING = b"binary/encrypted"
KEY_ID_META = "encryption-key-id"
DERIVATION_META = "encryption-key-derivation"
DERIVATION = b"hkdf-sha256-v1"
_NONCE_BYTES = 12


class UnknownKeyError(ValueError):
    """A payload was encrypted with a key id this process does not hold."""


class AesGcmCodec(PayloadCodec):
    """Encrypts each payload (metadata + data) with AES-256-GCM; decrypts any known key id."""

    def __init__(self, keys: dict[str, bytes], write_key_id: str) -> None:
        if write_key_id not in keys:
            raise ValueError("write key id must be one of the keys")
        self._ciphers = {
            kid: AESGCM(derive_subkey(key, PAYLOAD_CODEC_INFO)) for kid, key in keys.items()
        }
        self._raw_ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self._write_id = write_key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._write_id].encrypt(
            nonce, payload.SerializeToString(), self._write_id.encode()
        )
        return Payload(
            metadata={
                "encoding": ENCODING,
                KEY_ID_META: self._write_id.encode(),
                DERIVATION_META: DERIVATION,
            },
            data=nonce + sealed,
        )

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding", b"") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_META, b"").decode()
        derivation = payload.metadata.get(DERIVATION_META)
        if derivation is None:  # written before subkeys: the raw key
            cipher = self._raw_ciphers.get(key_id)
        elif derivation == DERIVATION:
            cipher = self._ciphers.get(key_id)
        else:
            raise UnknownKeyError(f"unknown key derivation {derivation.decode(errors='replace')!r}")
        if cipher is None:
            raise UnknownKeyError(f"no codec key with id {key_id!r}")
        data = payload.data
        return Payload.FromString(
            cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], key_id.encode())
        )

    @property
    def key_ids(self) -> Iterable[str]:
        return self._ciphers.keys()


def codec_from_secrets(secrets: Secrets) -> AesGcmCodec:
    return AesGcmCodec(secrets.codec_keys, secrets.codec_write_key_id)


def data_converter(secrets: Secrets) -> DataConverter:
    """The one data converter used by the API, the worker, the replayer and the tests."""
    # Failure messages and stack traces go through the codec too: by default Temporal
    # stores them in clear text, and an exception's text can echo what it was handling.
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec_from_secrets(secrets),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
