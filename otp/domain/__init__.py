"""Domain types shared by the API, the workflow and the activities.

Every object that crosses a Temporal boundary is one of these pydantic models
(one typed input, one typed result). New fields always get defaults so that
histories recorded by older code still decode.

The types live in submodules by subject and are re-exported here: import them from
`otp.domain`. The package imports nothing of the project outside itself, so the workflow
sandbox can pass it through.
"""

from __future__ import annotations

from otp.domain.alerts import (
    ACTIVITY_EVALUATE_ALERTS,
    MONITOR_WORKFLOW_ID,
    EvaluateAlertsInput,
    EvaluateAlertsResult,
    MonitorInput,
    MonitorResult,
)
from otp.domain.base import PayloadModel, StrictModel
from otp.domain.constants import (
    ACTIVITY_DELIVER,
    ACTIVITY_FETCH_PRICES,
    ACTIVITY_ISSUE_CODE,
    ACTIVITY_RECORD,
    CODE_LENGTH_MAX,
    CODE_LENGTH_MIN,
    MAX_ATTEMPTS_MAX,
    MAX_PLAN_STEPS,
    MAX_SENDS_MAX,
    STEP_TIMEOUT_DEFAULT_S,
    STEP_TIMEOUT_MAX_S,
    STEP_TIMEOUT_MIN_S,
    TASK_QUEUE,
    TTL_MAX_S,
    TTL_MIN_S,
    WORKFLOW_ID_PREFIX,
)
from otp.domain.cost import DeliveryCost, FetchPricesInput, FetchPricesResult, PriceSource
from otp.domain.delivery import (
    DeliverInput,
    DeliverResult,
    DeliveryAttempt,
    DeliveryReceiptInput,
    IssueCodeInput,
    IssueCodeResult,
    verification_id_of_reference,
)
from otp.domain.enums import (
    Channel,
    CodeType,
    DeliveryKind,
    DeliveryStatus,
    EventType,
    Mode,
    Status,
    WebhookEventType,
)
from otp.domain.errors import ErrorType
from otp.domain.events import (
    TERMINAL_EVENT_OF,
    WEBHOOK_EVENT_OF,
    LogEntry,
    RecordVerificationInput,
    RecordVerificationResult,
    WebhookEvent,
    webhook_message_id,
)
from otp.domain.verification import (
    CancelResult,
    ChannelStep,
    CheckInput,
    CheckResult,
    NextChannelResult,
    ResendResult,
    ScopedInput,
    StateQueryInput,
    VerificationInput,
    VerificationState,
)

__all__ = [
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
    "MONITOR_WORKFLOW_ID",
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
    "DeliverResult",
    "DeliveryAttempt",
    "DeliveryCost",
    "DeliveryKind",
    "DeliveryReceiptInput",
    "DeliveryStatus",
    "ErrorType",
    "EvaluateAlertsInput",
    "EvaluateAlertsResult",
    "EventType",
    "FetchPricesInput",
    "FetchPricesResult",
    "IssueCodeInput",
    "IssueCodeResult",
    "LogEntry",
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
]
