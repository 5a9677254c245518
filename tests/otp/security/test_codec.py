"""The AES-GCM payload codec: round trip, key rotation, unknown keys, no plaintext."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payload

from otp.domain import Channel, ChannelStep, Mode, VerificationInput
from otp.security.codec import ENCODING, KEY_ID_META, AesGcmCodec, UnknownKeyError, data_converter
from otp.settings import Secrets

OLD = b"o" * 32
NEW = b"n" * 32


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    codec = AesGcmCodec({"k1": OLD}, "k1")
    original = payload('{"to": "+14155552671"}')
    (sealed,) = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_META] == b"k1"
    assert b"+14155552671" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()  # metadata is sealed too
    (opened,) = await codec.decode([sealed])
    assert opened == original


async def test_each_encoding_uses_a_fresh_nonce() -> None:
    codec = AesGcmCodec({"k1": OLD}, "k1")
    a, b = await codec.encode([payload("same"), payload("same")])
    assert a.data != b.data


async def test_rotation_keeps_reading_payloads_of_a_retained_key() -> None:
    old_codec = AesGcmCodec({"old": OLD}, "old")
    (written_before,) = await old_codec.encode([payload("history")])

    rotated = AesGcmCodec({"new": NEW, "old": OLD}, "new")
    (written_after,) = await rotated.encode([payload("fresh")])
    assert written_after.metadata[KEY_ID_META] == b"new"
    assert [p.data for p in await rotated.decode([written_before, written_after])] == [
        b"history",
        b"fresh",
    ]


async def test_unknown_key_id_is_refused() -> None:
    (sealed,) = await AesGcmCodec({"old": OLD}, "old").encode([payload("x")])
    with pytest.raises(UnknownKeyError):
        await AesGcmCodec({"new": NEW}, "new").decode([sealed])


async def test_tampered_key_id_fails_authentication() -> None:
    """The key id is bound as associated data: relabelling a payload is detected."""
    codec = AesGcmCodec({"a": OLD, "b": OLD}, "a")
    (sealed,) = await codec.encode([payload("x")])
    sealed.metadata[KEY_ID_META] = b"b"
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        await codec.decode([sealed])


async def test_unencrypted_payloads_pass_through() -> None:
    plain = payload("search attribute")
    assert await AesGcmCodec({"k": OLD}, "k").decode([plain]) == [plain]


def test_write_key_must_exist() -> None:
    with pytest.raises(ValueError, match="write key"):
        AesGcmCodec({"k": OLD}, "missing")


async def test_data_converter_encrypts_domain_objects() -> None:
    converter = data_converter(Secrets(b"s" * 32, {"k": OLD}, "k"))
    value = VerificationInput(
        application_id="app",
        mode=Mode.TEST,
        channels=[ChannelStep(channel=Channel.EMAIL, to="carol@example.com")],
    )
    (encoded,) = await converter.encode([value])
    assert b"carol@example.com" not in encoded.SerializeToString()
    (decoded,) = await converter.decode([encoded], [VerificationInput])
    assert decoded == value
