"""Verification activities: issue a code (as nonce + digest) and deliver it through a provider."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from otp.codes import code_digest, derive_code, new_nonce
from otp.destinations import mask
from otp.domain import (
    ACTIVITY_DELIVER,
    ACTIVITY_ISSUE_CODE,
    Channel,
    DeliverInput,
    DeliverResult,
    ErrorType,
    IssueCodeInput,
    IssueCodeResult,
    Mode,
)
from otp.templates import render
from providers.base import (
    OutboundMessage,
    PermanentDeliveryError,
    Provider,
    TransientDeliveryError,
)

logger = logging.getLogger("otp.activities")


class VerificationActivities:
    """Activities as methods of one object holding the code secret and the providers."""

    def __init__(
        self,
        *,
        code_secret: bytes,
        sandbox: Provider,
        live_providers: Mapping[Channel, Provider],
    ) -> None:
        self._secret = code_secret
        self._sandbox = sandbox
        self._live = dict(live_providers)

    @activity.defn(name=ACTIVITY_ISSUE_CODE)
    async def issue_code(self, input: IssueCodeInput) -> IssueCodeResult:
        """Pick a fresh nonce and return the keyed digest of the code it yields."""
        nonce = new_nonce()
        code = derive_code(
            self._secret, input.verification_id, nonce, input.code_length, input.code_type
        )
        return IssueCodeResult(
            nonce=nonce, digest=code_digest(self._secret, input.verification_id, code)
        )

    def provider_for(self, mode: Mode, channel: Channel) -> Provider:
        if mode is Mode.TEST:
            return self._sandbox
        provider = self._live.get(channel)
        if provider is None:
            raise PermanentDeliveryError("no_provider", f"no live provider for {channel.value}")
        return provider

    @activity.defn(name=ACTIVITY_DELIVER)
    async def deliver(self, input: DeliverInput) -> DeliverResult:
        """Render and send the code on one channel; classify failures as permanent or transient."""
        info = activity.info()
        log_extra = {
            "verification_id": input.verification_id,
            "channel": input.channel.value,
            "to": mask(input.to),
            "attempt": info.attempt,
        }
        now = datetime.now(UTC)
        if now >= input.expires_at:
            # Never deliver a code that can no longer be verified.
            raise ApplicationError(
                "the code expired before delivery", type="CodeExpired", non_retryable=True
            )
        code = derive_code(
            self._secret, input.verification_id, input.nonce, input.code_length, input.code_type
        )
        ttl_s = int((input.expires_at - now).total_seconds())
        rendered = render(
            input.channel, code=code, brand=input.brand, ttl_s=ttl_s, locale=input.locale
        )
        message = OutboundMessage(
            verification_id=input.verification_id,
            application_id=input.application_id,
            channel=input.channel,
            to=input.to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            locale=input.locale,
            # Stable across retries of this activity (and unique per run): a retried send is
            # deduplicated, and a reused workflow id never collides with an earlier run.
            idempotency_key=f"{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}",
            code=code,
        )
        try:
            provider = self.provider_for(input.mode, input.channel)
            receipt = await provider.send(message)
        except PermanentDeliveryError as exc:
            logger.warning("delivery failed permanently: %s", exc.reason, extra=log_extra)
            raise ApplicationError(
                f"delivery failed: {exc.reason}",
                type=ErrorType.PERMANENT_DELIVERY,
                non_retryable=True,
            ) from None
        except TransientDeliveryError as exc:
            logger.info("delivery failed, will retry: %s", exc.reason, extra=log_extra)
            raise ApplicationError(
                f"delivery failed: {exc.reason}", type=ErrorType.TRANSIENT_DELIVERY
            ) from None
        logger.info(
            "delivered via %s",
            receipt.provider,
            extra={**log_extra, "message_id": receipt.message_id},
        )
        return DeliverResult(
            provider=receipt.provider, provider_message_id=receipt.message_id, status=receipt.status
        )
