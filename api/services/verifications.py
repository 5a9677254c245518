"""Verifications: start (after the risk gates), check, read, resend, next channel, cancel.

A start fills what the request left out from its application's defaults, checks every
destination for its channel (and, for live keys, that the channel has a provider), then
runs the cheap synchronous gates before any workflow starts, so a refused start never
reaches a provider: risk blocks (skipped for automatic ones when every destination is on
the safe list), then the application's policy and velocity limits. A check is refused
while a destination's failed-check counter is at the cap; a wrong code that brings it
there records a lockout. `Idempotency-Key` handling stays in `api.idempotency`; the
Temporal side is `api.services.verification_workflows`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel import col, select
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from api.auth import Principal
from api.idempotency import check_update_id
from api.problems import (
    ApiProblem,
    ChannelNotAllowed,
    DeliveryFailed,
    RateLimited,
    RiskPolicyRefused,
    SpendCapReached,
    VerificationFinished,
    VerificationNotFound,
    field_error,
    invalid,
)
from api.schemas.verifications import (
    DEFAULT_MAX_SENDS,
    DEFAULT_RESEND_COOLDOWN_S,
    VERIFICATION_ID_RE,
    ChannelStepCreate,
    CheckRequest,
    DeliveryPublic,
    VerificationCreate,
)
from api.services import events, sandbox_scenarios
from api.services.lockouts import record_lockouts
from api.services.risk_caches import RiskCaches
from api.services.verification_workflows import (
    VerificationService,
    idempotent_verification_id,
    now_utc,
)
from otp.cost import caps
from otp.cost.money import format_amount, parse_amount
from otp.domain import (
    CancelResult,
    Channel,
    ChannelStep,
    CheckResult,
    DeliveryStatus,
    Mode,
    NextChannelResult,
    ResendResult,
    VerificationInput,
    VerificationState,
)
from otp.domain.destinations import (
    InvalidDestinationError,
    country_of,
    looks_like_email,
    mask,
    number_prefix,
    parse_destination,
    parse_phone,
    range_hash,
)
from otp.observability import metrics
from otp.observability.logs import bind
from otp.risk import policy as risk
from otp.risk.limits import Limiter
from otp.routing.channels import live_plan
from otp.routing.rules import Rule, route
from otp.security.codes import code_digest
from otp.settings import Secrets, Settings
from otp.store import Store, VerificationDestination, VerificationRecord, utcnow
from otp.store import costs as store_costs
from otp.store import records as store_records
from otp.store.events import EventRecorder
from otp.store.risk_blocks import covers, is_active
from otp.store.tables import RiskBlock

logger = logging.getLogger("otp.api")

_APP_DEFAULT_FIELDS = ("code_length", "code_type", "ttl_s", "max_attempts", "locale")


def require_id(verification_id: str) -> str:
    """Malformed ids are unknown ids: answered 404 without asking Temporal."""
    if not VERIFICATION_ID_RE.match(verification_id):
        raise VerificationNotFound()
    bind(verification_id=verification_id)
    return verification_id


def with_app_defaults(body: VerificationCreate, principal: Principal) -> VerificationCreate:
    """Fill the fields the request left out from its application's defaults."""
    defaults = principal.defaults
    update: dict[str, object] = {
        name: getattr(defaults, name)
        for name in _APP_DEFAULT_FIELDS
        if name not in body.model_fields_set and getattr(defaults, name) is not None
    }
    if body.brand is None and principal.brand:
        update["brand"] = principal.brand
    return body.model_copy(update=update) if update else body


def plan(
    body: VerificationCreate,
    principal: Principal,
    settings: Settings,
    rules: Sequence[Rule] = (),
) -> tuple[list[ChannelStep], str | None]:
    """Validate every destination for its channel; the plan and the first phone's country.

    Live steps take their providers and sender from the application's routing `rules`
    (`otp.routing.rules.route`); without a matching rule, the global order.
    """
    errors: list[dict[str, str]] = []
    default_channel = Channel.EMAIL if looks_like_email(body.to) else Channel.SMS
    try:
        top = parse_destination(body.to, default_channel).value
    except InvalidDestinationError as exc:
        errors.append(field_error("#/to", str(exc), "invalid_destination"))
        top = None
    # Left out: the application's default plan (its steps that fit `to`), else one step.
    requested = (
        body.channels
        or [
            ChannelStepCreate(channel=s.channel, timeout_s=s.timeout_s)
            for s in principal.defaults.plan_for(email=default_channel is Channel.EMAIL)
        ]
        or [ChannelStepCreate(channel=default_channel)]
    )
    refused = [s.channel.value for s in requested if not principal.allows(s.channel)]
    if refused:
        raise ChannelNotAllowed(
            list(dict.fromkeys(refused)), sorted(c.value for c in principal.allowed_channels)
        )
    # Live keys may plan only channels with a configured provider (each step then fails
    # over across that channel's providers, in the configured order); test keys use the
    # sandbox for every channel.
    live = live_plan(settings) if principal.mode is Mode.LIVE else {}
    steps: list[ChannelStep] = []
    country: str | None = None
    for index, step in enumerate(requested):
        if principal.mode is Mode.LIVE and step.channel not in live:
            errors.append(
                field_error(
                    f"#/channels/{index}/channel",
                    f"channel not available in live mode: {step.channel.value} has no live "
                    "provider yet (available: "
                    + (", ".join(sorted(c.value for c in live)) or "none")
                    + ")",
                    "channel_unavailable",
                )
            )
        if step.to is None:
            if top is None:
                continue  # already reported on #/to
            raw, pointer = body.to, "#/to"
        else:
            raw, pointer = step.to, f"#/channels/{index}/to"
        try:
            destination = parse_destination(raw, step.channel)
        except InvalidDestinationError as exc:
            errors.append(
                field_error(
                    pointer,
                    f"invalid destination for {step.channel.value}: {exc}",
                    "invalid_destination",
                )
            )
            continue
        if country is None and step.channel.is_phone:
            country = destination.country
        routed = route(
            rules, step.channel, destination.value, destination.country, live.get(step.channel, [])
        )
        steps.append(
            ChannelStep(
                channel=step.channel,
                to=destination.value,
                timeout_s=step.timeout_s,
                providers=routed.providers,
                rule_id=routed.rule.id if routed.rule else None,
                sender=routed.sender,
            )
        )
    if errors:
        raise invalid(errors)
    return steps, country


def blocked_step(
    blocks: list[RiskBlock], steps: list[ChannelStep], code_secret: bytes
) -> int | None:
    """The first phone step whose country or number range one of `blocks` refuses."""
    if not blocks:
        return None
    now = utcnow()
    for index, step in enumerate(steps):
        if not step.channel.is_phone:
            continue
        country, prefix = parse_phone(step.to).country, number_prefix(step.to)
        prefix_hash = range_hash(code_secret, prefix) if prefix else None
        if any(
            is_active(block, now)
            and covers(block, country=country, prefix=prefix, prefix_hash=prefix_hash)
            for block in blocks
        ):
            return index
    return None


@dataclass(frozen=True)
class Created:
    """A verification as a create left it."""

    id: str
    input: VerificationInput
    replayed: bool  # an Idempotency-Key matched an existing verification
    headers: dict[str, str] = field(default_factory=dict)  # the tightest limit's RateLimit-*


@dataclass(frozen=True)
class Verifications:
    """The verification operations of one caller (its principal, scope and limits)."""

    principal: Principal
    workflows: VerificationService
    store: Store
    limiter: Limiter
    secrets: Secrets
    settings: Settings
    recorder: EventRecorder | None
    caches: RiskCaches

    # ------------------------------------------------------------------ start
    async def create(self, body: VerificationCreate, *, idempotency_key: str | None) -> Created:
        """Run the gates and start the workflow (or find the one the key started)."""
        principal, secret = self.principal, self.secrets.code_secret
        body = with_app_defaults(body, principal)
        rules = (
            await self.caches.routing_rules(self.store, principal.application_id)
            if principal.mode is Mode.LIVE
            else []
        )
        steps, country = plan(body, principal, self.settings, rules)
        scope = (principal.application_id, principal.mode.value)
        safe_listed = risk.is_safe_listed(
            await self.caches.safe_hashes(self.store, scope),
            risk.destination_hashes(secret, steps),
        )
        # A safe-listed create skips automatic (conversion monitoring) blocks, not manual
        # ones; blocks are checked before the limits are charged.
        blocks = await self.caches.active_blocks(self.store, scope)
        if safe_listed:
            blocks = [block for block in blocks if not block.automatic]
        blocked = blocked_step(blocks, steps, secret)
        if blocked is not None:
            logger.info("create refused by a risk block", extra={"step_index": blocked})
            raise RiskPolicyRefused(risk.RefusalReason.SCOPE_BLOCKED.value, step_index=blocked)
        await sandbox_scenarios.refuse_fraud_blocked(
            self.store,
            application_id=principal.application_id,
            mode=principal.mode,
            steps=steps,
            secret=secret,
        )
        cost_cap = (
            parse_amount(body.max_cost)
            if body.max_cost is not None
            else principal.risk.spend_caps.per_verification_micros
        )
        spend = await self._first_send_charge(steps, cost_cap)
        # The IP limit counts the end user's address, which the caller passes: the
        # connection's address is the caller's own backend.
        gate = await risk.gate_create(
            self.limiter,
            principal.risk,
            secret=secret,
            application_id=principal.application_id,
            mode=principal.mode,
            steps=steps,
            client_ip=str(body.user_ip) if body.user_ip is not None else None,
            user_id=body.user_id,
            member=(
                idempotent_verification_id(principal, idempotency_key)
                if idempotency_key is not None
                else None
            ),
            safe_listed=safe_listed,
            spend=spend,
        )
        if gate.refusal is not None:
            logger.info(
                "create refused by risk policy", extra={"reason": gate.refusal.reason.value}
            )
            raise RiskPolicyRefused(gate.refusal.reason.value, step_index=gate.refusal.step_index)
        if gate.refused:
            logger.info("create rate limited", extra={"limit": gate.refused[0].limit.name})
            raise RateLimited(
                gate.refused[0].limit.name,
                risk.retry_after_s(gate.refused),
                risk.ratelimit_headers(gate.refused),
            )
        if gate.spend_refused is not None:
            over = gate.spend_refused
            logger.info("create refused at a spend cap", extra={"cap": over.cap})
            await caps.note_refusal(
                self.limiter, over, application_id=principal.application_id, mode=principal.mode
            )
            raise SpendCapReached(
                over.cap,
                over.retry_after_s,
                currency=over.currency,
                cap_amount=format_amount(over.cap_micros),
                spent=format_amount(over.spent_micros),
                cost=format_amount(over.cost_micros),
                country=over.country if over.cap == caps.CapName.COUNTRY_DAILY.value else None,
            )
        headers = risk.ratelimit_headers([gate.tightest]) if gate.tightest is not None else {}
        input = self._input(body, steps, country).model_copy(
            update={
                "cost_cap_micros": cost_cap,
                "precharged_micros": spend.cost_micros if spend is not None else 0,
            }
        )
        started = await self.workflows.start(input, principal, idempotency_key=idempotency_key)
        if not started.replayed:
            metrics.count_started(steps[0].channel.value, country, principal.mode)
            await events.record_created(self.recorder, started.id, started.input)
        logger.info(
            "verification %s",
            "replayed" if started.replayed else "started",
            extra={
                "verification_id": started.id,
                "mode": principal.mode.value,
                "channel": steps[0].channel.value,
                "to": mask(steps[0].to),
                "steps": len(steps),
            },
        )
        return Created(started.id, started.input, started.replayed, dict(headers))

    async def _first_send_charge(
        self, steps: list[ChannelStep], cost_cap: int | None
    ) -> caps.SpendCharge | None:
        """What the first send charges to the spend caps at create: its estimate (one SMS
        segment: the worker charges what the rendered message adds), by the first provider
        of its step. None when it is free, or when it alone passes the verification's cost
        cap (the workflow then skips that step, and nothing is charged for it)."""
        first, principal = steps[0], self.principal
        provider = first.providers[0] if principal.mode is Mode.LIVE and first.providers else None
        if provider is None:
            return None
        book = self.caches.price_book(self.store, self.settings)
        quote = await book.quote(principal.application_id, provider, first.channel, first.to)
        if quote.micros <= 0 or (cost_cap is not None and quote.micros > cost_cap):
            return None
        country = country_of(first.to) if first.channel.is_phone else None
        return caps.SpendCharge(
            caps.budgets(
                principal.risk.spend_caps,
                application_id=principal.application_id,
                mode=principal.mode,
                country=country,
                now=now_utc(),
            ),
            quote.micros,
            quote.currency,
            country,
        )

    def _input(
        self, body: VerificationCreate, steps: list[ChannelStep], country: str | None
    ) -> VerificationInput:
        principal, settings = self.principal, self.settings
        return VerificationInput(
            application_id=principal.application_id,
            mode=principal.mode,
            channels=steps,
            code_length=body.code_length,
            code_type=body.code_type,
            ttl_s=body.ttl_s,
            max_attempts=body.max_attempts,
            max_sends=DEFAULT_MAX_SENDS,
            resend_cooldown_s=DEFAULT_RESEND_COOLDOWN_S,
            resend_backoff=principal.risk.resend_backoff,
            locale=body.locale,
            brand=body.brand or "",
            client_ref=body.client_ref,
            country=country,
            created_at=now_utc(),
            provider_max_attempts=settings.provider_max_attempts,
            web_domain=principal.defaults.web_domain or settings.webotp_domain,
            app_hash=body.app_hash,
        )

    # ------------------------------------------------------------------ reads
    async def read(self, verification_id: str) -> VerificationState:
        """The state now (past Temporal's retention, the final state the store kept), with
        the providers' prices known since."""
        require_id(verification_id)
        try:
            state = await self.workflows.state(verification_id, self.principal)
        except VerificationNotFound:
            recorded = await self._recorded_state(verification_id)
            if recorded is None:
                raise
            state = recorded
        return await self._with_prices(verification_id, state)

    async def _with_prices(
        self, verification_id: str, state: VerificationState
    ) -> VerificationState:
        """The state with the providers' prices the store learned after the workflow did
        (receipts and fetches that came once it had finished)."""
        if not any(d.cost is not None for d in state.deliveries):
            return state
        try:
            rows = await store_costs.costs_of(self.store, verification_id=verification_id)
        except Exception:
            logger.warning("delivery prices unreadable", exc_info=True)
            return state
        priced = {r.delivery_key: r for r in rows if r.reported_micros is not None}
        for attempt in state.deliveries:
            row = priced.get(attempt.reference or "")
            if row is not None and attempt.cost is not None:
                attempt.cost.reported_micros = row.reported_micros
                attempt.cost.reported_currency = row.reported_currency
        return state

    async def _recorded_state(self, verification_id: str) -> VerificationState | None:
        """The final state the store kept of a verification Temporal no longer holds."""
        record = await store_records.get_record(
            self.store,
            verification_id=verification_id,
            application_id=self.principal.application_id,
            mode=self.principal.mode.value,
        )
        if record is None or not record.final or not record.snapshot:
            return None
        return VerificationState.model_validate(record.snapshot)

    # ------------------------------------------------------------------ check
    async def check(
        self, verification_id: str, body: CheckRequest, *, idempotency_key: str | None
    ) -> CheckResult:
        """Compare a code, unless a destination's failed checks are at the cap."""
        principal, secrets = self.principal, self.secrets
        require_id(verification_id)
        digest = code_digest(secrets.code_secret, verification_id, body.code)
        update_id = check_update_id(secrets, principal, verification_id, idempotency_key, body)
        hashes = await self._destination_hashes(verification_id)
        counters = risk.failed_check_keys(principal.application_id, principal.mode, hashes)
        if await risk.failed_checks_reached(self.limiter, principal.risk, counters):
            logger.info(
                "check refused: failed checks exceeded",
                extra={"verification_id": verification_id},
            )
            metrics.count_check("refused")
            raise RiskPolicyRefused(risk.RefusalReason.FAILED_CHECKS_EXCEEDED.value)
        try:
            result = await self.workflows.check(
                verification_id, principal, digest=digest, update_id=update_id
            )
        except VerificationNotFound:
            # Past Temporal's retention the store still knows how it ended: say why.
            state = await self._recorded_state(verification_id)
            if state is None or not state.status.is_terminal:
                raise
            raise VerificationFinished(state.status.value, state.reason) from None
        logger.info(
            "code checked",
            extra={
                "verification_id": verification_id,
                "valid": result.valid,
                "status": result.status.value,
                "attempts_remaining": result.attempts_remaining,
            },
        )
        metrics.count_check("approved" if result.valid else "incorrect")
        if result.valid or result.attempts_used > 0:  # an approval, or a wrong code counted
            reached = await risk.note_check(
                self.limiter, counters, approved=result.valid, risk=principal.risk
            )
            if reached:
                await record_lockouts(
                    self.recorder,
                    self.store,
                    principal,
                    verification_id,
                    reached=reached,
                    counters=counters,
                    hashes=hashes,
                    steps=await self._plan_of(verification_id),
                    code_secret=secrets.code_secret,
                )
        await events.record_check(
            self.recorder,
            verification_id,
            result,
            application_id=principal.application_id,
            mode=principal.mode,
        )
        return result

    async def _destination_hashes(self, verification_id: str) -> list[str]:
        """The keyed hashes of a verification's destinations (its failed-check counters):
        the rows the event log wrote with the create (one indexed query, scoped to the
        caller); when that best-effort write was lost, the workflow's state."""
        query = (
            select(VerificationDestination.destination_hash)
            .join(
                VerificationRecord,
                col(VerificationRecord.id) == col(VerificationDestination.verification_id),
            )
            .where(
                col(VerificationDestination.verification_id) == verification_id,
                col(VerificationRecord.application_id) == self.principal.application_id,
                col(VerificationRecord.mode) == self.principal.mode.value,
            )
        )
        async with self.store.session() as session:
            hashes = sorted((await session.exec(query)).all())
        if hashes:
            return hashes
        try:
            state = await self.workflows.state(verification_id, self.principal)
        except (ApiProblem, TemporalError, RPCError, TimeoutError):
            return []  # unknown or finished: the check itself answers
        return risk.destination_hashes(self.secrets.code_secret, state.channels)

    async def _plan_of(self, verification_id: str) -> list[ChannelStep]:
        """The plan of a verification (to mask a destination that was just locked out)."""
        try:
            return list((await self.workflows.state(verification_id, self.principal)).channels)
        except (ApiProblem, TemporalError, RPCError, TimeoutError):
            return []

    # ---------------------------------------------------------------- updates
    async def resend(self, verification_id: str) -> ResendResult:
        """The same code again on the current channel; a failed delivery is a 502 problem."""
        result = await self.workflows.resend(require_id(verification_id), self.principal)
        delivery = DeliveryPublic.of(result.delivery)
        logger.info(
            "code resent",
            extra={
                "verification_id": verification_id,
                "channel": delivery.channel.value,
                "delivery_status": delivery.status.value,
            },
        )
        if result.delivery.status is DeliveryStatus.FAILED:
            raise DeliveryFailed(
                "The resend could not be delivered.",
                error_type=result.delivery.error_type,
                delivery=delivery.model_dump(mode="json"),
                sends_remaining=result.sends_remaining,
            )
        return result

    async def next_channel(self, verification_id: str) -> NextChannelResult:
        """Move to the next step of the plan now."""
        result = await self.workflows.next_channel(require_id(verification_id), self.principal)
        logger.info(
            "moved to next channel",
            extra={
                "verification_id": verification_id,
                "step_index": result.step_index,
                "channel": result.delivery.channel.value,
                "delivery_status": result.delivery.status.value,
            },
        )
        return result

    async def cancel(self, verification_id: str) -> CancelResult:
        """End the verification now."""
        result = await self.workflows.cancel(require_id(verification_id), self.principal)
        logger.info("verification canceled", extra={"verification_id": verification_id})
        return result
