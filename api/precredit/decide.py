"""A bank's pre-credit question answered: authorisation, profile, model, policy, audit chain.

Checks run in an order that leaks nothing: the caller's authorisation for the code is checked
before anyone learns whether the enterprise is known. No answer goes out before its decision is
in the chain (the chain's table is where decisions are recorded).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.engine import Engine

from api.common.metrics import DECISIONS
from api.common.refusals import Forbidden, Invalid, NotFound, Refusal, Unavailable
from api.db.engine import reading
from api.db.tables import Decision
from api.precredit import repository
from api.precredit.schemas import PreCreditPublic, PreCreditRequest
from api.trust.appender import ChainAppender
from api.trust.audit import CHAIN_FORMAT
from api.trust.schemas import Receipt
from api.trust.signing import Signer, answer_digest, make_receipt
from features import uscc as uscc_rules
from features.registry import feature_names
from models.explain import DecisionReasons

if TYPE_CHECKING:  # the model stack loads with the first model (api.model_holder), not with the routes
    from models.bundle import ModelBundle


@dataclass
class Asked:
    """One question that passed the checks, with what it is decided on."""

    index: int
    request: PreCreditRequest
    uscc: str
    profile: repository.ProfileRow


CHINA = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
"""China Standard Time: UTC+8 all year (no summer time since 1991), so a fixed offset is exact."""


def today_in_china(now: dt.datetime | None = None) -> dt.date:
    """The calendar day in China at ``now`` (an aware instant; the present by default).
    Authorisations are signed in China and valid by its calendar days: from 00:00 to 08:00 China
    time the UTC day is still yesterday's. Stored times stay UTC."""
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(CHINA).date()


def normalised_code(raw: str) -> str:
    """The code, normalised, or an :class:`~api.common.refusals.Invalid` naming the rule it breaks."""
    checked = uscc_rules.check(raw)
    if not checked.valid:
        raise Invalid("INVALID_USCC", f"uscc {raw!r} breaks rule {checked.rule}: {checked.reason}",
                       f"统一社会信用代码无效（规则 {checked.rule}）：{checked.reason}")
    return checked.normalised


def check_authorization(record, bank_id: int, code: str, today: dt.date) -> None:
    """A :class:`~api.common.refusals.Forbidden` with a distinct code for every way an authorisation
    (``record``, None when there is no such id) can fail."""
    if record is None:
        raise Forbidden("AUTHORIZATION_NOT_FOUND", "no such authorisation", "授权书不存在")
    if record.bank_id != bank_id:
        raise Forbidden("AUTHORIZATION_OTHER_BANK", "this authorisation was given to another bank",
                       "该授权书授予的是其他金融机构")
    if record.uscc != code:
        raise Forbidden("AUTHORIZATION_USCC_MISMATCH", "this authorisation is for another enterprise",
                       "该授权书对应的是其他企业")
    if record.revoked_at is not None:
        raise Forbidden("AUTHORIZATION_REVOKED", f"the authorisation was revoked at {record.revoked_at}",
                       "该授权书已被撤销")
    if today > record.valid_until:
        raise Forbidden("AUTHORIZATION_EXPIRED", f"the authorisation expired on {record.valid_until}",
                       "该授权书已过期")
    if today < record.valid_from:
        raise Forbidden("AUTHORIZATION_NOT_YET_VALID", f"the authorisation is valid from {record.valid_from}",
                       "该授权书尚未生效")


def current_bundle(bundle: ModelBundle | None, request=None) -> ModelBundle:
    """The bundle this request will use from start to end (a reload meanwhile does not change it);
    the response header names it."""
    if bundle is None:
        raise Unavailable("MODEL_UNAVAILABLE", "no champion model is loaded; promote one with `xyd promote`",
                       "暂无可用的冠军模型")
    if request is not None:
        request.state.model_version = bundle.version
    return bundle


def vet(bundle: ModelBundle, bank_id: int, index: int, request: PreCreditRequest, code: str, authorization,
        profile: repository.ProfileRow | None, today: dt.date) -> Asked:
    """The question, ready to decide, or the first check it fails: the authorisation before
    anyone learns whether the enterprise is known."""
    check_authorization(authorization, bank_id, code, today)
    if profile is None:
        raise NotFound("UNKNOWN_ENTERPRISE", f"no published profile for {code}", "平台没有该企业的信用画像")
    if profile.feature_set_version != bundle.meta["feature_set_version"]:
        raise Unavailable("PROFILE_MODEL_MISMATCH",
                       f"the published profile (feature set {profile.feature_set_version}) does not match model "
                       f"{bundle.version} ({bundle.meta['feature_set_version']}); republish or promote",
                       "已发布的信用画像与当前模型的特征版本不一致")
    limit = bundle.policy.max_profile_age_days
    if limit is not None and (today - profile.as_of).days > limit:
        raise Unavailable("PROFILE_STALE",
                       f"the published profile of {code} is as of {profile.as_of}, {(today - profile.as_of).days} days "
                       f"ago; policy {bundle.policy.version} decides on profiles at most {limit} days old: "
                       "the platform must rebuild and republish its profiles",
                       f"该企业的信用画像截至 {profile.as_of}，已超过政策规定的 {limit} 天时效，平台需更新画像后再决策")
    return Asked(index, request, code, profile)


@dataclass
class Answering:
    """Questions checked and decided, their decisions handed to the chain; :meth:`finish` gives
    the answers once the chain has them."""

    results: list[PreCreditPublic | Refusal | str]
    asked: list[Asked]
    answers: list[PreCreditPublic]  # each decision's answer, but for its time, hash and receipt
    written: Future  # the decisions as stored in the chain
    signer: Signer | None = None  # signs each answer's receipt

    def finish(self) -> list[PreCreditPublic | Refusal]:
        """Every question's decision (now in the chain) or the error it met, in order; raises
        the chain's write error, if any."""
        stored = self.written.result()
        for item, decision, unsigned in zip(self.asked, stored, self.answers):
            DECISIONS.labels(decision.decision, decision.model_version).inc()
            self.results[item.index] = signed_answer(unsigned, decision, self.signer)
        return self.results


def start_answer(engine: Engine, appender: ChainAppender, bundle: ModelBundle, bank_id: int,
                 questions: list[PreCreditRequest], request_ids: list[str] | None = None) -> Answering:
    """Check and decide every question and hand the decisions to the chain, without waiting for
    the chain's write: one read of the authorisations and profiles, one pass of the model."""
    results: list[PreCreditPublic | Refusal | str] = []
    for question in questions:
        try:
            results.append(normalised_code(question.uscc))
        except Refusal as error:
            results.append(error)
    valid = [i for i, r in enumerate(results) if isinstance(r, str)]
    if valid:
        with reading(engine) as connection:
            authorizations, profiles = repository.authorizations_with_profiles(
                connection, [questions[i].authorization_id for i in valid])
    today = today_in_china()
    asked: list[Asked] = []
    for i in valid:
        code = results[i]
        try:
            asked.append(vet(bundle, bank_id, i, questions[i], code, authorizations.get(questions[i].authorization_id),
                             profiles.get(code), today))
        except Refusal as error:
            results[i] = error
    ids = None if request_ids is None else [request_ids[a.index] for a in asked]
    rows, _, answers = decided_rows(bundle, bank_id, asked, ids)
    if rows:
        written = appender.submit(rows)
    else:
        written = Future()
        written.set_result([])
    return Answering(results, asked, answers, written, appender.signer)


def answer(engine: Engine, appender: ChainAppender, bundle: ModelBundle, bank_id: int,
           questions: list[PreCreditRequest], request_ids: list[str] | None = None
           ) -> list[PreCreditPublic | Refusal]:
    """Every question answered, in order: its decision (appended to the chain) or the error it
    met. Blocks until the chain has the decisions (:func:`start_answer` does not)."""
    return start_answer(engine, appender, bundle, bank_id, questions, request_ids).finish()


def decided_rows(bundle: ModelBundle, bank_id: int, asked: list[Asked], request_ids: list[str] | None = None
                 ) -> tuple[list[dict], list[DecisionReasons], list[PreCreditPublic]]:
    """Every vetted question decided with one pass of the model: the chain's rows (each under
    its own request id: the HTTP request's for a single question; format 2, the digest of its
    answer included), the parsed reasons, and each answer but for what the chain gives it (its
    time, hash and receipt: :func:`signed_answer`)."""
    if not asked:
        return [], [], []
    order = feature_names()
    requested = np.array([np.nan if a.request.requested_amount is None else a.request.requested_amount
                          for a in asked], dtype=float)
    disputed = [disputed_knockouts(a.profile) for a in asked] if any(a.profile.disputes for a in asked) else None
    decisions = bundle.decide_rows([a.profile.values for a in asked], order, [a.uscc for a in asked], requested,
                                   disputed=disputed)
    rows, answers, reasons = [], [], [decisions.reasons(i) for i in range(len(asked))]
    for item, reason in zip(asked, reasons):
        for knockout in reason["knockouts"]:  # a knock-out shows the records it rests on
            knockout["evidence"] = (item.profile.evidence or {}).get(knockout["feature"], [])
        if item.profile.disputes:
            mark_disputed(reason, item.profile.disputes)
        # the feature vector decided on: the published profile's values, in the registry's order of
        # the decision's feature set (a list: half the bytes of a mapping, in every row of the chain)
        reason["inputs"] = item.profile.values
    for i, item in enumerate(asked):
        row = {
            "request_id": request_ids[i] if request_ids else str(uuid.uuid4()), "client_id": bank_id, "uscc": item.uscc,
            "name": item.profile.name, "authorization_id": item.request.authorization_id,
            "model_version": bundle.version, "policy_version": bundle.policy.version,
            "profile_as_of": item.profile.as_of.isoformat(), "feature_set_version": item.profile.feature_set_version,
            "product": item.request.product, "requested_amount": item.request.requested_amount,
            "pd": float(decisions.pd[i]) + 0.0, "score": float(decisions.score[i]) + 0.0,
            "grade": str(decisions.grade[i]), "decision": str(decisions.decision[i]),
            "limit_yuan": int(decisions.limit[i]),
            "reasons": json.dumps(reasons[i], ensure_ascii=False, sort_keys=True, default=float),
            "chain_format": CHAIN_FORMAT}
        unsigned = public(SimpleNamespace(**row, created_at="", hash=""), reasons=reasons[i])
        row["answer_digest"] = answer_digest(unsigned.model_dump(mode="json"))
        rows.append(row)
        answers.append(unsigned)
    return rows, reasons, answers


def disputed_knockouts(profile: repository.ProfileRow) -> set[str]:
    """The knock-out features of ``profile`` that rest only on what is under objection: the feature
    itself is disputed, or every record its evidence shows is (repair notices awaiting their
    department do not count: the record stands until repaired)."""
    from features.profile.evidence import EVIDENCE

    objections = [d for d in profile.disputes or () if d["kind"] == "objection"]
    out = {d["feature"] for d in objections if d.get("feature")}
    for feature, (source, _) in EVIDENCE.items():
        records = (profile.evidence or {}).get(feature) or []
        disputed = {str(v) for d in objections if d.get("source") == source for v in (d.get("record") or {}).values()}
        if records and all(r["number"] in disputed for r in records):
            out.add(feature)
    return out


def mark_disputed(reasons: DecisionReasons, disputes: list[dict]) -> None:
    """Say in a decision's reasons what is under objection: the open objections themselves, and
    each named reason whose feature rests on one (a knock-out says so itself, when every record it
    rests on is disputed: :meth:`models.policy.Policy.decide`)."""
    features = {f for d in disputes if d["kind"] == "objection" for f in d["features"]}  # a repair disputes nothing
    reasons["under_objection"] = [
        {**d, "zh": f"{'信用修复申请' if d['kind'] == 'repair' else '异议'}处理中（{d['filed']} 提出，{d['due']} 前答复）",
         "en": f"{'a credit repair notice' if d['kind'] == 'repair' else 'an objection'} filed {d['filed']} is being "
               f"checked by the department (due {d['due']})"} for d in disputes]
    for group in ("adverse", "positive"):
        for item in reasons.get(group, ()):
            if item.get("feature") in features or set(item.get("features") or ()) & features:
                item["under_objection"] = True


def public(decision: Decision, name: str | None = None, reasons: DecisionReasons | None = None) -> PreCreditPublic:
    """A stored decision as the API shows it (``reasons``: the stored reasons, already parsed;
    ``name``: the enterprise's, where the row predates the chain's keeping it), with no receipt:
    a decision read back could have been rewritten by whoever holds the database, so only one just
    written is signed (:func:`signed_answer`)."""
    return PreCreditPublic(
        request_id=decision.request_id, uscc=decision.uscc, name=getattr(decision, "name", None) or name,
        pd=decision.pd, score=decision.score, grade=decision.grade, decision=decision.decision,
        limit_yuan=decision.limit_yuan, requested_amount=decision.requested_amount, product=decision.product,
        reasons=json.loads(decision.reasons) if reasons is None else reasons,
        versions={"model_version": decision.model_version, "policy_version": decision.policy_version,
                  "feature_set_version": decision.feature_set_version, "profile_as_of": decision.profile_as_of},
        decided_at=decision.created_at, client_id=decision.client_id, authorization_id=decision.authorization_id,
        hash=decision.hash)


def signed_answer(unsigned: PreCreditPublic, decision, signer: Signer | None) -> PreCreditPublic:
    """The answer to a question, once its decision is in the chain (:func:`api.trust.audit.append`):
    its time and hash, and its receipt signed by ``signer`` (the receipt vouches for every field
    of this answer but those three: :func:`api.trust.signing.answer_digest`)."""
    receipt = None
    if signer is not None:
        receipt = Receipt(**make_receipt(signer, decision.seq, decision.prev_hash, decision.hash, decision.record))
    return unsigned.model_copy(update={"decided_at": decision.created_at, "hash": decision.hash, "receipt": receipt})
