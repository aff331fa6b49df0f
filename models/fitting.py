"""What fitting any of the models shares: the refusal of data that cannot be used, the 0/1
outcome checked, and the logistic (Platt) calibration of a margin. Kept apart from
:mod:`models.estimator` so that the benchmark scorecard, which the credit model weighs itself
against, needs nothing of the credit model."""

from __future__ import annotations

import numpy as np
import pandas as pd


class ModelInputError(ValueError):
    """Training or scoring data that cannot be used as given."""


def binary_outcome(y, name: str) -> np.ndarray:
    """``y`` as 0.0/1.0 floats; missing values, other values or a single outcome are a
    :class:`ModelInputError` naming ``name`` (the frame it came from)."""
    values = pd.Series(y).to_numpy()
    if pd.isna(values).any():
        raise ModelInputError(f"{name}: the target has missing values")
    out = values.astype(np.float64)
    if not np.isin(out, (0.0, 1.0)).all():
        raise ModelInputError(f"{name}: the target must be 0 or 1")
    if out.sum() == 0 or out.sum() == len(out):
        raise ModelInputError(f"{name}: both outcomes must occur (got {int(out.sum())} of {len(out)} positive)")
    return out


def platt(margin: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Fit calibrated log-odds = a + b · margin by maximum likelihood (Newton's method)."""
    a, b = 0.0, 1.0
    x = np.asarray(margin, dtype=float)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(a + b * x)))
        w = p * (1 - p)
        gradient = np.array([np.sum(y - p), np.sum((y - p) * x)])
        hessian = np.array([[np.sum(w), np.sum(w * x)], [np.sum(w * x), np.sum(w * x * x)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        a, b = a + step[0], b + step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)
