"""The model card and the feature registry, for every authenticated client."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api import examples
from api.access.deps import CallerDep, HolderDep, SessionDep
from api.common.errors import responses
from api.precredit import repository
from api.precredit.decide import current_bundle
from api.routes.schemas import ModelCard
from features.registry import FEATURES, feature_set_version

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models/current", response_model=ModelCard, responses=responses(401, 503))
def current_model(caller: CallerDep, holder: HolderDep, session: SessionDep, request: Request) -> ModelCard:
    """The model answering now: versions, training windows, out-of-time metrics."""
    bundle = current_bundle(holder.bundle, request)
    meta = bundle.meta
    return ModelCard(model_version=bundle.version, bundle_id=meta["bundle_id"], alias=holder.alias,
                     feature_set_version=meta["feature_set_version"], policy_version=bundle.policy.version,
                     trained_at=meta["trained_at"], windows=meta["split"], loans=meta["loans"],
                     metrics=meta.get("metrics", {}), published_profiles=repository.published_summary(session))


@router.get("/features", responses={**responses(401), 200: {"content": {"application/json": {"example": examples.FEATURES}}}})
def features(caller: CallerDep) -> dict:
    """The feature registry: every feature's meaning, unit, direction, sources and legal basis."""
    return {"feature_set_version": feature_set_version(), "count": len(FEATURES),
            "features": [f.as_json() for f in FEATURES]}
