"""Every table of the store (SQLModel). Changing one needs an Alembic migration.

Nothing here ever holds a code. Destinations appear only masked (`+1********23`) and
as a keyed hash for exact search, number ranges only as a keyed hash; secrets (webhook signing secrets, stored idempotent
responses) are sealed with the payload codec's AES-GCM key (`otp.security.sealing`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ sandbox inbox
class SandboxMessageBase(SQLModel):
    message_id: str = Field(index=True, unique=True, max_length=64)
    verification_id: str = Field(index=True, max_length=64)
    application_id: str = Field(index=True, max_length=64)
    channel: str = Field(max_length=16)
    to: str = Field(index=True, max_length=320)
    subject: str = Field(default="", max_length=512)
    body: str
    created_at: datetime = Field(default_factory=utcnow)


class SandboxMessage(SandboxMessageBase, table=True):
    __tablename__ = "sandbox_messages"
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=255)


class SandboxMessagePublic(SandboxMessageBase):
    pass


# ---------------------------------------------------------- applications and keys
class Application(SQLModel, table=True):
    __tablename__ = "applications"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=120)
    brand: str = Field(default="", max_length=60)
    # Defaults applied to requests that leave them out (see otp.applications.model.Defaults).
    defaults: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Channels this application may use; empty: all of them.
    allowed_channels: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Fraud and abuse settings (see otp.risk.policy.RiskSettings); empty: the safe defaults.
    risk: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(index=True, max_length=64, foreign_key="applications.id")
    mode: str = Field(max_length=8)
    name: str = Field(default="", max_length=120)
    # SHA-256 of the whole key (hex). The key itself is shown once and never stored.
    key_hash: str = Field(unique=True, max_length=64)
    # `otp_test_…` + last 4 characters, to recognise a key in a list.
    hint: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


# ------------------------------------------------------------------- verifications
class VerificationRecord(SQLModel, table=True):
    """One row per verification: what support and analytics read, kept after Temporal forgets."""

    __tablename__ = "verifications"
    __table_args__ = (
        Index("ix_verifications_app_mode_created", "application_id", "mode", "created_at", "id"),
    )
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(max_length=64)
    mode: str = Field(max_length=8)
    status: str = Field(index=True, max_length=32)
    reason: str | None = Field(default=None, max_length=300)
    # Channel of the first step, and the channel in use when it finished.
    first_channel: str = Field(max_length=16)
    channel: str = Field(index=True, max_length=16)
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    country: str | None = Field(default=None, index=True, max_length=2)
    # Keyed hash (`otp.domain.destinations.range_hash`) of the number range (a phone destination
    # without its last 4 digits) that conversion monitoring groups by. None for email, and
    # for rows written before the range was hashed.
    prefix_hash: str | None = Field(default=None, index=True, max_length=64)
    to_masked: str = Field(default="", max_length=320)
    client_ref: str | None = Field(default=None, index=True, max_length=128)
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    attempts_used: int = 0
    max_attempts: int = 0
    sends: int = 0
    wrong_checks: int = 0
    fallbacks: int = 0
    delivered: bool = False
    delivered_at: datetime | None = None
    time_to_verify_ms: int | None = None
    time_to_deliver_ms: int | None = None
    # Set by the workflow's final write: the row is complete and authoritative.
    final: bool = False
    # The verification as `GET /v1/verifications/{id}` shows it, destinations masked:
    # what that endpoint answers once Temporal no longer holds the execution.
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class VerificationDestination(SQLModel, table=True):
    """Keyed hashes of a verification's destinations: exact search without storing them."""

    __tablename__ = "verification_destinations"
    verification_id: str = Field(primary_key=True, max_length=64)
    destination_hash: str = Field(primary_key=True, index=True, max_length=64)
    channel: str = Field(max_length=16)


class VerificationEvent(SQLModel, table=True):
    """One state change of a verification. `key` makes every write idempotent."""

    __tablename__ = "verification_events"
    __table_args__ = (UniqueConstraint("verification_id", "key", name="uq_event_key"),)
    id: int | None = Field(default=None, primary_key=True)
    verification_id: str = Field(index=True, max_length=64)
    key: str = Field(max_length=128)
    application_id: str = Field(index=True, max_length=64)
    mode: str = Field(max_length=8)
    type: str = Field(index=True, max_length=32)
    occurred_at: datetime = Field(index=True)
    recorded_at: datetime = Field(default_factory=utcnow)
    channel: str | None = Field(default=None, max_length=16)
    provider: str | None = Field(default=None, max_length=40)
    provider_message_id: str | None = Field(default=None, max_length=128)
    country: str | None = Field(default=None, max_length=2)
    to_masked: str | None = Field(default=None, max_length=320)
    destination_hash: str | None = Field(default=None, max_length=64)
    step_index: int | None = None
    attempt: int | None = None
    duration_ms: int | None = None
    reason: str | None = Field(default=None, max_length=300)
    # Whether the webhooks this event triggers were handed to their workflows.
    webhooks_dispatched: bool = False
    # The application's message template version the send used (None: the catalogue).
    template_version: int | None = None


# ------------------------------------------------------------------- idempotency
class IdempotencyRecord(SQLModel, table=True):
    """An Idempotency-Key in use: in flight until its response is stored (sealed)."""

    __tablename__ = "idempotency_keys"
    application_id: str = Field(primary_key=True, max_length=64)
    mode: str = Field(primary_key=True, max_length=8)
    scope: str = Field(primary_key=True, max_length=160)  # method + route + resource
    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)  # SHA-256 of the request body
    state: str = Field(max_length=16)  # in_flight | completed
    status_code: int | None = None
    response: str | None = None  # sealed JSON body
    created_at: datetime = Field(default_factory=utcnow)
    locked_until: datetime
    expires_at: datetime = Field(index=True)


# ---------------------------------------------------------------------- webhooks
class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(index=True, max_length=64)
    mode: str = Field(max_length=8)
    url: str = Field(max_length=2048)
    description: str = Field(default="", max_length=300)
    # Sealed `whsec_…` secret: the store alone cannot sign.
    secret_sealed: str
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Secret rotation: the secret before the last rotation (sealed), still signing beside
    # the current one until it expires; then dropped.
    previous_secret_sealed: str | None = None
    previous_secret_expires_at: datetime | None = None


class WebhookMessage(SQLModel, table=True):
    """One event for one endpoint: the body is fixed, attempts add rows below."""

    __tablename__ = "webhook_messages"
    __table_args__ = (UniqueConstraint("message_id", "endpoint_id", name="uq_webhook_message"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(index=True, max_length=64)  # the `webhook-id` header
    endpoint_id: str = Field(index=True, max_length=64)
    application_id: str = Field(index=True, max_length=64)
    mode: str = Field(max_length=8)
    event_type: str = Field(max_length=64)
    verification_id: str | None = Field(default=None, index=True, max_length=64)
    status: str = Field(default="pending", max_length=16)  # pending|succeeded|failed|disabled
    attempts: int = 0
    last_status_code: int | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempts"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id", "attempt", name="uq_webhook_attempt"),
    )
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(index=True, max_length=64)
    endpoint_id: str = Field(index=True, max_length=64)
    attempt: int
    attempted_at: datetime = Field(default_factory=utcnow)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=300)
    duration_ms: int = 0


# ------------------------------------------------------------------- fraud controls
class RateHit(SQLModel, table=True):
    """One counted hit of a sliding-window limit (the store backend of `otp.risk.limits`)."""

    __tablename__ = "rate_hits"
    __table_args__ = (Index("ix_rate_hits_key_at", "key", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)
    at: float  # seconds since the epoch
    cost: int = 1


class Counter(SQLModel, table=True):
    """A plain counter (e.g. consecutive failed checks per destination), with an expiry."""

    __tablename__ = "counters"
    key: str = Field(primary_key=True, max_length=200)
    # 64-bit: spend budgets count micros of a currency (otp.cost.caps).
    value: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    expires_at: float | None = None  # seconds since the epoch; None: never
    updated_at: datetime = Field(default_factory=utcnow)


class RiskBlock(SQLModel, table=True):
    """A country or number prefix refused for one application and mode, until it expires or
    an operator lifts it. Automatic blocks come from conversion monitoring."""

    __tablename__ = "risk_blocks"
    __table_args__ = (Index("ix_risk_blocks_scope", "application_id", "mode", "scope", "value"),)
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(max_length=64)
    mode: str = Field(max_length=8)
    scope: str = Field(max_length=16)  # country | prefix
    # Country, operator-typed prefix, or (automatic prefix blocks) only a short clear range
    # for people to read (`otp.domain.destinations.short_range`).
    value: str = Field(max_length=16)
    # Automatic prefix blocks: the keyed hash of the blocked range, what matching uses.
    value_hash: str | None = Field(default=None, index=True, max_length=64)
    reason: str = Field(max_length=300)
    automatic: bool = True
    level: int = 1  # how many times this scope was blocked automatically (escalation)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None  # None: until lifted
    lifted_at: datetime | None = None
    lifted_by: str | None = Field(default=None, max_length=120)


# --------------------------------------------------------------------- lockouts and safe list
class Lockout(SQLModel, table=True):
    """A destination refused after `max_failed_checks` wrong codes, from `since` until
    `until` or until an operator lifts it. The destination is kept only as its keyed
    hash (for equality) and masked (for people)."""

    __tablename__ = "lockouts"
    __table_args__ = (
        Index("ix_lockouts_destination", "application_id", "mode", "destination_hash"),
        Index("ix_lockouts_until", "until"),
    )
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(max_length=64)
    mode: str = Field(max_length=8)
    destination_hash: str = Field(max_length=64)
    to_masked: str = Field(max_length=320)
    channel: str | None = Field(default=None, max_length=16)
    failed_count: int = 0
    since: datetime = Field(default_factory=utcnow)
    until: datetime = Field(default_factory=utcnow)
    lifted_at: datetime | None = None
    lifted_by: str | None = Field(default=None, max_length=120)


class SafeListEntry(SQLModel, table=True):
    """A destination exempt from velocity limits and conversion blocks for one application
    and mode (test numbers, staff). Removal keeps the row (`removed_at`, `removed_by`)."""

    __tablename__ = "safe_list"
    __table_args__ = (
        Index("ix_safe_list_destination", "application_id", "mode", "destination_hash"),
    )
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(max_length=64)
    mode: str = Field(max_length=8)
    destination_hash: str = Field(max_length=64)
    to_masked: str = Field(max_length=320)
    note: str = Field(default="", max_length=200)
    added_by: str = Field(default="admin", max_length=120)
    added_at: datetime = Field(default_factory=utcnow)
    removed_at: datetime | None = None
    removed_by: str | None = Field(default=None, max_length=120)


# ------------------------------------------------------- Twilio Verify v2 services
class TwilioVerifyService(SQLModel, table=True):
    """A Twilio Verify v2 `Service` (`VA...`) of an application (the Twilio "account").

    Configuration only, no destination data: kept while its application exists. The
    flags that have no equivalent here are stored and answered back as they were set;
    `options` keeps the remaining ones (Push, Totp, WhatsApp, Passkeys)."""

    __tablename__ = "twilio_verify_services"
    __table_args__ = (Index("ix_twilio_verify_services_app", "application_id", "created_at"),)
    sid: str = Field(primary_key=True, max_length=34)
    application_id: str = Field(max_length=64, foreign_key="applications.id")
    friendly_name: str = Field(max_length=64)
    code_length: int = 6
    lookup_enabled: bool = False
    psd2_enabled: bool = False
    skip_sms_to_landlines: bool = False
    dtmf_input_required: bool = True
    tts_name: str | None = Field(default=None, max_length=64)
    do_not_share_warning_enabled: bool = False
    custom_code_enabled: bool = False
    default_template_sid: str | None = Field(default=None, max_length=34)
    verify_event_subscription_enabled: bool = False
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# ------------------------------------------------------------------ sandbox scenarios
class SandboxScenarioRow(SQLModel, table=True):
    """A failure test mode simulates for one application (`otp.sandbox.scenarios`).

    Configuration typed by an operator (a test destination, a country or a prefix):
    kept while its application exists."""

    __tablename__ = "sandbox_scenarios"
    __table_args__ = (Index("ix_sandbox_scenarios_app", "application_id", "created_at"),)
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(max_length=64, foreign_key="applications.id")
    kind: str = Field(max_length=32)
    # An exact test destination, as the keyed hash creates match on and its mask.
    to_hash: str | None = Field(default=None, max_length=64)
    to_masked: str | None = Field(default=None, max_length=32)
    country: str | None = Field(default=None, max_length=2)
    prefix: str | None = Field(default=None, max_length=16)
    channel: str | None = Field(default=None, max_length=16)
    error_code: str | None = Field(default=None, max_length=8)
    delay_s: int | None = None
    status_code: int | None = None
    note: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


# ------------------------------------------------------------------ routing rules
class RoutingRuleRow(SQLModel, table=True):
    """A routing rule of an application: for one channel and country (`""`: the channel's
    default) and number prefix (`""`: the whole country), the providers in order and the
    sender. Configuration, no destination data: kept while its application exists."""

    __tablename__ = "routing_rules"
    __table_args__ = (
        Index(
            "ux_routing_rules_match", "application_id", "channel", "country", "prefix", unique=True
        ),
    )
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(max_length=64, foreign_key="applications.id")
    channel: str = Field(max_length=16)
    country: str = Field(default="", max_length=2)
    prefix: str = Field(default="", max_length=16)
    providers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sender_type: str | None = Field(default=None, max_length=32)
    sender_value: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# ------------------------------------------------------------- provider accounts
class ProviderAccount(SQLModel, table=True):
    """An application's own account with one provider (twilio, meta_whatsapp, smtp,
    http_gateway), used for its live sends instead of the service's global account.

    `settings` holds the non-secret fields under their `Settings` names (`twilio_sms_from`);
    `secrets_sealed` the secret ones, as one sealed JSON object (`otp.security.sealing`),
    never returned by a read; `secret_hints` says which are set (and their last characters
    when long enough). `version` grows with every replacement: the worker's caches key on
    it. Configuration only: kept while its application exists."""

    __tablename__ = "provider_accounts"
    __table_args__ = (
        UniqueConstraint("application_id", "provider", name="uq_provider_accounts_app_provider"),
    )
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(max_length=64, foreign_key="applications.id")
    provider: str = Field(max_length=32)
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    secrets_sealed: str = ""
    secret_hints: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------- message templates
class MessageTemplate(SQLModel, table=True):
    """One version of an application's message template for a channel and locale.

    Every save adds a version (numbered per application, so a version names one row);
    the active one is used; a delete deactivates them all (back to the catalogue) and
    keeps them listable. Configuration only: kept while the application exists."""

    __tablename__ = "message_templates"
    __table_args__ = (
        UniqueConstraint("application_id", "version", name="uq_message_template_version"),
        Index("ix_message_templates_lookup", "application_id", "channel", "locale", "active"),
    )
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(max_length=64, foreign_key="applications.id")
    channel: str = Field(max_length=16)
    locale: str = Field(max_length=35)
    version: int
    active: bool = True
    text: str
    subject: str | None = None
    html: str | None = None
    whatsapp_template_name: str | None = Field(default=None, max_length=512)
    whatsapp_language: str | None = Field(default=None, max_length=16)
    created_by: str = Field(default="admin", max_length=120)
    created_at: datetime = Field(default_factory=utcnow)
    deactivated_at: datetime | None = None


# ------------------------------------------------------------------------ cost
class DeliveryCostRecord(SQLModel, table=True):
    """What one delivery (one provider's accepted send) cost: the estimate from the price
    table, and the provider's price once its receipt or a later fetch brings it.

    Keyed by the delivery key (`<verification id>:<run id>:<n>`), so the delivery
    activity, the final record and a receipt write the same row. Amounts are micros of
    `currency` (the deployment's); the provider's price keeps its own currency."""

    __tablename__ = "delivery_costs"
    __table_args__ = (
        Index("ix_delivery_costs_app_mode_sent", "application_id", "mode", "sent_at"),
        Index("ix_delivery_costs_unpriced", "provider", "reported_at", "sent_at"),
    )
    delivery_key: str = Field(primary_key=True, max_length=128)
    verification_id: str = Field(index=True, max_length=64)
    application_id: str = Field(max_length=64)
    mode: str = Field(max_length=8)
    provider: str = Field(max_length=40)
    provider_message_id: str | None = Field(default=None, index=True, max_length=128)
    channel: str = Field(max_length=16)
    country: str | None = Field(default=None, max_length=2)
    kind: str = Field(default="step", max_length=8)  # step | resend
    step_index: int = 0
    sent_at: datetime
    currency: str = Field(max_length=3)
    units: int = 1
    unit: str = Field(default="message", max_length=16)
    unit_price_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    estimate_micros: int = Field(sa_column=Column(BigInteger, nullable=False))
    source: str = Field(max_length=16)  # otp.domain.PriceSource
    reported_micros: int | None = Field(default=None, sa_column=Column(BigInteger))
    reported_currency: str | None = Field(default=None, max_length=3)
    reported_at: datetime | None = None
    # How many times a fetch asked the provider for its price without an answer.
    price_fetches: int = 0


class PriceOverride(SQLModel, table=True):
    """An application's own price for a route, in the deployment's currency: replaces the
    built-in table's row (`otp.cost.price_table`). Configuration: kept with its application."""

    __tablename__ = "price_overrides"
    __table_args__ = (
        UniqueConstraint(
            "application_id",
            "provider",
            "channel",
            "country",
            "number_type",
            name="uq_price_override_route",
        ),
    )
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(index=True, max_length=64, foreign_key="applications.id")
    provider: str = Field(max_length=40)
    channel: str = Field(max_length=16)
    country: str = Field(max_length=2)  # ISO alpha-2 or "*"
    number_type: str = Field(default="*", max_length=32)
    unit: str = Field(max_length=16)
    price_micros: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    note: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# --------------------------------------------------------------------- console
class ConsoleUser(SQLModel, table=True):
    """A person who signs in to the web console (`/console/`): an `admin` (everything) or
    `support` (lookup and dashboard, read-only). Only the argon2id hash of the password
    is kept. Kept until removed: disabling a user keeps the row for the audit log."""

    __tablename__ = "console_users"
    id: str = Field(primary_key=True, max_length=64)
    username: str = Field(unique=True, max_length=64)
    role: str = Field(max_length=16)  # admin | support
    password_hash: str = Field(max_length=256)
    created_at: datetime = Field(default_factory=utcnow)
    disabled: bool = False


class ConsoleSession(SQLModel, table=True):
    """A signed-in console session, server side. `id` is the SHA-256 (hex) of the random
    token in the browser's cookie: the token itself is never stored. Ends after
    `console_session_idle_minutes` without a request, at `expires_at`, or at sign-out."""

    __tablename__ = "console_sessions"
    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(index=True, max_length=64, foreign_key="console_users.id")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class ConsoleAuditEntry(SQLModel, table=True):
    """One change made in the console: who, what, on which target, when. `details` never
    holds a secret, a key, a code or a full destination (masked destinations only)."""

    __tablename__ = "console_audit"
    __table_args__ = (Index("ix_console_audit_at", "at", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    username: str = Field(max_length=64)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# ----------------------------------------------------------------------- alerts
class AlertRulesRow(SQLModel, table=True):
    """An application's alert rules (`otp.alerts.rules.AlertRules`, as JSON); no row: the
    defaults. Configuration (operators' email addresses, no end user's data): kept while
    its application exists."""

    __tablename__ = "alert_rules"
    application_id: str = Field(primary_key=True, max_length=64, foreign_key="applications.id")
    rules: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class AlertRecord(SQLModel, table=True):
    """One alert episode: a rule's condition for one scope, from the evaluation that found
    it (`started_at`) to the first that no longer did (`resolved_at`).

    `open_key` (`<app>:<mode>:<rule>:<scope>`) is set while the alert fires and cleared when
    it resolves: the unique index lets one episode fire per scope at a time, whatever the
    number of evaluations racing. `evidence` holds the figures and window at the trigger,
    `resolved_evidence` those at the resolve (counts, rates, amounts, ids: no destination);
    `deliveries` what each notification reached."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_app_mode_started", "application_id", "mode", "started_at"),
        Index("ix_alerts_state", "state"),
    )
    id: str = Field(primary_key=True, max_length=64)
    application_id: str = Field(max_length=64)
    mode: str = Field(max_length=8)
    rule: str = Field(max_length=32)
    scope: str = Field(max_length=120)
    state: str = Field(max_length=16)  # firing | resolved
    open_key: str | None = Field(default=None, index=True, unique=True, max_length=256)
    started_at: datetime
    resolved_at: datetime | None = None
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    resolved_evidence: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    deliveries: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Whether the trigger's and the resolve's notifications were handed over.
    triggered_notified: bool = False
    resolved_notified: bool = False
    updated_at: datetime = Field(default_factory=utcnow)
