"""Wiring of a worker's activities: the objects the worker registers, built from settings.

`build_activities` connects the activity classes to the providers (`providers.registry`),
the store, the event recorder, the delivery gate and, with a Temporal client, the webhook
dispatch; `build_worker` registers them with both workflows. The worker entry point and the
test and benchmark harnesses build their workers through these two functions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta

import httpx
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.accounts import AccountProviders
from activities.alerts import AlertActivities
from activities.context import LogContextInterceptor
from activities.pricing import DeliveryPricing
from activities.provider_check import ProviderCheckActivities
from activities.provider_prices import ProviderPriceActivities
from activities.records import RecordActivities
from activities.sandbox_scenarios import ScenarioLookup
from activities.templates import TemplateBook
from activities.verification import VerificationActivities
from activities.webhooks import WebhookActivities
from otp.cost.book import PriceBook
from otp.cost.price_table import default_table
from otp.domain import DeliveryReceiptInput, WebhookEvent
from otp.observability import metrics
from otp.risk.conversion_monitor import ConversionSettings, DeliveryGate
from otp.risk.limits import Limiter
from otp.risk.limits.factory import build_limiter
from otp.routing.channels import live_plan
from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store.events import Dispatch, EventRecorder
from providers.registry import build_providers
from providers.sandbox import ReceiptSink, SandboxProvider
from workflows.dispatch import start_webhook_deliveries
from workflows.monitor import MonitorWorkflow
from workflows.provider_check import ProviderCheckWorkflow
from workflows.verification import VerificationWorkflow
from workflows.webhooks import WebhookDeliveryWorkflow

logger = logging.getLogger("otp.worker")


class WorkflowReceiptSink:
    """Delivers the sandbox's simulated receipts as the delivery_receipt signal, shortly after
    the send (as a provider's callback would arrive through the API)."""

    def __init__(
        self, client: Client, delay_s: float = 0.2, recorder: EventRecorder | None = None
    ) -> None:
        self._client = client
        self._delay_s = delay_s
        self.recorder = recorder
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, verification_id: str, receipt: DeliveryReceiptInput) -> None:
        task = asyncio.get_running_loop().create_task(self._send(verification_id, receipt))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, verification_id: str, receipt: DeliveryReceiptInput) -> None:
        await asyncio.sleep(self._delay_s)
        handle = self._client.get_workflow_handle_for(VerificationWorkflow.run, verification_id)
        signaled = False
        try:
            await handle.signal(
                VerificationWorkflow.delivery_receipt,
                receipt,
                rpc_timeout=timedelta(seconds=5),
            )
            signaled = True
        except RPCError as exc:
            logger.info(
                "sandbox receipt not delivered",
                extra={"verification_id": verification_id, "rpc_status": exc.status.name},
            )
        if self.recorder is not None:
            try:
                await self.recorder.record_receipt(verification_id, receipt, signaled=signaled)
            except Exception:
                logger.warning(
                    "sandbox receipt not logged",
                    extra={"verification_id": verification_id},
                    exc_info=True,
                )


@dataclasses.dataclass(frozen=True)
class WorkerActivities:
    """Every activity object a worker registers."""

    verification: VerificationActivities
    records: RecordActivities
    webhooks: WebhookActivities | None = None
    limiter: Limiter | None = None
    accounts: AccountProviders | None = None
    provider_check: ProviderCheckActivities | None = None
    alerts: AlertActivities | None = None
    prices: ProviderPriceActivities | None = None

    async def aclose(self) -> None:
        """Write the event log entries still queued, close the limiter's connections and the
        adapters of applications' own provider accounts."""
        await self.verification.drain_logs()
        if self.limiter is not None:
            await self.limiter.close()
        if self.accounts is not None:
            await self.accounts.aclose()


def build_activities(
    settings: Settings,
    secrets: Secrets,
    store: Store,
    *,
    receipts: ReceiptSink | None = None,
    http: httpx.AsyncClient | None = None,
    client: Client | None = None,
    conversion: ConversionSettings | None = None,
) -> WorkerActivities:
    """The activities, wired to the providers and the store. With a `client`, events that
    applications subscribe to start their webhook deliveries. `conversion`: the conversion
    monitoring applications get unless their risk settings say otherwise."""
    by_name = build_providers(settings, http)
    plan = live_plan(settings)
    recorder = EventRecorder(
        store, secrets.code_secret, dispatch=webhook_dispatcher(client, store, settings)
    )
    if isinstance(receipts, WorkflowReceiptSink) and receipts.recorder is None:
        receipts.recorder = recorder
    limiter = build_limiter(settings, store)
    gate = DeliveryGate(store, limiter, secret=secrets.code_secret, conversion=conversion)
    scenarios = ScenarioLookup(store, secrets.code_secret)
    accounts = AccountProviders(store, settings, secrets, http)
    book = PriceBook(
        store, default_table(currency=settings.currency, path=settings.price_table_path)
    )
    verification = VerificationActivities(
        code_secret=secrets.code_secret,
        sandbox=SandboxProvider(store, receipts),
        live_providers={channel: by_name[names[0]] for channel, names in plan.items()},
        providers_by_name=by_name,
        recorder=recorder,
        gate=gate,
        scenarios=scenarios,
        accounts=accounts,
        templates=TemplateBook(store),
        pricing=DeliveryPricing(book, store=store, limiter=limiter, gate=gate),
    )
    return WorkerActivities(
        verification=verification,
        records=RecordActivities(recorder),
        webhooks=WebhookActivities(store, secrets, settings, http, scenarios=scenarios),
        limiter=limiter,
        accounts=accounts,
        provider_check=ProviderCheckActivities(store, accounts, SandboxProvider(store)),
        alerts=AlertActivities(
            store, limiter, settings, dispatch=webhook_dispatcher(client, store, settings)
        ),
        prices=ProviderPriceActivities(
            store, settings, limiter=limiter, providers_by_name=by_name, accounts=accounts
        ),
    )


def webhook_dispatcher(client: Client | None, store: Store, settings: Settings) -> Dispatch | None:
    """Starts the webhook deliveries of one event (None without a client: nothing is sent)."""
    if client is None:
        return None

    async def dispatch(event: WebhookEvent) -> int:
        return await start_webhook_deliveries(client, store, event, task_queue=settings.task_queue)

    return dispatch


def build_worker(client: Client, settings: Settings, activities: WorkerActivities) -> Worker:
    """A worker for both workflows and every activity, on the settings' task queue."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        interceptors=[LogContextInterceptor(), metrics.worker_interceptor(client)],
        workflows=[
            VerificationWorkflow,
            WebhookDeliveryWorkflow,
            ProviderCheckWorkflow,
            MonitorWorkflow,
        ],
        activities=[
            activities.verification.issue_code,
            activities.verification.deliver,
            activities.records.record_verification,
            *([activities.webhooks.deliver_webhook] if activities.webhooks else []),
            *([activities.provider_check.check_provider] if activities.provider_check else []),
            *([activities.alerts.evaluate_alerts] if activities.alerts else []),
            *([activities.prices.fetch_provider_prices] if activities.prices else []),
        ],
    )
