"""The verification service without a server: defaults, the plan, the risk gates, checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from api.auth import Principal
from api.problems import ChannelNotAllowed, InvalidRequest, RiskPolicyRefused, VerificationNotFound
from api.schemas.verifications import CheckRequest, VerificationCreate
from api.services.risk_caches import RiskCaches
from api.services.verification_workflows import Started
from api.services.verifications import (
    Verifications,
    blocked_step,
    plan,
    require_id,
    with_app_defaults,
)
from otp.applications.model import ApplicationDefaults
from otp.domain import Channel, ChannelStep, CheckResult, CodeType, Mode, Status, VerificationState
from otp.risk import policy as risk
from otp.risk.limits.store import StoreLimiter
from otp.settings import Secrets, Settings
from otp.store import Store, risk_blocks
from otp.store import lockouts as store_lockouts
from otp.store import safe_list as store_safe_list
from otp.store.events import destination_hash

VID = "ver_" + "a" * 26
PHONE = "+14155550123"


@dataclass
class FakeWorkflows:
    """The Temporal side, recorded instead of called."""

    started: list[Any] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    result: CheckResult | None = None
    state_value: VerificationState | None = None

    async def start(
        self, input: Any, principal: Principal, *, idempotency_key: str | None
    ) -> Started:
        self.started.append(input)
        return Started(VID, input, replayed=False)

    async def state(self, verification_id: str, principal: Principal) -> VerificationState:
        if self.state_value is None:
            raise VerificationNotFound()
        return self.state_value

    async def check(self, verification_id: str, principal: Principal, **_: Any) -> CheckResult:
        self.checked.append(verification_id)
        assert self.result is not None
        return self.result


def _verifications(
    principal: Principal,
    workflows: FakeWorkflows,
    store: Store,
    limiter: StoreLimiter,
    secrets: Secrets,
    settings: Settings,
) -> Verifications:
    return Verifications(
        principal=principal,
        workflows=workflows,  # type: ignore[arg-type]
        store=store,
        limiter=limiter,
        secrets=secrets,
        settings=settings,
        recorder=None,
        caches=RiskCaches(),
    )


def test_a_malformed_id_is_an_unknown_one() -> None:
    assert require_id(VID) == VID
    with pytest.raises(VerificationNotFound):
        require_id("ver_UPPER")


def test_fields_left_out_take_the_application_defaults() -> None:
    principal = Principal(
        "app_x",
        Mode.TEST,
        brand="Acme",
        defaults=ApplicationDefaults(code_length=8, code_type=CodeType.ALPHANUMERIC),
    )
    filled = with_app_defaults(VerificationCreate(to=PHONE), principal)
    assert (filled.code_length, filled.code_type, filled.brand) == (
        8,
        CodeType.ALPHANUMERIC,
        "Acme",
    )
    given = with_app_defaults(VerificationCreate(to=PHONE, code_length=4, brand="Own"), principal)
    assert (given.code_length, given.brand) == (4, "Own")


def test_the_plan_names_every_bad_destination(settings: Settings) -> None:
    body = VerificationCreate.model_validate(
        {"to": "not a number", "channels": [{"channel": "sms"}, {"channel": "email", "to": "x@"}]}
    )
    with pytest.raises(InvalidRequest) as raised:
        plan(body, Principal("app_x", Mode.TEST), settings)
    pointers = [e["pointer"] for e in raised.value.extensions["errors"]]
    assert pointers == ["#/to", "#/channels/1/to"]


def test_the_plan_refuses_channels_the_application_may_not_use(settings: Settings) -> None:
    principal = Principal("app_x", Mode.TEST, allowed_channels=frozenset({Channel.EMAIL}))
    with pytest.raises(ChannelNotAllowed) as raised:
        plan(VerificationCreate(to=PHONE), principal, settings)
    assert raised.value.extensions["refused_channels"] == ["sms"]


def test_live_keys_plan_only_channels_with_a_provider(settings: Settings) -> None:
    with pytest.raises(InvalidRequest) as raised:
        plan(VerificationCreate(to=PHONE), Principal("app_x", Mode.LIVE), settings)
    assert raised.value.extensions["errors"][0]["type"] == "channel_unavailable"
    steps, country = plan(VerificationCreate(to=PHONE), Principal("app_x", Mode.TEST), settings)
    assert [(s.channel, s.to) for s in steps] == [(Channel.SMS, PHONE)] and country == "US"


async def test_blocked_step_is_the_first_phone_step_a_block_covers(
    store: Store, secrets: Secrets
) -> None:
    block = await risk_blocks.create_block(
        store,
        application_id="app_x",
        mode="test",
        scope="country",
        value="GB",
        reason="r",
        automatic=False,
    )
    steps = [
        ChannelStep(channel=Channel.EMAIL, to="jane@example.com", timeout_s=60),
        ChannelStep(channel=Channel.SMS, to=PHONE, timeout_s=60),
        ChannelStep(channel=Channel.VOICE, to="+442079460123", timeout_s=60),
    ]
    assert blocked_step([block], steps, secrets.code_secret) == 2
    assert blocked_step([block], steps[:2], secrets.code_secret) is None
    assert blocked_step([], steps, secrets.code_secret) is None


async def test_a_blocked_create_starts_nothing_unless_safe_listed(
    store: Store, limiter: StoreLimiter, secrets: Secrets, settings: Settings
) -> None:
    principal = Principal("app_x", Mode.TEST)
    await risk_blocks.create_block(
        store,
        application_id="app_x",
        mode="test",
        scope="country",
        value="US",
        reason="conversion",
        automatic=True,
    )
    workflows = FakeWorkflows()
    with pytest.raises(RiskPolicyRefused) as raised:
        await _verifications(principal, workflows, store, limiter, secrets, settings).create(
            VerificationCreate(to=PHONE), idempotency_key=None
        )
    assert raised.value.extensions == {"reason": "scope_blocked", "step_index": 0}
    assert workflows.started == []

    # A safe-listed destination skips the automatic block (a fresh cache sees the entry).
    await store_safe_list.add_entry(
        store,
        application_id="app_x",
        mode="test",
        destination_hash=destination_hash(secrets.code_secret, PHONE),
        to_masked="+1********23",
        note="",
        added_by="test",
    )
    created = await _verifications(principal, workflows, store, limiter, secrets, settings).create(
        VerificationCreate(to=PHONE), idempotency_key=None
    )
    assert created.id == VID and not created.replayed
    assert [s.to for s in workflows.started[0].channels] == [PHONE]


async def test_a_create_builds_the_input_and_reports_its_tightest_limit(
    store: Store, limiter: StoreLimiter, secrets: Secrets, settings: Settings
) -> None:
    principal = Principal("app_x", Mode.TEST, brand="Acme")
    workflows = FakeWorkflows()
    created = await _verifications(principal, workflows, store, limiter, secrets, settings).create(
        VerificationCreate(to=PHONE, ttl_s=120), idempotency_key=None
    )
    sent = workflows.started[0]
    assert (sent.application_id, sent.mode, sent.brand, sent.ttl_s) == (
        "app_x",
        Mode.TEST,
        "Acme",
        120,
    )
    assert sent.country == "US" and sent.max_sends == 5
    assert created.input is sent
    assert "RateLimit" in created.headers and "RateLimit-Policy" in created.headers


async def test_a_wrong_code_at_the_cap_locks_out_and_later_checks_are_refused(
    store: Store, limiter: StoreLimiter, secrets: Secrets, settings: Settings
) -> None:
    principal = Principal("app_x", Mode.TEST, risk=risk.RiskSettings(max_failed_checks=1))
    workflows = FakeWorkflows(
        result=CheckResult(
            status=Status.PENDING, valid=False, attempts_used=1, attempts_remaining=4
        )
    )
    service = _verifications(principal, workflows, store, limiter, secrets, settings)
    await service.create(VerificationCreate(to=PHONE), idempotency_key=None)
    input = workflows.started[0]
    workflows.state_value = VerificationState.initial(input, input.created_at)

    result = await service.check(VID, CheckRequest(code="123456"), idempotency_key=None)
    assert result.valid is False and workflows.checked == [VID]
    rows = await store_lockouts.list_active_lockouts(
        store, application_id="app_x", mode="test", limit=10
    )
    assert [(r.to_masked, r.channel, r.failed_count) for r in rows] == [("+1********23", "sms", 1)]

    with pytest.raises(RiskPolicyRefused) as raised:
        await service.check(VID, CheckRequest(code="654321"), idempotency_key=None)
    assert raised.value.extensions["reason"] == "failed_checks_exceeded"
    assert workflows.checked == [VID]  # the refused check never reached the workflow


async def test_read_of_an_unknown_verification_is_404(
    store: Store, limiter: StoreLimiter, secrets: Secrets, settings: Settings
) -> None:
    service = _verifications(
        Principal("app_x", Mode.TEST), FakeWorkflows(), store, limiter, secrets, settings
    )
    with pytest.raises(VerificationNotFound):
        await service.read(VID)
