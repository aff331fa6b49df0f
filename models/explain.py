"""Reason codes: the factors behind each decision, in words, from the PD model's contributions.

A contribution is a feature's exact share of the gap between the decision's log-odds of default
and those of one stated reference profile (computed by :mod:`models.shapley`); the reference's
log-odds plus every contribution is the decision's margin. Adverse factors raise the odds of
default against the reference, positive ones lower them. Each reason carries the registry's code
and texts, the enterprise's value, the reference's value and its contribution. Features the
registry does not know (a model fitted on another frame) are named as they are.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

# typing's own TypedDict cannot be validated by pydantic before Python 3.12
from typing_extensions import NotRequired, TypedDict

from features.registry import BY_NAME

ADVERSE, POSITIVE = 4, 4
"""How many adverse and positive factors each decision names."""


Value = float | int | str | bool | None
"""A profile value as a decision stores it (:func:`plain_value`)."""


class StatedReason(TypedDict):
    """One named reason: a behaviour (one feature's value) or an absence (the records the platform
    does not hold for one cause, its features' contributions summed). The pre-credit answer shows
    it as ``api.precredit.schemas.Reason``; the decisions chain stores it as JSON."""

    code: str
    kind: Literal["behaviour", "absence"]
    feature: str | None  # None for a whole source's absence
    zh: str
    en: str
    unit: str | None
    value: Value
    reference_value: Value
    contribution: float  # log-odds, against the reference profile
    sources: list[str]
    features: NotRequired[list[str]]  # an absence's missing features
    under_objection: NotRequired[bool]  # set by the service when the feature rests on a disputed record


class WithheldFactor(TypedDict):
    """A feature the policy never names to an enterprise, with its effect (shown to the regulator)."""

    feature: str
    value: Value
    contribution: float


class StatedRow(TypedDict):
    """One decision's stated reasons (:meth:`StatedReasons.row`)."""

    adverse: list[StatedReason]  # strongest first, enough to cover the policy's share
    positive: list[StatedReason]
    coverage: float  # share of the nameable adverse effect the adverse reasons cover
    coverage_of_all: float  # the same, against all of it (the never-named features' included)
    not_named: list[WithheldFactor]


class KnockoutReason(TypedDict):
    """A knock-out rule a decision hit, with the record's value it read."""

    code: str
    zh: str
    en: str
    decision: str
    legal_basis: str
    feature: str | None
    value: Value
    under_objection: NotRequired[bool]  # every record it rests on is disputed: the policy's milder decision
    evidence: NotRequired[list[dict]]  # set by the service: the records it rests on (features.profile.evidence)


class StatedRight(TypedDict):
    """A right the enterprise is told of (:func:`models.policy.stated_rights`)."""

    right: str
    zh: str
    en: str
    legal_basis: str | None


class ReferenceGroup(TypedDict):
    feature: str  # the profile feature the references are grouped by
    value: str  # the group's value: the enterprise is compared with its own kind


class ReferenceSummary(TypedDict):
    """The reference profile a decision is explained against, and what the model makes of it
    (:meth:`models.bundle.ModelBundle.reference_summary`, without its values)."""

    zh: str
    en: str
    population: int  # how many training borrowers it summarises
    group: NotRequired[ReferenceGroup]  # absent: the whole book's reference
    margin: float
    pd: float
    grade: str


class DecisionReasons(StatedRow):
    """Everything a decision says of why: knock-outs, stated reasons, the margin as the reference's
    margin plus contributions, the reference, the arithmetic that redoes it and the rights it
    states. Stored with the decision in the chain (JSON, keys sorted), shown by the pre-credit answer
    (``api.precredit.schemas.Reasons``) and the regulator's page, and held to by receipts."""

    knockouts: list[KnockoutReason]
    base_value: float  # the reference's margin
    margin: float
    reference: ReferenceSummary
    computation: dict  # models.bundle.recompute's input
    rights: list[StatedRight]
    inputs: NotRequired[list]  # set by the service: the feature vector decided on, in the registry's order
    under_objection: NotRequired[list[dict]]  # set by the service: the open disputes when decided


def plain_value(value):
    """A profile value as JSON holds it: None for missing (None, NaN, pd.NA), NumPy scalars as Python's."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def reason(feature: str, value, contribution: float, reference=None) -> dict:
    """One factor: code, feature, Chinese and English text, the value, the reference profile's
    value and the contribution (against that reference); :meth:`StatedReasons.row` makes it a
    :class:`StatedReason`."""
    declared = BY_NAME.get(feature)
    return {
        "code": declared.code if declared else feature,
        "feature": feature,
        "zh": declared.zh if declared else feature,
        "en": declared.en if declared else feature,
        "unit": declared.unit if declared else None,
        "value": plain_value(value),
        "reference_value": plain_value(reference),
        "contribution": round(float(contribution), 4),
    }


def top_factors(contributions: np.ndarray, adverse: int = ADVERSE,
                positive: int = POSITIVE) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices of the largest positive contributions (adverse, strongest
    first) and of the most negative (positive factors, strongest first); -1 pads rows with fewer."""
    order = np.argsort(-contributions, axis=1, kind="stable")
    worst = order[:, :adverse]
    best = np.argsort(contributions, axis=1, kind="stable")[:, :positive]
    worst = np.where(np.take_along_axis(contributions, worst, axis=1) > 0, worst, -1)
    best = np.where(np.take_along_axis(contributions, best, axis=1) < 0, best, -1)
    return worst, best


# ---------------------------------------------------------------------- reasons a person reads
#
# The contributions are turned into stated reasons by :class:`ReasonPlan`, under the policy's fair
# use: a missing value is a fact about the record, said once per cause in the registry's words
# (features.registry.SOURCE_ABSENCE and FEATURE_ABSENCE), never named as the feature's behaviour;
# features the policy never names to an enterprise are kept apart (their share is shown to the
# regulator); and as many adverse reasons are named as it takes to cover the policy's share of
# the adverse effect.


class ReasonPlan:
    """How one model's contributions become reasons (built once per model and policy).

    A reason is an *item*: a behaviour (one feature with a value) or an absence (the features
    missing for one cause, their contributions summed). ``not_named`` features are never items."""

    def __init__(self, features: list[str], not_named=(), coverage: float = 0.8):
        from features.registry import COVERAGE_FLAG, SOURCE_ABSENCE, absence_words
        from features.schemas import SOURCES

        self.features, self.coverage = list(features), float(coverage)
        self.not_named = np.array([f in set(not_named) for f in features], dtype=bool)
        self.groups: list[dict] = []
        source_group = {}
        undelivered_group = {}
        for number, source in enumerate(SOURCES, start=1):
            if source in SOURCE_ABSENCE:
                source_group[source] = len(self.groups)
                zh, en = SOURCE_ABSENCE[source]
                self.groups.append({"code": f"NA{number:02d}", "kind": "absence", "source": source, "zh": zh, "en": en,
                                    "flag": COVERAGE_FLAG[source]})
        for number, source in enumerate(SOURCES, start=1):  # after the others: their codes and places stay
            if source in SOURCE_ABSENCE:
                undelivered_group[source_group[source]] = len(self.groups)
                self.groups.append({"code": f"ND{number:02d}", "kind": "absence", "source": source,
                                    "zh": f"{SOURCES[source].department_zh}未按期报送{SOURCES[source].title_zh}，平台暂无其近期记录（不视为企业行为）",
                                    "en": f"{SOURCES[source].department_en} has not delivered its {SOURCES[source].title_en} "
                                          "on time: no recent record is held (not the enterprise's behaviour)"})
        self.feature_group = np.full(len(features), -1, dtype=np.int64)
        source_groups: list[list[int]] = []  # per feature, the groups of its sources that have a coverage flag
        self.flag_group = np.full(len(features), -1, dtype=np.int64)  # a coverage flag's own source
        for j, name in enumerate(features):
            declared = BY_NAME.get(name)
            source_groups.append([source_group[s] for s in declared.sources if s in source_group]
                                      if declared else [])
            if declared is None:
                continue
            if declared.family == "coverage" and len(declared.sources) == 1:
                self.flag_group[j] = source_group.get(declared.sources[0], -1)
            zh, en = absence_words(name)
            self.feature_group[j] = len(self.groups)
            self.groups.append({"code": f"NA{declared.code}", "kind": "absence", "source": declared.sources[0],
                                "zh": zh, "en": en, "feature": name})
        self.flags = [g["flag"] for g in self.groups if "flag" in g]
        # a source group's "not delivered" twin, by group index (-1 for the rest)
        self.undelivered = np.full(len(self.groups) + 1, -1, dtype=np.int64)
        for group, twin in undelivered_group.items():
            self.undelivered[group] = twin
        # the same, as arrays: each feature's source groups in order (padded with -1), and the flags' columns
        width = max((len(g) for g in source_groups), default=0)
        self.source_table = np.full((len(features), width), -1, dtype=np.int64)
        for j, groups in enumerate(source_groups):
            self.source_table[j, :len(groups)] = groups
        self.flag_columns = np.flatnonzero(self.flag_group >= 0)
        position = {name: j for j, name in enumerate(features)}
        self.flag_positions = np.array([position.get(flag, -1) for flag in self.flags], dtype=np.int64)

    def absences(self, matrix: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """(rows, features): the absence group each value belongs to (-1: a value, not an
        absence). ``matrix``: the model's encoded inputs (NaN where missing); ``flags``: (rows,
        sources with a coverage flag), 1 where the platform holds records of that source, 0 where
        it holds none, NaN where the department has not delivered on time ("not delivered")."""
        missing = np.isnan(matrix) & ~self.not_named  # a never-named feature is no part of any absence
        out = np.where(missing, self.feature_group, -1)
        blank = np.zeros((len(flags), 1), dtype=bool)  # column -1: never uncovered
        uncovered = np.hstack([flags == 0, blank])
        undelivered = np.hstack([np.isnan(flags), blank])
        for k in reversed(range(self.source_table.shape[1])):  # the first of its sources that holds nothing says why
            group = self.source_table[:, k]
            out = np.where(missing & uncovered[:, group], group, out)
            out = np.where(missing & undelivered[:, group], self.undelivered[group], out)
        # "holds no records of it" (a coverage flag at 0) is the source's absence, said once
        flagged = self.flag_columns
        out[:, flagged] = np.where(matrix[:, flagged] == 0, self.flag_group[flagged], out[:, flagged])
        return np.where(self.not_named, -1, out)

    def state(self, contributions: np.ndarray, absences: np.ndarray) -> StatedReasons:
        """The items of every row, and which of them each row names."""
        n, p = contributions.shape
        groups = len(self.groups)
        named = ~self.not_named
        absent = absences >= 0
        # each cell goes to its own feature's item, or to its absence's (after the p features)
        slot = np.where(absent, absences + p, np.arange(p))
        slot = np.where(named, slot, p + groups)  # never-named features go to a bin that is dropped
        flat = (slot + np.arange(n)[:, None] * (p + groups + 1)).ravel()
        items = np.bincount(flat, contributions.ravel(),
                            minlength=n * (p + groups + 1)).reshape(n, p + groups + 1)[:, :p + groups]
        positive_part = np.maximum(items, 0.0)
        adverse_total = positive_part.sum(axis=1)
        order = np.argsort(-items, axis=1, kind="stable")
        ranked = np.take_along_axis(items, order, axis=1)
        running = np.cumsum(np.maximum(ranked, 0.0), axis=1)
        # the fewest strongest adverse items whose sum reaches the policy's share
        needed = np.where(adverse_total > 0,
                          (running < self.coverage * adverse_total[:, None] - 1e-12).sum(axis=1) + 1, 0)
        needed = np.minimum(needed, (ranked > 0).sum(axis=1))
        width = int(needed.max()) if n else 0
        adverse = np.where(np.arange(width)[None, :] < needed[:, None], order[:, :width], -1)
        best = np.argsort(items, axis=1, kind="stable")[:, :POSITIVE]
        positive = np.where(np.take_along_axis(items, best, axis=1) < 0, best, -1)
        return StatedReasons(self, items, absences, adverse, positive, adverse_total,
                             np.where(self.not_named, contributions, 0.0))

    def item_code(self, item: int) -> str:
        if item < len(self.features):
            declared = BY_NAME.get(self.features[item])
            return declared.code if declared else self.features[item]
        return self.groups[item - len(self.features)]["code"]


class StatedReasons:
    """A batch's reasons (see :class:`ReasonPlan`): per row the items' contributions, which
    items are named as adverse (enough to cover the policy's share) and as positive, and the
    contributions of the features never named (``withheld``)."""

    def __init__(self, plan: ReasonPlan, items, absences, adverse, positive, adverse_total, withheld):
        self.plan, self.items, self.absences = plan, items, absences
        self.adverse, self.positive = adverse, positive
        self.adverse_total, self.withheld = adverse_total, withheld

    def coverage(self) -> np.ndarray:
        """Per row, the share of the nameable adverse effect the named adverse reasons cover (1 when none)."""
        return self._named_share

    @cached_property
    def _named_share(self) -> np.ndarray:
        named = np.where(self.adverse >= 0, np.take_along_axis(self.items, np.maximum(self.adverse, 0), axis=1), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.adverse_total > 0, named.sum(axis=1) / self.adverse_total, 1.0)

    def codes(self, which: str) -> np.ndarray:
        """Per row, the codes of the named ``"adverse"`` or ``"positive"`` reasons, strongest first, joined by ``;``."""
        indices = getattr(self, which)
        codes = np.array([*(self.plan.item_code(k) for k in range(self.items.shape[1])), ""])
        picked = codes[np.where(indices >= 0, indices, len(codes) - 1)]
        out = picked[:, 0] if picked.shape[1] else np.full(len(picked), "")
        for k in range(1, picked.shape[1]):  # column by column: NumPy's string loops, not Python's
            out = np.where(picked[:, k] != "", np.strings.add(np.strings.add(out, ";"), picked[:, k]), out)
        return out.astype(object)

    def row(self, i: int, value_of, reference: dict) -> StatedRow:
        """Row ``i``'s reasons in words: ``value_of(feature)`` gives its raw value."""
        plan, p = self.plan, len(self.plan.features)

        def item(k: int) -> StatedReason:
            contribution = float(self.items[i, k])
            if k < p:
                name = plan.features[k]
                out = reason(name, value_of(name), contribution, reference.get(name))
                out["kind"] = "behaviour"
                out["sources"] = list(BY_NAME[name].sources) if name in BY_NAME else []
                return out
            group = plan.groups[k - p]
            members = [plan.features[j] for j in np.flatnonzero(self.absences[i] == k - p)]
            return {"code": group["code"], "kind": "absence", "feature": group.get("feature"), "zh": group["zh"],
                    "en": group["en"], "unit": None, "value": None, "reference_value": None,
                    "contribution": round(contribution, 4), "sources": [group["source"]], "features": members}

        withheld = [{"feature": plan.features[j], "value": plain_value(value_of(plan.features[j])),
                     "contribution": round(float(self.withheld[i, j]), 4)}
                    for j in np.flatnonzero(plan.not_named)]
        named = sum(float(self.items[i, k]) for k in self.adverse[i] if k >= 0)
        everything = float(self.adverse_total[i]) + float(np.maximum(self.withheld[i], 0.0).sum())
        return {"adverse": [item(int(k)) for k in self.adverse[i] if k >= 0],
                "positive": [item(int(k)) for k in self.positive[i] if k >= 0],
                "coverage": round(float(self.coverage()[i]), 4),
                # the same named reasons against all of the adverse effect, the never-named features' included
                "coverage_of_all": round(named / everything, 4) if everything > 0 else 1.0,
                "not_named": withheld}


def reference_values(rows: pd.DataFrame, columns: list[str], categorical: set[str]) -> dict:
    """The reference profile of a group of enterprises, feature by feature: None (no record)
    where most of the group has no value, else the median of the values (the most common category
    for categorical features). A profile no enterprise need have, but each of its features is
    typical of the group; "no record" counts as a value, as the model treats it as one."""
    out = {}
    for column in columns:
        series = rows[column].dropna()
        if 2 * len(series) <= len(rows):
            out[column] = None
        elif column in categorical or not pd.api.types.is_numeric_dtype(series):
            out[column] = plain_value(series.astype(str).mode().iloc[0])
        else:
            out[column] = float(pd.to_numeric(series).median())
    return out
