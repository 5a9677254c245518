"""Settings (environment variables with the OTP_ prefix) and server secrets."""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from otp.applications.keys import new_api_key
from otp.cost.money import check_currency
from otp.domain import TASK_QUEUE, Mode
from otp.messages.sms import validate_web_domain


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says which setting to fix."""


# Which provider adapters can serve which channel (the names OTP_<CHANNEL>_PROVIDERS take).
CHANNEL_PROVIDERS: dict[str, frozenset[str]] = {
    "sms": frozenset({"twilio", "http_gateway"}),
    "whatsapp": frozenset({"meta_whatsapp", "twilio"}),
    "voice": frozenset({"twilio"}),
    "email": frozenset({"smtp"}),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OTP_", extra="ignore")

    env: Literal["dev", "production"] = Field(
        default="dev",
        description="dev: missing secrets (code secret, codec keys, admin token, dev API key) "
        "are generated once into the data dir; production: they must be configured, and "
        "an unset admin or codec token switches that endpoint off.",
    )
    data_dir: Path = Field(
        default=Path(".data"),
        description="Directory of the dev stack's files: the Temporal database "
        "(temporal.db), the SQLite store (otp.db), generated secrets (secrets.json), the "
        "dev API key and the admin token.",
    )

    api_host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(default=8000, description="TCP port the API listens on.")

    temporal_host: str = Field(
        default="127.0.0.1", description="Host of the Temporal frontend (gRPC)."
    )
    temporal_port: int = Field(default=7233, description="Port of the Temporal frontend (gRPC).")
    temporal_address: str | None = Field(
        default=None,
        description="host:port of Temporal; overrides OTP_TEMPORAL_HOST and "
        "OTP_TEMPORAL_PORT (a Temporal Cloud namespace endpoint, for example).",
    )
    temporal_ui_port: int = Field(
        default=8233, description="Port of the Temporal UI started by the dev stack (otp dev)."
    )
    temporal_namespace: str = Field(
        default="default", description="Temporal namespace of every workflow."
    )
    task_queue: str = Field(
        default=TASK_QUEUE,
        description="Task queue the worker polls and the API starts verifications on.",
    )

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store, e.g. postgresql+asyncpg://otp@db/otp. "
        "Unset: SQLite, otp.db in the data dir.",
    )

    dev_api_key: SecretStr | None = Field(
        default=None,
        description="The test-mode key the dev stack accepts (OTP_ENV=dev only). Unset: "
        "generated once into <data dir>/dev_api_key and printed by otp dev.",
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description=(
            "Comma-separated API keys (otp_test_... / otp_live_...) or their hashes "
            "as sha256:<mode>:<hex> (mode test or live), all of the default application. "
            "Unset: only keys created through the admin API or the otp keys command."
        ),
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the admin API (/v1/admin); at least 24 characters, "
        "compared in constant time. Unset: generated into <data dir>/admin_token in dev; "
        "in production the admin API is off (every /v1/admin route answers 404).",
    )
    code_secret: SecretStr | None = Field(
        default=None,
        description="Server secret the codes are derived from, and the key of the "
        "destination hashes (at least 16 characters). Required in production; generated "
        "into the data dir in dev.",
    )
    codec_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated key_id:base64(32 bytes) AES-256 keys of the payload "
        "codec and of secrets sealed in the store; the first one encrypts, all decrypt. "
        "Required in production; generated into the data dir in dev.",
    )

    smtp_host: str = Field(
        default="127.0.0.1", description="SMTP server for live-mode email (host)."
    )
    smtp_port: int = Field(default=1025, description="SMTP server port.")
    smtp_username: str | None = Field(
        default=None, description="SMTP user name (AUTH). Unset: no login."
    )
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password (AUTH).")
    smtp_from: str = Field(
        default="OTP <no-reply@localhost>",
        description="From: of every email; its domain is also the Message-ID domain.",
    )
    smtp_starttls: bool | None = Field(
        default=None,
        description="STARTTLS: unset = upgrade whenever the server offers it, true = require"
        " it, false = never upgrade.",
    )
    smtp_use_tls: bool = Field(
        default=False, description="Implicit TLS from the first byte (SMTPS, port 465)."
    )
    smtp_timeout_s: float = Field(
        default=10.0, description="SMTP connect and command timeout (seconds)."
    )
    smtp_allow_plaintext_auth: bool = Field(
        default=False,
        description="Allow SMTP login over a connection that is not encrypted (the password"
        " and the codes then travel in clear); off, such a send fails as smtp_insecure_auth"
        " (at once, not retried). Only for a trusted local relay.",
    )
    smtp_ca_file: str | None = Field(
        default=None,
        description="PEM file of the CA(s) trusted for the SMTP server's certificate, instead"
        " of the system's trust store.",
    )

    # --- delivery providers (live mode) -------------------------------------------------
    public_url: str | None = Field(
        default=None,
        description="Base URL at which providers reach this API for delivery receipts "
        "(Twilio status callbacks, Meta webhooks). Unset: no receipts are requested and "
        "steps fall back on their timer.",
    )
    webotp_domain: str | None = Field(
        default=None,
        description="Adds the WebOTP line (@domain #code) to SMS when set: a bare "
        "registered host name (no scheme, port or path; IDNs in xn-- form). An "
        "application's own web_domain default wins.",
    )
    sms_providers: str = Field(
        default="twilio,http_gateway",
        description="SMS providers in failover order (twilio, http_gateway); a name counts "
        "only when that provider's settings are complete.",
    )
    whatsapp_providers: str = Field(
        default="meta_whatsapp,twilio",
        description="WhatsApp providers in failover order (meta_whatsapp, twilio).",
    )
    voice_providers: str = Field(default="twilio", description="Voice providers (twilio).")
    email_providers: str = Field(default="smtp", description="Email providers (smtp).")
    provider_max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Tries per provider on transient failures before failing over to the "
        "next provider; the last provider keeps retrying until the step's timeout.",
    )
    provider_timeout_s: float = Field(
        default=15.0,
        ge=1,
        le=60,
        description="How long an HTTP provider may take to answer a send (seconds); past it"
        " the outcome is unknown and the send is reconciled, never blindly repeated.",
    )

    twilio_account_sid: str | None = Field(
        default=None, description="Twilio account SID (AC...); enables Twilio."
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None,
        description="Twilio auth token: REST auth (unless an API key is set) and always "
        "needed to verify status callbacks (X-Twilio-Signature).",
    )
    twilio_api_key_sid: str | None = Field(
        default=None,
        description="Twilio API key SID (SK...), used for REST calls instead of the auth token.",
    )
    twilio_api_key_secret: SecretStr | None = Field(
        default=None, description="Secret of the Twilio API key."
    )
    twilio_sms_from: str | None = Field(
        default=None, description="Sender number or alphanumeric id; enables Twilio SMS."
    )
    twilio_messaging_service_sid: str | None = Field(
        default=None,
        description="Messaging service SID (MG...), used instead of a From for SMS (and "
        "WhatsApp without OTP_TWILIO_WHATSAPP_FROM).",
    )
    twilio_whatsapp_from: str | None = Field(
        default=None, description="WhatsApp sender number (+1...; whatsapp: is added)."
    )
    twilio_whatsapp_content_sids: str | None = Field(
        default=None,
        description="locale=HX... pairs, comma-separated (approved authentication "
        "templates, one variable {{1}} = the code); with a sender, enables Twilio WhatsApp.",
    )
    twilio_voice_from: str | None = Field(
        default=None, description="Voice-capable caller number; enables Twilio voice calls."
    )
    twilio_base_url: str = Field(
        default="https://api.twilio.com",
        description="Twilio API base URL (tests point it at a local server).",
    )

    meta_access_token: SecretStr | None = Field(
        default=None,
        description="Meta system-user token with whatsapp_business_messaging; enables the "
        "WhatsApp Cloud API with OTP_META_PHONE_NUMBER_ID.",
    )
    meta_phone_number_id: str | None = Field(
        default=None, description="The sending phone number's id (not the number)."
    )
    meta_app_secret: SecretStr | None = Field(
        default=None,
        description="Meta app secret: verifies X-Hub-Signature-256 on incoming webhooks.",
    )
    meta_verify_token: SecretStr | None = Field(
        default=None,
        description="Any string; must equal the Meta dashboard's Verify token (the API "
        "answers the hub.challenge with it).",
    )
    meta_template_name: str = Field(
        default="verification_code",
        description="Name of the approved authentication template (with a copy-code button).",
    )
    meta_api_version: str = Field(default="v23.0", description="Graph API version.")
    meta_base_url: str = Field(
        default="https://graph.facebook.com", description="Graph API base URL."
    )

    http_gateway_url: str | None = Field(
        default=None,
        description="POST endpoint of a generic SMS gateway, one request per message; "
        "enables the gateway.",
    )
    http_gateway_auth_header: str = Field(
        default="Authorization", description="Header carrying the gateway credential."
    )
    http_gateway_auth_value: SecretStr | None = Field(
        default=None, description="Value of that header, e.g. Bearer ...."
    )
    http_gateway_body_template: str | None = Field(
        default=None,
        description="JSON body sent to the gateway; placeholders $to, $text, $code, "
        '$message_id, $idempotency_key. Unset: {"to": "$to", "text": "$text", '
        '"reference": "$message_id"}.',
    )
    http_gateway_message_id_path: str = Field(
        default="id",
        description="Dotted path to the provider's message id in the gateway's answer "
        "(data.messages.0.id); empty: the service's own gw_... id.",
    )
    http_gateway_idempotent: bool = Field(
        default=False,
        description="The gateway deduplicates on the Idempotency-Key header (then a send "
        "whose answer was lost is simply retried).",
    )

    currency: str = Field(
        default="USD",
        description="The currency of prices, costs and spend caps (ISO 4217). The built-in "
        "price table is in USD: another currency needs its own table (`price_table_path`).",
    )
    price_table_path: str | None = Field(
        default=None,
        description="A price table (CSV, the built-in table's format) replacing the built-in "
        "one; its prices must be in `currency`.",
    )
    price_fetch_providers: str = Field(
        default="twilio",
        description="Providers asked for the price of a delivery whose receipt brought none "
        "(a fetch of the message a few minutes after it was sent), comma-separated; "
        "empty: none.",
    )
    idempotency_ttl_s: float = Field(
        default=86400,
        gt=0,
        description="How long an Idempotency-Key and its stored response are kept (seconds).",
    )
    codec_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for the /codec endpoints (Temporal UI and CLI decoding). "
        "Unset: dev answers callers on this machine only; production switches them off.",
    )
    codec_cors_origins: str = Field(
        default="",
        description="Comma-separated browser origins allowed to call /codec (the Temporal "
        "UI's exact origin, port included). Empty: the dev stack's UI on "
        "OTP_TEMPORAL_UI_PORT.",
    )
    record_retention_days: int = Field(
        default=90,
        ge=0,
        description="Days the store keeps finished verifications and their event logs "
        "(0: forever). The worker purges older ones hourly.",
    )
    # --- retention of the other tables (the worker purges hourly; 0: forever) ---
    sandbox_retention_hours: int = Field(
        default=24,
        ge=0,
        description="Hours the store keeps sandbox (test mode) messages, which hold codes "
        "and clear destinations (0: forever). Those of a pending verification are kept.",
    )
    webhook_retention_days: int = Field(
        default=30,
        ge=0,
        description="Days the store keeps webhook messages and their attempts after their "
        "final state (succeeded, failed, disabled; 0: forever). Pending ones are kept.",
    )
    lockout_retention_days: int = Field(
        default=90,
        ge=0,
        description="Days the store keeps a failed-check lockout's row after it ended "
        "(expired or lifted), for support (0: forever). The lockout itself ends on time.",
    )
    risk_block_retention_days: int = Field(
        default=90,
        ge=0,
        description="Days the store keeps risk blocks after they were lifted or expired "
        "(0: forever). Keep it above the block escalation lookback (30 days by default).",
    )
    # --- the web console (/console/) ---------------------------------------------------
    console_session_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="Minutes a console session lasts without a request; the next request "
        "after that signs the user out.",
    )
    console_session_max_hours: int = Field(
        default=12,
        ge=1,
        le=24 * 30,
        description="Hours a console session lasts at most, however active (then sign in again).",
    )
    console_secure_cookies: bool | None = Field(
        default=None,
        description="Mark the console's cookies Secure (sent over HTTPS only). Unset: "
        "Secure unless OTP_ENV=dev; set true behind a TLS proxy in dev, or false to "
        "serve the console over plain HTTP on purpose.",
    )
    console_login_attempts: int = Field(
        default=5,
        ge=1,
        description="Failed console sign-ins allowed per user name, and separately per "
        "client address, within OTP_CONSOLE_LOGIN_WINDOW_S; more are refused (429) until "
        "the window has room.",
    )
    console_login_window_s: int = Field(
        default=900,
        ge=1,
        description="Seconds of the sliding window that counts failed console sign-ins.",
    )
    console_audit_retention_days: int = Field(
        default=365,
        ge=0,
        description="Days the store keeps the console's audit log (0: forever). The "
        "worker purges older entries hourly.",
    )
    alert_retention_days: int = Field(
        default=180,
        ge=0,
        description="Days the store keeps a resolved alert after it resolved (0: forever). "
        "Firing alerts are kept.",
    )
    alerts_interval_s: int = Field(
        default=60,
        ge=10,
        le=3600,
        description="Seconds between two evaluations of the alert rules by the worker's "
        "monitor workflow (which also fetches providers' prices). Default 60.",
    )
    alerts_email_from: str | None = Field(
        default=None,
        description="Sender of alert emails, sent through the SMTP server of the `smtp_*` "
        "settings. Unset: `smtp_from`.",
    )
    limits_backend: Literal["store", "redis"] = Field(
        default="store",
        description="Where rate limits and counters live: store (the database: nothing more "
        "to run, exact across processes) or redis (OTP_REDIS_URL; for high request rates; "
        "one Redis, not Redis Cluster; windows follow the Redis server's clock).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for OTP_LIMITS_BACKEND=redis (redis://host:6379/0); required "
        "with that backend.",
    )

    log_level: str = Field(default="INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_format: Literal["json", "text"] = Field(
        default="text", description="Log lines as text, or json: one JSON object per line."
    )

    # --- metrics and tracing (otp.observability.metrics, otp.observability.tracing) ----------------------------------
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for the API's GET /metrics. Unset: open (serve it on an "
        "internal network only).",
    )
    worker_metrics_address: str | None = Field(
        default=None,
        description="host:port at which the worker serves Prometheus metrics (its own and "
        "the Temporal SDK's) at /metrics, without authentication. Unset: no endpoint.",
    )
    tracing: Literal["otlp", "console", "off"] = Field(
        default="off",
        description="OpenTelemetry trace export: otlp (OTLP/HTTP to OTP_OTLP_ENDPOINT), "
        "console (spans printed to stdout) or off.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector base URL (http://collector:4318; /v1/traces is "
        "added). Unset: the OTEL_EXPORTER_OTLP_* variables, else http://localhost:4318.",
    )

    @field_validator(
        "admin_token",
        "api_keys",
        "codec_token",
        "metrics_token",
        "worker_metrics_address",
        "otlp_endpoint",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`OTP_ADMIN_TOKEN=` (as compose passes an unset optional) means unset."""
        return None if value == "" else value

    @field_validator("sms_providers", "whatsapp_providers", "voice_providers", "email_providers")
    @classmethod
    def _check_provider_names(cls, value: str, info: ValidationInfo) -> str:
        channel = (info.field_name or "").removesuffix("_providers")
        allowed = CHANNEL_PROVIDERS[channel]
        for name in (part.strip() for part in value.split(",")):
            if name and name not in allowed:
                raise ValueError(
                    f"unknown {channel} provider {name!r}; choose from {', '.join(sorted(allowed))}"
                )
        return value

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        return check_currency(value)

    @field_validator("webotp_domain")
    @classmethod
    def _check_webotp_domain(cls, value: str | None) -> str | None:
        return None if not value else validate_web_domain(value)

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"{self.temporal_host}:{self.temporal_port}"

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'otp.db').resolve()}"


DEFAULT_SECRETS_DIR = Path("/run/secrets")


def load_settings() -> Settings:
    """Settings from the environment, and from secret files where a container platform puts
    them: one file per setting, named like the variable (`otp_twilio_auth_token`), in
    OTP_SECRETS_DIR or, when it exists, /run/secrets. The environment wins over a file."""
    configured = os.environ.get("OTP_SECRETS_DIR")
    secrets_dir: Path | None = None
    if configured:
        secrets_dir = Path(configured)
        if not secrets_dir.is_dir():
            raise ConfigError(f"OTP_SECRETS_DIR is not a directory: {configured}")
    elif DEFAULT_SECRETS_DIR.is_dir():
        secrets_dir = DEFAULT_SECRETS_DIR
    return Settings(_secrets_dir=secrets_dir)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


@dataclass(frozen=True)
class Secrets:
    code_secret: bytes
    codec_keys: dict[str, bytes]
    codec_write_key_id: str


def _parse_codec_keys(raw: str) -> tuple[dict[str, bytes], str]:
    keys: dict[str, bytes] = {}
    first = ""
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        key_id, sep, b64 = entry.partition(":")
        if not sep or not key_id:
            raise ConfigError("OTP_CODEC_KEYS entries must look like key_id:base64key")
        try:
            key = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise ConfigError(f"OTP_CODEC_KEYS key {key_id!r} is not valid base64") from exc
        if len(key) != 32:
            raise ConfigError(f"OTP_CODEC_KEYS key {key_id!r} must be 32 bytes (AES-256)")
        keys[key_id] = key
        first = first or key_id
    if not keys:
        raise ConfigError("OTP_CODEC_KEYS is empty")
    return keys, first


def _write_private(path: Path, text: str) -> None:
    """Create a 0600 file atomically; if another process won the race, keep theirs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def load_secrets(settings: Settings) -> Secrets:
    """Secrets from the environment; in dev, generated once into the data dir."""
    code_secret = settings.code_secret.get_secret_value() if settings.code_secret else None
    codec_raw = settings.codec_keys.get_secret_value() if settings.codec_keys else None
    if (code_secret is None or codec_raw is None) and settings.env != "dev":
        missing = [
            name
            for name, value in (("OTP_CODE_SECRET", code_secret), ("OTP_CODEC_KEYS", codec_raw))
            if value is None
        ]
        raise ConfigError(f"{', '.join(missing)} must be set when OTP_ENV={settings.env}")
    if code_secret is None or codec_raw is None:
        path = settings.data_dir / "secrets.json"
        _write_private(
            path,
            json.dumps(
                {
                    "code_secret": secrets.token_urlsafe(32),
                    "codec_keys": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
                }
            ),
        )
        stored = json.loads(path.read_text())
        code_secret = code_secret or stored["code_secret"]
        codec_raw = codec_raw or stored["codec_keys"]
    assert code_secret is not None and codec_raw is not None
    if len(code_secret) < 16:
        raise ConfigError("OTP_CODE_SECRET must be at least 16 characters")
    keys, write_id = _parse_codec_keys(codec_raw)
    return Secrets(code_secret.encode(), keys, write_id)


def dev_api_key(settings: Settings) -> str:
    """The dev stack's test-mode key: from OTP_DEV_API_KEY, else generated once into the data dir."""
    if settings.dev_api_key is not None:
        return settings.dev_api_key.get_secret_value()
    path = settings.data_dir / "dev_api_key"
    _write_private(path, new_api_key(Mode.TEST))
    return path.read_text().strip()


ADMIN_TOKEN_MIN_LENGTH = 24


def admin_token(settings: Settings) -> str | None:
    """The admin API's token: OTP_ADMIN_TOKEN, else in dev generated once into the data dir.

    None in production without OTP_ADMIN_TOKEN: the admin API is then switched off.
    """
    if settings.admin_token is not None:
        token = settings.admin_token.get_secret_value()
        if len(token) < ADMIN_TOKEN_MIN_LENGTH:
            raise ConfigError(
                f"OTP_ADMIN_TOKEN must be at least {ADMIN_TOKEN_MIN_LENGTH} characters"
            )
        return token
    if settings.env != "dev":
        return None
    path = settings.data_dir / "admin_token"
    _write_private(path, "otp_admin_" + secrets.token_urlsafe(32))
    return path.read_text().strip()
