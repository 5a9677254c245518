"""The typed input and result of a provider account's test send (`ProviderCheckWorkflow`).

No credential crosses Temporal: the worker reads the account from the store by
application and provider. `to` is the destination the operator gave (encrypted in
history by the payload codec).
"""

from __future__ import annotations

from otp.domain.base import PayloadModel
from otp.domain.enums import Channel, Mode

ACTIVITY_CHECK_PROVIDER = "check_provider_account"
PROVIDER_CHECK_ID_PREFIX = "pchk_"


class ProviderCheckInput(PayloadModel):
    application_id: str
    provider: str
    to: str
    # live: through the account itself; test: through the sandbox (magic numbers apply).
    mode: Mode = Mode.LIVE
    channel: Channel | None = None


class ProviderCheckResult(PayloadModel):
    ok: bool
    provider: str
    channel: Channel | None = None
    account_id: str | None = None
    account_version: int | None = None
    message_id: str | None = None
    # On failure: the adapter's reason (`invalid_number`, `auth_failed`, ...), the
    # provider's own error code when it gave one, and a message without secrets.
    error_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
