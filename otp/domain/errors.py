"""Business error types carried as `ApplicationError.type` (stable, part of the API mapping)."""

from __future__ import annotations


class ErrorType:
    NOT_FOUND = "VerificationNotFound"
    FINISHED = "VerificationFinished"
    INVALID_INPUT = "InvalidInput"
    RESEND_COOLDOWN = "ResendCooldown"
    MAX_SENDS = "MaxSendsReached"
    NO_MORE_CHANNELS = "NoMoreChannels"
    PERMANENT_DELIVERY = "PermanentDeliveryFailure"
    TRANSIENT_DELIVERY = "TransientDeliveryFailure"
    # A risk gate refused the send: the verification ends `blocked`. The first detail is
    # {"reason": "<why, for the record; no destination>", "code": "<short_identifier>"};
    # the code shows in the OtpReason search attribute as `blocked:<code>`.
    BLOCKED = "Blocked"
    # A resend refused by the delivery gate: the update fails, the verification and its
    # code stay as they were. Details: {"code": "<short_identifier>", "limit": "<limit
    # name>" or None, "retry_after_s": <seconds until the limit has room> or None (a block)}.
    RESEND_REFUSED = "ResendRefused"
    # The delivery would take the verification's cost past its cost cap: not sent; the
    # step is skipped (a resend's update fails). Details: {"reason": "<amounts, currency>",
    # "code": "cost_cap"}.
    COST_CAP = "CostCapReached"
