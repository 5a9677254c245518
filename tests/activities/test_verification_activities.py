"""issue_code and deliver in an ActivityEnvironment, with the sandbox provider and fakes."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.verification import VerificationActivities
from otp.domain import (
    Channel,
    CodeType,
    DeliveryStatus,
    ErrorType,
    IssueCodeInput,
    Mode,
)
from otp.security.codes import code_digest, derive_code
from otp.store import Store
from providers.base import (
    OutboundMessage,
    PermanentDeliveryError,
    SendReceipt,
    TransientDeliveryError,
)
from tests.activities.conftest import (
    APP,
    NONCE,
    PHONE,
    RUN_ID,
    activity_env,
    deliver_input,
    make_activities,
)
from tests.conftest import TEST_SECRETS

SECRET = TEST_SECRETS.code_secret


class RecordingProvider:
    """A live provider that records messages, or raises the given error."""

    name = "recording"
    channels = frozenset(Channel)

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendReceipt:
        if self.error is not None:
            raise self.error
        self.sent.append(message)
        return SendReceipt(self.name, f"rec-{len(self.sent)}")


@pytest.mark.parametrize(
    ("length", "code_type"),
    [(4, CodeType.NUMERIC), (6, CodeType.NUMERIC), (10, CodeType.ALPHANUMERIC)],
)
async def test_issue_code_returns_a_fresh_nonce_and_the_digest_of_its_code(
    activities: VerificationActivities, workflow_id: str, length: int, code_type: CodeType
) -> None:
    input = IssueCodeInput(verification_id=workflow_id, code_length=length, code_type=code_type)
    env = activity_env(workflow_id)
    first = await env.run(activities.issue_code, input)
    second = await env.run(activities.issue_code, input)

    assert re.fullmatch(r"[0-9a-f]{32}", first.nonce)
    assert first.nonce != second.nonce
    code = derive_code(SECRET, workflow_id, first.nonce, length, code_type)
    assert first.digest == code_digest(SECRET, workflow_id, code)
    assert code not in first.model_dump_json()  # only the nonce and digest leave the activity


async def test_sandbox_delivery_is_written_once_per_activity(
    activities: VerificationActivities, store: Store, workflow_id: str
) -> None:
    input = deliver_input(workflow_id)
    # The same activity (same workflow and activity id) run twice, e.g. after a lost result.
    first = await activity_env(workflow_id, "2").run(activities.deliver, input)
    again = await activity_env(workflow_id, "2", attempt=2).run(activities.deliver, input)
    rows = await store.list_sandbox_messages(application_id=APP, verification_id=workflow_id)

    assert len(rows) == 1
    assert first == again
    assert first.provider == "sandbox" and first.status is DeliveryStatus.DELIVERED
    assert rows[0].message_id == first.provider_message_id
    code = derive_code(SECRET, workflow_id, NONCE, 6, CodeType.NUMERIC)
    assert rows[0].to == PHONE and rows[0].channel == "sms"
    assert rows[0].body == (
        f"Your verification code is {code}. It expires in 10 minutes. Do not share it with anyone."
    )

    # Another activity (the next step, a resend) is another message.
    other = await activity_env(workflow_id, "3").run(activities.deliver, input)
    assert other.provider_message_id != first.provider_message_id
    assert (
        len(await store.list_sandbox_messages(application_id=APP, verification_id=workflow_id)) == 2
    )


async def test_expired_code_is_not_delivered(
    activities: VerificationActivities, store: Store, workflow_id: str
) -> None:
    input = deliver_input(workflow_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(ApplicationError) as info:
        await activity_env(workflow_id).run(activities.deliver, input)
    assert info.value.type == "CodeExpired" and info.value.non_retryable
    assert await store.list_sandbox_messages(application_id=APP, verification_id=workflow_id) == []


async def test_live_mode_without_a_provider_fails_permanently(
    activities: VerificationActivities, workflow_id: str
) -> None:
    input = deliver_input(workflow_id, mode=Mode.LIVE, channel=Channel.VOICE)
    with pytest.raises(ApplicationError) as info:
        await activity_env(workflow_id).run(activities.deliver, input)
    assert info.value.type == ErrorType.PERMANENT_DELIVERY and info.value.non_retryable


@pytest.mark.parametrize(
    ("error", "expected", "non_retryable"),
    [
        (PermanentDeliveryError("bad_number"), ErrorType.PERMANENT_DELIVERY, True),
        (TransientDeliveryError("rate_limited"), ErrorType.TRANSIENT_DELIVERY, False),
    ],
)
async def test_provider_errors_are_classified(
    store: Store, workflow_id: str, error: Exception, expected: str, non_retryable: bool
) -> None:
    acts = make_activities(store, {Channel.SMS: RecordingProvider(error)})
    with pytest.raises(ApplicationError) as info:
        await activity_env(workflow_id).run(
            acts.deliver, deliver_input(workflow_id, mode=Mode.LIVE)
        )
    assert info.value.type == expected
    assert info.value.non_retryable is non_retryable
    assert PHONE not in str(info.value)


async def test_live_mode_uses_the_channel_provider_with_a_stable_idempotency_key(
    store: Store, workflow_id: str
) -> None:
    provider = RecordingProvider()
    acts = make_activities(store, {Channel.SMS: provider})
    input = deliver_input(workflow_id, mode=Mode.LIVE)
    result = await activity_env(workflow_id, "7").run(acts.deliver, input)
    await activity_env(workflow_id, "7", attempt=3).run(acts.deliver, input)

    assert result.provider == "recording" and result.status is DeliveryStatus.SENT
    assert [m.idempotency_key for m in provider.sent] == [f"{workflow_id}:{RUN_ID}:7"] * 2
    # A later run reusing the workflow id gets other keys (no stale dedup).
    await activity_env(workflow_id, "7", run_id="run-2").run(acts.deliver, input)
    assert provider.sent[-1].idempotency_key == f"{workflow_id}:run-2:7"
    # Live mode never touches the sandbox inbox.
    assert await store.list_sandbox_messages(application_id=APP, verification_id=workflow_id) == []


@pytest.mark.parametrize(
    ("locale", "brand", "expected_text", "expected_subject"),
    [
        ("es", "Acme", "Tu código de verificación de Acme es", "Tu código de verificación de Acme"),
        ("pt-BR", "", "Seu código de verificação é", "Seu código de verificação"),
        ("xx", "Acme", "Your Acme verification code is", "Your Acme verification code"),
    ],
)
async def test_locale_and_brand_are_rendered(
    store: Store,
    workflow_id: str,
    locale: str,
    brand: str,
    expected_text: str,
    expected_subject: str,
) -> None:
    provider = RecordingProvider()
    acts = make_activities(store, {Channel.EMAIL: provider})
    input = deliver_input(
        workflow_id, mode=Mode.LIVE, channel=Channel.EMAIL, locale=locale, brand=brand
    )
    await activity_env(workflow_id).run(acts.deliver, input)

    (message,) = provider.sent
    code = derive_code(SECRET, workflow_id, NONCE, 6, CodeType.NUMERIC)
    assert message.text.startswith(expected_text) and code in message.text
    assert message.subject == expected_subject
    assert message.html is not None and code in message.html
    assert message.code == code and message.locale == locale


async def test_logs_carry_no_code_and_no_full_destination(
    activities: VerificationActivities,
    workflow_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await activity_env(workflow_id).run(activities.deliver, deliver_input(workflow_id))
    code = derive_code(SECRET, workflow_id, NONCE, 6, CodeType.NUMERIC)

    records = [r for r in caplog.records if r.name.startswith("otp")]
    assert records, "the delivery logs a line"
    for record in records:
        dumped = repr(record.__dict__) + record.getMessage()
        assert code not in dumped and PHONE not in dumped
        assert getattr(record, "verification_id", None) == workflow_id
