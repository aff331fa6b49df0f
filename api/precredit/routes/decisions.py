"""Decisions: a bank sees its own; a regulator sees every one, and its explanation page."""

from __future__ import annotations

import datetime as dt
import json

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import IntegrityError

from api.access.deps import BankDep, BankOrRegulatorDep, HolderDep, RegulatorDep, SessionDep
from api.common.errors import ApiError, responses
from api.precredit import repository
from api.precredit.decide import disputed_knockouts, normalised_code, public
from api.precredit.regulator_report import render
from api.precredit.schemas import AdvicePublic, DecisionsPublic, PreCreditPublic, ReviewCreate, ReviewPublic
from api.trust import anchor
from features.pages import PAGE_CSP_HEADER

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
    """One decision: a bank's own, or any for a regulator. Without a receipt: the platform signs a
    decision as it makes it, never a row read back (which someone with the database could have
    rewritten); the receipt is the one the answer carried."""
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
    uscc = normalised_code(uscc) if uscc else None  # as the POST does: lower case and full width find the same
    count, rows = repository.list_decisions(session, uscc, bank_id, date_from.isoformat() if date_from else None,
                                            until, limit, offset)
    return DecisionsPublic(count=count, items=[public(r) for r in rows])


def _advice(session, decision, holder) -> tuple[dict | None, str | None, bool, object, dict | None]:
    """The advice for a stored decision (or None and why), whether it is None because the model
    or the profile that decided has been replaced (stale), the enterprise's published profile, and
    for a thin file what its missing records would let the platform judge (or None).
    Advice is only given by the model that decided, on the profile it decided on: otherwise it
    would promise what another model or another record says."""
    from models.advice import advise_all

    profile = repository.profile_for(session, decision.uscc)
    bundle = holder.bundle
    if bundle is None or bundle.version != decision.model_version:
        return None, (f"decided by model {decision.model_version}; the service now holds "
                      f"{bundle.version if bundle else 'none'}: ask for a new decision"), True, profile, None
    if profile is None or profile.as_of.isoformat() != decision.profile_as_of \
            or profile.feature_set_version != decision.feature_set_version:
        return None, "the profile this decision was made on has been replaced: ask for a new decision", True, profile, None
    import pandas as pd

    from features.registry import feature_names

    row = pd.DataFrame([profile.values], columns=feature_names()).assign(uscc=decision.uscc)
    requested = [float("nan") if decision.requested_amount is None else float(decision.requested_amount)]
    # the knock-outs resting only on disputed records refer in the advice's decisions as they do in the service's
    disputed = [disputed_knockouts(profile)] if profile.disputes else None
    found = advise_all(bundle, row, requested, disputed=disputed)[0]
    data = None if found.data is None else {**found.data.as_json(), "zh": found.data_zh, "en": found.data_en}
    if found.advice is None:
        return None, f"{found.why_zh} · {found.why_en}", False, profile, data
    return found.advice.as_json(), None, False, profile, data


@router.get("/{request_id}/advice", response_model=AdvicePublic, responses=responses(401, 403, 404, 409, 422),
            summary="The fewest lawful actions that would improve this decision")
def decision_advice(caller: BankOrRegulatorDep, session: SessionDep, holder: HolderDep,
                    request_id: str = RequestId) -> AdvicePublic:
    """What would change this decision: the fewest lawful actions its record allows (arrears paid,
    court cases performed and a dishonest listing lifted, penalties repaired after their publicity
    period, a year of filing and paying on time, a department's records shared with the platform)
    that reach the best decision within reach (a knock-out lifted, a referral, an approval) or a
    better grade, re-scored by the model that decided; never a result that still declines (``why``
    then names what blocks it). 409 when that model or that profile is no longer the one the
    service holds."""
    decision = _visible(session, request_id, caller)
    advice, why, stale, _, data = _advice(session, decision, holder)
    if stale:
        raise ApiError(409, "ADVICE_STALE", why, "该决策所用的模型或画像已更新，请重新申请预授信决策后再获取建议")
    return AdvicePublic(request_id=decision.request_id, uscc=decision.uscc, model_version=decision.model_version,
                        grade=decision.grade, decision=decision.decision, advice=advice, why=why, data=data)


@router.get("/{request_id}/report", response_class=HTMLResponse, responses=responses(401, 403, 404, 422),
            summary="The regulator's page of one decision (HTML)")
def decision_report(caller: RegulatorDep, session: SessionDep, holder: HolderDep, request_id: str = RequestId,
                    self_contained: bool = Query(False, description="Embed the page's glyphs (about half a "
                                                 "second) so that it renders from a file or an archive")
                    ) -> HTMLResponse:
    """The regulator's page: the reference the decision is explained against, the waterfall from
    it to the decision, the reasons in Chinese and English, the advice, the data sources with their
    legal basis, the versions, and the decision's place in the audit chain."""
    decision = _visible(session, request_id, caller)
    advice, why, _, profile, data = _advice(session, decision, holder)
    policy = holder.bundle.policy if holder.bundle is not None else None  # the rights in force today
    deliveries = repository.deliveries_for(session, dt.date.fromisoformat(decision.profile_as_of))
    deciding = holder.bundle if holder.bundle is not None and holder.bundle.version == decision.model_version else None
    name = decision.name or (profile.name if profile else None)  # the name the answer showed, where the chain keeps it
    return HTMLResponse(render(decision, name, advice, why,
                               repository.review_of(session, decision.request_id), policy.rights if policy else {},
                               deliveries, policy.version if policy else None, self_contained,
                               deciding.meta.get("population_fair_lending") if deciding else None, data),
                        headers={"Content-Security-Policy": PAGE_CSP_HEADER})


@router.post("/{request_id}/review", response_model=ReviewPublic, status_code=201,
             responses=responses(401, 403, 404, 409, 422), summary="Record a credit officer's review of a referral or a decline")
def record_review(body: ReviewCreate, caller: BankDep, session: SessionDep, request: Request,
                  request_id: str = RequestId) -> ReviewPublic:
    """The bank's credit officer records the outcome of a referred decision, or of a declined one
    whose enterprise asked for a human review (once): approve with the limit granted, or decline.
    It shows on the regulator's page beside the decision."""
    decision = _visible(session, request_id, caller)
    if decision.decision not in ("refer", "decline"):  # a decline may be reviewed on request (PIPL 第二十四条)
        raise ApiError(409, "NOT_REFERRED", f"decision {request_id} was {decision.decision}: only a decline or a "
                       "referral is reviewed", "该决策已批准，仅拒绝或转人工审核的决策需记录复核结果")
    if repository.review_of(session, request_id) is not None:
        raise ApiError(409, "ALREADY_REVIEWED", f"decision {request_id} has a recorded review already",
                       "该决策已记录复核结果")
    cap = ((json.loads(decision.reasons).get("computation") or {}).get("limits") or {}).get("unsecured_cap_yuan")
    if (body.outcome == "approve") != (body.limit_yuan is not None) or body.limit_yuan == 0 \
            or (cap is not None and body.limit_yuan is not None and body.limit_yuan > cap):
        raise ApiError(422, "REVIEW_LIMIT", "an approval states the limit granted (limit_yuan, more than zero and at "
                       f"most the policy's unsecured cap{f' of {cap:,.0f}' if cap else ''}); a decline states none",
                       "批准须填写大于零且不超过信用额度上限的授信额度，拒绝不填写额度")
    try:
        review = repository.add_review(session, decision, body.outcome, body.limit_yuan, body.reviewer, body.note)
        session.commit()
    except IntegrityError:  # another request recorded a review of it between our check and now
        session.rollback()
        raise ApiError(409, "ALREADY_REVIEWED", f"decision {request_id} has a recorded review already",
                       "该决策已记录复核结果") from None
    shown = ReviewPublic.model_validate(review)
    anchor.sign_events(request.app.state.engine, request.app.state.config.home)  # the review is in the events chain
    return shown
