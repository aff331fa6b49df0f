"""Authorisations (授权书): operators register, revoke and list them."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query

from api.access.deps import OperatorDep, SessionDep
from api.common.errors import ApiError, responses
from api.precredit import repository
from api.precredit.decide import normalised_code
from api.precredit.schemas import AuthorizationCreate, AuthorizationPublic, AuthorizationsPublic

router = APIRouter(prefix="/v1/authorizations", tags=["authorizations"])


@router.post("", response_model=AuthorizationPublic, status_code=201, responses=responses(401, 403, 422),
             summary="Register an enterprise's signed authorisation for one bank")
def create_authorization(body: AuthorizationCreate, caller: OperatorDep, session: SessionDep) -> AuthorizationPublic:
    """Register an enterprise's signed authorisation for one bank (the national template's version
    and the SHA-256 of the signed letter are kept)."""
    try:
        record = repository.add_authorization(session, normalised_code(body.uscc), body.bank_id, body.purpose,
                                              body.data_scope, body.valid_from, body.valid_until,
                                              body.template_version, body.document_hash)
    except ValueError as error:
        raise ApiError(422, "INVALID_AUTHORIZATION", str(error), "授权书信息无效") from None
    session.commit()
    return AuthorizationPublic.model_validate(record)


@router.post("/{authorization_id}/revoke", response_model=AuthorizationPublic,
             responses=responses(401, 403, 404, 422))
def revoke_authorization(caller: OperatorDep, session: SessionDep,
                         authorization_id: str = Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")
                         ) -> AuthorizationPublic:
    """Revoke an authorisation from now on (decisions already made stay as they were)."""
    record = repository.revoke_authorization(session, authorization_id)
    if record is None:
        raise ApiError(404, "AUTHORIZATION_NOT_FOUND", "no such authorisation", "授权书不存在")
    session.commit()
    return AuthorizationPublic.model_validate(record)


@router.get("", response_model=AuthorizationsPublic, responses=responses(401, 403, 422))
def list_authorizations(caller: OperatorDep, session: SessionDep,
                        uscc: str | None = Query(default=None, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$"),
                        bank_id: int | None = Query(default=None, ge=1, le=2**31 - 1), limit: int = Query(default=100, ge=1, le=500),
                        offset: int = Query(default=0, ge=0, le=10**9)) -> AuthorizationsPublic:
    """Authorisations, filtered by enterprise and bank, a page at a time."""
    uscc = normalised_code(uscc) if uscc else None  # as the POST does: lower case and full width find the same
    count, rows = repository.list_authorizations(session, uscc, bank_id, limit, offset)
    return AuthorizationsPublic(count=count, items=[AuthorizationPublic.model_validate(r) for r in rows])
