"""The bodies of who may ask: an operator's reload of the model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from api import examples


class ReloadPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.RELOAD]})
    previous_version: str | None
    model_version: str | None
    changed: bool
