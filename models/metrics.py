"""Credit-model measures in the words analysts and regulators use: AUC, KS, Gini, Brier,
calibration by decile and ECE, PSI. Plain NumPy; every function takes labels (0/1) and
probabilities or scores and returns numbers or small frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def ks(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov–Smirnov: the greatest gap between the cumulative shares of bads and goods, over
    thresholds between distinct scores (ties kept together), from one sort: cheap enough for a
    bootstrap's hundreds of rounds. NaN when only one class is present."""
    y = np.asarray(y, dtype=float)
    bads = y.sum()
    goods = len(y) - bads
    if not bads or not goods:
        return float("nan")
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    sorted_p = np.asarray(p, dtype=float)[order]
    gap = np.cumsum(y[order]) / bads - np.cumsum(1 - y[order]) / goods
    last_of_tie = np.r_[sorted_p[1:] != sorted_p[:-1], True]  # a threshold sits between distinct scores
    return float(np.max(gap[last_of_tie]))



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


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between predicted PD and outcome."""
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def summary(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC (with its 95 % DeLong interval), Gini, KS, Brier and ECE of predicted PDs against outcomes."""
    y = np.asarray(y, dtype=float)
    interval = auc_interval(y, p)  # DeLong's area is the AUC (NaN with one class), computed once
    area = interval["value"]
    return {"auc": area, "auc_low": interval["low"], "auc_high": interval["high"], "gini": 2 * area - 1, "ks": ks(y, p), "brier": brier(y, p) if len(y) else float("nan"),
            "ece": ece(y, p) if len(y) else float("nan"), "loans": float(len(y)), "default_rate": float(y.mean()) if len(y) else float("nan")}


def auc_delong(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """AUC and its standard error by DeLong's method (placement values; O(n log n))."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    m, n = int(y.sum()), int((~y).sum())
    if not m or not n:
        return float("nan"), float("nan")
    area, v10, v01 = _placements(y, p)
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


def _placements(y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """DeLong's structural components: the AUC, each positive's share of negatives scored below
    it (ties half), each negative's share of positives scored above it."""
    positives, negatives = p[y], p[~y]
    m, n = len(positives), len(negatives)
    ranks_all = _midranks(np.concatenate([positives, negatives]))
    v10 = (ranks_all[:m] - _midranks(positives)) / n
    v01 = 1.0 - (ranks_all[m:] - _midranks(negatives)) / m
    return float(v10.mean()), v10, v01


def auc_difference(y: np.ndarray, first: np.ndarray, second: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """``AUC(second) − AUC(first)`` on the same loans, with its interval and two-sided p-value by
    DeLong's paired test (the two models' errors on the same loans are correlated, which an
    interval per model ignores): ``{"value", "low", "high", "p_value", "defaults", "loans"}``."""
    from statistics import NormalDist

    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    out = {"defaults": float(m), "loans": float(len(y))}
    if m < 2 or n < 2:
        return {**out, "value": float("nan"), "low": float("nan"), "high": float("nan"), "p_value": float("nan")}
    a1, v10_1, v01_1 = _placements(y, np.asarray(first, dtype=float))
    a2, v10_2, v01_2 = _placements(y, np.asarray(second, dtype=float))
    s10 = np.cov(np.vstack([v10_1, v10_2]), ddof=1)
    s01 = np.cov(np.vstack([v01_1, v01_2]), ddof=1)
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    error = float(np.sqrt(max(variance, 0.0)))
    value = a2 - a1
    z = NormalDist().inv_cdf(0.5 + level / 2)
    if error > 0:
        p_value = 2 * (1 - NormalDist().cdf(abs(value) / error))
    else:  # the models rank every pair alike
        p_value = 1.0 if value == 0 else 0.0
    return {**out, "value": value, "low": value - z * error, "high": value + z * error, "p_value": float(p_value)}


def paired_bootstrap(y: np.ndarray, first: np.ndarray, second: np.ndarray, statistic=ks, rounds: int = 500,
                     level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """``statistic(second) − statistic(first)`` on the same loans with a percentile interval from
    a paired bootstrap (the same resampled loans for both models; defaults and non-defaults are
    resampled apart, so every round holds the window's default count) and the two-sided share of
    rounds on the other side of zero as its p-value."""
    y = np.asarray(y).astype(float)
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    value = statistic(y, second) - statistic(y, first)
    bad, good = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    out = {"value": float(value), "defaults": float(len(bad)), "loans": float(len(y))}
    if len(bad) < 2 or len(good) < 2:
        return {**out, "low": float("nan"), "high": float("nan"), "p_value": float("nan")}
    generator = np.random.default_rng(seed)
    draws = np.empty(rounds)
    for r in range(rounds):
        rows = np.concatenate([generator.choice(bad, len(bad)), generator.choice(good, len(good))])
        draws[r] = statistic(y[rows], second[rows]) - statistic(y[rows], first[rows])
    low, high = np.nanquantile(draws, [(1 - level) / 2, (1 + level) / 2])
    p_value = min(1.0, 2 * min(np.mean(draws <= 0), np.mean(draws >= 0)))
    return {**out, "low": float(low), "high": float(high), "p_value": float(p_value)}
