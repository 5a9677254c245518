"""Which sandbox scenario applies to a send, and which scenarios are valid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from otp.sandbox.scenarios import Scenario, ScenarioKind, check, match, webhook_failure

T0 = datetime(2026, 1, 1, tzinfo=UTC)
K = ScenarioKind


def _hash(to: str) -> str:
    """A stand-in for the keyed hash: matching only compares hashes for equality."""
    return "h:" + to


def _s(id: str, kind: ScenarioKind = K.NO_RECEIPT, age_s: int = 0, **fields: object) -> Scenario:
    if "to" in fields:  # an exact destination is kept as its hash
        fields["to_hash"] = _hash(str(fields.pop("to")))
    return Scenario(id=id, kind=kind, created_at=T0 - timedelta(seconds=age_s), **fields)  # type: ignore[arg-type]


def _match(scenarios: list[Scenario], *, to: str, **fields: Any) -> Scenario | None:
    return match(scenarios, to=to, to_hash=_hash(to), **fields)


def test_exact_destination_beats_prefix_beats_country() -> None:
    scenarios = [
        _s("country", country="GB"),
        _s("short", prefix="+447"),
        _s("long", prefix="+44770090"),
        _s("exact", to="+447700900123"),
    ]

    def pick(to: str) -> str | None:
        found = _match(scenarios, to=to, country="GB", channel="sms")
        return found.id if found else None

    assert pick("+447700900123") == "exact"
    assert pick("+447700900999") == "long"
    assert pick("+447800000000") == "short"
    assert pick("+441632960000") == "country"
    assert _match(scenarios, to="+15555550100", country="US", channel="sms") is None


def test_a_channel_scenario_beats_any_channel_and_skips_others() -> None:
    scenarios = [_s("any", country="GB"), _s("voice", country="GB", channel="voice", age_s=60)]
    assert _match(scenarios, to="+447700900123", country="GB", channel="voice").id == "voice"  # type: ignore[union-attr]
    assert _match(scenarios, to="+447700900123", country="GB", channel="sms").id == "any"  # type: ignore[union-attr]


def test_newest_wins_a_tie_and_kinds_filter() -> None:
    scenarios = [
        _s("old", K.PROVIDER_DOWN, age_s=60, country="GB"),
        _s("new", K.DELAY, country="GB", delay_s=1),
        _s("block", K.FRAUD_BLOCK, country="GB"),
        _s("hook", K.WEBHOOK_FAILURE, status_code=503),
    ]
    assert _match(scenarios, to="+447700900123", country="GB", channel="sms").id == "new"  # type: ignore[union-attr]
    only_block = frozenset({K.FRAUD_BLOCK})
    found = _match(scenarios, to="+447700900123", country="GB", channel="sms", kinds=only_block)
    assert found is not None and found.id == "block"
    assert webhook_failure(scenarios).id == "hook"  # type: ignore[union-attr]
    assert webhook_failure(scenarios[:3]) is None


def test_emails_match_only_by_exact_address() -> None:
    scenarios = [_s("prefix", prefix="+1"), _s("mail", to="qa@example.com")]
    assert _match(scenarios, to="qa@example.com", country=None, channel="email").id == "mail"  # type: ignore[union-attr]
    assert _match(scenarios, to="other@example.com", country=None, channel="email") is None


def _errors(kind: ScenarioKind, **fields: object) -> list[str]:
    values: dict[str, object] = {
        "to": None,
        "country": None,
        "prefix": None,
        "error_code": None,
        "delay_s": None,
        "status_code": None,
        **fields,
    }
    return [name for name, _ in check(kind, **values)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "fields", "wrong"),
    [
        (K.PROVIDER_ERROR, {"to": "+447700900123", "error_code": "21211"}, []),
        (K.PROVIDER_ERROR, {"to": "+447700900123"}, ["error_code"]),
        (K.PROVIDER_ERROR, {"to": "+447700900123", "error_code": "21x"}, ["error_code"]),
        (K.NO_RECEIPT, {}, ["to"]),
        (K.NO_RECEIPT, {"country": "GB", "prefix": "+44"}, ["to"]),
        (K.NO_RECEIPT, {"country": "gbr"}, ["country"]),
        (K.NO_RECEIPT, {"prefix": "44"}, ["prefix"]),
        (K.DELAY, {"country": "GB"}, ["delay_s"]),
        (K.DELAY, {"country": "GB", "delay_s": 2}, []),
        (K.PROVIDER_DOWN, {"country": "GB", "delay_s": 2}, ["delay_s"]),
        (K.DELIVERED_THEN_FAILED, {"country": "GB", "error_code": "30007", "delay_s": 1}, []),
        (K.FRAUD_BLOCK, {"prefix": "+4477"}, []),
        (K.FRAUD_BLOCK, {"prefix": "+4477", "status_code": 500}, ["status_code"]),
        (K.WEBHOOK_FAILURE, {"status_code": 503}, []),
        (K.WEBHOOK_FAILURE, {"status_code": 200}, ["status_code"]),
        (K.WEBHOOK_FAILURE, {"status_code": 503, "country": "GB"}, ["country"]),
    ],
)
def test_check(kind: ScenarioKind, fields: dict[str, object], wrong: list[str]) -> None:
    assert _errors(kind, **fields) == wrong
