"""Separate HKDF subkeys for the payload codec and the sealing; old formats still open."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload

from otp.security.codec import DERIVATION, DERIVATION_META, ENCODING, KEY_ID_META, AesGcmCodec
from otp.security.sealing import SealError, seal, unseal
from otp.security.subkeys import PAYLOAD_CODEC_INFO, SEAL_INFO, derive_subkey
from otp.settings import Secrets

RAW = b"k" * 32
SECRETS = Secrets(b"s" * 32, {"k1": RAW}, "k1")
PURPOSE = "webhook-endpoint-secret"


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


def legacy_payload(original: Payload) -> Payload:
    """A payload as the codec wrote it before subkeys: the raw key, no derivation entry."""
    nonce = os.urandom(12)
    ct = AESGCM(RAW).encrypt(nonce, original.SerializeToString(), b"k1")
    return Payload(metadata={"encoding": ENCODING, KEY_ID_META: b"k1"}, data=nonce + ct)


def legacy_sealed(plaintext: str) -> str:
    nonce = os.urandom(12)
    ct = AESGCM(RAW).encrypt(nonce, plaintext.encode(), PURPOSE.encode())
    return "v1.k1." + base64.urlsafe_b64encode(nonce + ct).decode()


def test_the_two_subkeys_differ_from_each_other_and_from_the_raw_key() -> None:
    codec_key = derive_subkey(RAW, PAYLOAD_CODEC_INFO)
    seal_key = derive_subkey(RAW, SEAL_INFO)
    assert len(codec_key) == len(seal_key) == 32
    assert len({codec_key, seal_key, RAW}) == 3
    assert derive_subkey(RAW, SEAL_INFO) == seal_key  # deterministic


async def test_new_payloads_are_marked_and_use_the_codec_subkey_not_the_raw_key() -> None:
    (encoded,) = await AesGcmCodec({"k1": RAW}, "k1").encode([payload("x")])
    assert encoded.metadata[DERIVATION_META] == DERIVATION
    nonce, ct = encoded.data[:12], encoded.data[12:]
    opened = AESGCM(derive_subkey(RAW, PAYLOAD_CODEC_INFO)).decrypt(nonce, ct, b"k1")
    assert Payload.FromString(opened) == payload("x")
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        AESGCM(RAW).decrypt(nonce, ct, b"k1")


async def test_old_format_payloads_still_decode_with_the_raw_key() -> None:
    original = payload('{"to": "+14155552671"}')
    assert await AesGcmCodec({"k1": RAW}, "k1").decode([legacy_payload(original)]) == [original]


async def test_an_unknown_derivation_is_refused() -> None:
    (encoded,) = await AesGcmCodec({"k1": RAW}, "k1").encode([payload("x")])
    encoded.metadata[DERIVATION_META] = b"other"
    with pytest.raises(ValueError, match="derivation"):
        await AesGcmCodec({"k1": RAW}, "k1").decode([encoded])


def test_new_sealed_values_are_v2_and_open() -> None:
    sealed = seal(SECRETS, "whsec_abc", purpose=PURPOSE)
    assert sealed.startswith("v2.k1.")
    assert unseal(SECRETS, sealed, purpose=PURPOSE) == "whsec_abc"


def test_old_format_sealed_values_still_open_with_the_raw_key() -> None:
    assert unseal(SECRETS, legacy_sealed("whsec_old"), purpose=PURPOSE) == "whsec_old"


def test_a_sealed_value_does_not_open_with_the_codec_subkey_or_the_raw_key() -> None:
    sealed = seal(SECRETS, "whsec_abc", purpose=PURPOSE)
    raw = base64.urlsafe_b64decode(sealed.split(".", 2)[2])
    for key in (derive_subkey(RAW, PAYLOAD_CODEC_INFO), RAW):
        with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
            AESGCM(key).decrypt(raw[:12], raw[12:], PURPOSE.encode())
    # Relabelled as the old format (raw key), it fails authentication too.
    with pytest.raises(SealError):
        unseal(SECRETS, "v1." + sealed[3:], purpose=PURPOSE)


async def test_a_codec_payload_does_not_open_with_the_sealing_subkey() -> None:
    (encoded,) = await AesGcmCodec({"k1": RAW}, "k1").encode([payload("x")])
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        AESGCM(derive_subkey(RAW, SEAL_INFO)).decrypt(encoded.data[:12], encoded.data[12:], b"k1")
