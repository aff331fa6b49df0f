"""Reason codes: the factors behind each decision, in words, from the PD model's contributions.

A contribution is a feature's share of the model's log-odds of default (``pred_contrib``, the
numbers ``shap.TreeExplainer`` gives for a tree model); the base value plus every contribution is
the model's margin. Adverse factors raise the odds of default, positive ones lower them. Each
reason carries the registry's code and texts, the enterprise's value and its contribution.
Features the registry does not know (a model fitted on another frame) are named as they are.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.registry import BY_NAME

ADVERSE, POSITIVE = 4, 4
"""How many adverse and positive factors each decision names."""


def _value(value):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def reason(feature: str, value, contribution: float) -> dict:
    """One factor: code, feature, Chinese and English text, the value and its contribution."""
    declared = BY_NAME.get(feature)
    return {
        "code": declared.code if declared else feature,
        "feature": feature,
        "zh": declared.zh if declared else feature,
        "en": declared.en if declared else feature,
        "unit": declared.unit if declared else None,
        "value": _value(value),
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
