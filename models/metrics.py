"""Credit-model measures in the words analysts and regulators use: AUC, KS, Gini, Brier,
calibration by decile and ECE, PSI. Plain NumPy; every function takes labels (0/1) and
probabilities or scores and returns numbers or small frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def ks(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov–Smirnov: the greatest gap between the cumulative shares of bads and goods."""
    y = np.asarray(y)
    if not 0 < y.sum() < len(y):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Loans in deciles of predicted PD: count, mean predicted PD, observed default rate."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    frame["decile"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False) + 1 if len(frame) >= bins else 1
    table = frame.groupby("decile").agg(loans=("y", "size"), predicted_pd=("p", "mean"), observed_rate=("y", "mean"),
                                        defaults=("y", "sum"))
    return table.reset_index()


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over deciles of predicted PD: the loan-weighted mean of
    |mean predicted − observed rate|."""
    table = calibration_table(y, p, bins)
    return float((table["loans"] * (table["predicted_pd"] - table["observed_rate"]).abs()).sum() / table["loans"].sum())


def psi(expected, actual, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` (the training population).
    Numbers are cut at the deciles of ``expected``; categories and missing values are bins of
    their own."""
    expected, actual = pd.Series(expected), pd.Series(actual)
    if isinstance(expected.dtype, pd.CategoricalDtype) or expected.dtype == object or pd.api.types.is_string_dtype(expected):
        e_bins, a_bins = expected.astype("object").fillna("∅"), actual.astype("object").fillna("∅")
    else:
        e_values, a_values = expected.astype(float), actual.astype(float)
        edges = np.unique(np.nanquantile(e_values, np.linspace(0, 1, bins + 1)[1:-1])) if e_values.notna().any() else []
        e_bins = pd.Series(np.where(e_values.isna(), -1, np.searchsorted(edges, e_values, side="right")))
        a_bins = pd.Series(np.where(a_values.isna(), -1, np.searchsorted(edges, a_values, side="right")))
    e_share = e_bins.value_counts(normalize=True)
    a_share = a_bins.value_counts(normalize=True)
    keys = e_share.index.union(a_share.index)
    e = e_share.reindex(keys, fill_value=0).to_numpy().clip(1e-4)
    a = a_share.reindex(keys, fill_value=0).to_numpy().clip(1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def summary(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC (with its 95 % DeLong interval), Gini, KS, Brier and ECE of predicted PDs against outcomes."""
    y = np.asarray(y, dtype=float)
    interval = auc_interval(y, p)  # DeLong's area is the AUC (NaN with one class), computed once
    area = interval["value"]
    return {"auc": area, "auc_low": interval["low"], "auc_high": interval["high"], "gini": 2 * area - 1, "ks": ks(y, p), "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
            "ece": ece(y, p) if len(y) else float("nan"), "loans": float(len(y)), "default_rate": float(y.mean()) if len(y) else float("nan")}


def auc_delong(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """AUC and its standard error by DeLong's method (placement values; O(n log n))."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    positives, negatives = p[y], p[~y]
    m, n = len(positives), len(negatives)
    if not m or not n:
        return float("nan"), float("nan")
    ranks_all = _midranks(np.concatenate([positives, negatives]))
    ranks_pos, ranks_neg = _midranks(positives), _midranks(negatives)
    area = (ranks_all[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (ranks_all[:m] - ranks_pos) / n          # per positive: share of negatives below it
    v01 = 1.0 - (ranks_all[m:] - ranks_neg) / m    # per negative: share of positives above it
    variance = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    return float(area), float(np.sqrt(variance))


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their mean rank."""
    from scipy.stats import rankdata
    return rankdata(values, method="average")


def auc_interval(y: np.ndarray, p: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """AUC with its DeLong confidence interval (clipped to [0, 1]) and the defaults behind it:
    ``{"value", "low", "high", "defaults"}``."""
    from statistics import NormalDist

    area, error = auc_delong(y, p)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return {"value": area, "low": max(0.0, area - z * error) if error == error else float("nan"),
            "high": min(1.0, area + z * error) if error == error else float("nan"),
            "defaults": float(np.asarray(y).sum())}
