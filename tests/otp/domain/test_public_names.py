"""The public names of `otp.domain`, pinned: a split or a move must keep every one of them."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import otp.domain
from otp.domain.base import PayloadModel

EXPECTED = {
    "ACTIVITY_DELIVER",
    "ACTIVITY_EVALUATE_ALERTS",
    "ACTIVITY_FETCH_PRICES",
    "ACTIVITY_ISSUE_CODE",
    "ACTIVITY_RECORD",
    "CODE_LENGTH_MAX",
    "CODE_LENGTH_MIN",
    "MAX_ATTEMPTS_MAX",
    "MAX_PLAN_STEPS",
    "MAX_SENDS_MAX",
    "STEP_TIMEOUT_DEFAULT_S",
    "STEP_TIMEOUT_MAX_S",
    "STEP_TIMEOUT_MIN_S",
    "TASK_QUEUE",
    "TERMINAL_EVENT_OF",
    "TTL_MAX_S",
    "TTL_MIN_S",
    "WEBHOOK_EVENT_OF",
    "WORKFLOW_ID_PREFIX",
    "CancelResult",
    "Channel",
    "ChannelStep",
    "CheckInput",
    "CheckResult",
    "CodeType",
    "DeliverInput",
    "DeliveryCost",
    "DeliverResult",
    "DeliveryAttempt",
    "DeliveryKind",
    "DeliveryReceiptInput",
    "DeliveryStatus",
    "ErrorType",
    "EvaluateAlertsInput",
    "EvaluateAlertsResult",
    "FetchPricesInput",
    "FetchPricesResult",
    "EventType",
    "IssueCodeInput",
    "IssueCodeResult",
    "LogEntry",
    "MONITOR_WORKFLOW_ID",
    "Mode",
    "MonitorInput",
    "MonitorResult",
    "NextChannelResult",
    "PayloadModel",
    "PriceSource",
    "RecordVerificationInput",
    "RecordVerificationResult",
    "ResendResult",
    "ScopedInput",
    "StateQueryInput",
    "Status",
    "StrictModel",
    "VerificationInput",
    "VerificationState",
    "WebhookEvent",
    "WebhookEventType",
    "verification_id_of_reference",
    "webhook_message_id",
}

# Field names of the types that cross a Temporal boundary: a rename breaks recorded histories.
PAYLOAD_FIELDS = {
    "ChannelStep": ["channel", "to", "timeout_s", "providers", "rule_id", "sender"],
    "CheckInput": ["digest", "application_id", "mode"],
    "CheckResult": ["status", "valid", "attempts_remaining", "attempts_used"],
    "DeliveryReceiptInput": [
        "provider",
        "provider_message_id",
        "status",
        "error_code",
        "reference",
        "price_micros",
        "price_currency",
    ],
    "DeliverResult": ["provider", "provider_message_id", "status", "template_version", "cost"],
    "IssueCodeResult": ["nonce", "digest"],
    "RecordVerificationResult": ["events_written", "webhooks_started"],
    "ScopedInput": ["application_id", "mode"],
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(otp.domain.__all__) == EXPECTED
    assert len(otp.domain.__all__) == len(EXPECTED)


def test_every_public_name_resolves() -> None:
    for name in EXPECTED:
        assert getattr(otp.domain, name) is not None, name


def test_payload_types_keep_their_fields_and_ignore_unknown_ones() -> None:
    for name, fields in PAYLOAD_FIELDS.items():
        model = getattr(otp.domain, name)
        assert list(model.model_fields) == fields, name
    payload_types = [
        value
        for value in vars(otp.domain).values()
        if inspect.isclass(value) and issubclass(value, PayloadModel) and value is not PayloadModel
    ]
    assert len(payload_types) >= 20
    for model in payload_types:
        assert model.model_config.get("extra") == "ignore", model.__name__


def test_the_domain_imports_nothing_of_the_project_outside_itself() -> None:
    folder = Path(otp.domain.__file__).parent
    project = {"otp", "api", "workflows", "activities", "providers", "cli", "worker", "bench"}
    for source in folder.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.split(".")[0] in project:
                    assert module.startswith("otp.domain"), f"{source.name} imports {module}"
                    importlib.import_module(module)
