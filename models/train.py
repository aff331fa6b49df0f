"""Training the pre-credit models: split by time, fit, calibrate, evaluate out of time.

:func:`fit_bundle` fits the PD model (registry monotone constraints, fixed categories, early
stopping on the validation window, calibration on its own window) and the capacity model (a
conservative quantile, the policy's, of next-12-month taxable sales) and returns a
:class:`~models.bundle.ModelBundle`. :func:`evaluate` scores labelled loans with any bundle;
``xyd train`` and ``xyd promote`` use both, so the gate compares models on the same loans in
the same way.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.registry import FEATURES, feature_set_version
from models import metrics
from models.bundle import Decisions, ModelBundle
from models.dataset import Split
from models.estimator import CreditModel, QuantileModel
from models.policy import Policy

MONOTONE_TOLERANCE = 1e-9


@dataclass
class Evaluation:
    """How a bundle does on a set of labelled loans."""

    metrics: dict[str, float]
    calibration: pd.DataFrame
    decisions: Decisions
    frame: pd.DataFrame = field(repr=False)


def profile_columns() -> list[str]:
    """The model inputs: every registered feature."""
    return [f.name for f in FEATURES]


def fit_bundle(windows: dict[str, pd.DataFrame], split: Split, policy: Policy | None = None,
               params: dict | None = None, seed: int = 0) -> ModelBundle:
    """Fit the PD and capacity models on the windows of :func:`models.dataset.split_by_time`."""
    policy = policy or Policy.load()
    columns = profile_columns()
    monotone = {f.name: f.monotone for f in FEATURES}
    categories = {f.name: list(f.categories) for f in FEATURES if f.is_categorical}
    started = time.perf_counter()
    pd_model = CreditModel(monotone=monotone, categories=categories, params=params, seed=seed).fit(
        windows["train"][columns], windows["train"]["defaulted"], windows["valid"][columns],
        windows["valid"]["defaulted"], windows["calib"][columns], windows["calib"]["defaulted"])
    pd_seconds = time.perf_counter() - started
    known = {name: w[w["capacity_12m"].notna()] for name, w in windows.items()}
    capacity_model = QuantileModel(alpha=policy.capacity_quantile, categories=categories, params=params, seed=seed).fit(
        known["train"][columns], known["train"]["capacity_12m"], known["valid"][columns], known["valid"]["capacity_12m"])
    meta = {
        "feature_set_version": feature_set_version(),
        "policy_version": policy.version,
        "trained_at": dt.datetime.now().isoformat(timespec="seconds"),
        "split": split.as_dict(),
        "loans": {name: int(len(w)) for name, w in windows.items()},
        "defaults": {name: int(w["defaulted"].sum()) for name, w in windows.items()},
        "pd_trees": pd_model.best_iteration_, "capacity_trees": capacity_model.best_iteration_,
        "calibration": list(pd_model.calibration_), "seconds_pd_fit": round(pd_seconds, 2),
    }
    return ModelBundle(pd_model, capacity_model, policy, meta)


def evaluate(bundle: ModelBundle, loans: pd.DataFrame) -> Evaluation:
    """Metrics of ``bundle`` on labelled loans: AUC, Gini, KS, Brier, ECE, approval rate, and
    how often the limit stays within the capacity realised by borrowers who repaid."""
    decisions = bundle.decide(loans)
    y = loans["defaulted"].to_numpy()
    summary = metrics.summary(y, decisions.pd)
    summary["approval_rate"] = float(np.mean(decisions.decision == "approve"))
    summary["mean_limit_yuan"] = float(np.mean(decisions.limit))
    repaid = (y == 0) & loans["capacity_12m"].notna().to_numpy()
    within = decisions.limit[repaid] <= loans["capacity_12m"].to_numpy()[repaid]
    summary["limit_within_capacity"] = float(within.mean()) if repaid.any() else float("nan")
    return Evaluation(summary, metrics.calibration_table(y, decisions.pd), decisions, loans)


def monotonicity(model: CreditModel, sample: pd.DataFrame, grid_points: int = 12) -> dict[str, bool]:
    """For every constrained feature: do predictions move only the declared way as the feature
    alone sweeps its range, on every sampled row? (LightGBM enforces it; this checks it.)"""
    matrix = model.matrix(sample)
    out = {}
    for j, name in enumerate(model.feature_names_):
        direction = model.monotone_.get(name, 0)
        if not direction:
            continue
        column = matrix[:, j]
        finite = column[~np.isnan(column)]
        if not len(finite):
            out[name] = True
            continue
        grid = np.unique(np.quantile(finite, np.linspace(0, 1, grid_points)))
        margins = []
        for value in grid:
            varied = matrix.copy()
            varied[:, j] = value
            margins.append(model.raw(varied))
        steps = np.diff(np.stack(margins, axis=1), axis=1) * direction
        out[name] = bool((steps >= -MONOTONE_TOLERANCE).all())
    return out


def psi_table(train: pd.DataFrame, oot: pd.DataFrame, train_scores: np.ndarray, oot_scores: np.ndarray) -> pd.DataFrame:
    """PSI between the training and out-of-time populations: the score first, then every feature."""
    rows = [("score", metrics.psi(train_scores, oot_scores))]
    rows += [(name, metrics.psi(train[name], oot[name])) for name in profile_columns()]
    return pd.DataFrame(rows, columns=["variable", "psi"])


def slices(evaluation: Evaluation, by: str) -> pd.DataFrame:
    """Loans, default rate, mean PD, approval rate and AUC per value of ``by``."""
    frame = pd.DataFrame({by: evaluation.frame[by].astype("object").fillna("∅").to_numpy(),
                          "y": evaluation.frame["defaulted"].to_numpy(), "pd": evaluation.decisions.pd,
                          "approved": evaluation.decisions.decision == "approve"})
    rows = []
    for value, group in frame.groupby(by, sort=True):
        rows.append({by: value, "loans": len(group), "default_rate": group["y"].mean(), "mean_pd": group["pd"].mean(),
                     "approval_rate": group["approved"].mean(), "auc": metrics.auc(group["y"], group["pd"])})
    return pd.DataFrame(rows)
