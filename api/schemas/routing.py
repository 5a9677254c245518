"""Routing rules of an application, and the route explanation of one destination."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.base import RequestModel, ResponseModel
from otp.domain import Channel
from otp.domain.routing import SenderType
from otp.routing.rules import Match


class SenderIn(RequestModel):
    type: SenderType = Field(description="What kind of sender `value` is.")
    value: str = Field(
        min_length=1,
        max_length=64,
        description="The name (alphanumeric), E.164 number (long code, WhatsApp), digits "
        "(short code, Meta phone number id) or `MG...` SID (Messaging Service).",
        examples=["ACME"],
    )


class SenderPublic(ResponseModel):
    type: SenderType
    value: str


class RoutingRuleWrite(RequestModel):
    """A rule: which providers, in order, and which sender serve a channel there."""

    channel: Channel
    country: str | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="ISO 3166-1 alpha-2 country of the destination; none: the channel's "
        "default rule.",
        examples=["GB"],
    )
    prefix: str | None = Field(
        default=None,
        max_length=16,
        description="An E.164 prefix within the country (`+4477`): the longest match wins.",
        examples=["+4477"],
    )
    providers: list[str] = Field(
        default_factory=list,
        max_length=4,
        description="Providers in failover order (empty: the channel's global order).",
        examples=[["twilio"]],
    )
    sender: SenderIn | None = Field(default=None, description="None: the provider's own sender.")


class RoutingRulePublic(ResponseModel):
    id: str
    application_id: str
    channel: Channel
    country: str | None
    prefix: str | None
    providers: list[str]
    sender: SenderPublic | None
    warnings: list[str] = Field(
        default_factory=list,
        description="What the country's facts say of the sender (e.g. it needs registration).",
    )
    created_at: datetime
    updated_at: datetime


class RoutingRuleList(ResponseModel):
    rules: list[RoutingRulePublic]


class RouteExplanation(ResponseModel):
    """Which rule, providers and sender a send to `to` on `channel` would use, and why."""

    channel: Channel
    to: str = Field(description="The destination, masked.")
    country: str | None
    match: Match = Field(description="prefix | country | default | global (no rule).")
    rule_id: str | None
    providers: list[str] = Field(description="In failover order, as configured now.")
    sender: SenderPublic | None
    reasons: list[str]
