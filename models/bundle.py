"""The model bundle: everything one pre-credit decision needs, saved as one folder.

``pd_model.*`` (the calibrated PD classifier; with ``stage1_model.*`` and ``two_stage.json`` when
it is the two-stage model of :mod:`models.stages`), ``capacity_model.*`` (the conservative 12-month
capacity), ``policy.toml`` (a copy of the policy it was trained and validated under),
``reference.json`` (the reference profile decisions are explained against) and ``bundle.json``
(versions, training windows, metrics). LightGBM text and JSON only, no pickle: the service loads
it once per process with LightGBM and NumPy alone (no ``shap``, no ``numba``).

:meth:`ModelBundle.decide` turns profile rows into PD, score, grade, decision, limit and the
factors behind them, with contributions against the reference (:mod:`models.explain`): the
reference's margin plus the contributions is the decision's margin, so the PD comes from the same
numbers that explain it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from features.registry import BY_NAME
from models.estimator import CreditModel, QuantileModel
from models.explain import DecisionReasons, ReasonPlan, StatedReasons, plain_value
from models.policy import GRADES, Policy
from models.stages import TwoStageModel


@dataclass
class Decisions:
    """Decisions for a batch of profile rows (arrays aligned with the rows)."""

    uscc: np.ndarray
    pd: np.ndarray
    score: np.ndarray
    grade: np.ndarray
    decision: np.ndarray
    limit: np.ndarray
    capacity: np.ndarray
    margin: np.ndarray
    base_value: np.ndarray  # per row: the margin of the reference it is explained against
    contributions: np.ndarray | None  # None when decided without explanations
    features: list[str]
    knockouts: list[list]
    values: pd.DataFrame = field(repr=False, default=None)
    reference: dict | None = None  # reference group → what contributions are measured against (ModelBundle.reference_summary)
    stated: StatedReasons | None = field(repr=False, default=None)  # the reasons named (models.explain.ReasonPlan)
    rules: dict | None = field(repr=False, default=None)  # ModelBundle.rules(): the numbers that made them
    requested: np.ndarray | None = field(repr=False, default=None)
    reference_keys: np.ndarray | None = field(repr=False, default=None)  # per row, its reference group
    policy: Policy | None = field(repr=False, default=None)  # the policy that decided: the rights it states
    intercept: np.ndarray | None = field(repr=False, default=None)  # per row, the calibration's a (its group's)

    def reference_of(self, i: int) -> dict:
        """The summary of the reference row ``i`` is explained against."""
        key = None if self.reference_keys is None else self.reference_keys[i]
        return (self.reference or {}).get(key) or {}

    def __len__(self) -> int:
        return len(self.pd)

    def reasons(self, i: int) -> DecisionReasons:
        """Row ``i``'s knock-outs, adverse and positive reasons in words (see
        :class:`models.explain.ReasonPlan`), what they cover, and the features never named."""
        reference = self.reference_of(i)
        stated = self.stated.row(i, lambda feature: _value_at(self.values, feature, i), reference.get("values", {}))
        rights = [] if self.policy is None else self.policy.rights_for(
            str(self.decision[i]), [k.feature for k in self.knockouts[i]],
            [s for item in stated["adverse"] for s in item.get("sources", [])])
        return {
            "knockouts": [{"code": k.code, "zh": k.zh, "en": k.en, "decision": k.decision, "legal_basis": k.legal_basis,
                           "feature": k.feature, "value": plain_value(_value_at(self.values, k.feature, i)),
                           **({"under_objection": True} if k.under_objection else {})}
                          for k in self.knockouts[i]],
            **stated,
            "base_value": round(float(self.base_value[i]), 6),
            "margin": round(float(self.margin[i]), 6),
            "reference": {k: v for k, v in reference.items() if k != "values"},
            "computation": self.computation(i),
            "rights": rights,
        }

    def computation(self, i: int) -> dict:
        """Row ``i``'s decision as arithmetic anyone can redo (:func:`recompute`): the bundle's rules
        with the row's margin, capacity estimate and requested amount."""
        requested = None if self.requested is None or np.isnan(self.requested[i]) else float(self.requested[i])
        capacity = float(self.capacity[i])
        rules = dict(self.rules or {})
        within = rules.pop("calibration_within", None)
        if within and self.intercept is not None:  # the row's own group's intercept, and where it comes from
            group = _value_at(self.values, within["feature"], i) if self.values is not None else None
            group = None if group is None or group != group else str(group)
            rules["calibration"] = {**rules["calibration"], "a": float(self.intercept[i]),
                                    "within": {"feature": within["feature"], "value": group,
                                               "pooled_a": rules["calibration"]["a"],
                                               "shift": within["shifts"].get(group, 0.0) if group else 0.0}}
        return {**rules, "margin": float(self.margin[i]), "capacity_yuan": 0.0 if capacity != capacity else capacity,
                "requested_yuan": requested, "knockout_decisions": [k.decision for k in self.knockouts[i]]}

    def frame(self) -> pd.DataFrame:
        """One row per enterprise, the reasons as codes (strongest first), for lists and files."""
        return pd.DataFrame({
            "uscc": self.uscc, "pd": self.pd, "score": self.score, "grade": self.grade, "decision": self.decision,
            "limit_yuan": self.limit, "capacity_yuan": np.round(self.capacity, 2),
            "knockouts": [";".join(k.code for k in hits) for hits in self.knockouts],
            "adverse_reasons": self.stated.codes("adverse"), "positive_reasons": self.stated.codes("positive"),
            "reason_coverage": np.round(self.stated.coverage(), 4),
        })


def _value_at(columns, feature: str, i: int):
    if isinstance(columns, RowColumns):
        return columns.value(feature, i)
    return columns[feature].iloc[i]


class RowColumns:
    """Rows of values (lists in ``order``) seen as columns by name, without pandas."""

    def __init__(self, rows: list[list], order: list[str]):
        self.rows = rows
        self.position = {name: i for i, name in enumerate(order)}

    def __getitem__(self, feature: str) -> list:
        i = self.position[feature]
        return [row[i] for row in self.rows]

    def __contains__(self, feature: str) -> bool:
        return feature in self.position

    def value(self, feature: str, i: int):
        """Row ``i``'s value of ``feature`` (without building the column)."""
        return self.rows[i][self.position[feature]]


def _code(feature: str) -> str:
    return BY_NAME[feature].code if feature in BY_NAME else feature


REFERENCE_FILE = "reference.json"
FEATURES_FILE = "features.json"
"""The bundle's own feature list: the declarations of what it reads, as they stood when it was saved."""
REFERENCE_GRADE = "B"
MIN_REFERENCE_GROUP = 30
"""The reference is the median profile of at least this many enterprises; a thinner group of
grade-B approvals gives way to every approval, and that to every fitted loan."""
REFERENCE_GROUP = "entity_type"
"""Each enterprise is explained against the reference of its own kind of entity: an individual
business is compared with the individual businesses the model approves, so that what it is in law
(no registered capital to speak of, no tax grade for most) is not read against it as behaviour."""


def reference_for(bundle: ModelBundle, loans: pd.DataFrame) -> dict:
    """The reference profiles decisions are explained against: the median profile of the fitted
    loans the bundle itself approves in grade B (the typical good-but-not-best borrower, whom an
    enterprise can picture and a regulator can check), or, in a book too thin for that, of every
    loan it approves, or of every loan; and the same within each kind of entity
    (:data:`REFERENCE_GROUP`) that has at least :data:`MIN_REFERENCE_GROUP` loans (``groups``),
    which its enterprises are explained against. See :func:`models.explain.reference_values`."""
    from features.schemas import ENTITY_KINDS

    decisions = bundle.decide(loans, explain=False)
    categorical = set(bundle.pd_model.encoder_.categories_)
    words = [("{n} 户训练样本中获批且评级为B的{who}的中位画像", "the median profile of the {n} training {who} the model approves in grade B"),
             ("{n} 户训练样本中获批{who}的中位画像", "the median profile of the {n} training {who} the model approves"),
             ("{n} 户训练样本{who}的中位画像", "the median profile of the {n} training {who}")]

    def median_profile(within: np.ndarray, who_zh: str, who_en: str) -> dict | None:
        found = _median_profile(loans, decisions, within, bundle.features, categorical)
        if found is None:
            return None
        step, n, values = found
        zh, en = words[step]
        return {"zh": zh.format(n=f"{n:,}", who=who_zh), "en": en.format(n=f"{n:,}", who=who_en),
                "population": n, "values": values}

    out = median_profile(np.ones(len(loans), dtype=bool), "企业", "borrowers")
    if REFERENCE_GROUP in loans:  # the kind of entity groups the references whether the model reads it or not
        kinds = loans[REFERENCE_GROUP].astype("object").to_numpy()
        groups = {}
        names = {k.code: (k.zh, f"{k.en}es" if k.en.endswith("s") else f"{k.en}s") for k in ENTITY_KINDS}
        for kind in sorted({k for k in kinds if isinstance(k, str)}):
            zh, en = names.get(kind, (kind, kind))
            found = median_profile(kinds == kind, zh, en)
            if found is not None and found["population"] >= MIN_REFERENCE_GROUP:
                groups[kind] = found
        out["groups"] = groups
    out["supplied"] = _supplied_references(loans, decisions, categorical)
    return out


def _median_profile(loans: pd.DataFrame, decisions: Decisions, within: np.ndarray, columns: list[str],
                    categorical: set[str], approved_only: bool = False) -> tuple[int, int, dict] | None:
    """The median profile (:func:`models.explain.reference_values`, of ``columns``) of the loans
    ``within`` the model approves in grade B, or, fewer than :data:`MIN_REFERENCE_GROUP` of them,
    of those it approves, or (unless ``approved_only``) of all of them: the step taken (0, 1, 2),
    how many loans it summarises, and the values; None when no step has enough (a whole book
    thinner than that still gives its every loan)."""
    from models.explain import reference_values

    approved = decisions.decision == "approve"
    steps = [approved & (decisions.grade == REFERENCE_GRADE), approved]
    if not approved_only:
        steps.append(np.ones(len(loans), dtype=bool))
    for step, chosen in enumerate(steps):
        chosen = chosen & within
        if chosen.sum() >= MIN_REFERENCE_GROUP or (not approved_only and chosen.all() and chosen.any()):
            return step, int(chosen.sum()), reference_values(loans[chosen], columns, categorical)
    return None


def _supplied_references(loans: pd.DataFrame, decisions: Decisions, categorical: set[str]) -> dict:
    """For each source an action of advice lets the platform hold (a thin file's tax returns), the
    values of that source's features of the typical approved borrower holding it: the median of the
    grade-B approvals (else every approval) holding the source, per kind of entity (``"*"``: all
    kinds). Advice re-scores a thin file with them, and says so."""
    from features.registry import ACTIONS, COVERAGE_FLAG, FEATURES

    out = {}
    for source in dict.fromkeys(a.supplies for a in ACTIONS if a.supplies):
        flag = COVERAGE_FLAG[source]
        if flag not in loans:
            continue
        columns = [f.name for f in FEATURES if source in f.sources and f.kind == "behaviour" and f.name in loans]
        holding = pd.to_numeric(loans[flag], errors="coerce").to_numpy() == 1
        kinds = loans[REFERENCE_GROUP].astype("object").to_numpy() if REFERENCE_GROUP in loans else \
            np.full(len(loans), "*", dtype=object)
        by_kind = {}
        for kind in ["*", *sorted({k for k in kinds if isinstance(k, str)})]:
            found = _median_profile(loans, decisions, holding & ((kinds == kind) if kind != "*" else True), columns,
                                    categorical, approved_only=True)
            if found is not None:
                by_kind[kind] = {"population": found[1], "values": found[2]}
        if by_kind:
            out[source] = by_kind
    return out


@dataclass
class ModelBundle:
    """A PD model, a capacity model and the policy that turns them into decisions."""

    pd_model: CreditModel | TwoStageModel
    capacity_model: QuantileModel
    policy: Policy
    meta: dict
    reference: dict | None = None
    """The profile every decision is explained against: ``zh``, ``en`` (what it is, in words),
    ``population`` (how many enterprises it summarises) and ``values`` (feature → raw value);
    see :func:`reference_for`."""
    declarations: list[dict] | None = None
    """The registry's declarations of the features the bundle reads, kept at saving (:meth:`declared`)."""

    @property
    def features(self) -> list[str]:
        return list(self.pd_model.feature_names_in_)

    @property
    def inputs(self) -> list[str]:
        """Every profile column a decision reads: the model's features, the knock-outs', the
        coverage flags its reasons read to say which sources hold nothing (:class:`ReasonPlan`) and
        the kind of entity that chooses its reference (:data:`REFERENCE_GROUP`)."""
        grouped = [REFERENCE_GROUP] if (self.reference or {}).get("groups") else []
        return list(dict.fromkeys([*self.features, *(rule.feature for rule in self.policy.knockouts),
                                   *self.reason_plan.flags, *grouped]))

    @property
    def version(self) -> str:
        """The registered model version when registered, else the bundle's content hash."""
        return str(self.meta.get("model_version") or self.meta["bundle_id"])

    def decide(self, profile: pd.DataFrame, requested_yuan: np.ndarray | None = None,
               num_threads: int = 0, explain: bool = True, disputed: list[set[str]] | None = None) -> Decisions:
        """Decisions for profile rows (one per enterprise). ``explain=False`` leaves the reasons
        out (``contributions`` is None): the same PD, grade and limit for a fraction of the cost,
        for measuring a model on many loans. ``disputed``: per row, the knock-out features resting
        only on records under objection (:meth:`Policy.decide`)."""
        codes = profile["uscc"].to_numpy() if "uscc" in profile else np.arange(len(profile))
        capacity_matrix = None if list(self.capacity_model.feature_names_in_) == self.features else \
            self.capacity_model.matrix(profile)
        return self._decide(self.pd_model.matrix(profile), capacity_matrix, profile, codes, requested_yuan,
                            num_threads, explain, disputed=disputed)

    def decide_rows(self, rows: list[list], order: list[str], codes: list[str],
                    requested_yuan: np.ndarray | None = None, num_threads: int = 1,
                    disputed: list[set[str]] | None = None) -> Decisions:
        """Decisions for rows of values in ``order`` (as the service keeps published profiles):
        the same numbers as :meth:`decide`, without building a DataFrame. ``disputed``: per row,
        the knock-out features resting only on records under objection (:meth:`Policy.decide`)."""
        matrix = self.pd_model.encoder_.transform_rows(rows, order)
        capacity_matrix = None if list(self.capacity_model.feature_names_in_) == self.features else \
            self.capacity_model.encoder_.transform_rows(rows, order)
        return self._decide(matrix, capacity_matrix, RowColumns(rows, order), np.asarray(codes, dtype=object),
                            requested_yuan, num_threads, compiled=False, disputed=disputed)

    def reference_key(self, value) -> str | None:
        """The reference group an enterprise whose :data:`REFERENCE_GROUP` value is ``value`` is
        explained against (None: the whole book's reference)."""
        groups = (self.reference or {}).get("groups") or {}
        return value if isinstance(value, str) and value in groups else None

    def _reference(self, key: str | None) -> dict:
        if not self.reference:
            raise ValueError(f"model {self.version} has no reference profile to explain decisions against "
                             "(trained before reasons were stated against a reference): retrain it with xyd train")
        return self.reference if key is None else self.reference["groups"][key]

    def explainer_for(self, key: str | None = None):
        """The PD model's :class:`models.shapley.Explainer` against the reference of group ``key``
        (:meth:`reference_key`; None, the whole book's), built once per group."""
        explainers = self._explainers
        if key not in explainers:
            values = self._reference(key)["values"]
            row = pd.DataFrame([{f: values.get(f) for f in self.features}])
            explainers[key] = self.pd_model.explainer(self.pd_model.matrix(row.astype(object))[0])
        return explainers[key]

    @cached_property
    def _explainers(self) -> dict:
        """Reference group → its explainer, as :meth:`explainer_for` builds them."""
        return {}

    @cached_property
    def _summaries(self) -> dict:
        """Reference group → its summary, as :meth:`reference_summary` works them out."""
        return {}

    @property
    def explainer(self):
        """The explainer against the whole book's reference (:meth:`explainer_for`)."""
        return self.explainer_for(None)

    @cached_property
    def reason_plan(self) -> ReasonPlan:
        """How this model's contributions become reasons, under its policy's fair use (built once)."""
        return ReasonPlan(self.features, self.policy.not_named, self.policy.reason_coverage)

    def reference_summary(self, key: str | None = None) -> dict:
        """What the decisions of group ``key`` name as their reference: the words, the population,
        the reference's own margin, PD and grade, and its values (worked out once per group)."""
        summaries = self._summaries
        if key in summaries:
            return summaries[key]
        reference = self._reference(key)
        margin = self.explainer_for(key).reference_margin
        row = self.pd_model.matrix(pd.DataFrame([{f: reference["values"].get(f) for f in self.features}]).astype(object))
        pd_ = float(1.0 / (1.0 + np.exp(-self.pd_model.calibrated_log_odds(np.array([margin]), row)))[0])
        summaries[key] = {"zh": reference["zh"], "en": reference["en"], "population": reference["population"],
                          **({"group": {"feature": REFERENCE_GROUP, "value": key}} if key is not None else {}),
                          "margin": round(margin, 6), "pd": round(pd_, 6),
                          "grade": str(self.policy.grades(np.array([pd_]))[0]), "values": reference["values"]}
        return summaries[key]

    def reference_summaries(self) -> dict:
        """Every reference's summary, the whole book's (key None) first: warms every explainer."""
        keys = [None, *((self.reference or {}).get("groups") or {})]
        return {key: self.reference_summary(key) for key in keys}

    def _reference_keys(self, columns, rows: int) -> np.ndarray:
        """Per row, the reference group it is explained against."""
        if not (self.reference or {}).get("groups") or REFERENCE_GROUP not in columns:
            return np.full(rows, None, dtype=object)
        values = columns[REFERENCE_GROUP]
        values = values if isinstance(values, list) else values.astype("object").tolist()
        return np.array([self.reference_key(v) for v in values], dtype=object)

    def _decide(self, matrix: np.ndarray, capacity_matrix: np.ndarray | None, columns, codes: np.ndarray,
                requested_yuan: np.ndarray | None, num_threads: int, explain: bool = True,
                compiled: bool | None = None, disputed: list[set[str]] | None = None) -> Decisions:
        reference = stated = keys = None
        if explain:  # the service's rows never load the compiled walk (models.shapley.COMPILED_FROM_ROWS)
            keys = self._reference_keys(columns, len(matrix))
            contributions, base = np.zeros(matrix.shape), np.zeros(len(matrix))
            reference = {}
            for key in dict.fromkeys(keys.tolist()):
                rows = np.flatnonzero([k == key for k in keys])
                explainer = self.explainer_for(key)
                contributions[rows] = explainer.contributions(matrix[rows], num_threads, compiled)
                base[rows] = explainer.reference_margin
                reference[key] = self.reference_summary(key)
            margin = contributions.sum(axis=1) + base
            plan = self.reason_plan
            stated = plan.state(contributions, plan.absences(matrix, self._coverage_flags(plan, matrix, columns)))
        else:
            contributions, base, margin = None, np.zeros(len(matrix)), self.pd_model.raw(matrix, num_threads)
        intercept = self.pd_model.intercepts(matrix, len(matrix))
        pd_ = 1.0 / (1.0 + np.exp(-(intercept + self.pd_model.calibration_[1] * margin)))
        capacity = self.capacity_model.predict(matrix if capacity_matrix is None else capacity_matrix, num_threads)
        grades = self.policy.grades(pd_)
        decision, knockouts = self.policy.decide(grades, columns, disputed)
        limit = self.policy.limits(capacity, grades, decision, requested_yuan)
        return Decisions(codes, pd_, self.policy.points(pd_), grades, decision, limit, capacity, margin,
                         base, contributions, self.features, knockouts, columns, reference, stated,
                         self.rules() if explain else None,
                         None if requested_yuan is None else np.asarray(requested_yuan, dtype=float), keys,
                         self.policy, intercept)

    def rules(self) -> dict:
        """Every number that turns a margin into a decision (worked out once): the bundle's id, the
        calibration ``PD = 1 / (1 + exp(-(a + b · margin)))`` (with ``calibration_within``, each
        group's shift of ``a``: a decision's computation states its own group's ``a``), the score's
        scaling, the grades' upper PD bounds, each grade's decision and the limit's multiplier, cap,
        rounding and minimum."""
        return self._rule_numbers

    @cached_property
    def _rule_numbers(self) -> dict:
        a, b = self.pd_model.calibration_
        policy = self.policy
        shifts = self.pd_model.calibration_shifts_
        return {
            "bundle_id": self.meta.get("bundle_id"), "policy_version": policy.version,
            "calibration": {"a": float(a), "b": float(b)},
            **({"calibration_within": {"feature": self.pd_model.calibrate_within, "shifts": dict(shifts)}}
               if shifts else {}),
            "score": {"base_points": policy.base_points, "base_odds": policy.base_odds, "pdo": policy.pdo},
            "grade_bounds": dict(zip(GRADES, policy.grade_bounds)), "grade_decisions": dict(policy.decisions),
            "limits": {"multipliers": dict(policy.multipliers), "unsecured_cap_yuan": policy.unsecured_cap_yuan,
                       "round_to_yuan": policy.round_to_yuan, "minimum_yuan": policy.minimum_yuan},
            "max_profile_age_days": policy.max_profile_age_days, "reason_coverage": policy.reason_coverage}

    def _coverage_flags(self, plan: ReasonPlan, matrix: np.ndarray, columns) -> np.ndarray:
        """(rows, sources with a coverage flag): 1 where the platform holds records of the source,
        0 where none, NaN where the department has not delivered on time (read from the model's
        inputs, else the profile's; 1, "holds", when neither has the flag)."""
        inside = plan.flag_positions  # each flag's column in the model's inputs, -1 when not one of them
        out = matrix[:, np.maximum(inside, 0)] if len(inside) else np.ones((len(matrix), 0))
        for k in np.flatnonzero(inside < 0):
            flag = plan.flags[k]
            if flag not in columns:
                out[:, k] = 1.0
                continue
            column = columns[flag]
            out[:, k] = [np.nan if v is None else v for v in column] if isinstance(column, list) else \
                pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path) -> Path:
        """Write the bundle to ``folder``: into a temporary folder beside it first, renamed into
        place once complete, so a reader (or a crash half-way) never meets a half-written bundle.
        A bundle already at ``folder`` is replaced only after the new one is whole. The bundle
        keeps the declarations of the features it reads (:data:`FEATURES_FILE`), as they were when
        it was saved, so what its decisions' codes meant is read from it, not from today's registry."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            self.pd_model.save(staging)
            self.capacity_model.save(staging)
            shutil.copyfile(self.policy.source, staging / "policy.toml")
            if self.reference:
                (staging / REFERENCE_FILE).write_text(json.dumps(self.reference, ensure_ascii=False, indent=1), "utf-8")
            if self.declarations is None:
                self.declarations = [BY_NAME[name].as_json() for name in self.inputs if name in BY_NAME]
            (staging / FEATURES_FILE).write_text(json.dumps(self.declarations, ensure_ascii=False, indent=1), "utf-8")
            self.meta["bundle_id"] = bundle_id(staging)
            (staging / "bundle.json").write_text(json.dumps(self.meta, ensure_ascii=False, indent=1, default=str),
                                                 "utf-8")
            replaced = folder.with_name(f".{folder.name}-replaced-{os.getpid()}") if folder.exists() else None
            if replaced:
                os.rename(folder, replaced)
            os.rename(staging, folder)
            if replaced:
                shutil.rmtree(replaced, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: Path) -> ModelBundle:
        folder = Path(folder)
        meta = json.loads((folder / "bundle.json").read_text("utf-8"))
        pd_model = TwoStageModel.load(folder) if TwoStageModel.saved_in(folder) else CreditModel.load(folder)
        reference = folder / REFERENCE_FILE
        reference = json.loads(reference.read_text("utf-8")) if reference.exists() else None
        declared = folder / FEATURES_FILE
        declarations = json.loads(declared.read_text("utf-8")) if declared.exists() else None
        return cls(pd_model, QuantileModel.load(folder), Policy.load(folder / "policy.toml"), meta, reference,
                   declarations)

    def declared(self) -> dict[str, dict]:
        """The declarations of the features this bundle reads (name: the registry's
        :meth:`~features.registry.Feature.as_json`), as they stood when it was saved; a bundle saved
        before bundles kept them reads today's registry."""
        if self.declarations is None:
            return {name: BY_NAME[name].as_json() for name in self.inputs if name in BY_NAME}
        return {d["name"]: d for d in self.declarations}


def bundle_id(folder: Path) -> str:
    """A hash of the models and the policy: the same files, the same id."""
    digest = hashlib.sha256()
    names = ["pd_model.lgb.txt", "pd_model.json", "capacity_model.lgb.txt", "capacity_model.json", "policy.toml"]
    if TwoStageModel.saved_in(folder):
        names += TwoStageModel.FILES
    if (Path(folder) / REFERENCE_FILE).exists():
        names.append(REFERENCE_FILE)
    for name in names:
        digest.update((Path(folder) / name).read_bytes())
    return digest.hexdigest()[:12]



def recompute(computation: dict) -> dict:
    """A decision redone from its stated numbers alone (:meth:`Decisions.computation`, as the
    regulator's page prints them), in plain arithmetic: PD, score, grade, decision and limit."""
    import math

    calibration, score, limits = computation["calibration"], computation["score"], computation["limits"]
    # NumPy's exp, log and round, as the decision used them (Python's round halves to even on the
    # binary value, NumPy's on the decimal: 612.15 is 612.1 in one and 612.2 in the other)
    pd_ = float(1.0 / (1.0 + np.exp(-(calibration["a"] + calibration["b"] * np.float64(computation["margin"])))))
    clipped = min(max(pd_, 1e-9), 1 - 1e-9)
    points = float(np.round(score["base_points"] + score["pdo"] / math.log(2)
                            * (np.log((1 - clipped) / clipped) - math.log(score["base_odds"])), 1))
    grade = next((g for g, bound in computation["grade_bounds"].items() if pd_ < bound), GRADES[-1])
    severity = {"approve": 0, "refer": 1, "decline": 2}
    decision = max([computation["grade_decisions"][grade], *computation["knockout_decisions"]], key=severity.get)
    limit = min(max(computation["capacity_yuan"], 0.0) * limits["multipliers"][grade], limits["unsecured_cap_yuan"])
    if computation["requested_yuan"] is not None:
        limit = min(limit, computation["requested_yuan"])
    limit = math.floor(limit / limits["round_to_yuan"]) * limits["round_to_yuan"]
    if decision == "decline" or limit < limits["minimum_yuan"]:
        limit = 0
    return {"pd": pd_, "score": points, "grade": grade, "decision": decision, "limit_yuan": int(limit)}
