"""Idempotency-Key on create and check, over HTTP against the real dev server and worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from api.auth import Principal
from api.idempotency import check_update_id, fingerprint
from api.main import create_app
from api.schemas.verifications import CheckRequest, VerificationCreate
from api.services.verification_workflows import Timeouts, VerificationService
from otp.domain import Mode
from otp.security.codes import code_digest
from otp.settings import Secrets, Settings
from otp.store import IdempotencyRecord, Store, utcnow
from otp.store import idempotency as records
from tests.conftest import real_worker
from tests.helpers.api import Keys, read_code, read_messages, wrong_code

CREATE = "/v1/verifications"
PRINCIPAL = Principal(application_id="default", mode=Mode.TEST)


@asynccontextmanager
async def _client(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    store: Store,
    timeouts: Timeouts | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=dev_env.client, store=store, timeouts=timeouts)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as client:
        yield client


def _key() -> str:
    return f"key-{uuid.uuid4().hex}"


def _with_key(keys: Keys, key: str) -> dict[str, str]:
    return {**keys.test_headers, "Idempotency-Key": key}


def _check_url(vid: str) -> str:
    return f"{CREATE}/{vid}/check"


async def _keys_in_store(store: Store) -> list[IdempotencyRecord]:
    async with store.session() as session:
        return list((await session.exec(select(IdempotencyRecord))).all())


async def _attempts_used(http: httpx.AsyncClient, keys: Keys, vid: str) -> int:
    response = await http.get(f"{CREATE}/{vid}", headers=keys.test_headers)
    assert response.status_code == 200, response.text
    used: int = response.json()["attempts_used"]
    return used


async def _runs_of(dev_env: WorkflowEnvironment, workflow_id: str) -> int:
    """Executions with this id, once visibility has caught up (it lags a little)."""
    query = f"WorkflowId = '{workflow_id}'"
    for _ in range(50):
        runs = [w async for w in dev_env.client.list_workflows(query)]
        if runs:
            return len(runs)
        await asyncio.sleep(0.1)
    return 0


@pytest.mark.usefixtures("worker")
async def test_parallel_creates_with_one_key_start_one_verification(
    http: httpx.AsyncClient, keys: Keys, dev_env: WorkflowEnvironment
) -> None:
    key = _key()
    body = {"to": "+14155550123", "client_ref": key[:20]}
    responses = await asyncio.gather(
        *(http.post(CREATE, json=body, headers=_with_key(keys, key)) for _ in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    created = [r for r in responses if r.status_code == 201]
    fresh = [r for r in created if "idempotent-replayed" not in r.headers]
    assert len(fresh) == 1
    for r in created:
        assert r.content == fresh[0].content
    for r in responses:
        if r.status_code == 409:
            assert r.headers["retry-after"] == "1"
            assert r.json()["type"] == "urn:otp:problem:idempotency-key-in-flight"

    vid = fresh[0].json()["id"]
    await read_messages(http, keys, vid, count=1)
    await asyncio.sleep(0.5)
    await read_messages(http, keys, vid, count=1)  # still one: nothing else was sent
    assert await _runs_of(dev_env, vid) == 1

    # Once it is done, the same key answers the first response again, byte for byte.
    again = await http.post(CREATE, json=body, headers=_with_key(keys, key))
    assert again.status_code == 201
    assert again.content == fresh[0].content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == fresh[0].headers["location"] == f"{CREATE}/{vid}"


@pytest.mark.usefixtures("worker")
async def test_same_key_other_body_is_422_and_key_order_does_not_matter(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    key = _key()
    first = await http.post(
        CREATE,
        content=b'{"to": "+14155550123", "client_ref": "a"}',
        headers={**_with_key(keys, key), "Content-Type": "application/json"},
    )
    assert first.status_code == 201, first.text
    # Same body, other key order and spacing: a replay.
    same = await http.post(
        CREATE,
        content=b'{"client_ref":"a","to":"+14155550123"}',
        headers={**_with_key(keys, key), "Content-Type": "application/json"},
    )
    assert same.status_code == 201
    assert same.headers["idempotent-replayed"] == "true"
    assert same.content == first.content

    other = await http.post(
        CREATE, json={"to": "+14155550123", "client_ref": "b"}, headers=_with_key(keys, key)
    )
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "urn:otp:problem:idempotency-key-reused"

    # The same key under the live key, or on another route, is another key.
    live = await http.post(
        CREATE,
        json={"to": "jane@example.com"},
        headers={**keys.live_headers, "Idempotency-Key": key},
    )
    assert live.status_code == 201, live.text
    check = await http.post(
        _check_url(first.json()["id"]), json={"code": "000000"}, headers=_with_key(keys, key)
    )
    assert check.status_code == 200, check.text
    assert "idempotent-replayed" not in check.headers


async def test_invalid_key_is_422_on_create_and_check(http: httpx.AsyncClient, keys: Keys) -> None:
    for url, body in (
        (CREATE, {"to": "+14155550123"}),
        (_check_url("ver_" + "q" * 26), {"code": "1234"}),
    ):
        for bad in (b"", b"x" * 256, b"two words", "caf\u00e9".encode()):
            headers = {k.encode(): v.encode() for k, v in keys.test_headers.items()}
            headers[b"Idempotency-Key"] = bad
            response = await http.post(url, json=body, headers=headers)
            assert response.status_code == 422, (url, bad, response.text)
            assert response.json()["errors"][0]["parameter"] == "Idempotency-Key"


async def test_a_key_in_flight_is_409_with_retry_after(
    http: httpx.AsyncClient, keys: Keys, store: Store, secrets: Secrets
) -> None:
    key = _key()
    body = {"to": "+14155550123"}
    begun = await records.begin(
        store,
        secrets=secrets,
        ref=records.KeyRef("default", "test", "POST /v1/verifications", key),
        fingerprint=fingerprint(secrets, VerificationCreate.model_validate(body)),
        lock=timedelta(seconds=30),
        ttl=timedelta(hours=1),
    )
    assert begun.outcome is records.Outcome.CLAIMED
    response = await http.post(CREATE, json=body, headers=_with_key(keys, key))
    assert response.status_code == 409
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    assert problem["type"] == "urn:otp:problem:idempotency-key-in-flight"
    assert problem["retry_after"] == 1


async def test_client_errors_are_kept_and_replayed(
    http: httpx.AsyncClient, keys: Keys, store: Store
) -> None:
    key = _key()
    body = {"to": "+1 not a number"}
    first = await http.post(CREATE, json=body, headers=_with_key(keys, key))
    assert first.status_code == 422, first.text
    again = await http.post(CREATE, json=body, headers=_with_key(keys, key))
    assert again.status_code == 422
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == "application/problem+json"
    assert again.content == first.content

    # Kept sealed: the stored response does not show the destination.
    rows = [r for r in await _keys_in_store(store) if r.key == key]
    assert len(rows) == 1 and rows[0].state == "completed" and rows[0].status_code == 422
    assert rows[0].response and "not a number" not in rows[0].response


@pytest.mark.usefixtures("worker")
async def test_check_retried_with_its_key_counts_once(http: httpx.AsyncClient, keys: Keys) -> None:
    created = await http.post(CREATE, json={"to": "+14155550123"}, headers=keys.test_headers)
    vid = created.json()["id"]
    max_attempts = created.json()["max_attempts"]
    wrong = wrong_code(await read_code(http, keys, vid))

    key = _key()
    first = await http.post(_check_url(vid), json={"code": wrong}, headers=_with_key(keys, key))
    assert first.status_code == 200, first.text
    assert first.json()["attempts_remaining"] == max_attempts - 1
    for _ in range(2):
        again = await http.post(_check_url(vid), json={"code": wrong}, headers=_with_key(keys, key))
        assert again.status_code == 200
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
    assert await _attempts_used(http, keys, vid) == 1

    # The same key on another verification is independent.
    other = await http.post(CREATE, json={"to": "+14155550199"}, headers=keys.test_headers)
    other_vid = other.json()["id"]
    on_other = await http.post(
        _check_url(other_vid), json={"code": wrong}, headers=_with_key(keys, key)
    )
    assert on_other.status_code == 200
    assert "idempotent-replayed" not in on_other.headers
    assert on_other.json()["id"] == other_vid

    # Another key is another attempt.
    second = await http.post(_check_url(vid), json={"code": wrong}, headers=_with_key(keys, _key()))
    assert second.json()["attempts_remaining"] == max_attempts - 2


@pytest.mark.usefixtures("worker")
async def test_check_whose_first_answer_was_lost_counts_once(
    http: httpx.AsyncClient,
    keys: Keys,
    dev_env: WorkflowEnvironment,
    api_settings: Settings,
    secrets: Secrets,
) -> None:
    created = await http.post(CREATE, json={"to": "+14155550123"}, headers=keys.test_headers)
    vid = created.json()["id"]
    max_attempts = created.json()["max_attempts"]
    wrong = wrong_code(await read_code(http, keys, vid))
    key = _key()

    # The first request reached the workflow, but its answer never reached the client
    # (nothing stored under the key): the same update id sent straight to Temporal.
    service = VerificationService(
        dev_env.client, task_queue=api_settings.task_queue, timeouts=Timeouts()
    )
    body = CheckRequest(code=wrong)
    lost = await service.check(
        vid,
        PRINCIPAL,
        digest=code_digest(secrets.code_secret, vid, body.code),
        update_id=check_update_id(secrets, PRINCIPAL, vid, key, body),
    )
    assert lost.attempts_remaining == max_attempts - 1

    retry = await http.post(_check_url(vid), json={"code": wrong}, headers=_with_key(keys, key))
    assert retry.status_code == 200, retry.text
    assert "idempotent-replayed" not in retry.headers  # not stored: Temporal deduplicated it
    assert retry.json()["attempts_remaining"] == max_attempts - 1
    assert await _attempts_used(http, keys, vid) == 1


async def test_check_that_timed_out_is_released_and_its_retry_counts_once(
    keys: Keys,
    dev_env: WorkflowEnvironment,
    api_settings: Settings,
    store: Store,
) -> None:
    """No worker at first: the check times out (503) but stays queued in Temporal, and is
    applied once a worker comes. The retry with the same key joins it: one attempt."""
    impatient = Timeouts(update=timedelta(seconds=0.5))
    async with _client(dev_env, api_settings, store, impatient) as http:
        created = await http.post(CREATE, json={"to": "+14155550123"}, headers=keys.test_headers)
        assert created.status_code == 201, created.text
        vid = created.json()["id"]
        max_attempts = created.json()["max_attempts"]
        key = _key()
        body = {"code": "00000000"}
        timed_out = await http.post(_check_url(vid), json=body, headers=_with_key(keys, key))
        assert timed_out.status_code == 503, timed_out.text
        # A 5xx keeps nothing: the key is free for the retry.
        assert [r for r in await _keys_in_store(store) if r.key == key] == []

    async with (
        real_worker(dev_env.client, api_settings, store),
        _client(dev_env, api_settings, store) as http,
    ):
        retry = await http.post(_check_url(vid), json=body, headers=_with_key(keys, key))
        assert retry.status_code == 200, retry.text
        assert retry.json()["attempts_remaining"] == max_attempts - 1
        assert await _attempts_used(http, keys, vid) == 1


@pytest.mark.usefixtures("worker")
async def test_an_expired_key_can_be_used_again(
    keys: Keys, dev_env: WorkflowEnvironment, api_settings: Settings, store: Store
) -> None:
    settings = api_settings.model_copy(update={"idempotency_ttl_s": 0.5})
    async with _client(dev_env, settings, store) as http:
        created = await http.post(CREATE, json={"to": "+14155550123"}, headers=keys.test_headers)
        vid = created.json()["id"]
        max_attempts = created.json()["max_attempts"]
        wrong = wrong_code(await read_code(http, keys, vid))
        key = _key()
        first = await http.post(_check_url(vid), json={"code": wrong}, headers=_with_key(keys, key))
        assert first.json()["attempts_remaining"] == max_attempts - 1
        other = {"code": wrong_code(wrong)}
        reused = await http.post(_check_url(vid), json=other, headers=_with_key(keys, key))
        assert reused.status_code == 422  # still kept

        await asyncio.sleep(0.7)
        reused = await http.post(_check_url(vid), json=other, headers=_with_key(keys, key))
        assert reused.status_code == 200, reused.text
        assert "idempotent-replayed" not in reused.headers
        assert reused.json()["attempts_remaining"] == max_attempts - 2

        # Expired keys are purged (at most once an hour per process, after a response).
        assert await records.purge_expired(store) >= 0
        await asyncio.sleep(0.7)
        assert await records.purge_expired(store) >= 1
        assert [r for r in await _keys_in_store(store) if r.key == key] == []


async def test_requests_without_a_key_store_nothing(
    http: httpx.AsyncClient, keys: Keys, store: Store
) -> None:
    response = await http.post(CREATE, json={"to": "+1 nope"}, headers=keys.test_headers)
    assert response.status_code == 422
    assert "idempotent-replayed" not in response.headers
    assert await _keys_in_store(store) == []


async def test_the_api_purges_expired_keys_after_a_keyed_response(
    keys: Keys, dev_env: WorkflowEnvironment, api_settings: Settings, store: Store, secrets: Secrets
) -> None:
    old = records.KeyRef("default", "test", "POST /v1/verifications", _key())
    await records.begin(
        store,
        secrets=secrets,
        ref=old,
        fingerprint="f",
        lock=timedelta(seconds=30),
        ttl=timedelta(hours=24),
        now=utcnow() - timedelta(days=2),
    )
    async with _client(dev_env, api_settings, store) as http:
        # Without a key nothing is stored or purged.
        await http.post(CREATE, json={"to": "+1 nope"}, headers=keys.test_headers)
        assert [r.key for r in await _keys_in_store(store)] == [old.key]
        # The first keyed response of the process purges in the background, then not
        # again within the hour.
        await http.post(CREATE, json={"to": "+1 nope"}, headers=_with_key(keys, _key()))
        assert old.key not in [r.key for r in await _keys_in_store(store)]
        await records.begin(
            store,
            secrets=secrets,
            ref=old,
            fingerprint="f",
            lock=timedelta(seconds=30),
            ttl=timedelta(hours=24),
            now=utcnow() - timedelta(days=2),
        )
        await http.post(CREATE, json={"to": "+1 nope"}, headers=_with_key(keys, _key()))
        assert old.key in [r.key for r in await _keys_in_store(store)]
