"""The credit policy: knock-outs with their legal basis, score scaling, grades, decisions and
limit rules, read from one versioned file (``models/data/policy.toml`` by default).

Every decision records :attr:`Policy.version`. A knock-out is a measure with consequences for
an enterprise, so each one must name a registry feature and cite a legal basis (work plan items
2 and 12); the file is refused otherwise. All rules are vectorised over a batch of enterprises.
"""

from __future__ import annotations

import math
import operator
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.registry import BY_NAME, ENCOURAGED_BY_CODE, features_of_kind

DEFAULT_POLICY = Path(__file__).parent / "data" / "policy.toml"
GRADES = ("A", "B", "C", "D", "E")
DECISIONS = ("approve", "refer", "decline")
DECISION_SEVERITY = {"approve": 0, "refer": 1, "decline": 2}
OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}


FAIR_LENDING_DEFAULTS = {"approval_ratio_floor": 0.8, "calibration_band": (0.67, 1.5), "min_group_loans": 200}
GATE_DEFAULTS = {"max_auc_drop": 0.005, "max_psi": 0.25, "max_feature_psi": 0.25, "max_ece": 0.02,
                 "max_approval_rate_change": 0.05, "max_mean_limit_change": 0.10, "max_grade_mix_shift": 0.10,
                 "confidence": 0.95}
"""The promotion gate's tolerances when a policy declares none (``[gate]``; see :mod:`models.gate`)."""


class PolicyError(ValueError):
    """A policy file that cannot be used as written."""


@dataclass(frozen=True)
class Knockout:
    """A rule that overrides the model's decision, with the legal basis that allows it."""

    code: str
    feature: str
    operator: str
    threshold: float
    decision: str
    zh: str
    en: str
    legal_basis: str
    under_objection: bool = False
    """Hit on records all under objection: the decision is the policy's ``[objections]`` one."""

    def hits(self, profile) -> np.ndarray:
        """Which rows the rule hits; ``profile`` maps feature names to columns (a DataFrame, or
        lists of values)."""
        column = profile[self.feature]
        if isinstance(column, list):  # the service's rows: numbers or None, no pandas needed
            values = np.array([np.nan if v is None else v for v in column], dtype=float)
        else:
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        return np.asarray(OPERATORS[self.operator](values, self.threshold), dtype=bool)  # NaN compares False


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy. Build with :meth:`load`."""

    version: str
    description: str
    base_points: float
    base_odds: float
    pdo: float
    grade_bounds: tuple[float, ...]  # upper PD bounds of A..D
    decisions: dict[str, str]
    knockouts: tuple[Knockout, ...]
    capacity_quantile: float
    round_to_yuan: float
    unsecured_cap_yuan: float
    minimum_yuan: float
    multipliers: dict[str, float]
    source: str = ""
    encouraged: tuple[str, ...] = ()
    """The codes of the behaviours the city encourages (:data:`features.registry.ENCOURAGED`): none
    may raise the PD (:meth:`monotone`) or lower the capacity (the capacity model does not read the
    features they move: LightGBM's quantile objective takes no monotone constraint)."""
    not_named: tuple[str, ...] = ()
    """Features never named to an enterprise as a reason (not actionable, possibly discriminatory):
    the registry's firmographic and coverage features, and any the policy adds; the regulator's
    page shows their share apart."""
    not_in_model: tuple[str, ...] = ()
    """Features no model may use at all (a fair-use choice; ``bench/model_bench.py`` measures its cost)."""
    reason_coverage: float = 0.8
    """The share of a decision's adverse effect its named reasons must cover."""
    max_profile_age_days: int | None = None
    """No decision on a profile older than this many days (None: no limit declared)."""
    fair_lending: dict = field(default_factory=lambda: dict(FAIR_LENDING_DEFAULTS))
    """Tolerances of the validation report's fair-lending section (:mod:`models.fairness`)."""
    gate: dict = field(default_factory=lambda: dict(GATE_DEFAULTS))
    """The promotion gate's tolerances: model quality and business impact (:mod:`models.gate`)."""
    rights: dict[str, str] = field(default_factory=dict)
    """What an enterprise may do about a decision, in words: ``objection_zh``/``_en`` (异议申诉),
    ``repair_zh``/``_en`` (credit repair), ``review_zh``/``_en`` (human review of a decline or a
    referral), each with its ``_basis``; :func:`stated_rights` chooses those of one decision."""
    objections: dict[str, str] = field(default_factory=dict)
    """``knockout_while_disputed`` (the decision a knock-out resting only on records under objection
    takes instead of a stricter one) and the ``legal_basis`` that requires it; empty in a policy
    written before objections were declared: its knock-outs then decide as written."""

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        """Read and validate a policy file; :class:`PolicyError` names the first broken rule."""
        path = Path(path or DEFAULT_POLICY)
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise PolicyError(f"{path}: cannot read the policy: {error}") from None
        try:
            return cls._from_dict(raw, str(path))
        except KeyError as error:
            raise PolicyError(f"{path}: missing setting {error}") from None

    @classmethod
    def _from_dict(cls, raw: dict, source: str) -> Policy:
        def fail(message: str):
            raise PolicyError(f"{source}: {message}")

        score = raw["score"]
        if not score["pdo"] > 0:
            fail(f"pdo must be a positive number of points; got {score['pdo']}")
        if not score["base_odds"] > 0:
            fail(f"base_odds must be positive; got {score['base_odds']}")
        bounds = tuple(float(raw["grades"][g]) for g in GRADES[:-1])
        if not (0 < bounds[0] and all(a < b for a, b in zip(bounds, bounds[1:])) and bounds[-1] < 1):
            fail(f"grade bounds must rise strictly between 0 and 1 from A to D; got {bounds}")
        decisions = {g: raw["decisions"][g] for g in GRADES}
        for grade, decision in decisions.items():
            if decision not in DECISIONS:
                fail(f"decision for grade {grade} must be one of {DECISIONS}; got {decision!r}")
        knockouts = []
        for item in raw.get("knockouts", []):
            rule = Knockout(**{k: item[k] for k in Knockout.__dataclass_fields__ if k != "under_objection"})
            if not isinstance(rule.legal_basis, str) or not rule.legal_basis.strip():
                fail(f"knock-out {rule.code} cites no legal basis; no measure may be taken without one")
            if rule.feature not in BY_NAME:
                fail(f"knock-out {rule.code} uses unknown feature {rule.feature!r}")
            if rule.operator not in OPERATORS:
                fail(f"knock-out {rule.code}: operator must be one of {list(OPERATORS)}; got {rule.operator!r}")
            if rule.decision not in ("refer", "decline"):
                fail(f"knock-out {rule.code}: decision must be refer or decline; got {rule.decision!r}")
            if isinstance(rule.threshold, bool) or not isinstance(rule.threshold, (int, float)):
                fail(f"knock-out {rule.code}: threshold must be a number; got {rule.threshold!r}")
            if rule.code in {k.code for k in knockouts}:
                fail(f"knock-out code {rule.code} is used twice")
            knockouts.append(rule)
        limits = raw["limits"]
        multipliers = {g: float(limits["multipliers"][g]) for g in GRADES}
        if any(m < 0 for m in multipliers.values()):
            fail("limit multipliers must not be negative")
        if not 0 < limits["capacity_quantile"] < 1:
            fail(f"capacity_quantile must be between 0 and 1; got {limits['capacity_quantile']}")
        if not limits["unsecured_cap_yuan"] > 0 or not limits["round_to_yuan"] > 0:
            fail("unsecured_cap_yuan and round_to_yuan must be positive")
        if not limits["minimum_yuan"] >= 0:
            fail(f"minimum_yuan must not be negative; got {limits['minimum_yuan']}")
        fair = raw.get("fair_use", {})  # a policy written before fair use was declared declares nothing
        encouraged = tuple(fair.get("encouraged", ()))
        # what a firm is and what the platform holds of it are never reasons, whatever a policy lists
        not_named = tuple(dict.fromkeys([*features_of_kind("firmographic"), *features_of_kind("coverage"),
                                         *fair.get("not_named", ())]))
        not_in_model = tuple(fair.get("not_in_model", ()))
        for name in (*not_named, *not_in_model):
            if name not in BY_NAME:
                fail(f"fair_use names unknown feature {name!r}")
        unknown = [code for code in encouraged if code not in ENCOURAGED_BY_CODE and code not in BY_NAME]
        if unknown:
            fail(f"fair_use.encouraged names {unknown}, which are not encouraged behaviours of the registry "
                 f"(features.registry.ENCOURAGED: {sorted(ENCOURAGED_BY_CODE)})")
        moves: dict[str, int] = {}
        for code in encouraged:
            for name, direction in _moves(code):
                if moves.setdefault(name, direction) != direction:
                    fail(f"fair_use: the encouraged behaviours move {name} both up and down; no constraint can hold")
                declared = BY_NAME[name]
                if declared.is_categorical and not declared.ordered:
                    fail(f"fair_use: {name} cannot be encouraged: the registry declares it an unordered category")
                if declared.monotone and declared.monotone != -direction and declared.kind != "coverage":
                    fail(f"fair_use: {code} moves {name} the way the registry declares riskier; it cannot be encouraged")
        both = sorted(set(moves) & set(not_named) - set(features_of_kind("coverage")))
        if both:
            fail(f"fair_use: {both} are both moved by an encouraged behaviour and never named; an encouraged behaviour is named")
        coverage = float(fair.get("reason_coverage", 0.8))
        if not 0 < coverage <= 1:
            fail(f"fair_use.reason_coverage must be in (0, 1]; got {coverage}")
        age = raw.get("freshness", {}).get("max_profile_age_days")
        if age is not None and (isinstance(age, bool) or not isinstance(age, int) or age < 1):
            fail(f"freshness.max_profile_age_days must be a whole number of days, at least 1; got {age!r}")
        rights = {k: str(v) for k, v in raw.get("rights", {}).items()}
        objections = {k: str(v) for k, v in raw.get("objections", {}).items()}
        if objections:
            if objections.get("knockout_while_disputed") not in ("refer", "decline"):
                fail("objections.knockout_while_disputed must be refer or decline; got "
                     f"{objections.get('knockout_while_disputed')!r}")
            if not objections.get("legal_basis", "").strip():
                fail("objections.legal_basis is missing: a knock-out relieved while its record is disputed cites "
                     "the basis for it")
        lending = {**FAIR_LENDING_DEFAULTS, **raw.get("fair_lending", {})}
        band = lending["calibration_band"]
        if not (isinstance(band, (list, tuple)) and len(band) == 2 and 0 < band[0] < 1 < band[1]):
            fail(f"fair_lending.calibration_band must be [low, high] with 0 < low < 1 < high; got {band!r}")
        if not 0 < lending["approval_ratio_floor"] <= 1:
            fail(f"fair_lending.approval_ratio_floor must be in (0, 1]; got {lending['approval_ratio_floor']}")
        if isinstance(lending["min_group_loans"], bool) or not isinstance(lending["min_group_loans"], int) \
                or lending["min_group_loans"] < 1:
            fail(f"fair_lending.min_group_loans must be a whole number of loans; got {lending['min_group_loans']!r}")
        lending["calibration_band"] = tuple(float(b) for b in band)
        gate = {**GATE_DEFAULTS, **raw.get("gate", {})}
        for key, value in gate.items():
            if key not in GATE_DEFAULTS:
                fail(f"gate.{key} is not a setting of the gate; known: {sorted(GATE_DEFAULTS)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                fail(f"gate.{key} must be a positive number; got {value!r}")
        if not gate["confidence"] < 1:
            fail(f"gate.confidence must be below 1 (0.95 for 95 % intervals); got {gate['confidence']}")
        return cls(str(raw["version"]), raw.get("description", ""), float(score["base_points"]),
                   float(score["base_odds"]), float(score["pdo"]), bounds, decisions, tuple(knockouts),
                   float(limits["capacity_quantile"]), float(limits["round_to_yuan"]),
                   float(limits["unsecured_cap_yuan"]), float(limits["minimum_yuan"]), multipliers, source,
                   encouraged, not_named, not_in_model, coverage, age, lending, {k: float(v) for k, v in gate.items()},
                   rights, objections)

    @property
    def encouraged_moves(self) -> dict[str, int]:
        """Feature → the way the policy's encouraged behaviours move it (+1 up, -1 down)."""
        return {name: direction for code in self.encouraged for name, direction in _moves(code)}

    def monotone(self, feature) -> int:
        """The direction the PD model must respect for a registry feature: against the way an
        encouraged behaviour moves it (so that the behaviour can only lower the PD), else the
        registry's."""
        moved = self.encouraged_moves.get(feature.name)
        return -moved if moved else feature.monotone

    def rights_for(self, decision: str, knockout_features, reason_sources) -> list[dict]:
        """The rights an enterprise is told of with one decision (:func:`stated_rights`)."""
        return stated_rights(self.rights, decision, knockout_features, reason_sources)

    # ------------------------------------------------------------------ rules

    def points(self, pd_: np.ndarray) -> np.ndarray:
        """Score points: base_points at base_odds, pdo more for each doubling of the good odds."""
        pd_ = np.clip(np.asarray(pd_, dtype=float), 1e-9, 1 - 1e-9)
        factor = self.pdo / math.log(2)
        return np.round(self.base_points + factor * (np.log((1 - pd_) / pd_) - math.log(self.base_odds)), 1)

    def grades(self, pd_: np.ndarray) -> np.ndarray:
        """Grade A–E from the calibrated probability of default."""
        return np.array(GRADES)[np.searchsorted(np.array(self.grade_bounds), np.asarray(pd_, dtype=float), side="right")]

    def decide(self, grades: np.ndarray, profile, disputed: list[set[str]] | None = None
               ) -> tuple[np.ndarray, list[list[Knockout]]]:
        """Each enterprise's decision (the grade's, made stricter by any knock-out it hits) and the
        knock-outs it hit. ``disputed``: per enterprise, the knock-out features that rest only on
        records under objection; such a knock-out takes the ``[objections]`` decision (refer) when
        the policy declares one, citing its basis beside the rule's own."""
        decision = np.array([self.decisions[g] for g in grades], dtype=object)
        hit_lists: list[list[Knockout]] = [[] for _ in range(len(grades))]
        relief = self.objections.get("knockout_while_disputed")
        for rule in self.knockouts:
            hits = rule.hits(profile)
            for i in np.flatnonzero(hits):
                applied = rule
                if disputed is not None and rule.feature in disputed[i]:
                    milder = relief if relief and DECISION_SEVERITY[relief] < DECISION_SEVERITY[rule.decision] \
                        else rule.decision
                    basis = f"{rule.legal_basis}；{self.objections['legal_basis']}" if milder != rule.decision \
                        else rule.legal_basis
                    applied = replace(rule, decision=milder, legal_basis=basis, under_objection=True)
                hit_lists[i].append(applied)
                if DECISION_SEVERITY[applied.decision] > DECISION_SEVERITY[decision[i]]:
                    decision[i] = applied.decision
        return decision, hit_lists

    def limits(self, capacity_yuan: np.ndarray, grades: np.ndarray, decisions: np.ndarray,
               requested_yuan: np.ndarray | None = None) -> np.ndarray:
        """Pre-credit limit in yuan: multiplier × conservative capacity, capped, rounded down,
        zero when declined or below the minimum."""
        capacity = np.asarray(capacity_yuan, dtype=float)
        capacity = np.where(np.isnan(capacity), 0.0, capacity).clip(0)
        multiplier = np.array([self.multipliers[g] for g in grades], dtype=float)
        limit = np.minimum(capacity * multiplier, self.unsecured_cap_yuan)
        if requested_yuan is not None:
            requested = np.asarray(requested_yuan, dtype=float)
            limit = np.where(np.isnan(requested), limit, np.minimum(limit, requested))
        limit = np.floor(limit / self.round_to_yuan) * self.round_to_yuan
        limit = np.where((np.asarray(decisions) == "decline") | (limit < self.minimum_yuan), 0.0, limit)
        return limit.astype(np.int64)


def _moves(encouraged: str) -> tuple[tuple[str, int], ...]:
    """What one ``[fair_use] encouraged`` entry moves: an encouraged behaviour's declared moves, or,
    in a policy written before behaviours were declared as record changes (a bundle's own copy),
    a feature named directly, which the behaviour makes grow."""
    action = ENCOURAGED_BY_CODE.get(encouraged)
    return action.moves if action is not None else ((encouraged, 1),)


def stated_rights(rights: dict[str, str], decision: str, knockout_features, reason_sources) -> list[dict]:
    """The rights an enterprise is told of with one decision, in a policy's words (``rights``, its
    ``[rights]``): objection (异议) always; credit repair where a knock-out or a named adverse
    reason rests on a source whose records can be repaired (its schema declares a repair date);
    human review of any decline or referral (PIPL 第二十四条 for an individual business's owner, a
    natural person). Empty when the policy states no rights."""
    from features.schemas import SOURCES

    if not rights:
        return []
    repairable = {name for name, source in SOURCES.items() if source.repair_column}
    sources = {s for f in knockout_features if f in BY_NAME for s in BY_NAME[f].sources} | set(reason_sources)
    chosen = ["objection"]
    if sources & repairable:
        chosen.append("repair")
    if decision in ("refer", "decline"):
        chosen.append("review")
    out = []
    for right in chosen:
        zh, en = rights.get(f"{right}_zh"), rights.get(f"{right}_en")
        if zh or en:
            out.append({"right": right, "zh": zh or "", "en": en or "", "legal_basis": rights.get(f"{right}_basis") or None})
    return out
