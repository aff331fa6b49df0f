"""Objections (异议) and credit repair: filed by an operator for the enterprise or by a bank holding
its authorisation, settled by an operator for the owning department; and each bank's change feed."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Path, Query, Request

from api.access.deps import BankDep, CallerDep, HolderDep, OperatorDep, SessionDep
from api.common.errors import ApiError, responses
from api.objections import change_feed, queries, workflow
from api.objections.schemas import ChangesPublic, ObjectionCreate, ObjectionPublic, ObjectionsPublic, SettlementCreate
from api.objections.workflow import due_before, shown
from api.precredit.decide import normalised_code, today_in_china

router = APIRouter(prefix="/v1/objections", tags=["objections"])
changes_router = APIRouter(prefix="/v1/changes", tags=["objections"])

ObjectionId = Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$", description="the objection's id")
NOT_FOUND = ("OBJECTION_NOT_FOUND", "no such objection", "异议不存在")


@router.post("", response_model=ObjectionPublic, status_code=201, responses=responses(401, 403, 404, 409, 422, 503))
def file_objection(body: ObjectionCreate, caller: CallerDep, request: Request) -> ObjectionPublic:
    """File an objection to one record or one profile feature of an enterprise, or a repair notice.

    An operator files on the enterprise's behalf; a bank only with the enterprise's valid
    authorisation. Decisions made from now on say the record is under objection; the owning
    department settles within 5 working days."""
    state = request.app.state
    filing = workflow.Filing(uscc=body.uscc, grounds=body.grounds, kind=body.kind, source=body.source,
                             record=body.record, feature=body.feature, attachments=tuple(body.attachments),
                             authorization_id=body.authorization_id)
    return shown(workflow.file(state.sessions, state.config.home, caller, filing), home=state.config.home,
                 bank=caller.role == "bank")


@router.get("", response_model=ObjectionsPublic, responses=responses(401, 403, 422))
def list_objections(caller: CallerDep, session: SessionDep, request: Request,
                    status: str | None = Query(default=None, pattern=r"^(open|upheld|corrected|removed|repaired)$"),
                    department: str | None = Query(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$"),
                    overdue: bool = Query(default=False, description="only open objections past their due day"),
                    due_by: dt.date | None = Query(default=None, description="only those due on or before this day"),
                    uscc: str | None = Query(default=None, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$"),
                    limit: int = Query(default=100, ge=1, le=500), offset: int = Query(default=0, ge=0, le=10**9)
                    ) -> ObjectionsPublic:
    """Objections, soonest due first: every one for operators and regulators, its own for a bank.

    `overdue=true` lists the open ones past their due day; `due_by` those due by a day."""
    today = today_in_china()
    code = normalised_code(uscc) if uscc else None
    before = due_before(today if overdue else None, due_by)
    count, rows = queries.list_objections(session, "open" if overdue else status, department, before, code,
                                          caller.id if caller.role == "bank" else None, limit, offset)
    home = request.app.state.config.home
    return ObjectionsPublic(count=count, items=[shown(o, today, home, caller.role == "bank") for o in rows])


@router.get("/{objection_id}", response_model=ObjectionPublic, responses=responses(401, 403, 404, 422))
def get_objection(caller: CallerDep, session: SessionDep, request: Request,
                  objection_id: str = ObjectionId) -> ObjectionPublic:
    """One objection: any for operators and regulators, its own for a bank."""
    objection = queries.get(session, objection_id)
    if objection is None or (caller.role == "bank" and objection.filed_by != caller.id):
        raise ApiError(404, *NOT_FOUND)
    return shown(objection, home=request.app.state.config.home, bank=caller.role == "bank")


@router.post("/{objection_id}/settlement", response_model=ObjectionPublic,
             responses=responses(401, 403, 404, 409, 422, 503))
def settle_objection(body: SettlementCreate, caller: OperatorDep, request: Request,
                     objection_id: str = ObjectionId) -> ObjectionPublic:
    """Settle an open objection for its department: upheld, corrected, removed or repaired.

    A correction, removal or repair enters the lake, rebuilds the enterprise's profile and
    republishes it before the answer; banks that decided on it in the last 90 days find it in their
    change feed. A second settlement of the same objection gets 409."""
    state = request.app.state
    settlement = workflow.Settlement(body.outcome, body.note, body.changes, body.repaired_on)
    return shown(workflow.settle(state.sessions, state.config.home, caller, objection_id, settlement),
                 home=state.config.home)


@changes_router.get("", response_model=ChangesPublic, responses=responses(401, 403, 422))
def changes(caller: BankDep, request: Request, holder: HolderDep,
            since: str | None = Query(default=None, max_length=40, description="a cursor an earlier page gave as "
                                      "`next`, or a day or time (ISO 8601, UTC) to start from"),
            limit: int = Query(default=100, ge=1, le=500)) -> ChangesPublic:
    """Enterprises this bank decided on in the last 90 days whose profile a settlement changed since.

    Each with the bank's latest decision before the change and what it would be told if it asked
    now (computed, not recorded). Page on with `since=<next>`."""
    feed = change_feed.change_feed(request.app.state.sessions, holder.bundle, caller.id, since, limit)
    return ChangesPublic.model_validate(feed)


