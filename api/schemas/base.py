"""The bases of every request and response model of the HTTP API.

Requests reject unknown fields: a typo (`chanels`) must not silently fall back to
defaults. Responses are built by the service itself and stay open: their documented
schemas carry no `additionalProperties: false`, so a field added later does not break
clients generated from the OpenAPI document.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    pass
