"""Names and bounds shared by the API, the workflow and the worker.

The policy bounds are validated by the API and enforced again by the workflow; the
activity names are those the workflow calls and the worker registers.
"""

from __future__ import annotations

TASK_QUEUE = "otp-verifications"
WORKFLOW_ID_PREFIX = "ver_"

# --- policy bounds (validated by the API, enforced again by the workflow) ---
STEP_TIMEOUT_MIN_S = 5
STEP_TIMEOUT_MAX_S = 3600
STEP_TIMEOUT_DEFAULT_S = 60
CODE_LENGTH_MIN = 4
CODE_LENGTH_MAX = 10
TTL_MIN_S = 60
TTL_MAX_S = 86400
MAX_ATTEMPTS_MAX = 10
MAX_SENDS_MAX = 10
MAX_PLAN_STEPS = 8

# --- activity names (the workflow calls activities by name; the worker registers these) ---
ACTIVITY_ISSUE_CODE = "issue_code"
ACTIVITY_DELIVER = "deliver"
ACTIVITY_RECORD = "record_verification"
ACTIVITY_FETCH_PRICES = "fetch_provider_prices"
