"""Sandbox scenarios: what test mode simulates for a destination, per application.

A scenario names what goes wrong (`ScenarioKind`) and where: an exact test destination
(`to`), a country (ISO 3166-1 alpha-2) or a number prefix, optionally one channel. The
webhook failure applies to every test-mode webhook delivery of its application and
takes no destination. `match` picks the scenario that applies to one delivery: the
exact destination first, then the longest prefix, then the country; at each level one
for the delivery's channel before one for any channel, then the newest. Pure: the store
keeps the rows, the worker's delivery activity and the API's create call `match`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ScenarioKind(StrEnum):
    PROVIDER_ERROR = "provider_error"  # the provider answers with `error_code`
    DELAY = "delay"  # delivered after `delay_s` seconds
    DELIVERED_THEN_FAILED = "delivered_then_failed"  # delivered, `delay_s` later a failed receipt
    NO_RECEIPT = "no_receipt"  # accepted, never delivered nor failed: the step timer decides
    FRAUD_BLOCK = "fraud_block"  # the create is refused as a risk block would refuse it
    PROVIDER_DOWN = "provider_down"  # every send fails transiently: retries, then the next step
    WEBHOOK_FAILURE = "webhook_failure"  # webhook deliveries answer `status_code`


# The kinds the delivery activity simulates (the others act at create or on webhooks).
DELIVERY_KINDS = frozenset(
    {
        ScenarioKind.PROVIDER_ERROR,
        ScenarioKind.DELAY,
        ScenarioKind.DELIVERED_THEN_FAILED,
        ScenarioKind.NO_RECEIPT,
        ScenarioKind.PROVIDER_DOWN,
    }
)
MAX_DELAY_S = 300
DEFAULT_RECEIPT_ERROR = "30003"  # Twilio's "unreachable destination"
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_PREFIX_RE = re.compile(r"^\+[1-9][0-9]{0,13}$")
_ERROR_CODE_RE = re.compile(r"^[0-9]{3,6}$")


@dataclass(frozen=True)
class Scenario:
    """One scenario as the worker and the API use it (no store types)."""

    id: str
    kind: ScenarioKind
    to_hash: str | None = None  # an exact destination, by its keyed hash
    country: str | None = None
    prefix: str | None = None
    channel: str | None = None
    error_code: str | None = None
    delay_s: int | None = None
    status_code: int | None = None
    created_at: datetime | None = None


def check(
    kind: ScenarioKind,
    *,
    to: str | None,
    country: str | None,
    prefix: str | None,
    error_code: str | None,
    delay_s: int | None,
    status_code: int | None,
) -> list[tuple[str, str]]:
    """What is wrong with a scenario, as (field, message) pairs; empty when it is valid.
    `to` is already normalised (E.164 or an email address)."""
    errors: list[tuple[str, str]] = []
    targets = [
        name for name, value in (("to", to), ("country", country), ("prefix", prefix)) if value
    ]
    if kind is ScenarioKind.WEBHOOK_FAILURE:
        if targets:
            errors.append((targets[0], "a webhook failure applies to the whole application"))
        if status_code is None or not (400 <= status_code <= 599):
            errors.append(("status_code", "a webhook failure needs a status_code from 400 to 599"))
    else:
        if len(targets) != 1:
            errors.append(("to", "give exactly one of to, country or prefix"))
        if status_code is not None:
            errors.append(("status_code", "only a webhook failure takes a status_code"))
    if country is not None and not _COUNTRY_RE.match(country):
        errors.append(("country", "a country is two letters (ISO 3166-1 alpha-2), e.g. GB"))
    if prefix is not None and not _PREFIX_RE.match(prefix):
        errors.append(("prefix", "a prefix is + and 1 to 14 digits, e.g. +4477"))
    if kind is ScenarioKind.PROVIDER_ERROR:
        if error_code is None or not _ERROR_CODE_RE.match(error_code):
            errors.append(("error_code", "a provider error needs an error_code of 3 to 6 digits"))
    elif error_code is not None and kind is not ScenarioKind.DELIVERED_THEN_FAILED:
        errors.append(("error_code", f"a {kind.value} scenario takes no error_code"))
    elif error_code is not None and not _ERROR_CODE_RE.match(error_code):
        errors.append(("error_code", "an error_code is 3 to 6 digits"))
    if kind is ScenarioKind.DELAY and delay_s is None:
        errors.append(("delay_s", "a delay needs delay_s"))
    if delay_s is not None:
        if kind not in (ScenarioKind.DELAY, ScenarioKind.DELIVERED_THEN_FAILED):
            errors.append(("delay_s", f"a {kind.value} scenario takes no delay_s"))
        elif not (0 <= delay_s <= MAX_DELAY_S):
            errors.append(("delay_s", f"delay_s is 0 to {MAX_DELAY_S}"))
    return errors


def _rank(
    scenario: Scenario, to: str, to_hash: str, country: str | None, channel: str
) -> tuple[int, ...] | None:
    """How closely `scenario` fits (higher first), or None when it does not apply."""
    if scenario.channel is not None and scenario.channel != channel:
        return None
    on_channel = int(scenario.channel is not None)
    if scenario.to_hash is not None:
        return (3, 0, on_channel) if scenario.to_hash == to_hash else None
    if scenario.prefix is not None:
        if to.startswith("+") and to.startswith(scenario.prefix):
            return (2, len(scenario.prefix), on_channel)
        return None
    if scenario.country is not None:
        return (1, 0, on_channel) if country is not None and scenario.country == country else None
    return None


def match(
    scenarios: Iterable[Scenario],
    *,
    to: str,
    to_hash: str,
    country: str | None,
    channel: str,
    kinds: frozenset[ScenarioKind] = DELIVERY_KINDS,
) -> Scenario | None:
    """The scenario of one of `kinds` that applies to a send to `to` (keyed hash `to_hash`,
    in `country`) on `channel`, or None (then the sandbox's magic numbers and inbox apply as usual)."""
    best: tuple[tuple[int, ...], float, Scenario] | None = None
    for scenario in scenarios:
        if scenario.kind not in kinds:
            continue
        rank = _rank(scenario, to, to_hash, country, channel)
        if rank is None:
            continue
        newest = scenario.created_at.timestamp() if scenario.created_at else 0.0
        if best is None or (rank, newest) > (best[0], best[1]):
            best = (rank, newest, scenario)
    return best[2] if best else None


def webhook_failure(scenarios: Iterable[Scenario]) -> Scenario | None:
    """The newest webhook failure scenario, or None."""
    found = [s for s in scenarios if s.kind is ScenarioKind.WEBHOOK_FAILURE]
    return max(found, key=lambda s: s.created_at.timestamp() if s.created_at else 0.0, default=None)
