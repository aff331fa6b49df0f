"""The objection workflow's bodies: objections, settlements, and the banks' change feed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from api import examples


class ObjectionCreate(BaseModel):
    """An objection (异议) to one record or one profile feature of one enterprise, or a credit
    repair notice (kind ``repair``) for one record."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.OBJECTION_REQUEST]})

    uscc: str = Field(min_length=1, max_length=64)
    kind: Literal["objection", "repair"] = "objection"
    source: str | None = Field(default=None, max_length=40, description="The record's source (`GET /v1/features` "
                                                                        "names each feature's sources)")
    record: dict[str, Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=4, description="The record's natural key as the department writes it, e.g. "
                                                '{"decision_no": "宜环罚〔2025〕12号"}')
    feature: str | None = Field(default=None, max_length=60, description="Or: the disputed profile feature")
    grounds: str = Field(min_length=1, max_length=4000)
    attachments: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        default_factory=list, max_length=20, description="SHA-256 of each attachment (the files stay with the filer)")
    authorization_id: str | None = Field(default=None, max_length=64,
                                         description="A bank files only with the enterprise's valid authorisation")


class ObjectionPublic(BaseModel):
    """An objection and where it stands."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.OBJECTION]})

    id: str
    kind: str
    uscc: str
    source: str | None
    record: dict[str, str] | None
    feature: str | None
    features: list[str] = Field(description="The profile features resting on what is disputed")
    department: str = Field(description="The department that owns the record and settles the objection")
    grounds: str
    attachments: list[str]
    filed_by: int
    authorization_id: str | None
    filed_at: str
    filed_day: dt.date
    due_day: dt.date = Field(description="5 working days after filing, on China's official calendar")
    due_provisional: bool = Field(description="The due day was counted on weekdays alone: a day it spans is in "
                                              "a year whose holiday notice the calendar does not hold yet; it is "
                                              "recomputed once the notice is known")
    status: str = Field(description="open, upheld, corrected, removed or repaired")
    overdue: bool = Field(description="Open past its due day (China's calendar day now)")
    settled_at: str | None
    settled_day: dt.date | None
    working_days_taken: int | None = Field(description="Working days from filing to settlement")
    settlement: dict | None = Field(description="The department's note, the corrected values or repair date, "
                                                "and the lake run that carried them")
    republished_at: str | None = Field(description="When the rebuilt profile was published")


class ObjectionsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.OBJECTIONS]})

    count: int
    items: list[ObjectionPublic]


class SettlementCreate(BaseModel):
    """The owning department's finding, recorded by an operator acting for it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.SETTLEMENT_REQUEST]})

    outcome: Literal["upheld", "corrected", "removed", "repaired"]
    note: str = Field(min_length=1, max_length=4000)
    changes: dict[str, Annotated[str | None, Field(max_length=200)]] | None = Field(
        default=None, max_length=20, description="corrected: column → corrected value, as the department writes it")
    repaired_on: dt.date | None = Field(default=None, description="repaired: the repair date")


class DecisionSummary(BaseModel):
    grade: str
    decision: str
    limit_yuan: int
    pd: float


class ChangePublic(BaseModel):
    """An enterprise the bank decided on whose profile an objection's settlement changed since."""

    cursor: str
    uscc: str
    name: str | None
    cause: str = Field(description="corrected, removed or repaired")
    objection_id: str
    changed_at: str
    profile_as_of: dt.date
    previous_request_id: str
    previous_decided_at: str
    previous: DecisionSummary = Field(description="The bank's latest decision before the change")
    now: DecisionSummary | None = Field(description="What the bank would be told if it asked now (not recorded); "
                                                    "null when its authorisation no longer allows asking")
    now_note: str | None = None


class ChangesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.CHANGES]})

    items: list[ChangePublic]
    next: str = Field(description="Pass as `since` for the next page (the same value when nothing is new)")
