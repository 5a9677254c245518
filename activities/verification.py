"""Verification activities: issue a code (as nonce + digest) and deliver it through a provider."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.accounts import AccountProviders
from activities.pricing import DeliveryPricing, cost_entry
from activities.sandbox_scenarios import ScenarioLookup
from activities.templates import TemplateBook, catalogue_message
from otp.cost.price_table import Quote
from otp.domain import (
    ACTIVITY_DELIVER,
    ACTIVITY_ISSUE_CODE,
    Channel,
    DeliverInput,
    DeliverResult,
    DeliveryStatus,
    ErrorType,
    EventType,
    IssueCodeInput,
    IssueCodeResult,
    LogEntry,
    Mode,
    VerificationState,
)
from otp.domain.destinations import mask
from otp.domain.routing import send_reason
from otp.messages.sms import segment_count
from otp.messages.templates import RenderedMessage
from otp.risk.conversion_monitor import DeliveryGate
from otp.security.codes import code_digest, derive_code, new_nonce
from otp.store.events import EventRecorder, Verification
from providers.base import (
    DeliveryError,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentDeliveryError,
    Provider,
    SendReceipt,
    TransientDeliveryError,
)

logger = logging.getLogger("otp.activities")

# How long a retry waits for the workflow to say whether its verification is still open.
_STATE_QUERY_TIMEOUT_S = 5.0

# Kept back from an attempt's timeout to hand the result to Temporal (a fifth of a short one).
_ANSWER_MARGIN_S = 1.0


def _attempt_deadline(info: activity.Info) -> float | None:
    """The event-loop time by which this attempt must have answered, or None (no timeout).

    Past its start-to-close timeout Temporal retries an attempt, and the retry sends
    again without knowing whether the first send went out: so a send and its
    reconciliation must end before that, the margin before. Measured from the attempt's
    start on this worker's clock; the schedule-to-close timeout left at the start is the
    difference of two server times.
    """
    limits: list[timedelta] = []
    if info.start_to_close_timeout:
        limits.append(info.start_to_close_timeout)
    if info.schedule_to_close_timeout:
        limits.append(info.scheduled_time + info.schedule_to_close_timeout - info.started_time)
    if not limits:
        return None
    limit_s = min(limits).total_seconds()
    return asyncio.get_running_loop().time() + limit_s - min(_ANSWER_MARGIN_S, limit_s / 5)


async def verification_ended(info: activity.Info) -> bool:
    """Whether this delivery's verification has ended (asked of its workflow).

    A retry can come due after the verification ended: approved with a code sent
    earlier, canceled, out of attempts (the workflow lets a delivery in flight settle
    before it closes). Such a retry must not send a code no one can use any more. If
    the workflow cannot be asked (a query timeout, a server outage), the retry goes on:
    the workflow cancels a delivery that outlives its settling time anyway.
    """
    if not info.workflow_id:  # not run by a workflow: nothing to ask
        return False
    try:
        handle = activity.client().get_workflow_handle(
            info.workflow_id, run_id=info.workflow_run_id
        )
        async with asyncio.timeout(_STATE_QUERY_TIMEOUT_S):
            state: VerificationState = await handle.query("state", result_type=VerificationState)
    except Exception as exc:  # any failure to ask: deliver as before
        logger.info(
            "could not ask whether the verification ended: %s",
            type(exc).__name__,
            extra={"verification_id": info.workflow_id, "attempt": info.attempt},
        )
        return False
    return state.status.is_terminal


async def _find_sent(
    provider: Provider, message: OutboundMessage, deadline: float | None
) -> SendReceipt | None:
    """The provider's own record of `message` (by its delivery key or content), where the
    provider can tell and answers before `deadline`; else None."""
    finder = getattr(provider, "find_sent", None)
    if finder is None:
        return None
    since = activity.info().scheduled_time - timedelta(minutes=1)
    try:
        async with asyncio.timeout_at(deadline):
            found: SendReceipt | None = await finder(message, since=since)
    except (DeliveryError, TimeoutError):
        return None
    return found


def _result_of(receipt: SendReceipt) -> DeliverResult:
    """What the workflow learns of a send the provider acknowledged (or listed)."""
    return DeliverResult(
        provider=receipt.provider, provider_message_id=receipt.message_id, status=receipt.status
    )


async def _send_before(
    deadline: float | None, provider: Provider, message: OutboundMessage
) -> SendReceipt:
    """`provider.send(message)`, cut off at the attempt's deadline: a send cut off may have
    gone out, so its outcome is unknown (reconciled, never repeated), like a read timeout."""
    if deadline is not None and asyncio.get_running_loop().time() >= deadline:
        # No time left to see a send through: nothing was sent, a retry is safe.
        raise TransientDeliveryError("attempt_time_exhausted", "no time left to send")
    scope = asyncio.timeout_at(deadline)
    try:
        async with scope:
            return await provider.send(message)
    except TimeoutError:
        if not scope.expired():
            raise
        raise OutcomeUnknownError(
            "no answer before the attempt's timeout", reference=message.idempotency_key
        ) from None


class VerificationActivities:
    """Activities as methods of one object holding the code secret and the providers."""

    def __init__(
        self,
        *,
        code_secret: bytes,
        sandbox: Provider,
        live_providers: Mapping[Channel, Provider],
        providers_by_name: Mapping[str, Provider] | None = None,
        recorder: EventRecorder | None = None,
        gate: DeliveryGate | None = None,
        scenarios: ScenarioLookup | None = None,
        accounts: AccountProviders | None = None,
        templates: TemplateBook | None = None,
        pricing: DeliveryPricing | None = None,
    ) -> None:
        """`live_providers`: each channel's default; `providers_by_name`: every live provider
        a plan step may name (failover order is the workflow's); `gate`: the risk checks
        run before every send (none: every send goes out); `scenarios`: the application's
        sandbox scenarios, applied in test mode (none: the sandbox as it is); `accounts`:
        applications' own provider accounts (none: the global accounts serve every
        application); `templates`: the applications' message templates (none: the
        built-in catalogue only); `pricing`: quotes, the cost cap and the spend caps
        checked before every send, and the delivery costs recorded (none: not costed)."""

        self._secret = code_secret
        self._sandbox = sandbox
        self._live = dict(live_providers)
        self._by_name = dict(providers_by_name or {})
        self._recorder = recorder
        self._gate = gate
        self._scenarios = scenarios
        self._accounts = accounts
        self._templates = templates
        self._pricing = pricing
        self._log_tasks: set[asyncio.Task[None]] = set()

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

    def provider_for(
        self,
        mode: Mode,
        channel: Channel,
        name: str | None = None,
        own: Mapping[str, Provider] | None = None,
    ) -> Provider:
        """Test mode: always the sandbox. Live: the named provider, else the channel's default;
        the application's `own` account of that provider replaces the global one."""
        if mode is Mode.TEST:
            return self._sandbox
        own = own or {}
        if name is not None:
            named = own.get(name) or self._by_name.get(name)
            if named is None or channel not in named.channels:
                raise PermanentDeliveryError(
                    "provider_unavailable", f"{name} cannot deliver {channel.value} here"
                )
            return named
        provider = self._live.get(channel)
        if provider is not None and provider.name in own:
            return own[provider.name]
        if provider is None:
            provider = next((p for p in own.values() if channel in p.channels), None)
        if provider is None:
            raise PermanentDeliveryError("no_provider", f"no live provider for {channel.value}")
        return provider

    async def _provider(self, input: DeliverInput) -> Provider:
        """`provider_for` this delivery, with the application's own accounts (activities.accounts)."""
        own: Mapping[str, Provider] = {}
        if self._accounts is not None and input.mode is Mode.LIVE:
            try:
                own = await self._accounts.for_application(input.application_id)
            except Exception as exc:  # the store: retry rather than send through another account
                raise TransientDeliveryError("accounts_unavailable", type(exc).__name__) from None
        return self.provider_for(input.mode, input.channel, input.provider, own)

    @activity.defn(name=ACTIVITY_DELIVER)
    async def deliver(self, input: DeliverInput) -> DeliverResult:
        """Render and send the code on one channel; classify failures as permanent or transient."""
        info = activity.info()
        deadline = _attempt_deadline(info)
        log_extra = {
            "verification_id": input.verification_id,
            "channel": input.channel.value,
            "to": mask(input.to),
            "attempt": info.attempt,
        }
        now = datetime.now(UTC)
        if input.expires_at - now < timedelta(seconds=1):
            # Never deliver a code that can no longer be verified: with under a second
            # left, no provider can be told to drop it at expiry (ValidityPeriod >= 1 s).
            raise ApplicationError(
                "the code expired before delivery", type="CodeExpired", non_retryable=True
            )
        code = derive_code(
            self._secret, input.verification_id, input.nonce, input.code_length, input.code_type
        )
        ttl_s = int((input.expires_at - now).total_seconds())
        try:
            rendered, version = await self._render(input, code=code, ttl_s=ttl_s)
        except ValueError as exc:  # a bad web domain or app hash: retrying cannot help
            raise ApplicationError(
                f"message could not be rendered: {exc}", type="RenderFailed", non_retryable=True
            ) from None
        # Stable across retries of this delivery (the workflow's delivery key, else this
        # activity's id within its run): a retried send is deduplicated, and receipts
        # carry it back as their reference.
        key = input.delivery_key or f"{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}"
        message = OutboundMessage(
            verification_id=input.verification_id,
            application_id=input.application_id,
            channel=input.channel,
            to=input.to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            whatsapp_template_name=rendered.whatsapp_template_name,
            whatsapp_language=rendered.whatsapp_language,
            locale=input.locale,
            idempotency_key=key,
            code=code,
            brand=input.brand,
            expires_in_s=ttl_s,
            sender=input.sender,
        )
        if info.attempt > 1 and await verification_ended(info):
            return await self._after_the_end(input, key, message, log_extra, deadline)
        if self._gate is not None:
            # Blocks, conversion monitoring and send limits: refused before any provider call.
            # A store outage must not stop every code from going out: then they fail open.
            try:
                refusal = await self._gate.refusal(input, member=input.limit_member or key)
            except Exception:
                logger.warning("risk checks failed; sending anyway", extra=log_extra, exc_info=True)
                refusal = None
            if refusal is not None:
                logger.warning(
                    "delivery refused by a risk control",
                    extra={**log_extra, "refusal": refusal.code},
                )
                # A full limit carries when it has room again (a resend may be retried
                # then); a block carries none. Never the destination nor the code.
                raise ApplicationError(
                    "refused by a risk control",
                    {
                        "reason": refusal.reason,
                        "code": refusal.code,
                        "limit": refusal.limit,
                        "retry_after_s": refusal.retry_after_s,
                    },
                    type=ErrorType.BLOCKED,
                    non_retryable=True,
                )
        provider = self._sandbox
        quote: Quote | None = None
        try:
            provider = await self._provider(input)
            if self._scenarios is not None and input.mode is Mode.TEST:
                provider = await self._scenarios.sandbox_for(input, provider)
            quote = await self._admit(input, provider, rendered, key, log_extra, version)
            receipt = await _send_before(deadline, provider, message)
        except PermanentDeliveryError as exc:
            logger.warning("delivery failed permanently: %s", exc.reason, extra=log_extra)
            self._log(input, key, provider.name, None, failed=exc.reason, template=version)
            raise ApplicationError(
                f"delivery failed: {exc.reason}",
                type=ErrorType.PERMANENT_DELIVERY,
                non_retryable=True,
            ) from None
        except OutcomeUnknownError:
            result = await self._reconcile(provider, message, log_extra, deadline)
            outcome = "reconciled" if result.provider_message_id else "unconfirmed"
            self._log(
                input,
                key,
                result.provider,
                result.provider_message_id,
                sent=outcome,
                template=version,
                quote=quote,
            )
            return result.model_copy(
                update={"template_version": version, "cost": quote.cost() if quote else None}
            )
        except TransientDeliveryError as exc:
            logger.info("delivery failed, will retry: %s", exc.reason, extra=log_extra)
            delay = getattr(exc, "retry_after_s", None)
            self._log(
                input,
                key,
                provider.name,
                None,
                error=exc.reason,
                attempt=info.attempt,
                template=version,
            )
            raise ApplicationError(
                f"delivery failed: {exc.reason}",
                type=ErrorType.TRANSIENT_DELIVERY,
                next_retry_delay=timedelta(seconds=delay) if delay else None,
            ) from None
        logger.info(
            "delivered via %s",
            receipt.provider,
            extra={**log_extra, "message_id": receipt.message_id},
        )
        self._log(input, key, receipt.provider, receipt.message_id, template=version, quote=quote)
        return _result_of(receipt).model_copy(
            update={"template_version": version, "cost": quote.cost() if quote else None}
        )

    async def _admit(
        self,
        input: DeliverInput,
        provider: Provider,
        rendered: RenderedMessage,
        key: str,
        log_extra: Mapping[str, object],
        version: int | None,
    ) -> Quote | None:
        """The send's quote, once it fits the verification's cost cap and the spend caps
        (activities.pricing); a refusal is raised before any provider call."""
        if self._pricing is None:
            return None
        segments = segment_count(rendered.text) if input.channel.is_phone else 1
        try:
            quote = await self._pricing.quote(input, provider.name, segments=segments)
        except Exception:
            logger.warning("delivery not costed: no quote", extra=dict(log_extra), exc_info=True)
            return None
        try:
            await self._pricing.admit(
                input, quote, member=input.limit_member or key, log_extra=log_extra
            )
        except ApplicationError as refused:
            if refused.type == ErrorType.COST_CAP:
                detail = refused.details[0] if refused.details else {}
                reason = detail.get("reason") if isinstance(detail, dict) else None
                self._log(input, key, provider.name, None, failed=reason or "cost cap")
            raise
        return quote

    async def _render(
        self, input: DeliverInput, *, code: str, ttl_s: int
    ) -> tuple[RenderedMessage, int | None]:
        """The message and the application's template version (None: the catalogue)."""
        if self._templates is None:
            return catalogue_message(input, code=code, ttl_s=ttl_s), None
        message = await self._templates.message(input, code=code, ttl_s=ttl_s)
        return message.rendered, message.template.version if message.template else None

    def _log(
        self,
        input: DeliverInput,
        key: str,
        provider: str,
        message_id: str | None,
        *,
        failed: str | None = None,
        sent: str | None = None,
        error: str | None = None,
        attempt: int | None = None,
        template: int | None = None,
        quote: Quote | None = None,
    ) -> None:
        """Note the send in the event log, so support sees it while the verification runs:
        sent (`sent` says how when the answer was lost), failed for good (`failed`), or one
        try that failed transiently (`error`, with its `attempt`; the delivery retries).

        In the background, after the activity has answered: the code may be on the phone
        already, and a check that overtakes this activity's completion costs the
        workflow a retried task. Best effort: the final batch writes the same entries
        (and the send's cost, `quote`, with them).
        """
        if self._recorder is None and (quote is None or self._pricing is None):
            return
        task = asyncio.get_running_loop().create_task(
            self._write_log(
                input,
                key,
                provider,
                message_id,
                failed=failed,
                sent=sent,
                error=error,
                attempt=attempt,
                template=template,
                quote=quote,
            )
        )
        self._log_tasks.add(task)
        task.add_done_callback(self._log_tasks.discard)

    async def drain_logs(self) -> None:
        """Wait for the event log writes still running (at shutdown, in tests)."""
        while self._log_tasks:
            await asyncio.gather(*list(self._log_tasks), return_exceptions=True)

    async def _write_log(
        self,
        input: DeliverInput,
        key: str,
        provider: str,
        message_id: str | None,
        *,
        failed: str | None,
        sent: str | None,
        error: str | None,
        attempt: int | None,
        template: int | None = None,
        quote: Quote | None = None,
    ) -> None:
        if quote is not None and self._pricing is not None and failed is None and error is None:
            try:
                await self._pricing.record([cost_entry(input, key, provider, message_id, quote)])
            except Exception:
                logger.warning(
                    "delivery cost write failed; the final record will carry it",
                    extra={"verification_id": input.verification_id},
                    exc_info=True,
                )
        if self._recorder is None:
            return
        now = datetime.now(UTC)
        common = {
            "channel": input.channel,
            "provider": provider,
            "step_index": input.step_index,
            "template_version": template,
        }
        entries = [
            LogEntry(
                key=f"send:{key}",
                type=EventType.SEND_ATTEMPTED,
                occurred_at=now,
                reason=send_reason(input.kind.value, input.rule_id, input.sender),
                **common,
            )
        ]
        if error is not None:
            entries.append(
                LogEntry(
                    key=f"error:{key}:{attempt}",
                    type=EventType.SEND_ERROR,
                    occurred_at=now,
                    reason=f"{error} (try {attempt})",
                    **common,
                )
            )
        else:
            entries.append(
                LogEntry(
                    key=f"{'failed' if failed else 'sent'}:{key}",
                    type=EventType.FAILED if failed else EventType.SENT,
                    occurred_at=now,
                    provider_message_id=message_id or None,
                    reason=failed or sent,
                    **common,
                )
            )
        verification = Verification(
            id=input.verification_id,
            application_id=input.application_id,
            mode=input.mode,
            country=input.country,
            destinations={input.step_index: (input.channel, input.to)},
        )
        try:
            await self._recorder.record(verification, entries, dispatch=False)
        except Exception:
            logger.warning(
                "event log write failed; the final record will carry it",
                extra={"verification_id": input.verification_id},
                exc_info=True,
            )

    async def _after_the_end(
        self,
        input: DeliverInput,
        key: str,
        message: OutboundMessage,
        log_extra: Mapping[str, object],
        deadline: float | None,
    ) -> DeliverResult:
        """A retry that came due after the verification ended sends nothing.

        An earlier attempt may have sent the message all the same (its answer lost, its
        worker killed mid-send): where the provider can tell, the delivery is reported as
        sent, so the record shows what reached the user; otherwise it failed with
        VerificationFinished.
        """
        try:
            provider: Provider | None = await self._provider(input)
        except DeliveryError:
            provider = None
        found = await _find_sent(provider, message, deadline) if provider else None
        if found is not None:
            logger.info("verification ended; an earlier attempt had sent", extra=log_extra)
            self._log(input, key, found.provider, found.message_id, sent="reconciled")
            return _result_of(found)
        logger.info("verification ended before this retry; not sending", extra=log_extra)
        raise ApplicationError(
            "the verification ended before this retry", type=ErrorType.FINISHED, non_retryable=True
        )

    async def _reconcile(
        self,
        provider: Provider,
        message: OutboundMessage,
        log_extra: Mapping[str, object],
        deadline: float | None = None,
    ) -> DeliverResult:
        """The send may have gone out but no answer came back: never blindly send again.

        Ask the provider where it can tell (Twilio lists recent messages), until the
        attempt's `deadline`; otherwise count the delivery as sent but unconfirmed. Its
        receipt, matched by the delivery key, or the step's timer then decides.
        """
        found = await _find_sent(provider, message, deadline)
        if found is not None:
            logger.info("delivery outcome reconciled", extra=log_extra)
            return _result_of(found)
        logger.warning("delivery outcome unknown; not sending again", extra=log_extra)
        return DeliverResult(
            provider=provider.name, provider_message_id="", status=DeliveryStatus.SENT
        )
