"""The two-stage PD model, a CreditModel fitted without a validation frame, the evidence-sized
split, AUC intervals, the benchmark scorecard and the gate's refusals, on frames made up here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import roc_auc_score

from models import metrics
from models.dataset import split_by_time
from models.estimator import CreditModel, ModelInputError, auto_params
from models.gate import own_checks
from models.scorecard import BenchmarkScorecard, approval_at_bad_rate
from models.stages import TwoStageModel
from models.train import monotonicity
from tests.models.test_estimator import frame

MONOTONE = {"debt_ratio": 1, "income": -1}


def distress(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Many more outcomes than defaults, driven by the same debt ratio and income."""
    X, _, _ = frame(n, seed)
    rng = np.random.default_rng(seed + 100)
    logit = -1.5 + 2.0 * np.nan_to_num(X["debt_ratio"].to_numpy(), nan=0.7) - 0.6 * (np.log(X["income"]) - 10)
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


@pytest.fixture(scope="module")
def two_stage():
    D, dy = distress(20_000, 21)
    X, y, _ = frame(1_500, 22)
    return TwoStageModel(monotone=MONOTONE).fit(D, dy, X, y), frame(3_000, 23)


def test_both_stages_explain_one_margin_feature_by_feature(two_stage):
    model, (T, _, _) = two_stage
    contributions = model.explain(T)
    assert list(contributions.columns) == ["income", "debt_ratio", "region", "channel", "base_value"]
    np.testing.assert_allclose(contributions.sum(axis=1), model.raw(T), rtol=0, atol=1e-9)
    first, second = model.stage_margins(T)
    np.testing.assert_allclose(first + second, model.raw(T), atol=1e-12)
    assert model.link_[1] > 0 and np.std(first) > 0


def test_the_two_stage_model_ranks_and_calibrates_out_of_sample(two_stage):
    model, (T, ty, _) = two_stage
    pd_ = model.predict_pd(T)
    assert metrics.auc(ty, pd_) > 0.72
    assert abs(pd_.mean() - ty.mean()) < 0.03
    assert all(monotonicity(model, T.head(150)).values())


def test_the_two_stage_model_saves_as_text_and_loads_the_same(two_stage, tmp_path):
    model, (T, _, _) = two_stage
    model.save(tmp_path)
    assert TwoStageModel.saved_in(tmp_path) and not list(tmp_path.glob("*.pkl"))
    again = TwoStageModel.load(tmp_path)
    np.testing.assert_array_equal(again.predict_pd(T), model.predict_pd(T))
    np.testing.assert_array_equal(again.explain(T).to_numpy(), model.explain(T).to_numpy())


def test_a_first_stage_ranking_the_wrong_way_is_given_no_weight():
    D, dy = distress(5_000, 31)
    X, y, _ = frame(1_500, 32)
    model = TwoStageModel(monotone=MONOTONE).fit(D, 1 - dy, X, y)  # distress reversed
    assert model.link_[1] == 0.0
    assert all(monotonicity(model, X.head(100)).values())


def test_mismatched_frames_are_refused():
    D, dy = distress(500, 41)
    X, y, _ = frame(500, 42)
    with pytest.raises(ModelInputError, match="same columns"):
        TwoStageModel().fit(D.drop(columns="region"), dy, X, y)


# ------------------------------------------------------------------------------ any book size

def test_a_credit_model_fits_without_a_validation_frame():
    X, y, _ = frame(2_000, 51)
    T, ty, _ = frame(3_000, 52)
    model = CreditModel(monotone=MONOTONE).fit(X, y)
    pd_ = model.predict_pd(T)
    assert metrics.auc(ty, pd_) > 0.72 and metrics.ece(ty, pd_) < 0.04
    assert model.params_["min_child_samples"] == auto_params(len(y), int(y.sum()))["min_child_samples"]
    assert 0.5 < model.validation_auc_ < 1 and model.best_iteration_ >= 1


def test_settings_follow_the_size_of_the_book():
    small, big = auto_params(1_000, 40), auto_params(1_000_000, 30_000)
    assert small["num_leaves"] < big["num_leaves"] <= 31
    assert small["min_child_samples"] < big["min_child_samples"]
    assert auto_params(1_000, 300) == {"num_leaves": 12, "min_child_samples": 16}


def test_offsets_are_checked():
    X, y, _ = frame(400, 61)
    with pytest.raises(ModelInputError, match="one finite number per row"):
        CreditModel(n_estimators=5).fit(X, y, offset=np.zeros(3))
    with pytest.raises(ModelInputError, match="with its target"):
        CreditModel(n_estimators=5).fit(X, y, X)


# ------------------------------------------------------------------------------ evidence

def loans(defaults_per_month: list[int], per_month: int = 400) -> pd.DataFrame:
    rows = []
    for i, bad in enumerate(defaults_per_month):
        grant = pd.Timestamp("2024-01-15") + pd.DateOffset(months=i)
        rows += [{"grant_date": grant, "defaulted": int(k < bad)} for k in range(per_month)]
    return pd.DataFrame(rows)


def test_windows_are_sized_by_defaults_not_months():
    book = loans([10] * 6 + [12] * 12 + [40, 5, 5, 30, 20, 20])
    windows, split = split_by_time(book, warmup_months=6)
    for name in ("valid", "calib", "oot"):
        assert windows[name]["defaulted"].sum() >= 30, name
    assert split.oot == ("2025-11", "2025-12") and split.calib == ("2025-10", "2025-10")
    assert not split.thin and split.evidence == []
    assert windows["train"]["grant_date"].min() >= pd.Timestamp("2024-07-01")


def test_a_thin_book_is_cut_in_two_and_says_what_it_lacks():
    windows, split = split_by_time(loans([2] * 20), warmup_months=6)
    assert split.thin and split.valid == ("", "") and split.calib == ("", "")
    assert windows["oot"]["defaulted"].sum() >= 28 / 3
    assert "28 defaults after the warm-up" in split.evidence[0] and "needs 150" in split.evidence[0]


def test_a_book_without_defaults_to_learn_from_or_months_it_cannot_hold_is_refused_in_words():
    from features.profile.build import ProfileBuildError
    with pytest.raises(ProfileBuildError, match="2 defaults among the matured loans after the 6-month warm-up"):
        split_by_time(loans([0] * 19 + [2]), warmup_months=6)
    with pytest.raises(ProfileBuildError, match=r"windows asked for in months \(oot 3, calib 2, valid 2\)"):
        split_by_time(loans([10] * 15 + [0, 0, 0, 0, 10]), oot_months=3, calib_months=2, valid_months=2, warmup_months=6)


def test_months_given_are_kept_and_small_windows_flagged():
    windows, split = split_by_time(loans([3] * 20), oot_months=4, calib_months=3, valid_months=3, warmup_months=3)
    assert split.oot == ("2025-05", "2025-08") and len(windows["train"]) == 7 * 400
    assert any("the oot window holds 12 defaults" in note for note in split.evidence)


# ------------------------------------------------------------------------------ intervals

@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(30, 400))
def test_the_delong_auc_is_the_auc(seed, n):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    if not 0 < y.sum() < n:
        return
    p = np.round(rng.random(n) + 0.3 * y, 2)  # ties included
    area, error = metrics.auc_delong(y, p)
    assert area == pytest.approx(roc_auc_score(y, p), abs=1e-12) and error >= 0  # 0 when perfectly separated


def test_the_interval_narrows_with_evidence():
    rng = np.random.default_rng(3)
    widths = []
    for n in (300, 30_000):
        y = rng.random(n) < 0.1
        interval = metrics.auc_interval(y, rng.random(n) + 0.5 * y)
        assert interval["low"] < interval["value"] < interval["high"]
        widths.append(interval["high"] - interval["low"])
    assert widths[1] < widths[0] / 5


# ------------------------------------------------------------------------------ scorecard and gate

def test_the_benchmark_scorecard_fits_gaps_and_categories():
    X, y, _ = frame(4_000, 71)
    T, ty, _ = frame(2_000, 72)
    card = BenchmarkScorecard().fit(X, y)
    assert metrics.auc(ty, card.predict_pd(T)) > 0.7
    unseen = card.predict_pd(T.head(3).assign(region="moon", debt_ratio=np.nan))
    assert np.isfinite(unseen).all()
    # a column with nothing to bin (a source no loan of a small book has) is left out, not a crash
    sparse = BenchmarkScorecard().fit(X.assign(empty=np.nan, same=1.0), y)
    assert "empty" not in sparse.columns_ and "same" not in sparse.columns_
    assert np.isfinite(sparse.predict_pd(T.assign(empty=np.nan, same=1.0))).all()


def test_approval_at_a_bad_rate():
    y = np.array([0, 0, 1, 0, 0, 1, 1, 1])
    p = np.arange(8) / 10
    assert approval_at_bad_rate(y, p, 0.25) == pytest.approx(5 / 8)  # 1 bad in the safest 5
    assert approval_at_bad_rate(y, p, 0.0) == pytest.approx(2 / 8)
    assert approval_at_bad_rate(y[::-1], p, 0.0) == 0.0


def test_the_gate_refuses_a_model_that_breaks_a_declared_direction():
    X, y, _ = frame(3_000, 81)
    rng = np.random.default_rng(81)
    # the outcome rises and then falls with the debt ratio: an unconstrained model learns both
    y = (rng.random(len(y)) < np.where(X["debt_ratio"].fillna(0.7) < 0.75, 0.05, 0.02)
         + 0.3 * (X["debt_ratio"].fillna(0) > 1.2)).astype(int)
    free = CreditModel(params={"num_leaves": 8, "min_child_samples": 20}).fit(X, y)
    free.monotone_ = {**free.monotone_, "debt_ratio": -1}  # what the registry would declare
    holds = monotonicity(free, X.head(200))
    assert holds == {"debt_ratio": False}
    measured = {"auc": 0.8, "ece": 0.01, "psi_score": 0.01, "psi_max_feature": 0.1, "benchmark_auc": 0.7}
    checks = {c.rule: c.holds for c in own_checks(measured, measured, holds)}
    assert checks["monotone constraints hold"] is False


@pytest.mark.parametrize("change, rule", [
    ({"psi_max_feature": 0.4, "psi_worst_feature": "tax_sales_growth_12m"},
     "largest feature PSI, training → out of time (tax_sales_growth_12m)"),
    ({"benchmark_auc": 0.81}, "AUC above the benchmark scorecard's (same loans)"),
])
def test_the_gate_refuses_unstable_features_and_a_model_no_better_than_a_scorecard(change, rule):
    measured = {"auc": 0.8, "ece": 0.01, "psi_score": 0.01, "psi_max_feature": 0.1, "benchmark_auc": 0.7}
    checks = {c.rule: c.holds for c in own_checks({**measured, **change}, {**measured, **change}, {})}
    assert checks[rule] is False
    assert sum(not holds for holds in checks.values()) == 1


def test_the_two_stage_model_keeps_the_pd_model_and_estimator_contracts(two_stage):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    from models.estimator import PDModel

    model, (T, _, _) = two_stage
    assert isinstance(model, PDModel)
    assert list(model.feature_names_in_) == list(T.columns) and model.n_features_in_ == len(T.columns)
    unfitted = clone(model)
    assert unfitted.get_params() == model.get_params() and unfitted.get_params()["monotone"] == MONOTONE
    for use in (lambda m: m.raw(T), lambda m: m.matrix(T), lambda m: m.feature_names_in_,
                lambda m: m.contributions(np.zeros((1, 4)))):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            use(unfitted)
