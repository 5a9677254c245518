"""Types of the code's issue and delivery activities and of provider delivery receipts."""

from __future__ import annotations

from datetime import datetime

from otp.domain.base import PayloadModel
from otp.domain.constants import WORKFLOW_ID_PREFIX
from otp.domain.cost import DeliveryCost
from otp.domain.enums import Channel, CodeType, DeliveryKind, DeliveryStatus, Mode
from otp.domain.routing import Sender


class IssueCodeInput(PayloadModel):
    verification_id: str
    code_length: int
    code_type: CodeType


class IssueCodeResult(PayloadModel):
    """The code itself never leaves the activity: only its nonce and keyed digest do."""

    nonce: str
    digest: str


class DeliverInput(PayloadModel):
    verification_id: str
    application_id: str
    mode: Mode
    step_index: int
    kind: DeliveryKind = DeliveryKind.STEP
    channel: Channel
    to: str
    provider: str | None = None
    nonce: str
    code_length: int
    code_type: CodeType
    locale: str = "en"
    brand: str = ""
    expires_at: datetime
    # `<verification id>:<run id>:<n>`: the same for every retry of this delivery; the
    # provider's idempotency key and the reference its receipts carry back.
    delivery_key: str | None = None
    web_domain: str | None = None
    app_hash: str | None = None
    country: str | None = None
    # The API already charged this send's limits when it created the verification (its
    # very first delivery): the delivery gate does not charge them again.
    precounted: bool = False
    # The member the delivery gate charges the send limits with: the same for every
    # provider try of one delivery (failover), so a delivery counts once. None: the
    # delivery key (histories from before it).
    limit_member: str | None = None
    # The routing rule of the step and the sender it picked (None: the provider's own).
    rule_id: str | None = None
    sender: Sender | None = None
    # The verification's cost so far (the deliveries before this one) and its cost cap,
    # in micros of the deployment's currency: a send that would pass the cap is not made
    # (CostCapReached). None: no cap.
    cost_so_far_micros: int = 0
    cost_cap_micros: int | None = None
    # What the API already charged to the spend caps for this send at create (its
    # estimate): the delivery charges only what its own estimate adds.
    precharged_micros: int = 0


class DeliverResult(PayloadModel):
    provider: str
    provider_message_id: str
    status: DeliveryStatus = DeliveryStatus.SENT
    # The application's message template version rendered (None: the built-in catalogue).
    template_version: int | None = None
    # What the send costs (None: not costed, as in histories from before costs).
    cost: DeliveryCost | None = None


class DeliveryAttempt(PayloadModel):
    """One delivery of the code (a plan step or a resend), as recorded by the workflow."""

    step_index: int
    kind: DeliveryKind = DeliveryKind.STEP
    channel: Channel
    provider: str | None = None
    provider_message_id: str | None = None
    reference: str | None = None
    status: DeliveryStatus = DeliveryStatus.SENDING
    error_type: str | None = None
    started_at: datetime
    updated_at: datetime
    # The routing rule and sender of the step (None: the global order, the provider's own).
    rule_id: str | None = None
    sender: Sender | None = None
    # The application's message template version it used (None: the built-in catalogue).
    template_version: int | None = None
    # What it costs: the estimate, then the provider's price once a receipt brings it.
    cost: DeliveryCost | None = None


class DeliveryReceiptInput(PayloadModel):
    """A provider's delivery receipt, forwarded by the API as a signal.

    `reference` is the delivery's own key (DeliverInput.delivery_key, echoed by the
    provider in its callback), which maps a receipt even when the send's outcome, and so
    the provider's message id, was never learned.
    """

    provider: str
    provider_message_id: str
    status: DeliveryStatus
    error_code: str | None = None
    reference: str | None = None
    # The price the provider reported with this receipt (micros, positive) and its
    # currency (ISO 4217), where it reports one (Twilio's `Price` and `PriceUnit`).
    price_micros: int | None = None
    price_currency: str | None = None


def verification_id_of_reference(reference: str) -> str | None:
    """The verification id a delivery key starts with (`ver_...:<run>:<seq>`), if any."""
    head = reference.split(":", 1)[0]
    return head if head.startswith(WORKFLOW_ID_PREFIX) and len(head) <= 80 else None
