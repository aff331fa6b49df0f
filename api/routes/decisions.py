"""Decisions: a bank sees its own; a regulator sees every one, and its explanation page."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from api.db import repository
from api.decide import public
from api.deps import BankOrRegulatorDep, RegulatorDep, SessionDep
from api.errors import ApiError, responses
from api.regulator_report import render
from api.schemas import DecisionsPublic, PreCreditPublic

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])

NOT_FOUND = ("DECISION_NOT_FOUND", "no such decision", "决策记录不存在")
RequestId = Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$", description="the decision's request id")


def _visible(session, request_id: str, caller):
    decision = repository.get_decision(session, request_id)
    # a bank asking for another bank's decision is told it does not exist
    if decision is None or (caller.role == "bank" and decision.client_id != caller.id):
        raise ApiError(404, *NOT_FOUND)
    return decision


@router.get("/{request_id}", response_model=PreCreditPublic, responses=responses(401, 403, 404, 422))
def get_decision(caller: BankOrRegulatorDep, session: SessionDep, request_id: str = RequestId) -> PreCreditPublic:
    """One decision: a bank's own, or any for a regulator."""
    return public(_visible(session, request_id, caller))


@router.get("", response_model=DecisionsPublic, responses=responses(401, 403, 422))
def list_decisions(caller: RegulatorDep, session: SessionDep,
                   uscc: str | None = Query(default=None, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$"),
                   bank_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
                   date_from: dt.date | None = None, date_to: dt.date | None = None,
                   limit: int = Query(default=100, ge=1, le=500), offset: int = Query(default=0, ge=0, le=10**9)
                   ) -> DecisionsPublic:
    """Every decision, filtered by enterprise, bank and dates (``date_to`` inclusive), a page at a time."""
    until = (date_to + dt.timedelta(days=1)).isoformat() if date_to and date_to < dt.date.max else None
    count, rows = repository.list_decisions(session, uscc, bank_id, date_from.isoformat() if date_from else None,
                                            until, limit, offset)
    return DecisionsPublic(count=count, items=[public(r) for r in rows])


@router.get("/{request_id}/report", response_class=HTMLResponse, responses=responses(401, 403, 404, 422))
def decision_report(caller: RegulatorDep, session: SessionDep, request_id: str = RequestId) -> HTMLResponse:
    """The regulator's page: the contribution waterfall, the reasons in Chinese and English, the data
    sources with their legal basis, the versions, and the decision's place in the audit chain."""
    decision = _visible(session, request_id, caller)
    profile = repository.profile_for(session, decision.uscc)
    return HTMLResponse(render(decision, profile.name if profile else None))
