"""Every problem the API answers (RFC 9457 `application/problem+json`): the catalogue.

Each `ApiProblem` subclass fixes a status, a stable type (`urn:otp:problem:<slug>`) and a
title; routes and services raise them. `api.exception_handlers` renders them (and maps
Temporal errors to them through `api.temporal_errors`); nothing here knows about requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:otp:problem:"

# Seconds a client should wait before retrying when Temporal is unreachable or slow.
UNAVAILABLE_RETRY_AFTER_S = 2


def problem_type(slug: str) -> str:
    return PROBLEM_TYPE_PREFIX + slug


class ApiProblem(Exception):
    """An error answered as a problem document. Subclasses fix status, type and title."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = {k: v for k, v in extensions.items() if v is not None}

    @property
    def type(self) -> str:
        return problem_type(self.slug)


class Unauthorized(ApiProblem):
    status, slug, title = 401, "unauthorized", "Missing or invalid API key"

    def __init__(self) -> None:
        # One body for missing, malformed and unknown keys: nothing to learn by probing.
        super().__init__(
            "Send a valid API key as `Authorization: Bearer <key>`.",
            headers={"WWW-Authenticate": 'Bearer realm="otp"'},
        )


class Forbidden(ApiProblem):
    status, slug, title = 403, "forbidden", "Not allowed for this API key"


class VerificationNotFound(ApiProblem):
    status, slug, title = 404, "verification-not-found", "Verification not found"

    def __init__(self) -> None:
        super().__init__("No verification with this id exists for this API key.")


class VerificationFinished(ApiProblem):
    status, slug, title = 409, "verification-finished", "Verification already finished"

    def __init__(self, status: str, reason: str | None = None) -> None:
        super().__init__(
            f"The verification is {status}; start a new one.",
            status_of_verification=status,
            reason=reason,
        )


class VerificationAborted(ApiProblem):
    status, slug, title = 409, "verification-aborted", "Verification ended abnormally"

    def __init__(self, execution_status: str) -> None:
        super().__init__(
            "The verification was stopped outside the API (for example by an operator); "
            "start a new one.",
            execution_status=execution_status,
        )


class ResendCooldown(ApiProblem):
    status, slug, title = 429, "resend-cooldown", "Resend requested too soon"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"A code was sent moments ago; retry in {retry_after_s} s.",
            headers={"Retry-After": str(retry_after_s)},
            retry_after=retry_after_s,
        )


class MaxSendsReached(ApiProblem):
    status, slug, title = 429, "max-sends-reached", "No sends left for this verification"

    def __init__(self) -> None:
        super().__init__("The maximum number of sends for this verification was reached.")


class NoMoreChannels(ApiProblem):
    status, slug, title = 409, "no-more-channels", "No further channel in the plan"

    def __init__(self) -> None:
        super().__init__("The verification is already on the last step of its channel plan.")


class DeliveryFailed(ApiProblem):
    status, slug, title = 502, "delivery-failed", "The code could not be delivered"


class InvalidRequest(ApiProblem):
    status, slug, title = 422, "invalid-request", "The request is not valid"


class IdempotencyKeyReused(ApiProblem):
    status, slug, title = (
        422,
        "idempotency-key-reused",
        "Idempotency-Key already used with a different request",
    )


class Conflict(ApiProblem):
    status, slug, title = 409, "conflict", "Conflict"


class ServiceUnavailable(ApiProblem):
    status, slug, title = 503, "service-unavailable", "Service temporarily unavailable"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(
            detail or "The verification engine did not answer in time; retry shortly.",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
            retry_after=UNAVAILABLE_RETRY_AFTER_S,
            **extensions,
        )


class UpstreamError(ApiProblem):
    status, slug, title = 502, "engine-error", "The verification engine failed"


class InvalidWebhookSignature(ApiProblem):
    status, slug, title = 403, "invalid-signature", "Missing or invalid webhook signature"

    def __init__(self) -> None:
        # One body for missing and wrong signatures: nothing to learn by probing.
        super().__init__("The request is not signed by the provider this endpoint serves.")


class WebhookNotConfigured(ApiProblem):
    status, slug, title = 404, "webhook-not-configured", "Webhook not configured"

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"This service has no {provider} webhook credentials configured.", provider=provider
        )


class PayloadTooLarge(ApiProblem):
    status, slug, title = 413, "payload-too-large", "Request body too large"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"The body must be at most {limit_bytes} bytes.", limit=limit_bytes)


def field_error(pointer: str, detail: str, code: str = "value_error") -> dict[str, str]:
    """One entry of a 422 problem's `errors`: a JSON pointer into the body (RFC 6901)."""
    return {"pointer": pointer, "detail": detail, "type": code}


def param_error(location: str, name: str, detail: str, code: str = "value_error") -> dict[str, str]:
    """One entry of a 422 problem's `errors` for a query, path or header parameter."""
    return {"in": location, "parameter": name, "detail": detail, "type": code}


def invalid(errors: Sequence[Mapping[str, str]], detail: str | None = None) -> InvalidRequest:
    return InvalidRequest(
        detail or "One or more fields are invalid; see `errors`.", errors=list(errors)
    )


# ------------------------------------------------------- applications and admin API
class AdminUnauthorized(ApiProblem):
    status, slug, title = 401, "admin-unauthorized", "Missing or invalid admin token"

    def __init__(self) -> None:
        super().__init__(
            "Send the admin token (OTP_ADMIN_TOKEN) as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": 'Bearer realm="otp-admin"'},
        )


class ApplicationNotFound(ApiProblem):
    status, slug, title = 404, "application-not-found", "Application not found"

    def __init__(self) -> None:
        super().__init__("No application with this id exists.")


class ApiKeyNotFound(ApiProblem):
    status, slug, title = 404, "api-key-not-found", "API key not found"

    def __init__(self) -> None:
        super().__init__("No API key with this id exists for this application.")


class ChannelNotAllowed(ApiProblem):
    status, slug, title = 403, "channel-not-allowed", "Channel not allowed for this application"

    def __init__(self, refused: Sequence[str], allowed: Sequence[str]) -> None:
        super().__init__(
            f"This application may not use {', '.join(refused)}; "
            f"allowed channels: {', '.join(allowed)}.",
            refused_channels=list(refused),
            allowed_channels=list(allowed),
        )


class IdempotencyKeyInFlight(ApiProblem):
    status, slug, title = (
        409,
        "idempotency-key-in-flight",
        "A request with this Idempotency-Key is still being processed",
    )

    def __init__(self) -> None:
        super().__init__(
            "Retry shortly: the first request with this key has not finished yet.",
            headers={"Retry-After": "1"},
            retry_after=1,
        )


# ----------------------------------------------------------------- webhook endpoints
class WebhookEndpointNotFound(ApiProblem):
    status, slug, title = 404, "webhook-endpoint-not-found", "Webhook endpoint not found"

    def __init__(self) -> None:
        super().__init__("No webhook endpoint with this id exists for this API key.")


class WebhookMessageNotFound(ApiProblem):
    status, slug, title = 404, "webhook-message-not-found", "Webhook message not found"

    def __init__(self) -> None:
        super().__init__("This endpoint has no message with this id.")


class CodecForbidden(ApiProblem):
    status, slug, title = 403, "codec-forbidden", "Not allowed to use the codec"

    def __init__(self) -> None:
        super().__init__(
            "Decoding payloads needs the codec token (Authorization: Bearer ...); without "
            "one, only callers on the same machine may use it, and only in dev."
        )


# ----------------------------------------------------------------- fraud controls
class RiskPolicyRefused(ApiProblem):
    status, slug, title = 403, "risk-policy", "Refused by the application's risk policy"

    def __init__(self, reason: str, *, step_index: int | None = None) -> None:
        # Never the destination: the reason and which plan step it concerns.
        super().__init__(
            "The application's fraud controls refuse this destination "
            f"({reason}); no code was sent.",
            reason=reason,
            step_index=step_index,
        )


class RateLimited(ApiProblem):
    status, slug, title = 429, "rate-limited", "Rate limit reached"

    def __init__(self, limit: str, retry_after_s: int, headers: Mapping[str, str]) -> None:
        super().__init__(
            f"The {limit} limit is reached; retry in {retry_after_s} s. No code was sent.",
            headers={**headers, "Retry-After": str(retry_after_s)},
            limit=limit,
            retry_after=retry_after_s,
        )


class SpendCapReached(ApiProblem):
    status, slug, title = 429, "spend-cap-reached", "Spend cap reached"

    def __init__(
        self,
        cap: str,
        retry_after_s: int,
        *,
        currency: str | None = None,
        cap_amount: str | None = None,
        spent: str | None = None,
        cost: str | None = None,
        country: str | None = None,
    ) -> None:
        where = f" for {country}" if country else ""
        super().__init__(
            f"The application's {cap} spend cap{where} is reached; it has room again in "
            f"{retry_after_s} s (the next UTC period). No code was sent, nothing was charged.",
            headers={"Retry-After": str(retry_after_s)},
            cap=cap,
            currency=currency,
            cap_amount=cap_amount,
            spent=spent,
            cost=cost,
            country=country,
            retry_after=retry_after_s,
        )


class CostCapReached(ApiProblem):
    status, slug, title = 409, "cost-cap-reached", "Cost cap of the verification reached"

    def __init__(self) -> None:
        super().__init__(
            "Another send would take this verification past its cost cap (`max_cost`); "
            "nothing was sent. The verification and its code are unchanged."
        )


# --------------------------------------------------------------------- risk blocks
class RiskBlockNotFound(ApiProblem):
    status, slug, title = 404, "risk-block-not-found", "Risk block not found"

    def __init__(self) -> None:
        super().__init__("No risk block with this id exists for this application.")


# ----------------------------------------------------------- lockouts and the safe list
class AlertNotFound(ApiProblem):
    status, slug, title = 404, "alert-not-found", "Alert not found"

    def __init__(self) -> None:
        super().__init__("No alert with this id exists for this application.")


class LockoutNotFound(ApiProblem):
    status, slug, title = 404, "lockout-not-found", "Destination not locked out"

    def __init__(self) -> None:
        super().__init__("This destination is not locked out for this application.")


class SafeListEntryNotFound(ApiProblem):
    status, slug, title = 404, "safe-list-entry-not-found", "Safe list entry not found"

    def __init__(self) -> None:
        super().__init__("No safe list entry with this id exists for this application.")


class MetricsUnauthorized(ApiProblem):
    status, slug, title = 401, "unauthorized", "Missing or invalid metrics token"

    def __init__(self) -> None:
        super().__init__(
            "Send OTP_METRICS_TOKEN as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )


# ----------------------------------------------------------------- sandbox scenarios
class SandboxScenarioNotFound(ApiProblem):
    status, slug, title = 404, "sandbox-scenario-not-found", "Sandbox scenario not found"

    def __init__(self) -> None:
        super().__init__("No sandbox scenario with this id exists for this application.")


# ------------------------------------------------------------------- routing rules
class RoutingRuleNotFound(ApiProblem):
    status, slug, title = 404, "routing-rule-not-found", "Routing rule not found"

    def __init__(self) -> None:
        super().__init__("No routing rule with this id exists for this application.")


class RoutingRuleConflict(ApiProblem):
    status, slug, title = 409, "routing-rule-conflict", "Routing rule already exists"

    def __init__(self, rule_id: str) -> None:
        super().__init__(
            "Another rule of this application already matches this channel, country and "
            "prefix: update or delete it.",
            rule_id=rule_id,
        )


class SenderNotAllowed(ApiProblem):
    status, slug, title = 422, "sender-not-allowed", "Sender not allowed in this country"

    def __init__(self, *, country: str, sender_type: str, reason: str, source: str) -> None:
        super().__init__(
            f"The sender type {sender_type} cannot be used for {country}: {reason}. Source: {source}",
            country=country,
            sender_type=sender_type,
            reason=reason,
            source=source,
        )


# ------------------------------------------------------------- provider accounts
class ProviderAccountNotFound(ApiProblem):
    status, slug, title = 404, "provider-account-not-found", "Provider account not found"

    def __init__(self) -> None:
        super().__init__("This application has no account with this provider.")


# --------------------------------------------------------------- message templates
class InvalidTemplate(ApiProblem):
    status, slug, title = 422, "invalid-template", "The template is not valid"

    def __init__(self, errors: Sequence[Mapping[str, str]]) -> None:
        super().__init__(
            "The template breaks one or more rules; see `errors`. Nothing was saved.",
            errors=list(errors),
        )


class TemplateNotFound(ApiProblem):
    status, slug, title = 404, "template-not-found", "Template not found"

    def __init__(self) -> None:
        super().__init__(
            "This application has no active template for this channel and locale "
            "(the built-in catalogue is used)."
        )


# --------------------------------------------------------------------- prices
class PriceNotFound(ApiProblem):
    status, slug, title = 404, "price-not-found", "Price not found"

    def __init__(self) -> None:
        super().__init__("This application has no own price for this route.")
