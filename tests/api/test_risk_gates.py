"""The API's risk gates against the real stack (dev server, worker, store limiter).

Refused creates never start a workflow (so never reach a provider); limits are exact
under concurrency; the failed-check cap spans verifications and resets on success; a
known destination cannot be told from a fresh one while no limit refuses.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
from typing import Any

import httpx
import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from pydantic import SecretStr
from sqlmodel import func, select
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services.verification_workflows import Timeouts
from otp.domain import Mode
from otp.risk.policy import Rate, RiskSettings
from otp.settings import Settings
from otp.store import Store, VerificationRecord
from otp.store.applications import create_api_key, create_application
from tests.helpers.api import Keys, code_in, read_messages, wrong_code

CREATE = "/v1/verifications"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def example(region: str, number_type: int) -> str:
    number = phonenumbers.example_number_for_type(region, number_type)
    assert number is not None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


async def app_key(store: Store, risk: RiskSettings) -> str:
    """A test key of a new application with these risk settings."""
    application = await create_application(store, name="Risky", risk=risk)
    return (await create_api_key(store, application_id=application.id, mode=Mode.TEST)).key


async def sandbox_count(http: httpx.AsyncClient, headers: dict[str, str], to: str) -> int:
    response = await http.get(
        "/v1/sandbox/messages", params={"to": to, "limit": 100}, headers=headers
    )
    assert response.status_code == 200, response.text
    return len(response.json()["messages"])


async def record_count(store: Store) -> int:
    async with store.session() as session:
        return int((await session.exec(select(func.count()).select_from(VerificationRecord))).one())


async def check(
    http: httpx.AsyncClient, headers: dict[str, str], verification_id: str, code: str
) -> httpx.Response:
    return await http.post(
        f"{CREATE}/{verification_id}/check", json={"code": code}, headers=headers
    )


# ----------------------------------------------------------------------- limits
async def test_concurrent_creates_admit_exactly_the_destination_limit(
    http: httpx.AsyncClient, keys: Keys, worker: None
) -> None:
    to = "+14155550142"
    responses = await asyncio.gather(
        *(http.post(CREATE, json={"to": to}, headers=keys.test_headers) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 5 + [429], [r.text for r in responses]

    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "urn:otp:problem:rate-limited"
    assert problem["limit"] == "destination"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 600 and problem["retry_after"] == retry_after
    assert refused.headers["RateLimit-Policy"] == '"destination";q=5;w=600'
    assert refused.headers["RateLimit"] == f'"destination";r=0;t={retry_after}'
    assert to not in refused.text and to[1:] not in refused.text

    created = [r for r in responses if r.status_code == 201]
    assert all(r.headers["RateLimit-Policy"] == '"destination";q=5;w=600' for r in created)
    remaining = sorted(int(r.headers["RateLimit"].split("r=")[1].split(";")[0]) for r in created)
    assert remaining == [0, 1, 2, 3, 4]

    # Exactly five messages reach the (sandbox) provider, never a sixth.
    for response in created:
        await read_messages(http, keys, response.json()["id"])
    await asyncio.sleep(0.5)
    assert await sandbox_count(http, keys.test_headers, to) == 5

    # Another destination of the same application is not affected.
    other = await http.post(CREATE, json={"to": "+14155550143"}, headers=keys.test_headers)
    assert other.status_code == 201, other.text


async def test_user_id_limit_and_it_is_never_echoed(
    http: httpx.AsyncClient, store: Store, worker: None
) -> None:
    key = await app_key(store, RiskSettings(per_user=Rate(limit=2, window_s=3600)))
    user = "end-user-7f3a"
    answers = [
        await http.post(
            CREATE, json={"to": f"+1415555016{n}", "user_id": user}, headers=bearer(key)
        )
        for n in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].json()["limit"] == "user"
    assert all(user not in a.text for a in answers)
    too_long = await http.post(
        CREATE, json={"to": "+14155550169", "user_id": "u" * 129}, headers=bearer(key)
    )
    assert too_long.status_code == 422


async def test_user_ip_limit_counts_the_end_users_address_not_the_caller(
    http: httpx.AsyncClient, store: Store, worker: None
) -> None:
    key = await app_key(store, RiskSettings(per_ip=Rate(limit=2, window_s=3600)))
    ip = "203.0.113.7"
    answers = [
        await http.post(CREATE, json={"to": f"+1415555017{n}", "user_ip": ip}, headers=bearer(key))
        for n in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].json()["limit"] == "ip" and ip not in answers[2].text
    # Another end user behind the same backend (same connection address) is not affected,
    # nor is a request that names no end-user address.
    other = await http.post(
        CREATE, json={"to": "+14155550174", "user_ip": "2001:db8::7"}, headers=bearer(key)
    )
    assert other.status_code == 201, other.text
    unnamed = await http.post(CREATE, json={"to": "+14155550175"}, headers=bearer(key))
    assert unnamed.status_code == 201, unnamed.text
    bad = await http.post(
        CREATE, json={"to": "+14155550176", "user_ip": "not-an-ip"}, headers=bearer(key)
    )
    assert bad.status_code == 422


# ----------------------------------------------------------------------- policy
@pytest.mark.parametrize(
    ("risk", "to", "reason"),
    [
        (RiskSettings(), example("GB", PhoneNumberType.PREMIUM_RATE), "number_type_blocked"),
        (RiskSettings(), example("DE", PhoneNumberType.SHARED_COST), "number_type_blocked"),
        (
            RiskSettings(allowed_countries={"*": ["US", "CA"]}),
            example("GB", PhoneNumberType.MOBILE),
            "country_not_allowed",
        ),
        (
            RiskSettings(allowed_countries={"voice": ["GB"]}, deny_by_default=True),
            "+14155550150",
            "country_not_allowed",
        ),
        (RiskSettings(blocked_prefixes=["+1415555"]), "+14155550151", "prefix_blocked"),
    ],
)
async def test_policy_refusals_start_no_workflow(
    http: httpx.AsyncClient, store: Store, worker: None, risk: RiskSettings, to: str, reason: str
) -> None:
    key = await app_key(store, risk)
    before = await record_count(store)
    response = await http.post(CREATE, json={"to": to}, headers=bearer(key))
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["type"] == "urn:otp:problem:risk-policy"
    assert problem["reason"] == reason
    assert problem["step_index"] == 0
    assert to not in response.text and to[1:] not in response.text
    await asyncio.sleep(0.3)
    assert await record_count(store) == before  # no verification started
    assert await sandbox_count(http, bearer(key), to) == 0


async def test_risk_settings_through_the_admin_api(
    api_settings: Settings, dev_env: WorkflowEnvironment, store: Store, worker: None
) -> None:
    token = "admin-token-for-the-risk-tests-0123456789"
    admin = {"Authorization": f"Bearer {token}"}
    settings = api_settings.model_copy(update={"admin_token": SecretStr(token)})
    app = create_app(settings, client=dev_env.client, store=store, timeouts=Timeouts())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as http:
        created = await http.post(
            "/v1/admin/applications",
            json={"name": "Shop", "risk": {"per_ip": None, "allowed_countries": {"sms": ["us"]}}},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        risk = created.json()["risk"]
        assert risk["per_ip"] is None and risk["allowed_countries"] == {"sms": ["US"]}
        assert risk["per_destination"] == {"limit": 5, "window_s": 600}
        application_id = created.json()["id"]
        bad = await http.patch(
            f"/v1/admin/applications/{application_id}",
            json={"risk": {"blocked_number_types": ["EXPENSIVE"]}},
            headers=admin,
        )
        assert bad.status_code == 422
        key = (
            await http.post(
                f"/v1/admin/applications/{application_id}/keys",
                json={"mode": "test"},
                headers=admin,
            )
        ).json()["key"]
        gb = example("GB", PhoneNumberType.MOBILE)
        refused = await http.post(CREATE, json={"to": gb}, headers=bearer(key))
        assert refused.status_code == 403 and refused.json()["reason"] == "country_not_allowed"
        patched = await http.patch(
            f"/v1/admin/applications/{application_id}", json={"risk": {}}, headers=admin
        )
        assert patched.status_code == 200
        assert patched.json()["risk"]["allowed_countries"] == {}
        allowed = await http.post(CREATE, json={"to": gb}, headers=bearer(key))
        assert allowed.status_code == 201, allowed.text


# ----------------------------------------------------------------------- failed checks
async def test_failed_checks_span_verifications_reset_on_success_and_cap(
    http: httpx.AsyncClient, store: Store, worker: None
) -> None:
    key = await app_key(
        store, RiskSettings(max_failed_checks=4, per_destination=Rate(limit=100, window_s=600))
    )
    headers = bearer(key)
    to = "+14155550177"

    async def start() -> tuple[str, str]:
        response = await http.post(CREATE, json={"to": to}, headers=headers)
        assert response.status_code == 201, response.text
        verification_id = response.json()["id"]
        messages = await read_messages(http, Keys(key, key, key), verification_id)
        return verification_id, code_in(messages[0])

    first, code = await start()
    for _ in range(3):
        answer = await check(http, headers, first, wrong_code(code))
        assert answer.status_code == 200 and answer.json()["valid"] is False
    second, code = await start()  # the count (3) carries over to a new verification
    approved = await check(http, headers, second, code)
    assert approved.json()["status"] == "approved"  # ... and a success resets it

    third, code = await start()
    for _ in range(4):  # without the reset, the first of these would reach the cap
        answer = await check(http, headers, third, wrong_code(code))
        assert answer.status_code == 200 and answer.json()["valid"] is False
    refused = await check(http, headers, third, code)  # even the right code
    assert refused.status_code == 403, refused.text
    assert refused.json()["reason"] == "failed_checks_exceeded"
    blocked = await http.post(CREATE, json={"to": to}, headers=headers)
    assert blocked.status_code == 403
    assert blocked.json()["reason"] == "failed_checks_exceeded"
    # Another destination of the same application is unaffected.
    fresh = await http.post(CREATE, json={"to": "+14155550178"}, headers=headers)
    assert fresh.status_code == 201


# ----------------------------------------------------------------------- enumeration
def _mann_whitney_z(a: list[float], b: list[float]) -> float:
    """The normal approximation of the Mann-Whitney U statistic (ties share ranks)."""
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    rank_a = sum(r for r, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    n1, n2 = len(a), len(b)
    u = rank_a - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    sd = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return (u - mean) / sd


def _shape(response: httpx.Response) -> tuple[int, tuple[str, ...]]:
    return response.status_code, tuple(sorted(response.json()))


def _assert_indistinguishable(name: str, known: list[float], fresh: list[float]) -> None:
    """No location shift between the two series, by two rank-based statistics.

    Latencies here are often bimodal (a request lands before or after a background write),
    so the two medians can fall in different modes by chance while the distributions are
    the same. The Hodges-Lehmann estimator (the median of every pairwise difference) is
    the shift the rank test measures, and is not fooled by that.
    """
    med_known, med_fresh = statistics.median(known), statistics.median(fresh)
    shift = statistics.median(k - f for k in known for f in fresh)
    pooled = statistics.median(known + fresh)
    z = _mann_whitney_z(known, fresh)
    detail = (
        f"{name}: median known {med_known * 1000:.1f} ms, fresh {med_fresh * 1000:.1f} ms, "
        f"shift {shift * 1000:+.1f} ms of {pooled * 1000:.1f} ms, z={z:.2f}"
    )
    print(detail)
    assert abs(shift) <= 0.25 * pooled, detail
    assert abs(z) < 4.0, detail


@pytest.mark.timeout(240)
async def test_known_and_fresh_destinations_look_alike(
    http: httpx.AsyncClient, store: Store, worker: None
) -> None:
    key = await app_key(
        store,
        RiskSettings(
            per_destination=Rate(limit=10_000, window_s=600),
            per_prefix=None,
            max_failed_checks=10_000,
        ),
    )
    headers = bearer(key)
    known_to = "+14155550190"
    # History for the known destination: verifications, failed checks, limit hits.
    for _ in range(3):
        created = await http.post(CREATE, json={"to": known_to}, headers=headers)
        assert created.status_code == 201
        assert (await check(http, headers, created.json()["id"], "000000")).status_code == 200

    samples = 40
    rng = random.Random(7)
    timings: dict[str, dict[str, list[float]]] = {
        "create": {"known": [], "fresh": []},
        "check": {"known": [], "fresh": []},
    }
    shapes: dict[str, set[Any]] = {"create": set(), "check": set()}

    async def one(kind: str, to: str) -> None:
        started = time.perf_counter()
        created = await http.post(CREATE, json={"to": to}, headers=headers)
        timings["create"][kind].append(time.perf_counter() - started)
        assert created.status_code == 201, created.text
        shapes["create"].add(_shape(created))
        verification_id = created.json()["id"]
        await asyncio.sleep(0.05)  # let the first delivery settle like a real user would
        started = time.perf_counter()
        checked = await check(http, headers, verification_id, "000000")
        timings["check"][kind].append(time.perf_counter() - started)
        assert checked.status_code == 200, checked.text
        shapes["check"].add(_shape(checked))

    for n in range(samples):
        pair = [("known", known_to), ("fresh", f"+1646555{n:04d}")]
        rng.shuffle(pair)  # alternate the order: drift on a loaded machine hits both alike
        for kind, to in pair:
            await one(kind, to)

    assert len(shapes["create"]) == 1 and len(shapes["check"]) == 1, shapes
    for name, series in timings.items():
        _assert_indistinguishable(name, series["known"], series["fresh"])
