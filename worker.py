"""Worker entry point: `python worker.py` (or `otp worker`).

Connects to Temporal with the shared encrypted converter and runs the
verification workflow and its activities until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import ssl
from datetime import timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.context import LogContextInterceptor
from activities.records import RecordActivities
from activities.verification import VerificationActivities
from activities.webhooks import WebhookActivities
from otp.domain import DeliveryReceiptInput, WebhookEvent
from otp.observability import metrics, tracing
from otp.observability.logs import setup_logging
from otp.process import run_and_exit
from otp.risk.conversion_monitor import ConversionSettings, DeliveryGate
from otp.risk.limits import Limiter
from otp.risk.limits.factory import build_limiter
from otp.settings import Secrets, Settings, get_settings, load_secrets
from otp.store import Store, retention
from otp.store.events import Dispatch, EventRecorder
from otp.temporal import connect
from providers import channels
from providers.base import Provider
from providers.channels import live_plan, provider_channels
from providers.http import HttpTimeouts
from providers.http_gateway import HttpGatewayConfig, HttpGatewayProvider
from providers.meta_whatsapp import MetaWhatsAppConfig, MetaWhatsAppProvider
from providers.sandbox import ReceiptSink, SandboxProvider
from providers.smtp import SmtpConfig, SmtpProvider
from providers.twilio import TwilioConfig, TwilioProvider
from workflows.verification import VerificationWorkflow
from workflows.webhooks import WebhookDeliveryWorkflow

logger = logging.getLogger("otp.worker")


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def _pairs(raw: str | None) -> dict[str, str]:
    """`a=1,b=2` -> {"a": "1", "b": "2"}."""
    out: dict[str, str] = {}
    for item in (raw or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip() and value.strip():
            out[key.strip()] = value.strip()
    return out


def build_providers(
    settings: Settings, http: httpx.AsyncClient | None = None
) -> dict[str, Provider]:
    """Every configured live provider by name (see providers.channels for what "configured" means)."""
    configured = provider_channels(settings)
    callback_base = (settings.public_url or "").rstrip("/")
    timeouts = HttpTimeouts(read_s=settings.provider_timeout_s)
    providers: dict[str, Provider] = {
        channels.SMTP: SmtpProvider(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                username=settings.smtp_username,
                password=_secret(settings.smtp_password) or None,
                start_tls=settings.smtp_starttls,
                use_tls=settings.smtp_use_tls,
                timeout_s=settings.smtp_timeout_s,
                allow_plaintext_auth=settings.smtp_allow_plaintext_auth,
                tls_context=(
                    ssl.create_default_context(cafile=settings.smtp_ca_file)
                    if settings.smtp_ca_file
                    else None
                ),
            )
        )
    }
    if channels.TWILIO in configured:
        providers[channels.TWILIO] = TwilioProvider(
            TwilioConfig(
                account_sid=settings.twilio_account_sid or "",
                auth_token=_secret(settings.twilio_auth_token),
                api_key_sid=settings.twilio_api_key_sid or "",
                api_key_secret=_secret(settings.twilio_api_key_secret),
                sms_from=settings.twilio_sms_from or "",
                messaging_service_sid=settings.twilio_messaging_service_sid or "",
                whatsapp_from=settings.twilio_whatsapp_from or "",
                whatsapp_content_sids=_pairs(settings.twilio_whatsapp_content_sids),
                voice_from=settings.twilio_voice_from or "",
                # Receipts need a public URL and the auth token their signature is checked
                # with; without both, steps fall back on their timers only.
                status_callback_url=(
                    f"{callback_base}/v1/webhooks/twilio/status"
                    if callback_base and settings.twilio_auth_token
                    else ""
                ),
                base_url=settings.twilio_base_url,
                timeouts=timeouts,
            ),
            http,
        )
    if channels.META_WHATSAPP in configured:
        providers[channels.META_WHATSAPP] = MetaWhatsAppProvider(
            MetaWhatsAppConfig(
                phone_number_id=settings.meta_phone_number_id or "",
                access_token=_secret(settings.meta_access_token),
                template_name=settings.meta_template_name,
                api_version=settings.meta_api_version,
                base_url=settings.meta_base_url,
                timeouts=timeouts,
            ),
            http,
        )
    if channels.HTTP_GATEWAY in configured:
        gateway = HttpGatewayConfig(
            url=settings.http_gateway_url or "",
            auth_header_name=settings.http_gateway_auth_header,
            auth_header_value=_secret(settings.http_gateway_auth_value),
            message_id_path=settings.http_gateway_message_id_path,
            honours_idempotency_key=settings.http_gateway_idempotent,
            timeouts=timeouts,
        )
        if settings.http_gateway_body_template:
            gateway = dataclasses.replace(
                gateway, body_template=settings.http_gateway_body_template
            )
        providers[channels.HTTP_GATEWAY] = HttpGatewayProvider(gateway, http)
    return providers


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
    verification = VerificationActivities(
        code_secret=secrets.code_secret,
        sandbox=SandboxProvider(store, receipts),
        live_providers={channel: by_name[names[0]] for channel, names in plan.items()},
        providers_by_name=by_name,
        recorder=recorder,
        gate=gate,
    )
    return WorkerActivities(
        verification=verification,
        records=RecordActivities(recorder),
        webhooks=WebhookActivities(store, secrets, settings, http),
        limiter=limiter,
    )


def webhook_dispatcher(client: Client | None, store: Store, settings: Settings) -> Dispatch | None:
    """Starts the webhook deliveries of one event (None without a client: nothing is sent)."""
    if client is None:
        return None
    from workflows.dispatch import start_webhook_deliveries

    async def dispatch(event: WebhookEvent) -> int:
        return await start_webhook_deliveries(client, store, event, task_queue=settings.task_queue)

    return dispatch


async def purge_once(store: Store, settings: Settings) -> int:
    """One round of every table's retention purge (`otp.store.retention`); the number of
    finished verifications purged."""
    counts = await retention.purge_all(store, settings)
    return counts.get("verifications", 0)


purge_periodically = retention.purge_periodically


def build_worker(client: Client, settings: Settings, activities: WorkerActivities) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        interceptors=[LogContextInterceptor(), metrics.worker_interceptor(client)],
        workflows=[VerificationWorkflow, WebhookDeliveryWorkflow],
        activities=[
            activities.verification.issue_code,
            activities.verification.deliver,
            activities.records.record_verification,
            *([activities.webhooks.deliver_webhook] if activities.webhooks else []),
        ],
    )


def precompile_workflows() -> bool:
    """Write bytecode for the workflow modules if it is missing.

    The workflow sandbox imports the workflow module afresh for every new workflow
    instance. Without a bytecode cache (PYTHONDONTWRITEBYTECODE, a fresh checkout) each
    of those imports compiles the source again: measured at about an eighth of the
    worker's CPU under load. Reading a cache is allowed even when writing is turned off,
    so compile once here. Returns False where the folder is read-only (nothing breaks).
    """
    import compileall

    import workflows

    folder = Path(workflows.__file__).parent
    try:
        return bool(compileall.compile_dir(folder, quiet=2, workers=1))
    except OSError:
        return False


async def serve(settings: Settings) -> None:
    precompile_workflows()
    secrets = load_secrets(settings)
    store = Store(settings.store_url)
    await store.migrate()
    tracing.setup(settings, tracing.WORKER_SERVICE)
    # With OTP_WORKER_METRICS_ADDRESS, the runtime serves ours and the SDK's metrics.
    runtime = metrics.worker_runtime(settings.worker_metrics_address)
    client = await connect(settings, secrets, runtime=runtime)
    # One HTTP connection pool for every provider adapter, closed on shutdown.
    http = httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(15.0, connect=5.0))
    activities = build_activities(
        settings, secrets, store, receipts=WorkflowReceiptSink(client), http=http, client=client
    )
    worker = build_worker(client, settings, activities)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logger.info(
        "worker polling",
        extra={
            "task_queue": settings.task_queue,
            "temporal": settings.temporal_target,
            "metrics": settings.worker_metrics_address,
        },
    )
    housekeeping = asyncio.create_task(purge_periodically(store, settings))
    async with worker:
        await stop.wait()
        logger.info("worker stopping: finishing in-flight tasks")
    housekeeping.cancel()
    await activities.verification.drain_logs()
    if activities.limiter is not None:
        await activities.limiter.close()
    await http.aclose()
    await store.close()
    tracing.flush()


def main() -> int:
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    run_and_exit(main)
