"""POST /v1/pre-credit and /v1/pre-credit/batch: a bank's questions about enterprises."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request

from api.db import repository
from api.decide import Asked, current_bundle, decide_and_record, normalised_code, today_utc, vet
from api.deps import BankDep, HolderDep, SessionDep
from api.errors import ApiError, request_id, responses
from api.schemas import (ItemError, PreCreditBatchItem, PreCreditBatchPublic, PreCreditBatchRequest, PreCreditPublic,
                         PreCreditRequest)

router = APIRouter(prefix="/v1/pre-credit", tags=["pre-credit"])


@router.post("", response_model=PreCreditPublic, responses=responses(401, 403, 404, 413, 422, 503))
def pre_credit(body: PreCreditRequest, caller: BankDep, session: SessionDep, holder: HolderDep,
               request: Request) -> PreCreditPublic:
    """PD, score, grade, decision and limit for one enterprise, with the reasons and versions.

    Needs an authorisation (授权书) the enterprise gave this bank, valid today and not revoked."""
    bundle = current_bundle(holder.bundle, request)
    profile = repository.profile_for(session, normalised_code(body.uscc))
    asked = vet(session, bundle, caller.id, 0, body, profile, today_utc())
    session.close()
    return decide_and_record(request.app.state.appender, bundle, caller.id, [asked], [request_id(request)])[0]


@router.post("/batch", response_model=PreCreditBatchPublic, responses=responses(401, 403, 413, 422, 503))
def pre_credit_batch(body: PreCreditBatchRequest, caller: BankDep, session: SessionDep, holder: HolderDep,
                     request: Request) -> PreCreditBatchPublic:
    """Up to 1,000 questions at once; each gets a decision or its own error."""
    limit = request.app.state.config.max_batch
    if len(body.items) > limit:
        raise ApiError(422, "BATCH_TOO_LARGE", f"at most {limit} items", f"单批最多{limit}笔")
    bundle = current_bundle(holder.bundle, request)
    codes = []
    for item in body.items:
        try:
            codes.append(normalised_code(item.uscc))
        except ApiError:
            codes.append(None)
    profiles = repository.profiles_for(session, [c for c in codes if c])
    today = today_utc()
    results: list[PreCreditBatchItem] = []
    asked: list[Asked] = []
    for index, item in enumerate(body.items):
        try:
            asked.append(vet(session, bundle, caller.id, index, item, profiles.get(codes[index] or ""), today))
        except ApiError as error:
            results.append(PreCreditBatchItem(index=index, error=ItemError(code=error.code, message=error.message,
                                                                           message_zh=error.message_zh)))
    session.close()
    for item, decided in zip(asked, decide_and_record(request.app.state.appender, bundle, caller.id, asked)):
        results.append(PreCreditBatchItem(index=item.index, decision=decided))
    results.sort(key=lambda r: r.index)
    return PreCreditBatchPublic(request_id=request_id(request), count=len(results), decided=len(asked), results=results)
