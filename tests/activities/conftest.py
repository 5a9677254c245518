"""Fixtures for activity tests: the activities object, inputs, an ActivityEnvironment per call."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from activities.verification import VerificationActivities
from otp.domain import Channel, CodeType, DeliverInput, Mode
from otp.store import Store
from providers.base import Provider
from providers.sandbox import SandboxProvider
from tests.conftest import TEST_SECRETS

APP = "app_test"
PHONE = "+14155552671"
EMAIL = "bob@example.com"
NONCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


RUN_ID = "run-1"


def activity_env(
    workflow_id: str, activity_id: str = "2", attempt: int = 1, run_id: str = RUN_ID
) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id=workflow_id,
        workflow_run_id=run_id,
        activity_id=activity_id,
        attempt=attempt,
    )
    return env


def deliver_input(workflow_id: str, **overrides: object) -> DeliverInput:
    channel = overrides.get("channel", Channel.SMS)
    data: dict[str, object] = {
        "verification_id": workflow_id,
        "application_id": APP,
        "mode": Mode.TEST,
        "step_index": 0,
        "channel": channel,
        "to": EMAIL if channel is Channel.EMAIL else PHONE,
        "nonce": NONCE,
        "code_length": 6,
        "code_type": CodeType.NUMERIC,
        "expires_at": datetime.now(UTC) + timedelta(seconds=600),
    }
    data.update(overrides)
    return DeliverInput.model_validate(data)


def make_activities(
    store: Store, live: dict[Channel, Provider] | None = None
) -> VerificationActivities:
    return VerificationActivities(
        code_secret=TEST_SECRETS.code_secret,
        sandbox=SandboxProvider(store),
        live_providers=live or {},
    )


@pytest.fixture
def activities(store: Store) -> VerificationActivities:
    return make_activities(store)
