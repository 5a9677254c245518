"""Code derivation, normalisation and digests."""

from __future__ import annotations

import pytest

from otp.domain import CodeType
from otp.security.codes import (
    ALPHANUMERIC_ALPHABET,
    NUMERIC_ALPHABET,
    code_digest,
    derive_code,
    digests_match,
    new_nonce,
    normalize_submitted,
)

SECRET = b"unit-test-secret-0123456789abcdef"


@pytest.mark.parametrize("code_type", list(CodeType))
@pytest.mark.parametrize("length", range(4, 11))
def test_codes_have_the_length_and_alphabet(code_type: CodeType, length: int) -> None:
    alphabet = NUMERIC_ALPHABET if code_type is CodeType.NUMERIC else ALPHANUMERIC_ALPHABET
    codes = [derive_code(SECRET, "ver_1", new_nonce(), length, code_type) for _ in range(50)]
    for code in codes:
        assert len(code) == length
        assert set(code) <= set(alphabet)
    assert len(set(codes)) > 45  # not a constant


def test_alphanumeric_alphabet_has_no_lookalikes() -> None:
    assert not set("01OILUV") & set(ALPHANUMERIC_ALPHABET)
    assert ALPHANUMERIC_ALPHABET.isupper()


def test_derivation_is_deterministic_and_keyed() -> None:
    nonce = new_nonce()
    code = derive_code(SECRET, "ver_1", nonce, 8, CodeType.ALPHANUMERIC)
    assert derive_code(SECRET, "ver_1", nonce, 8, CodeType.ALPHANUMERIC) == code
    others = {
        derive_code(b"another-secret-0123456789abcdef!", "ver_1", nonce, 8, CodeType.ALPHANUMERIC),
        derive_code(SECRET, "ver_2", nonce, 8, CodeType.ALPHANUMERIC),
    }
    assert code not in others


def test_a_different_nonce_gives_a_different_code() -> None:
    base = derive_code(SECRET, "ver_1", new_nonce(), 6, CodeType.NUMERIC)
    # Two random 6-digit codes collide with probability 1e-6; 200 draws all equal: never.
    same = sum(
        derive_code(SECRET, "ver_1", new_nonce(), 6, CodeType.NUMERIC) == base for _ in range(200)
    )
    assert same <= 2


def test_numeric_digits_are_roughly_uniform() -> None:
    counts = dict.fromkeys(NUMERIC_ALPHABET, 0)
    for _ in range(500):
        for digit in derive_code(SECRET, "ver_u", new_nonce(), 10, CodeType.NUMERIC):
            counts[digit] += 1
    # 5000 digits: each ~500; a broken reduction (e.g. always 0-padding) would be far off.
    assert all(350 < n < 650 for n in counts.values()), counts


def test_nonces_are_fresh_128_bit_hex() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in nonces)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("123 456", "123456"),
        ("123-456", "123456"),
        ("ab7-k9m", "AB7K9M"),
        ("\t12 34-56 ", "123456"),
    ],
)
def test_normalize_submitted(typed: str, canonical: str) -> None:
    assert normalize_submitted(typed) == canonical


def test_digest_is_keyed_per_verification_and_normalised() -> None:
    digest = code_digest(SECRET, "ver_1", "ab7k9m")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert code_digest(SECRET, "ver_1", "AB7-K9M") == digest
    assert code_digest(SECRET, "ver_2", "AB7K9M") != digest
    assert code_digest(b"x" * 32, "ver_1", "AB7K9M") != digest
    assert "AB7K9M" not in digest


def test_digests_match() -> None:
    digest = code_digest(SECRET, "ver_1", "123456")
    assert digests_match(digest, code_digest(SECRET, "ver_1", "123 456"))
    assert not digests_match(digest, code_digest(SECRET, "ver_1", "123457"))
    assert not digests_match(digest, digest[:-1])
    assert not digests_match(digest, "")
