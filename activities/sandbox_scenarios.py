"""Sandbox scenarios in the worker: which one applies to a test-mode delivery or webhook.

Each application's scenarios are read from the store at most once per `CACHE_TTL_S`
seconds per worker process (a change shows within that bound); the delivery activity
hands the matched one to the sandbox provider, the webhook activity answers a failure
without contacting the endpoint. Live mode never reads them.
"""

from __future__ import annotations

import logging

from cachetools import TTLCache

from otp.domain import DeliverInput, Mode
from otp.domain.destinations import InvalidDestinationError, parse_phone
from otp.sandbox.scenarios import Scenario, match, webhook_failure
from otp.store import Store
from otp.store import sandbox_scenarios as db
from otp.store.events import destination_hash
from otp.webhooks.models import DeliverWebhookInput, DeliverWebhookResult, DeliveryOutcome
from providers.base import Provider
from providers.sandbox import SandboxProvider

logger = logging.getLogger("otp.activities")

CACHE_TTL_S = 5.0


def _country(input: DeliverInput) -> str | None:
    """The destination's own country (a plan's steps may be in different countries)."""
    if not input.channel.is_phone:
        return None
    try:
        return parse_phone(input.to).country
    except InvalidDestinationError:
        return input.country


class ScenarioLookup:
    """The scenarios of each application, cached for a few seconds."""

    def __init__(self, store: Store, secret: bytes, *, ttl_s: float = CACHE_TTL_S) -> None:
        self._store = store
        self._secret = secret  # destinations are matched by their keyed hash
        self._cache: TTLCache[str, tuple[Scenario, ...]] = TTLCache(maxsize=4096, ttl=ttl_s)

    async def of(self, application_id: str) -> tuple[Scenario, ...]:
        found = self._cache.get(application_id)
        if found is None:
            rows = await db.list_scenarios(self._store, application_id=application_id)
            found = self._cache[application_id] = tuple(db.as_scenario(r) for r in rows)
        return found

    async def sandbox_for(self, input: DeliverInput, sandbox: Provider) -> Provider:
        """The sandbox for this test-mode delivery: simulating the scenario that matches
        it, if any (a store failure: the plain sandbox, magic numbers included)."""
        if input.mode is not Mode.TEST or not isinstance(sandbox, SandboxProvider):
            return sandbox
        try:
            scenarios = await self.of(input.application_id)
        except Exception:
            logger.warning("sandbox scenarios unreadable; none applied", exc_info=True)
            return sandbox
        if not scenarios:
            return sandbox
        found = match(
            scenarios,
            to=input.to,
            to_hash=destination_hash(self._secret, input.to),
            country=_country(input),
            channel=input.channel.value,
        )
        if found is not None:
            logger.info(
                "sandbox scenario applied", extra={"scenario": found.id, "kind": found.kind.value}
            )
        return sandbox.with_scenario(found)

    async def webhook_result(self, input: DeliverWebhookInput) -> DeliverWebhookResult | None:
        """A test-mode webhook attempt's simulated failure, or None (post it for real)."""
        if input.mode is not Mode.TEST:
            return None
        found = webhook_failure(await self.of(input.application_id))
        if found is None or found.status_code is None:
            return None
        code = found.status_code
        outcome = DeliveryOutcome.GONE if code == 410 else DeliveryOutcome.RETRY
        return DeliverWebhookResult(
            outcome=outcome, status_code=code, error=f"HTTP {code} (sandbox scenario)"
        )
