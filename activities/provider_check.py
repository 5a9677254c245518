"""The test send of a provider account: one message through the application's own account.

Live: through the account's adapter (`activities.accounts`), so the operator learns
whether its credentials and sender work; test: through the sandbox (its magic numbers
give the errors). Provider errors are the result, not a failure of the activity; the
message holds no code and no secret, and the result only the adapter's reason, the
provider's error code and a message the adapters write without credentials.
"""

from __future__ import annotations

import logging
import re

from temporalio import activity

from activities.accounts import AccountProviders
from otp.domain import Channel, Mode
from otp.domain.destinations import mask
from otp.domain.provider_check import (
    ACTIVITY_CHECK_PROVIDER,
    ProviderCheckInput,
    ProviderCheckResult,
)
from otp.store import Store
from otp.store import provider_accounts as db
from providers.base import DeliveryError, OutboundMessage, Provider

logger = logging.getLogger("otp.activities")

# The order a channel is picked in when the request names none.
_PREFERRED = (Channel.SMS, Channel.WHATSAPP, Channel.EMAIL, Channel.VOICE)
_PROVIDER_CODE = re.compile(r"\bcode (\d+)\b")
TEST_TEXT = "Test message from your OTP service: this provider account works."
TEST_SUBJECT = "Provider account test"


def _channel(provider: Provider, wanted: Channel | None) -> Channel | None:
    if wanted is not None:
        return wanted if wanted in provider.channels else None
    return next((c for c in _PREFERRED if c in provider.channels), None)


class ProviderCheckActivities:
    """The test send, holding the accounts' adapters and the sandbox."""

    def __init__(self, store: Store, accounts: AccountProviders, sandbox: Provider) -> None:
        self._store = store
        self._accounts = accounts
        self._sandbox = sandbox

    @activity.defn(name=ACTIVITY_CHECK_PROVIDER)
    async def check_provider(self, input: ProviderCheckInput) -> ProviderCheckResult:
        """Send one test message through the account (or the sandbox) and report the outcome."""
        info = activity.info()
        account = await db.get_account(
            self._store, application_id=input.application_id, provider=input.provider
        )
        if account is None:
            return ProviderCheckResult(
                ok=False,
                provider=input.provider,
                error_reason="no_account",
                error_message="this application has no account with this provider",
            )
        known = {"account_id": account.id, "account_version": account.version}
        adapter = self._accounts.adapter(account)
        if adapter is None:
            return ProviderCheckResult(
                ok=False,
                provider=input.provider,
                **known,
                error_reason="unsealable",
                error_message="the account's secrets cannot be opened with the configured keys",
            )
        channel = _channel(adapter, input.channel)
        if channel is None:
            return ProviderCheckResult(
                ok=False,
                provider=input.provider,
                **known,
                error_reason="channel_not_configured",
                error_message="the account cannot send on this channel",
            )
        sender = self._sandbox if input.mode is Mode.TEST else adapter
        message = OutboundMessage(
            verification_id=info.workflow_id or "",
            application_id=input.application_id,
            channel=channel,
            to=input.to,
            subject=TEST_SUBJECT,
            text=TEST_TEXT,
            html=None,
            idempotency_key=f"{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}",
        )
        log_extra = {
            "account_id": account.id,
            "provider": input.provider,
            "channel": channel.value,
            "to": mask(input.to),
        }
        try:
            receipt = await sender.send(message)
        except DeliveryError as exc:
            text = str(exc)
            code = _PROVIDER_CODE.search(text)
            logger.info("provider account test failed: %s", exc.reason, extra=log_extra)
            return ProviderCheckResult(
                ok=False,
                provider=input.provider,
                channel=channel,
                **known,
                error_reason=exc.reason,
                error_code=code.group(1) if code else None,
                error_message=text,
            )
        logger.info("provider account test sent", extra=log_extra)
        return ProviderCheckResult(
            ok=True,
            provider=input.provider,
            channel=channel,
            **known,
            message_id=receipt.message_id,
        )
