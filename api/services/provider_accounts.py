"""Applications' own provider accounts: stored sealed, read without secrets, tested in the worker.

A PUT replaces the whole account (rotation: send the new secret); its fields are checked
(`otp.applications.provider_accounts`) before anything is written. The test send runs in
the worker (`ProviderCheckWorkflow`): the API never reaches a provider. Receipts for an
account are checked with that account's credential, unsealed here, per request.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy

from api.problems import (
    InvalidWebhookSignature,
    ProviderAccountNotFound,
    ServiceUnavailable,
    UpstreamError,
    field_error,
    invalid,
)
from api.schemas.provider_accounts import ProviderAccountPut, ProviderAccountTest, ProviderName
from api.services.applications import require_application
from otp.applications.provider_accounts import InvalidAccount, open_fields, parse_fields
from otp.domain import Mode
from otp.domain.destinations import InvalidDestinationError, parse_any
from otp.domain.provider_check import (
    PROVIDER_CHECK_ID_PREFIX,
    ProviderCheckInput,
    ProviderCheckResult,
)
from otp.security.sealing import SealError
from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store import provider_accounts as db
from otp.store.provider_accounts import ACCOUNT_ID_RE
from otp.store.tables import ProviderAccount
from workflows.provider_check import ProviderCheckWorkflow

# How long the API waits for the worker's test send (the activity itself has 30 s).
TEST_TIMEOUT_S = 35.0


async def list_accounts(store: Store, *, application_id: str) -> Sequence[ProviderAccount]:
    application = await require_application(store, application_id)
    return await db.list_accounts(store, application_id=application.id)


async def get_account(
    store: Store, *, application_id: str, provider: ProviderName
) -> ProviderAccount:
    application = await require_application(store, application_id)
    row = await db.get_account(store, application_id=application.id, provider=provider.value)
    if row is None:
        raise ProviderAccountNotFound()
    return row


async def put_account(
    store: Store,
    secrets: Secrets,
    settings: Settings,
    *,
    application_id: str,
    provider: ProviderName,
    body: ProviderAccountPut,
) -> tuple[ProviderAccount, bool]:
    """Create or replace the account (row, created); a 422 problem changes nothing."""
    application = await require_application(store, application_id)
    try:
        fields = parse_fields(provider.value, body.fields, settings)
    except InvalidAccount as exc:
        raise invalid(
            [
                field_error(
                    "#/fields" + ("" if name == "fields" else f"/{name}"),
                    message,
                    "invalid_account",
                )
                for name, message in exc.errors
            ]
        ) from None
    return await db.put_account(
        store,
        application_id=application.id,
        provider=provider.value,
        settings=fields.settings,
        secrets_sealed=fields.sealed(
            secrets, application_id=application.id, provider=provider.value
        ),
        secret_hints=fields.hints(),
    )


async def delete_account(store: Store, *, application_id: str, provider: ProviderName) -> None:
    application = await require_application(store, application_id)
    if not await db.delete_account(store, application_id=application.id, provider=provider.value):
        raise ProviderAccountNotFound()


async def test_account(
    store: Store,
    client: Client,
    settings: Settings,
    *,
    application_id: str,
    provider: ProviderName,
    body: ProviderAccountTest,
    mode: Mode,
) -> ProviderCheckResult:
    """Run one test send in the worker and wait for its report (503 if none comes in time)."""
    row = await get_account(store, application_id=application_id, provider=provider)
    try:
        to = parse_any(body.to).value
    except InvalidDestinationError as exc:
        raise invalid([field_error("#/to", str(exc))]) from None
    handle = await client.start_workflow(
        ProviderCheckWorkflow.run,
        ProviderCheckInput(
            application_id=row.application_id,
            provider=provider.value,
            to=to,
            mode=mode,
            channel=body.channel,
        ),
        id=f"{PROVIDER_CHECK_ID_PREFIX}{uuid.uuid4().hex}",
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        execution_timeout=timedelta(seconds=TEST_TIMEOUT_S * 2),
    )
    try:
        async with asyncio.timeout(TEST_TIMEOUT_S):
            return await handle.result()
    except TimeoutError:
        raise ServiceUnavailable(
            "No worker reported the test send in time; retry shortly."
        ) from None
    except WorkflowFailureError:
        raise UpstreamError("The worker could not run the test send.") from None


async def receipt_credential(
    store: Store, secrets: Secrets, *, account_id: str, provider: str, field: str
) -> str:
    """The credential an account's receipts are signed with (its `field`, e.g. the Twilio
    `auth_token`); a 403 problem when the account is unknown, of another provider, or has
    none: such a receipt cannot be genuine."""
    row = (
        await db.get_account_by_id(store, account_id=account_id)
        if ACCOUNT_ID_RE.match(account_id)
        else None
    )
    if row is None or row.provider != provider:
        raise InvalidWebhookSignature()
    try:
        fields = open_fields(
            secrets,
            application_id=row.application_id,
            provider=row.provider,
            settings=row.settings,
            secrets_sealed=row.secrets_sealed,
        )
    except SealError:
        raise InvalidWebhookSignature() from None
    value = fields.secrets.get(field, "")
    if not value:
        raise InvalidWebhookSignature()
    return value
