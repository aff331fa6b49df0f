"""The pre-credit capability's request and response bodies: questions, decisions with their reasons and
advice, reviews, authorisations."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api import examples
from api.common.fields import ID, ItemError, Text
from api.trust.schemas import Receipt


class PreCreditRequest(BaseModel):
    """A bank's question about one enterprise it holds an authorisation from."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.PRE_CREDIT_REQUEST]})
    uscc: Text = Field(min_length=1, max_length=64, description="统一社会信用代码 (full-width and spaces are folded)")
    authorization_id: Text = Field(min_length=1, max_length=64, description="The 授权书 registered for this bank")
    requested_amount: int | None = Field(default=None, ge=0, le=10**12, description="CNY the enterprise asks for")
    product: Text | None = Field(default=None, max_length=100, description="The bank's product name")


class Reason(BaseModel):
    code: str
    kind: str = Field(default="behaviour", description="behaviour (a feature's value) or absence (records the "
                                                        "platform does not hold: a fact, said once per cause)")
    feature: str | None = Field(default=None, description="The feature (None for a source that holds nothing)")
    features: list[str] | None = Field(default=None, description="An absence's missing features")
    sources: list[str] | None = None
    zh: str
    en: str
    unit: str | None = None
    value: float | str | None = None
    reference_value: float | str | None = Field(default=None, description="The reference profile's value")
    contribution: float = Field(description="This feature's share of margin minus the reference's margin")
    under_objection: bool | None = Field(default=None, description="True when the feature rests on a record under "
                                                                   "objection (异议)")


class KnockoutEvidence(BaseModel):
    """One record a knock-out rests on (features.profile.evidence)."""

    number: str = Field(description="Case or decision number")
    authority: str = Field(description="The court or department")
    date: dt.date | None = Field(default=None, description="Listing or decision date")
    kind: str
    severity: str | None = None
    amount_yuan: float | None = None
    reported: dt.date | None = None
    repair: str | None = Field(default=None, description="The repair route and when it opens")


class Knockout(BaseModel):
    code: str
    zh: str
    en: str
    decision: str
    legal_basis: str
    feature: str | None = None
    value: float | str | None = Field(default=None, description="The record's value the rule read")
    evidence: list[KnockoutEvidence] | None = None
    under_objection: bool | None = Field(default=None, description="True when every record the rule rests on is under "
                                                                   "objection: the decision is the policy's "
                                                                   "[objections] one (refer)")


class ReferenceGroup(BaseModel):
    feature: str = Field(description="The profile feature the reference groups by (entity_type)")
    value: str = Field(description="The group's value: the enterprise is compared with its own kind")


class Right(BaseModel):
    """A right the enterprise holds over this decision, in the words of the policy that made it."""

    right: str = Field(description="objection (异议), repair (信用修复) or review (人工复核: every decline and referral)")
    zh: str
    en: str
    legal_basis: str | None = None


class Reference(BaseModel):
    """The profile a decision is explained against, and what the model makes of it."""

    zh: str
    en: str
    group: ReferenceGroup | None = Field(default=None, description="The kind of entity whose reference this is "
                                                                   "(none: the whole book's)")
    population: int = Field(description="How many training borrowers the reference profile summarises")
    margin: float = Field(description="The reference's log-odds of default")
    pd: float
    grade: str


class Dispute(BaseModel):
    """An open objection (异议) or repair notice on the enterprise when the decision was made."""

    objection_id: str
    kind: str = Field(description="objection, or repair (a credit repair notice awaiting its department)")
    source: str | None = None
    record: dict[str, str] | None = Field(default=None, description="The disputed record's natural key")
    feature: str | None = Field(default=None, description="The disputed feature, for an objection to one")
    features: list[str] = Field(description="The profile features resting on what is disputed")
    filed: dt.date
    due: dt.date = Field(description="Settlement due: 5 working days after filing")
    zh: str
    en: str


class Reasons(BaseModel):
    """Knock-outs and the strongest adverse and positive factors, each a feature's exact share
    (log-odds) of the gap between the decision and the named reference profile:
    base value (the reference's margin) + every contribution = margin. An adverse factor raises
    the odds of default against the reference; a feature the registry declares monotone is
    adverse only from the unfavourable side of the reference's value.

    The answer's view of :class:`models.explain.DecisionReasons`, the one type the reasons have from
    the model to the chain: every field here is declared there (a test holds them together)."""

    knockouts: list[Knockout]
    adverse: list[Reason] = Field(description="Strongest first, as many as cover the policy's share of the adverse "
                                              "effect; the policy's never-named features are never among them")
    positive: list[Reason]
    coverage: float | None = Field(default=None, description="Share of the nameable adverse effect the adverse "
                                                             "reasons cover")
    base_value: float
    margin: float
    reference: Reference
    under_objection: list[Dispute] | None = Field(default=None, description="Records and features of the profile "
                                                                             "under objection when it was decided")
    rights: list[Right] | None = Field(default=None, description="The enterprise's rights over this decision: "
                                                                 "human review on every decline and referral")


class Versions(BaseModel):
    model_version: str
    policy_version: str
    feature_set_version: str
    profile_as_of: dt.date


class AdviceAction(BaseModel):
    code: str
    horizon: str = Field(description='"now", or "12m" for a year of keeping to it')
    amount_yuan: float | None = None
    legal_basis: str | None = None
    changes: dict[str, float | str | None] = Field(description="feature → its value after the action")


class AdviceBody(BaseModel):
    """The fewest lawful actions that improve the decision, and the decision they lead to."""

    actions: list[AdviceAction]
    zh: str
    en: str
    pd: float
    grade: str
    decision: str
    limit_yuan: int


class AdvicePublic(BaseModel):
    """What would change a decision: re-scored by the model that made it on the profile it was
    made on, the rest of the record assumed unchanged. ``advice`` is null when the decision is
    already grade A and approved or when nothing within reach improves it without a decline (``why``
    says which, in Chinese and English, naming the knock-out or grade that still blocks it)."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.ADVICE]})

    request_id: str
    uscc: str
    model_version: str
    grade: str
    decision: str
    advice: AdviceBody | None
    why: str | None = None
    data: AdviceBody | None = Field(None, description=(
        "For a file thin on a department's records: what letting the platform hold them would let it judge "
        "(the sharing alone, re-scored at the typical approved borrower's records of its kind). A statement, "
        "not advice: its decision may still be a decline. Null when the platform holds every record it reads."))
    assumption_zh: str = "假设其余记录保持不变，由作出该决策的模型重新评分"
    assumption_en: str = "re-scored by the model that made the decision, the rest of the record unchanged"


class PreCreditPublic(BaseModel):
    """A decision: PD, score, grade, decision, limit, the reasons and the versions behind it, and
    the platform's signed receipt for it."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.PRE_CREDIT]})

    request_id: str
    uscc: str
    name: str | None = None
    pd: float
    score: float
    grade: str
    decision: str
    limit_yuan: int
    requested_amount: int | None = None
    product: str | None = None
    reasons: Reasons
    versions: Versions
    decided_at: str
    client_id: int
    authorization_id: str
    hash: str
    receipt: Receipt | None = Field(default=None, description="Given with every answer to a pre-credit question, "
                                                               "signed as the decision is made; keep it: a decision "
                                                               "read back or listed has none")


class PreCreditBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.PRE_CREDIT_BATCH_REQUEST]})
    items: list[PreCreditRequest] = Field(min_length=1, max_length=1000)


class PreCreditBatchItem(BaseModel):
    index: int
    decision: PreCreditPublic | None = None
    error: ItemError | None = None


class PreCreditBatchPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.PRE_CREDIT_BATCH]})
    request_id: str
    count: int
    decided: int
    results: list[PreCreditBatchItem]


class DecisionsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.DECISIONS]})
    count: int
    items: list[PreCreditPublic]


class ReviewCreate(BaseModel):
    """A credit officer's outcome for a referred decision."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.REVIEW_REQUEST]})
    outcome: Literal["approve", "decline"]
    limit_yuan: int | None = Field(default=None, ge=0, le=10**12,
                                   description="The limit granted (required to approve; none when declined)")
    reviewer: Text = Field(min_length=1, max_length=100, description="Who reviewed (name or staff number)")
    note: Text | None = Field(default=None, max_length=1000)


class ReviewPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [examples.REVIEW]})
    request_id: str
    outcome: str
    limit_yuan: int | None
    reviewer: str
    note: str | None
    reviewed_at: str


class AuthorizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.AUTHORIZATION_REQUEST]})
    uscc: Text = Field(min_length=1, max_length=64)
    bank_id: ID
    purpose: Text = Field(min_length=1, max_length=200)
    data_scope: Text = Field(min_length=1, max_length=400)
    valid_from: dt.date
    valid_until: dt.date
    template_version: Text = Field(min_length=1, max_length=40)
    document_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the signed letter")


class AuthorizationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [examples.AUTHORIZATION]})
    id: str
    uscc: str
    bank_id: ID
    purpose: str
    data_scope: str
    valid_from: dt.date
    valid_until: dt.date
    revoked_at: str | None
    template_version: str
    document_hash: str
    created_at: str


class AuthorizationsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.AUTHORIZATIONS]})
    count: int
    items: list[AuthorizationPublic]
