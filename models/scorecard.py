"""The benchmark scorecard: what model-risk practice compares a machine-learned PD model with.

A weight-of-evidence logistic scorecard (optbinning's ``BinningProcess``, optimal binning of every
column, then a logistic regression on the WOE values) fitted on the same loans and windows as the
champion. The validation report shows both side by side out of time (AUC with its interval, KS,
ECE, and how many loans each approves at the same bad rate), and the promotion gate requires the
LightGBM model to beat it: a model that cannot beat a scorecard is not worth its opacity.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import metrics
from models.fitting import ModelInputError, binary_outcome, platt


class BenchmarkScorecard:
    """WOE binning + logistic regression on a pandas frame (categories as text, gaps allowed).

    ``fit(X, y, X_calib=None, y_calib=None)`` bins and fits on ``X`` and, when given, recalibrates
    the log-odds on ``X_calib`` (as the champion is calibrated on its own window).
    """

    def __init__(self, max_iter: int = 2000, n_jobs: int = 1):
        self.max_iter = max_iter
        self.n_jobs = n_jobs

    @staticmethod
    def _frame(X: pd.DataFrame) -> pd.DataFrame:
        """Categories and text as plain object columns, numbers as floats: what optbinning reads."""
        out = {}
        for column in X.columns:
            series = X[column]
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                out[column] = pd.to_numeric(series, errors="coerce").astype(float).to_numpy()
            else:
                out[column] = series.astype("object").where(series.notna(), np.nan).to_numpy(dtype=object)
        return pd.DataFrame(out, index=X.index)

    def fit(self, X: pd.DataFrame, y, X_calib: pd.DataFrame | None = None, y_calib=None) -> BenchmarkScorecard:
        from optbinning import BinningProcess
        from sklearn.linear_model import LogisticRegression

        if not isinstance(X, pd.DataFrame) or X.empty:
            raise ModelInputError("the scorecard's training data must be a non-empty pandas DataFrame")
        y = binary_outcome(y, "scorecard training")
        frame = self._frame(X)
        # a column with fewer than two values among these rows has nothing to bin (optbinning fails on it)
        self.columns_ = [c for c in frame.columns if frame[c].nunique(dropna=True) >= 2]
        if not self.columns_:
            raise ModelInputError(f"the benchmark scorecard has no column with two values among {len(frame)} rows")
        frame = frame[self.columns_]
        self.categorical_ = [c for c in frame.columns if frame[c].dtype == object]
        # a missing value scores its own bin's weight of evidence, not optbinning's default of 0
        self.binning_ = BinningProcess(list(frame.columns), categorical_variables=self.categorical_, n_jobs=self.n_jobs,
                                       binning_transform_params={c: {"metric_missing": "empirical"}
                                                                 for c in frame.columns})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optbinning warns per variable it cannot split
            try:
                woe = self.binning_.fit_transform(frame, y)
            except ValueError as error:  # optbinning's own refusals, on books too small to bin
                raise ModelInputError(f"the benchmark scorecard cannot bin {len(frame)} rows: {error}") from None
        regression = LogisticRegression(max_iter=self.max_iter).fit(woe, y)
        self.coef_ = regression.coef_[0].astype(float)
        self.intercept_ = float(regression.intercept_[0])
        self.bins_ = {c: self._bin_table(c) for c in self.columns_}
        self.calibration_ = (0.0, 1.0)
        if X_calib is not None:
            self.calibration_ = platt(self.log_odds(X_calib, calibrated=False), binary_outcome(y_calib, "scorecard calibration"))
        return self

    def _bin_table(self, column: str) -> dict:
        """One column's bins as plain numbers: what the scorecard needs to score without optbinning
        (and to be saved as JSON): split points or category groups, each bin's weight of evidence,
        and the weights of a missing value and of a category never seen."""
        variable = self.binning_.get_binned_variable(column)

        def woe(values) -> list[float]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return [float(v) for v in variable.transform(values, metric="woe", metric_missing="empirical")]

        missing = woe(np.array([np.nan], dtype=object if variable.dtype == "categorical" else float))[0]
        if variable.dtype == "categorical":
            members = [str(c) for group in variable.splits for c in group]
            values = woe(np.array(members, dtype=object)) if members else []
            unseen = woe(np.array(["\u0000unseen"], dtype=object))[0]
            return {"kind": "categorical", "categories": dict(zip(members, values)), "unseen": unseen, "missing": missing}
        splits = np.asarray(variable.splits, dtype=float)
        if len(splits):  # a value inside each bin: [s_i, s_i+1), below the first, from the last on
            inside = np.r_[splits[0] - 1.0, (splits[:-1] + splits[1:]) / 2, splits[-1] + 1.0]
        else:
            inside = np.array([0.0])
        return {"kind": "numerical", "splits": splits.tolist(), "woe": woe(inside), "missing": missing}

    def woe(self, X: pd.DataFrame) -> np.ndarray:
        """Each scored column's weight of evidence per row (``columns_`` order), from the bin tables."""
        frame = self._frame(X)
        out = np.empty((len(frame), len(self.columns_)))
        for j, column in enumerate(self.columns_):
            table = self.bins_[column]
            values = frame[column].to_numpy()
            if table["kind"] == "categorical":
                lookup, unseen, missing = table["categories"], table["unseen"], table["missing"]
                out[:, j] = [missing if (v is None or (isinstance(v, float) and np.isnan(v)))
                             else lookup.get(str(v), unseen) for v in values]
            else:
                numbers = values.astype(float)
                index = np.searchsorted(np.asarray(table["splits"], dtype=float), numbers, side="right")
                out[:, j] = np.where(np.isnan(numbers), table["missing"], np.asarray(table["woe"])[np.minimum(
                    index, len(table["woe"]) - 1)])
        return out

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, float]:
        """Per row, each scored column's term of the (uncalibrated) log-odds, and the intercept:
        they add up to it exactly (a scorecard is additive)."""
        return self.woe(X) * self.coef_, self.intercept_

    def log_odds(self, X: pd.DataFrame, calibrated: bool = True) -> np.ndarray:
        terms, intercept = self.contributions(X)
        a, b = self.calibration_ if calibrated else (0.0, 1.0)
        return a + b * (terms.sum(axis=1) + intercept)

    def state(self) -> dict:
        """Everything it scores with, as JSON holds it (no pickle)."""
        return {"columns": self.columns_, "bins": self.bins_, "coef": self.coef_.tolist(), "intercept": self.intercept_,
                "calibration": list(self.calibration_)}

    @classmethod
    def from_state(cls, state: dict) -> BenchmarkScorecard:
        out = cls()
        out.columns_, out.bins_ = list(state["columns"]), dict(state["bins"])
        out.coef_, out.intercept_ = np.asarray(state["coef"], dtype=float), float(state["intercept"])
        out.calibration_ = tuple(state["calibration"])
        return out

    def predict_pd(self, X: pd.DataFrame) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.log_odds(X)))


def approval_at_bad_rate(y: np.ndarray, p: np.ndarray, bad_rate: float) -> float:
    """The largest share of loans a model can approve, safest first, while the approved loans'
    default rate stays at or below ``bad_rate``."""
    y = np.asarray(y, dtype=float)[np.argsort(np.asarray(p, dtype=float), kind="stable")]
    rates = np.cumsum(y) / np.arange(1, len(y) + 1)
    within = np.flatnonzero(rates <= bad_rate + 1e-12)
    return float((within.max() + 1) / len(y)) if len(within) else 0.0


@dataclass
class BenchmarkResult:
    """The scorecard beside the champion, out of time."""

    scorecard: BenchmarkScorecard
    table: pd.DataFrame  # one row per model: auc, auc_low, auc_high, ks, ece, approval at the bad rate
    bad_rate: float
    metrics: dict[str, float]


def benchmark_scorecard(windows: dict[str, pd.DataFrame], columns: list[str], evaluation, policy=None) -> BenchmarkResult:
    """Fit the scorecard on the champion's training and validation loans, calibrate it on the
    calibration window (when there is one), and compare both out of time. The bad rate both are
    held to is the default rate of the loans the champion approves out of time (of its safer
    half, if it approves none)."""
    fit = pd.concat([windows["train"], windows["valid"]], ignore_index=True)
    calib = windows["calib"] if len(windows["calib"]) else None
    # binning is per column: spread it over the cores on a big book (processes cost a second to start)
    scorecard = BenchmarkScorecard(n_jobs=-1 if len(fit) >= 20_000 else 1).fit(fit[columns], fit["defaulted"],
                                         None if calib is None else calib[columns],
                                         None if calib is None else calib["defaulted"])
    oot = evaluation.frame
    y = oot["defaulted"].to_numpy()
    champion_pd = evaluation.decisions.pd
    scorecard_pd = scorecard.predict_pd(oot[columns])
    approved = evaluation.decisions.decision == "approve"
    if approved.any():
        bad_rate = float(y[approved].mean())
    else:
        bad_rate = float(y[champion_pd <= np.median(champion_pd)].mean())
    rows = []
    for name, p in (("champion (LightGBM)", champion_pd), ("benchmark scorecard (WOE logistic)", scorecard_pd)):
        interval = metrics.auc_interval(y, p)
        rows.append({"model": name, "auc": interval["value"], "auc_low": interval["low"], "auc_high": interval["high"],
                     "ks": metrics.ks(y, p), "ece": metrics.ece(y, p),
                     "approval_at_bad_rate": approval_at_bad_rate(y, p, bad_rate)})
    table = pd.DataFrame(rows)
    measured = table.iloc[1]
    return BenchmarkResult(scorecard, table, bad_rate, {
        "auc": float(measured["auc"]), "auc_low": float(measured["auc_low"]), "auc_high": float(measured["auc_high"]),
        "ks": float(measured["ks"]), "ece": float(measured["ece"]),
        "approval_at_bad_rate": float(measured["approval_at_bad_rate"]),
        "champion_approval_at_bad_rate": float(table.iloc[0]["approval_at_bad_rate"]), "bad_rate": bad_rate})
