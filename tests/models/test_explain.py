"""Explanations against a reference: exact Shapley values of the model, additive, and never an
adverse reason on the favourable side of the reference for a feature the model is monotone in."""

from __future__ import annotations

import itertools
import math

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.explain import reference_values
from models.shapley import Explainer, ReferenceExplainer, TreeTables

FEATURES = 5


def _booster(seed: int, monotone: bool = False) -> tuple[lgb.Booster, np.ndarray]:
    """A small model over every kind of column LightGBM treats apart: numbers with missing values,
    a categorical column with missing values, and a column of many zeros."""
    rng = np.random.default_rng(seed)
    n = 3000
    X = rng.normal(size=(n, FEATURES))
    X[rng.random(n) < 0.1, 0] = np.nan
    X[:, 2] = rng.integers(0, 6, n)
    X[rng.random(n) < 0.1, 2] = np.nan
    X[:, 3] = np.where(rng.random(n) < 0.3, 0.0, X[:, 3])
    signal = X[:, 1] + (X[:, 2] == 3) + 0.5 * np.nan_to_num(X[:, 0]) + X[:, 3] * X[:, 4]
    y = (signal + rng.normal(size=n) > 0.5).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 15, "max_depth": 5, "min_data_per_group": 5,
              "cat_smooth": 1, "seed": seed}
    if monotone:
        params.update(monotone_constraints=[1, 1, 0, -1, 1], monotone_constraints_method="basic")
    return lgb.train(params, lgb.Dataset(X, y, categorical_feature=[2]), 40), X


def _brute_force(booster: lgb.Booster, x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Shapley values of v(S) = f(x_S, reference_rest) by enumerating every coalition."""
    def value(coalition) -> float:
        z = reference.copy()
        z[list(coalition)] = x[list(coalition)]
        return float(booster.predict(z[None, :], raw_score=True)[0])

    out = np.zeros(FEATURES)
    for j in range(FEATURES):
        others = [k for k in range(FEATURES) if k != j]
        for size in range(FEATURES):
            weight = math.factorial(size) * math.factorial(FEATURES - size - 1) / math.factorial(FEATURES)
            for coalition in itertools.combinations(others, size):
                out[j] += weight * (value(coalition + (j,)) - value(coalition))
    return out


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), row=st.integers(0, 2999), missing=st.sampled_from([(), (0,), (2,), (0, 2, 3)]))
def test_contributions_are_the_exact_shapley_values_against_the_reference(seed, row, missing):
    booster, X = _booster(seed)
    reference = X[row].copy()
    reference[list(missing)] = np.nan
    explainer = ReferenceExplainer(TreeTables(booster), reference)
    rows = X[:12]
    for compiled in (False, True):  # the service's NumPy walk and the list's compiled one
        contributions = explainer.contributions(rows, compiled=compiled)
        for x, got in zip(rows, contributions):
            np.testing.assert_allclose(got, _brute_force(booster, x, reference), rtol=0, atol=1e-9)
    assert explainer.reference_output == pytest.approx(booster.predict(reference[None, :], raw_score=True)[0], abs=1e-12)


def test_many_rows_in_parallel_are_the_rows_one_by_one_and_add_up_to_the_margin():
    booster, X = _booster(3)
    explainer = ReferenceExplainer(TreeTables(booster), np.nanmedian(X, axis=0))
    together = explainer.contributions(X, num_threads=0)
    one_by_one = np.vstack([explainer.contributions(X[i:i + 1], num_threads=1, compiled=True) for i in range(200)])
    np.testing.assert_array_equal(together[:200], one_by_one)
    np.testing.assert_allclose(explainer.contributions(X, compiled=False), together, rtol=0, atol=1e-12)
    np.testing.assert_allclose(together.sum(axis=1) + explainer.reference_output,
                               booster.predict(X, raw_score=True), rtol=0, atol=1e-9)


def test_weighted_parts_add_as_the_two_stage_margin_does():
    first, X = _booster(5)
    second, _ = _booster(6)
    reference = np.nanmedian(X, axis=0)
    explainer = Explainer([(0.7, ReferenceExplainer(TreeTables(first), reference)),
                           (1.0, ReferenceExplainer(TreeTables(second), reference))], -1.5)
    margin = -1.5 + 0.7 * first.predict(X, raw_score=True) + second.predict(X, raw_score=True)
    compiled = explainer.contributions(X)
    np.testing.assert_allclose(compiled.sum(axis=1) + explainer.reference_margin, margin, rtol=0, atol=1e-9)
    # the service's one NumPy pass over both models' leaves gives the same numbers
    np.testing.assert_allclose(explainer.contributions(X, compiled=False), compiled, rtol=0, atol=1e-12)


def test_the_anchor_shap_gives_the_same_numbers_on_a_numeric_model():
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 4))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=2000) > 0).astype(int)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 8}, lgb.Dataset(X, y), 30)
    reference = np.median(X, axis=0)
    theirs = shap.TreeExplainer(booster, data=reference[None, :], feature_perturbation="interventional",
                                model_output="raw").shap_values(X[:50])
    ours = ReferenceExplainer(TreeTables(booster), reference).contributions(X[:50])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-7)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), row=st.integers(0, 2999))
def test_a_monotone_feature_is_adverse_only_on_the_unfavourable_side_of_the_reference(seed, row):
    booster, X = _booster(seed, monotone=True)
    reference = X[row].copy()
    contributions = ReferenceExplainer(TreeTables(booster), reference).contributions(X)
    for j, direction in ((0, 1), (1, 1), (3, -1), (4, 1)):
        known = ~np.isnan(X[:, j]) & ~np.isnan(reference[j])
        adverse = known & (contributions[:, j] > 1e-12)
        favourable = direction * (X[:, j] - reference[j]) <= 0
        assert not (adverse & favourable).any(), f"feature {j}: adverse on the favourable side"


def test_the_reference_profile_is_each_feature_typical_value():
    import pandas as pd

    rows = pd.DataFrame({"a": [1.0, 2.0, np.nan, 10.0], "b": pd.Categorical(["x", "y", "y", None]),
                         "c": [np.nan] * 4, "d": [np.nan, np.nan, 5.0, 7.0]})
    assert reference_values(rows, ["a", "b", "c", "d"], {"b"}) == {"a": 2.0, "b": "y", "c": None, "d": None}


def test_an_absence_says_why_holds_nothing_not_delivered_or_no_figure():
    """One electricity feature missing for three reasons: the platform holds no account (NA code of
    the source), the power company has not delivered on time (ND code: not the enterprise's
    behaviour), or the account exists but the figure has no record (NA + the feature's code)."""
    from features.registry import BY_NAME
    from models.explain import ReasonPlan

    features = ["elec_usage_12m", "tax_sales_12m"]
    plan = ReasonPlan(features)
    flags = np.ones((3, len(plan.flags)))
    electricity = plan.flags.index("has_electricity")
    flags[0, electricity], flags[1, electricity] = 0.0, np.nan
    matrix = np.array([[np.nan, 1.0], [np.nan, 1.0], [np.nan, 1.0]])
    absences = plan.absences(matrix, flags)
    codes = [plan.groups[g]["code"] for g in absences[:, 0]]
    assert codes[0].startswith("NA") and codes[1].startswith("ND") and codes[2] == "NA" + BY_NAME["elec_usage_12m"].code
    assert "未按期报送" in plan.groups[absences[1, 0]]["zh"] and "not the enterprise's behaviour" in plan.groups[absences[1, 0]]["en"]
    assert (absences[:, 1] == -1).all()  # a value is a value
