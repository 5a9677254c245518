"""The problem document every error answers, and how routes list it in OpenAPI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field

from api.schemas.base import ResponseModel
from otp.domain import Status


class Problem(ResponseModel):
    """RFC 9457 problem details (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:otp:problem:verification-not-found"])
    title: str = Field(examples=["Verification not found"])
    status: int = Field(examples=[404])
    detail: str | None = None
    instance: str | None = Field(default=None, examples=["/v1/verifications/ver_..."])
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description="Validation problems: `pointer` (JSON pointer into the body) or "
        "`in` + `parameter`, with `detail` and `type`.",
    )
    status_of_verification: Status | None = Field(
        default=None, description="Terminal status of a finished verification (409)."
    )
    retry_after: int | None = Field(default=None, description="Seconds to wait (429, 503).")


_DESCRIPTIONS = {
    401: "Missing or invalid API key",
    403: "Not allowed for this key's mode",
    404: "Unknown verification",
    409: "The verification is finished (or has no further channel)",
    422: "Invalid request",
    429: "Too many sends (see Retry-After)",
    502: "Delivery or engine failure",
    503: "Temporal unavailable (see Retry-After)",
}


def problem_responses(
    *statuses: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problems a route can answer; `described`
    replaces the default description of a status."""
    texts = {**_DESCRIPTIONS, **(described or {})}
    return {
        status: {"model": Problem, "description": texts.get(status, "Problem")}
        for status in statuses
    }
