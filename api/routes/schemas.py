"""The service's own bodies: the model card."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from api import examples


class ModelCard(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.MODEL_CARD]})
    model_version: str
    bundle_id: str
    alias: str
    feature_set_version: str
    policy_version: str
    trained_at: str
    windows: dict
    loans: dict
    metrics: dict
    published_profiles: dict
