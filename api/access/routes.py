"""POST /admin/reload: swap in the model the registry now calls champion."""

from __future__ import annotations

from fastapi import APIRouter

from api.access.deps import HolderDep, OperatorDep
from api.access.schemas import ReloadPublic
from api.common.errors import responses

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/reload", response_model=ReloadPublic, responses=responses(401, 403), summary="Load the current champion now")
def reload_model(caller: OperatorDep, holder: HolderDep) -> ReloadPublic:
    """Load the current champion now (each worker also checks on its own every
    ``XYD_MODEL_CHECK_SECONDS``); requests in flight finish on the model they started with."""
    before, after = holder.reload()
    return ReloadPublic(previous_version=before, model_version=after, changed=before != after)
