"""Webhook secret rotation: both secrets sign during the grace period, only the new after.

Verified three ways that must agree: the official `standardwebhooks` package, the
spec-derived checker in `tests/helpers/webhook_receiver.py` (independent of otp code) and
`otp.webhooks.signing.verify`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import standardwebhooks
from sqlmodel import select

from otp.store import Store, WebhookEndpoint
from otp.store.webhooks import purge_expired_webhook_secrets
from otp.webhooks.signing import WebhookVerificationError, verify
from tests.api.test_webhook_endpoints import BASE, _create, _wait_for_status
from tests.helpers.api import Keys
from tests.helpers.webhook_receiver import Received, Receiver, Reply, serve, spec_verify


def verifies(secret: str, request: Received) -> bool:
    """Both checkers agree on whether `secret` signed the request."""
    spec = spec_verify(secret, request.headers, request.body)
    try:
        verify(secret, request.headers, request.body)
        ours = True
    except WebhookVerificationError:
        ours = False
    try:
        standardwebhooks.Webhook(secret).verify(request.body, dict(request.headers))
        official = True
    except standardwebhooks.WebhookVerificationError:
        official = False
    assert spec == ours == official
    return spec


async def _row(store: Store, endpoint_id: str) -> WebhookEndpoint:
    async with store.session() as session:
        row = (
            await session.exec(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
        ).one()
        return row


async def _deliver_test_event(
    http: httpx.AsyncClient, keys: Keys, receiver: Receiver, endpoint_id: str, count: int
) -> Received:
    sent = await http.post(f"{BASE}/{endpoint_id}/test", headers=keys.test_headers)
    assert sent.status_code == 202, sent.text
    requests = await receiver.wait_for(count)
    await _wait_for_status(http, keys, endpoint_id, "succeeded")
    return requests[count - 1]


async def _rotate(
    http: httpx.AsyncClient, keys: Keys, endpoint_id: str, body: Any = None
) -> httpx.Response:
    return await http.post(
        f"{BASE}/{endpoint_id}/secret/rotate", json=body, headers=keys.test_headers
    )


@pytest.mark.usefixtures("worker")
async def test_old_and_new_secret_verify_during_the_grace_period_then_only_the_new(
    http: httpx.AsyncClient, keys: Keys, store: Store
) -> None:
    receiver = Receiver([Reply(200)])
    async with serve(receiver):
        created = await _create(http, keys.test_headers, url=receiver.url)
        endpoint_id, old = created["id"], created["secret"]

        before = datetime.now(UTC)
        rotated = await _rotate(http, keys, endpoint_id)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new.startswith("whsec_") and new != old
        expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
        assert before + timedelta(hours=24) <= expires <= datetime.now(UTC) + timedelta(hours=24)
        shown = await http.get(f"{BASE}/{endpoint_id}/secret", headers=keys.test_headers)
        assert shown.json() == {"secret": new}

        during = await _deliver_test_event(http, keys, receiver, endpoint_id, 1)
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        assert verifies(new, during) and verifies(old, during)
        assert during.headers["webhook-signature"].startswith("v1,")

        # The grace period ends (moved into the past in the real store).
        async with store.session() as session:
            row = await session.get(WebhookEndpoint, endpoint_id)
            assert row is not None and row.previous_secret_sealed is not None
            row.previous_secret_expires_at = datetime.now(UTC) - timedelta(seconds=1)
            session.add(row)
            await session.commit()

        after = await _deliver_test_event(http, keys, receiver, endpoint_id, 2)
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        assert verifies(new, after) and not verifies(old, after)

    assert await purge_expired_webhook_secrets(store) == 1
    row = await _row(store, endpoint_id)
    assert row.previous_secret_sealed is None and row.previous_secret_expires_at is None
    assert await purge_expired_webhook_secrets(store) == 0


@pytest.mark.usefixtures("worker")
async def test_rotating_twice_keeps_only_the_immediately_previous_secret(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    receiver = Receiver([Reply(200)])
    async with serve(receiver):
        created = await _create(http, keys.test_headers, url=receiver.url)
        endpoint_id, first = created["id"], created["secret"]
        second = (await _rotate(http, keys, endpoint_id)).json()["secret"]
        third = (await _rotate(http, keys, endpoint_id, {"grace_period_s": 3600})).json()["secret"]
        request = await _deliver_test_event(http, keys, receiver, endpoint_id, 1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verifies(third, request) and verifies(second, request)
    assert not verifies(first, request)


@pytest.mark.usefixtures("worker")
async def test_a_zero_grace_period_drops_the_old_secret_at_once(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    receiver = Receiver([Reply(200)])
    async with serve(receiver):
        created = await _create(http, keys.test_headers, url=receiver.url)
        endpoint_id, old = created["id"], created["secret"]
        rotated = await _rotate(http, keys, endpoint_id, {"grace_period_s": 0})
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["previous_secret_expires_at"] is None
        request = await _deliver_test_event(http, keys, receiver, endpoint_id, 1)
    assert verifies(rotated.json()["secret"], request) and not verifies(old, request)


async def test_unknown_endpoints_and_bad_grace_periods_are_problems_that_change_nothing(
    http: httpx.AsyncClient, keys: Keys, store: Store
) -> None:
    created = await _create(http, keys.test_headers, url="http://127.0.0.1:9/hooks")
    endpoint_id, secret = created["id"], created["secret"]

    missing = await _rotate(http, keys, "ep_" + "a" * 26)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["type"].endswith("webhook-endpoint-not-found")
    # Another mode's key does not see the endpoint either.
    other = await http.post(f"{BASE}/{endpoint_id}/secret/rotate", headers=keys.live_headers)
    assert other.status_code == 404

    for body in (
        {"grace_period_s": -1},
        {"grace_period_s": 7 * 86_400 + 1},
        {"grace_period_s": "soon"},
        {"grace": 60},
    ):
        bad = await _rotate(http, keys, endpoint_id, body)
        assert bad.status_code == 422, (body, bad.text)
        assert bad.headers["content-type"].startswith("application/problem+json")
    bad_id = await _rotate(http, keys, "not-an-endpoint")
    assert bad_id.status_code == 422

    shown = await http.get(f"{BASE}/{endpoint_id}/secret", headers=keys.test_headers)
    assert shown.json() == {"secret": secret}
    row = await _row(store, endpoint_id)
    assert row.previous_secret_sealed is None and row.previous_secret_expires_at is None

    unauthenticated = await http.post(f"{BASE}/{endpoint_id}/secret/rotate")
    assert unauthenticated.status_code == 401
