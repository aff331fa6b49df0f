"""POST /v1/pre-credit and /v1/pre-credit/batch: a bank's questions about enterprises."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.access.deps import BankDep, HolderDep
from api.common.errors import ApiError, request_id, responses
from api.common.fields import ItemError
from api.common.refusals import Refusal
from api.precredit.decide import answer, current_bundle, start_answer
from api.precredit.schemas import (
    PreCreditBatchItem,
    PreCreditBatchPublic,
    PreCreditBatchRequest,
    PreCreditPublic,
    PreCreditRequest,
)

router = APIRouter(prefix="/v1/pre-credit", tags=["pre-credit"])


# The routes are coroutines that hand the checks and the model to one worker thread: with sync
# dependencies and a sync route there were six hops between the event loop and the thread pool
# per decision, each a queue handoff and a thread wake-up. The single question then waits for the
# chain's writer on the event loop, so the thread is free to decide the next request meanwhile
# (decisions that queue during a write share the next one).

@router.post("", response_model=PreCreditPublic, responses=responses(401, 403, 404, 413, 422, 503))
async def pre_credit(body: PreCreditRequest, caller: BankDep, holder: HolderDep, request: Request) -> PreCreditPublic:
    """PD, score, grade, decision and limit for one enterprise, with the reasons and versions.

    Needs an authorisation (授权书) the enterprise gave this bank, valid today and not revoked."""
    bundle = current_bundle(holder.bundle, request)
    state = request.app.state
    answering = await run_in_threadpool(start_answer, state.engine, state.appender, bundle, caller.id, [body],
                                        [request_id(request)])
    await asyncio.wrap_future(answering.written)
    [result] = answering.finish()
    if isinstance(result, Refusal):
        raise result  # answered with its kind's status (api.common.errors)
    return result


@router.post("/batch", response_model=PreCreditBatchPublic, responses=responses(401, 403, 413, 422, 503))
async def pre_credit_batch(body: PreCreditBatchRequest, caller: BankDep, holder: HolderDep,
                           request: Request) -> PreCreditBatchPublic:
    """Up to 1,000 questions at once; each gets a decision or its own error."""
    limit = request.app.state.config.max_batch
    if len(body.items) > limit:
        raise ApiError(422, "BATCH_TOO_LARGE", f"at most {limit} items", f"单批最多{limit}笔")
    bundle = current_bundle(holder.bundle, request)
    state = request.app.state

    def answered() -> PreCreditBatchPublic:  # in the worker thread too: a thousand items would hold up the loop
        results = [PreCreditBatchItem(index=i, error=ItemError(code=r.code, message=r.message, message_zh=r.message_zh))
                   if isinstance(r, Refusal) else PreCreditBatchItem(index=i, decision=r)
                   for i, r in enumerate(answer(state.engine, state.appender, bundle, caller.id, body.items))]
        decided = sum(r.decision is not None for r in results)
        return PreCreditBatchPublic(request_id=request_id(request), count=len(results), decided=decided,
                                    results=results)

    return await run_in_threadpool(answered)
