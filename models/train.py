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

from features.registry import FEATURES, feature_set_version, model_features
from models import metrics
from models.bundle import REFERENCE_GROUP, Decisions, ModelBundle, reference_for
from models.dataset import Split
from models.estimator import CreditModel, QuantileModel
from models.stages import TwoStageModel
from models.policy import Policy

MONOTONE_TOLERANCE = 1e-9
CONTRIBUTION_SAMPLE = 3_000


@dataclass
class Evaluation:
    """How a bundle does on a set of labelled loans."""

    metrics: dict[str, float]
    calibration: pd.DataFrame
    decisions: Decisions
    frame: pd.DataFrame = field(repr=False)


def profile_columns() -> list[str]:
    """The model inputs: every registered feature a model may read (not the coverage flags,
    :func:`features.registry.model_features`)."""
    return model_features()


def fit_bundle(windows: dict[str, pd.DataFrame], split: Split, policy: Policy | None = None,
               params: dict | None = None, seed: int = 0, distress: pd.DataFrame | None = None,
               columns: list[str] | None = None) -> ModelBundle:
    """Fit the PD and capacity models on the windows of :func:`models.dataset.split_by_time`,
    on ``columns`` (every registered feature by default). With ``distress`` (enterprise-months
    with a ``distress`` label, :func:`models.dataset.distress_training_frame`) the PD model is the
    two-stage model of :mod:`models.stages`; without it, one stage on the loans. Empty validation
    and calibration windows (a thin book) leave both to cross-validation on the training loans."""
    policy = policy or Policy.load()
    columns = profile_columns() if columns is None else columns
    monotone = policy_directions(policy)  # encouraged behaviours only ever lower the PD
    categories = {f.name: list(f.categories) for f in FEATURES if f.is_categorical}
    ordered = [f.name for f in FEATURES if f.ordered]
    train, valid, calib = (windows[w] if len(windows[w]) else None for w in ("train", "valid", "calib"))
    # calibrated within each entity type, the group every decision is explained against: liability
    # differs in law between the types, and each type's grades must mean its own default rates
    within = REFERENCE_GROUP if REFERENCE_GROUP in columns else None
    loans = [train[columns], train["defaulted"]]
    for window in (valid, calib):
        loans += [None, None] if window is None else [window[columns], window["defaulted"]]
    started = time.perf_counter()
    if distress is not None:
        pd_model = TwoStageModel(monotone=monotone, categories=categories, ordered=ordered, params=params,
                                 seed=seed, calibrate_within=within).fit(distress[columns], distress["distress"], *loans,
                                                groups=distress["uscc"].to_numpy())
    else:
        pd_model = CreditModel(monotone=monotone, categories=categories, ordered=ordered, params=params,
                               seed=seed, scorecard=False, calibrate_within=within).fit(*loans)  # explained tree by tree against a reference
    pd_seconds = time.perf_counter() - started
    known = train[train["capacity_12m"].notna()]
    if valid is not None and valid["capacity_12m"].notna().any():
        fit_rows, stop_rows = known, valid[valid["capacity_12m"].notna()]
    else:  # a thin book: the newest fifth of the training borrowers stops the capacity model early
        order = known["grant_date"].rank(method="first")
        fit_rows, stop_rows = known[order <= 0.8 * len(known)], known[order > 0.8 * len(known)]
    # an encouraged behaviour must never lower a limit, and LightGBM's quantile objective takes no
    # monotone constraint: the capacity model does not read the features encouraged behaviours move
    capacity_columns = [c for c in columns if c not in policy.encouraged_moves]
    capacity_model = QuantileModel(alpha=policy.capacity_quantile, categories=categories, ordered=ordered,
                                   params=params, seed=seed).fit(
        fit_rows[capacity_columns], fit_rows["capacity_12m"], stop_rows[capacity_columns], stop_rows["capacity_12m"])
    stage2 = pd_model.stage2_ if distress is not None else pd_model
    meta = {
        "feature_set_version": feature_set_version(),
        "policy_version": policy.version,
        "trained_at": dt.datetime.now().isoformat(timespec="seconds"),
        "split": split.as_dict(),
        "loans": {name: int(len(w)) for name, w in windows.items()},
        "defaults": {name: int(w["defaulted"].sum()) for name, w in windows.items()},
        "pd_trees": stage2.best_iteration_, "capacity_trees": capacity_model.best_iteration_,
        "pd_params": stage2.params_, "calibration": list(pd_model.calibration_),
        "calibration_within": {"feature": within, "shifts": dict(pd_model.calibration_shifts_)}, "seconds_pd_fit": round(pd_seconds, 2),
        "features_used": len(columns),
    }
    if distress is not None:
        meta["stages"] = {
            "stage1_trees": pd_model.stage1_.best_iteration_, "stage1_params": pd_model.stage1_.params_,
            "stage1_validation_auc": pd_model.stage1_.validation_auc_, "link": list(pd_model.link_),
            "enterprise_months": int(len(distress)), "distress_rate": float(distress["distress"].mean()),
            "as_of": [str(distress["as_of"].min().date()), str(distress["as_of"].max().date())],
            "events": {c.removeprefix("event_"): float(distress[c].mean()) for c in distress.columns
                       if c.startswith("event_")},
        }
    bundle = ModelBundle(pd_model, capacity_model, policy, meta)
    bundle.reference = reference_for(bundle, pd.concat([w for w in (train, valid, calib) if w is not None]))
    return bundle


def evaluate(bundle: ModelBundle, loans: pd.DataFrame) -> Evaluation:
    """Metrics of ``bundle`` on labelled loans: AUC, Gini, KS, Brier, ECE, approval rate, and
    how often the limit stays within the capacity realised by borrowers who repaid."""
    decisions = bundle.decide(loans, explain=False)
    y = loans["defaulted"].to_numpy()
    summary = metrics.summary(y, decisions.pd)
    summary["approval_rate"] = float(np.mean(decisions.decision == "approve"))
    summary["mean_limit_yuan"] = float(np.mean(decisions.limit))
    repaid = (y == 0) & loans["capacity_12m"].notna().to_numpy()
    within = decisions.limit[repaid] <= loans["capacity_12m"].to_numpy()[repaid]
    summary["limit_within_capacity"] = float(within.mean()) if repaid.any() else float("nan")
    return Evaluation(summary, metrics.calibration_table(y, decisions.pd), decisions, loans)


def policy_directions(policy: Policy) -> dict[str, int]:
    """Every registered feature's constraint under ``policy`` (:meth:`Policy.monotone`): what the
    PD models are trained with and what :func:`monotonicity` holds them to."""
    return {f.name: policy.monotone(f) for f in FEATURES}


def monotonicity(model, sample: pd.DataFrame, grid_points: int = 12,
                 directions: dict[str, int] | None = None) -> dict[str, bool]:
    """For every constrained feature: does the PD move only the declared way as the feature alone
    sweeps its range, on every sampled row? Declared by ``directions`` (the policy's,
    :func:`policy_directions`; the model's own record of its constraints when None, which a model
    trained with a wrong constraint would pass). The PD's log-odds are checked, calibration
    included (its slope and each group's intercept), on whatever model it is given (LightGBM
    enforces the constraints on the trees; this checks what a decision reads)."""
    directions = model.monotone_ if directions is None else directions
    matrix = model.matrix(sample)
    out = {}
    for j, name in enumerate(model.feature_names_in_):
        direction = directions.get(name, 0)
        if not direction:
            continue
        column = matrix[:, j]
        finite = column[~np.isnan(column)]
        if not len(finite):
            out[name] = True
            continue
        grid = np.unique(np.quantile(finite, np.linspace(0, 1, grid_points)))
        varied = np.repeat(matrix, len(grid), axis=0)  # every row at every grid value, one prediction
        varied[:, j] = np.tile(grid, len(matrix))
        margins = model.calibrated_log_odds(model.raw(varied), varied).reshape(len(matrix), len(grid))
        steps = np.diff(margins, axis=1) * direction
        out[name] = bool((steps >= -MONOTONE_TOLERANCE).all())
    return out


def psi_table(train: pd.DataFrame, oot: pd.DataFrame, train_scores: np.ndarray, oot_scores: np.ndarray,
              columns: list[str] | None = None) -> pd.DataFrame:
    """PSI between the training and out-of-time populations: the score first, then every model
    feature (``columns``; every registered feature by default)."""
    rows = [("score", metrics.psi(train_scores, oot_scores))]
    rows += [(name, metrics.psi(train[name], oot[name])) for name in (columns or profile_columns())]
    return pd.DataFrame(rows, columns=["variable", "psi"])


def stage_contributions(model, loans: pd.DataFrame, distress_oot: pd.DataFrame | None = None,
                        borrowers: set[str] | None = None) -> pd.DataFrame | None:
    """What each stage of a two-stage model (:mod:`models.stages`) brings, out of time: on the
    loans, the spread of each stage's share of the final margin, the AUC of stage 1 alone and of
    both; on enterprise-months after training (``distress_oot``), how well stage 1 ranks distress
    for enterprises that never borrowed (not in ``borrowers``) and for those that did. None for a
    one-stage model."""
    if not isinstance(model, TwoStageModel):
        return None
    y = loans["defaulted"].to_numpy()
    matrix = model.matrix(loans[model.feature_names_in_])
    first, second = model.stage_margins(matrix)
    # explanations are costly: their split between the stages is read on a sample
    sample = matrix[np.random.default_rng(0).permutation(len(matrix))[:CONTRIBUTION_SAMPLE]]
    by_stage1 = model.link_[1] * model.stage1_.contributions(sample)[0]
    by_stage2 = model.stage2_.contributions(sample)[0]
    stage1_share = np.abs(by_stage1).sum() / max(np.abs(by_stage1).sum() + np.abs(by_stage2).sum(), 1e-12)
    rows = [
        {"measure": "loans out of time: AUC of stage 1 alone", **metrics.auc_interval(y, first)},
        {"measure": "loans out of time: AUC of both stages", **metrics.auc_interval(y, first + second)},
        {"measure": "standard deviation of stage 1's share of the margin (log-odds)", "value": float(np.std(first))},
        {"measure": "standard deviation of stage 2's share of the margin (log-odds)", "value": float(np.std(second))},
        {"measure": f"stage 1's share of the absolute contributions ({len(sample):,} loans)",
         "value": float(stage1_share)},
    ]
    if distress_oot is not None and len(distress_oot):
        p1 = model.stage1_.raw(distress_oot[model.feature_names_in_])
        borrowed = distress_oot["uscc"].isin(borrowers or set()).to_numpy()
        events = distress_oot["distress"].to_numpy()
        for label, chosen in (("never borrowed", ~borrowed), ("borrowed", borrowed)):
            rows.append({"measure": f"enterprise-months after training, {label} ({int(chosen.sum()):,}, "
                                    f"{events[chosen].mean():.1%} distressed): AUC of stage 1 on distress",
                         **metrics.auc_interval(events[chosen], p1[chosen])})
    table = pd.DataFrame(rows)
    table["defaults"] = table["defaults"].astype("Int64")  # outcomes counted, not measured
    return table
