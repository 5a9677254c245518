"""The pydantic bases of every model of the project's ground floor.

- `PayloadModel`: types that cross a Temporal boundary (workflow and activity inputs,
  results, queries, webhook messages). Unknown fields are ignored, so that a payload
  written by a newer release still decodes in an older one during a rolling upgrade.
- `StrictModel`: settings objects that people write (application defaults, risk
  settings): frozen, and a misspelt field is an error rather than silently dropped.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PayloadModel(BaseModel):
    """Base of every type that crosses a Temporal boundary."""

    model_config = ConfigDict(frozen=False, extra="ignore")


class StrictModel(BaseModel):
    """Base of settings objects written by people: frozen, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
