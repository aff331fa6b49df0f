"""The generic entry point on a frame that is not a profile: numeric, categorical and missing
values, a binary target; fit, calibrated PD, explanations, persistence, refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.estimator import CreditModel, ModelInputError, QuantileModel
from models.train import monotonicity


def frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Borrowers of a made-up lender: income, debt ratio with gaps, a region, a channel."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.6, n)
    debt_ratio = rng.uniform(0, 1.5, n)
    region = rng.choice(["north", "south", "east", "west"], n)
    channel = pd.Categorical(rng.choice(["branch", "online"], n), categories=["branch", "online", "agent"])
    logit = -3.2 + 2.2 * debt_ratio - 0.8 * (np.log(income) - 10) + np.where(region == "east", 0.8, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    debt_ratio[rng.random(n) < 0.1] = np.nan
    amount = income * rng.lognormal(0, 0.3, n)
    return pd.DataFrame({"income": income, "debt_ratio": debt_ratio, "region": region, "channel": channel}), y, amount


@pytest.fixture(scope="module")
def fitted():
    X, y, _ = frame(6_000, 1)
    V, vy, _ = frame(2_000, 2)
    C, cy, _ = frame(2_000, 3)
    model = CreditModel(monotone={"debt_ratio": 1, "income": -1}, n_estimators=400).fit(X, y, V, vy, C, cy)
    return model, frame(3_000, 4)


def test_it_learns_a_calibrated_pd_out_of_sample(fitted):
    from models import metrics

    model, (T, ty, _) = fitted
    pd_ = model.predict_pd(T)
    assert ((pd_ > 0) & (pd_ < 1)).all()
    assert metrics.auc(ty, pd_) > 0.75
    assert abs(pd_.mean() - ty.mean()) < 0.02 and metrics.ece(ty, pd_) < 0.03


def test_contributions_add_up_to_the_margin(fitted):
    model, (T, _, _) = fitted
    contributions = model.explain(T)
    assert list(contributions.columns) == ["income", "debt_ratio", "region", "channel", "base_value"]
    np.testing.assert_allclose(contributions.sum(axis=1), model.raw(T), rtol=0, atol=1e-9)


def test_monotone_constraints_hold_where_the_data_bends_and_categories_are_fixed(fitted):
    """A book whose risk dips in the middle of the debt ratio: a model left free learns the dip
    (so the check can see a bend), the constrained one never moves against its declaration."""
    rng = np.random.default_rng(5)
    n = 8_000
    debt = rng.uniform(0, 1.5, n)
    logit = -3.0 + 2.0 * debt - 3.0 * np.exp(-(((debt - 0.8) / 0.12) ** 2))
    X = pd.DataFrame({"debt_ratio": debt, "noise": rng.normal(size=n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    V = X.sample(2_000, random_state=1)
    free = CreditModel(n_estimators=300, scorecard=False).fit(X, y, V, y[V.index])
    bound = CreditModel(monotone={"debt_ratio": 1}, n_estimators=300).fit(X, y, V, y[V.index])
    # the free model judged against the declaration it was not given (a policy's), and the bound
    # one judged on its PD: a calibration that reverses the margin breaks what the trees kept
    assert monotonicity(free, X.head(200)) == {}
    assert monotonicity(free, X.head(200), directions={"debt_ratio": 1, "noise": 0}) == {"debt_ratio": False}
    assert monotonicity(bound, X.head(200)) == {"debt_ratio": True}
    a, b = bound.calibration_
    bound.calibration_ = (a, -b)
    assert monotonicity(bound, X.head(200)) == {"debt_ratio": False}
    model, (T, _, _) = fitted
    assert monotonicity(model, T.head(200)) == {"income": True, "debt_ratio": True}
    assert model.encoder_.categories_ == {"region": ["east", "north", "south", "west"],
                                          "channel": ["branch", "online", "agent"]}
    unseen = T.head(5).assign(region="moon")
    np.testing.assert_allclose(model.predict_pd(unseen), model.predict_pd(T.head(5).assign(region=np.nan)))


def test_save_and_load_give_the_same_predictions(fitted, tmp_path):
    model, (T, _, _) = fitted
    model.save(tmp_path)
    assert not list(tmp_path.glob("*.pkl"))
    again = CreditModel.load(tmp_path)
    np.testing.assert_array_equal(again.predict_pd(T), model.predict_pd(T))
    np.testing.assert_array_equal(again.explain(T).to_numpy(), model.explain(T).to_numpy())


def test_a_loaded_model_predicts_with_the_trees_it_was_validated_with(fitted, tmp_path):
    """The record's best iteration is honoured on load: a booster file holding more trees than the
    record's best predicts with the best only, and one holding fewer is refused in words, naming
    both files."""
    import json

    model, (T, _, _) = fitted
    model.save(tmp_path)
    record = json.loads((tmp_path / "pd_model.json").read_text("utf-8"))
    best = record["best_iteration"] - 40
    (tmp_path / "pd_model.json").write_text(json.dumps({**record, "best_iteration": best}), "utf-8")
    again = CreditModel.load(tmp_path)
    assert again.best_iteration_ == best
    validated = model.best_iteration_
    try:
        model.best_iteration_ = best
        stopped_at_best = model.raw(T)
    finally:
        model.best_iteration_ = validated
    np.testing.assert_array_equal(again.raw(T), stopped_at_best)
    assert not np.array_equal(again.raw(T), model.raw(T))
    (tmp_path / "pd_model.json").write_text(json.dumps({**record, "best_iteration": record["best_iteration"] + 1}))
    with pytest.raises(ValueError, match=r"pd_model\.lgb\.txt holds \d+ trees but pd_model\.json says the model's best "
                                         r"iteration is \d+: the two files are not one model"):
        CreditModel.load(tmp_path)


def test_a_quantile_model_stays_below_most_outcomes():
    X, _, amount = frame(6_000, 5)
    V, _, valid_amount = frame(2_000, 6)
    T, _, test_amount = frame(3_000, 7)
    model = QuantileModel(alpha=0.2, n_estimators=400).fit(X, amount, V, valid_amount)
    below = (model.predict(T) <= test_amount).mean()
    assert 0.72 <= below <= 0.88


@pytest.mark.parametrize("mutate, message", [
    (lambda X, y: (X, np.zeros(len(y))), "both outcomes must occur"),
    (lambda X, y: (X, np.where(np.arange(len(y)) == 0, 2, y)), "must be 0 or 1"),
    (lambda X, y: (X.assign(income=np.inf), y), "infinite values"),
    (lambda X, y: (X.iloc[:0], y[:0]), "non-empty"),
])
def test_unusable_training_data_is_refused_in_words(mutate, message):
    X, y, _ = frame(500, 8)
    V, vy, _ = frame(300, 9)
    X, y = mutate(X, y)
    with pytest.raises(ModelInputError, match=message):
        CreditModel(n_estimators=10).fit(X, y, V, vy)


def test_scoring_a_frame_without_the_models_columns_is_refused(fitted):
    model, (T, _, _) = fitted
    with pytest.raises(ModelInputError, match="columns missing from the frame: \\['debt_ratio'\\]"):
        model.predict_pd(T.drop(columns="debt_ratio"))
    with pytest.raises(ModelInputError, match="alpha must be a quantile"):
        QuantileModel(alpha=1.5).fit(T, np.ones(len(T)), T, np.ones(len(T)))


def _additive_book(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A small, noisy book whose risk adds up over eight weak features (four more are noise):
    the kind of book a scorecard often ranks as well as boosting."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 12))
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1.5 + z[:, :8] @ np.full(8, 0.35))))).astype(int)
    return pd.DataFrame(z, columns=[f"f{i}" for i in range(12)]), y


def test_a_small_book_weighs_the_scorecard_on_its_folds_and_keeps_it_whole(tmp_path):
    """Without constraints or validation frames the model compares itself, its WOE scorecard and
    their blends on the same out-of-fold log-odds and keeps the best; whatever it keeps explains
    its margin exactly and is saved and read back as JSON with the same predictions."""
    from models import metrics
    from models.scorecard import BenchmarkScorecard

    X, y = _additive_book(600, 0)
    chosen = CreditModel().fit(X, y)
    boosted = CreditModel(scorecard=False).fit(X, y)
    assert chosen.blend_weight_ < 1.0 and chosen.scorecard_ is not None  # this book prefers a blend
    assert chosen.validation_auc_ > boosted.validation_auc_  # chosen on the folds, by the folds' own AUC
    assert boosted.blend_weight_ == 1.0 and boosted.scorecard_ is None
    explained = chosen.explain(X)
    np.testing.assert_allclose(explained.sum(axis=1).to_numpy(), chosen.raw(X), atol=1e-9)
    np.testing.assert_allclose(chosen.raw(chosen.matrix(X)), chosen.raw(X), atol=1e-12)
    chosen.save(tmp_path)
    again = CreditModel.load(tmp_path)
    np.testing.assert_allclose(again.predict_pd(X), chosen.predict_pd(X), atol=0)
    with pytest.raises(ModelInputError, match="reference"):
        chosen.explainer(np.zeros(X.shape[1]))
    # the scorecard's own bin tables score exactly as optbinning does, unseen categories included
    T, ty = _additive_book(400, 1)
    T["kind"] = np.where(ty == 1, "a", "b")
    card = BenchmarkScorecard().fit(T, ty)
    T.loc[:9, "kind"] = "never seen"
    np.testing.assert_allclose(card.woe(T), card.binning_.transform(card._frame(T)[card.columns_]).to_numpy(), atol=0)
    assert metrics.auc(ty, card.log_odds(T)) > 0.6


def test_a_constrained_model_stays_boosted():
    X, y = _additive_book(600, 0)
    model = CreditModel(monotone={"f0": 1}).fit(X, y)
    assert model.blend_weight_ == 1.0 and model.scorecard_ is None


def _drifted(n: int, seed: int, west: float) -> tuple[pd.DataFrame, np.ndarray]:
    """The made-up lender's borrowers, those of the west region ``west`` log-odds riskier than the
    features say (a drift the trees trained before it cannot know)."""
    X, _, _ = frame(n, seed)
    rng = np.random.default_rng(seed + 100)
    # the outcome of the made-up lender's rule, a gap in the debt ratio read as its middle
    logit = (-3.2 + 2.2 * np.nan_to_num(X["debt_ratio"].to_numpy(), nan=0.75) - 0.8 * (np.log(X["income"]) - 10)
             + np.where(X["region"] == "east", 0.8, 0.0) + np.where(X["region"] == "west", west, 0.0))
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(int)


def test_calibrating_within_a_group_brings_each_group_to_its_own_default_rate(tmp_path):
    """A group whose risk moved after training is calibrated to its own rate on the calibration
    window (and so out of time), the others stay where the pooled calibration puts them, a group the
    calibration never saw keeps the pooled intercept, and the shifts are saved with the model."""
    X, y = _drifted(6_000, 1, 0.0)
    V, vy = _drifted(2_000, 2, 0.0)
    C, cy = _drifted(6_000, 3, 1.0)
    T, ty = _drifted(20_000, 4, 1.0)
    pooled = CreditModel(n_estimators=300).fit(X, y, V, vy, C, cy)
    within = CreditModel(n_estimators=300, calibrate_within="region").fit(X, y, V, vy, C, cy)
    west = (T["region"] == "west").to_numpy()
    realised = ty[west].mean()
    assert realised - pooled.predict_pd(T)[west].mean() > 0.08  # the pooled calibration understates the west
    assert abs(within.predict_pd(T)[west].mean() - realised) < 0.015  # out of time too
    for region in ("north", "south", "east", "west"):  # on its window, every group meets its own rate
        chosen = (C["region"] == region).to_numpy()
        assert abs(within.predict_pd(C)[chosen].mean() - cy[chosen].mean()) < 0.005
    assert within.calibration_shifts_["west"] > 0.5 > max(abs(within.calibration_shifts_[r]) for r in ("north", "south"))
    # one intercept per row, a + its group's shift; an unknown group keeps a
    U = T.head(4).copy()
    U["region"] = ["west", "north", "atlantis", None]
    a = within.calibration_[0]
    np.testing.assert_array_equal(within.intercepts(within.matrix(U), 4),
                                  [a + within.calibration_shifts_["west"], a + within.calibration_shifts_["north"], a, a])
    within.save(tmp_path)
    again = CreditModel.load(tmp_path)
    assert again.calibration_shifts_ == within.calibration_shifts_
    np.testing.assert_array_equal(again.predict_pd(T), within.predict_pd(T))
    with pytest.raises(ModelInputError, match="no column 'branch'"):
        CreditModel(calibrate_within="branch").fit(X, y)
    with pytest.raises(ModelInputError, match="'income' is not a category"):
        CreditModel(calibrate_within="income").fit(X, y)


def test_a_group_with_few_outcomes_stays_near_the_pooled_calibration():
    """The shift is shrunk by its prior: a handful of defaults cannot move a group far."""
    from models.estimator import _group_shifts

    log_odds = np.full(40, -2.0)
    y = np.zeros(40)
    y[:3] = 1  # 3 of 40 where 12 % were expected: a little more, not the empirical 7.5 %'s whole distance
    groups = np.array(["few"] * 20 + ["many"] * 20, dtype=object)
    shifts = _group_shifts(log_odds, y, groups)
    assert shifts["few"] > 0 and shifts["few"] < np.log(3 / 17) + 2.0  # below the unshrunk estimate
    assert shifts["many"] < 0


def test_the_models_keep_scikit_learns_estimator_contract(fitted):
    """An analyst's tools (clone, get_params, grid searches) read the parameters from ``__init__``;
    a model used before it is fitted says so as scikit-learn does; the fitted columns are
    ``feature_names_in_``."""
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    model, (T, _, _) = fitted
    quantile = QuantileModel(alpha=0.3, monotone={"income": 1}, n_estimators=50, seed=7, ordered=())
    assert quantile.get_params() == {"alpha": 0.3, "monotone": {"income": 1}, "categories": None, "params": None,
                                     "n_estimators": 50, "early_stopping_rounds": 200, "seed": 7,
                                     "num_threads": 0, "ordered": ()}
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy.get_params()["monotone"] == {"debt_ratio": 1, "income": -1}
    for unfitted in (copy, quantile):
        for use in (lambda m: m.raw(T), lambda m: m.matrix(T), lambda m: m.feature_names_in_, lambda m: m.tree_tables):
            with pytest.raises(NotFittedError, match="not fitted yet"):
                use(unfitted)
    assert list(model.feature_names_in_) == list(T.columns) and model.feature_names_in_.dtype == object
    assert model.n_features_in_ == 4


def test_a_models_tree_tables_are_built_once_and_again_after_a_refit():
    X, y, _ = frame(2_000, 11)
    V, vy, _ = frame(800, 12)
    model = CreditModel(n_estimators=30, scorecard=False).fit(X, y, V, vy, V, vy)
    first = model.tree_tables
    assert model.tree_tables is first
    model.fit(X.assign(debt_ratio=-X["debt_ratio"]), y, V.assign(debt_ratio=-V["debt_ratio"]), vy, V, vy)
    assert model.tree_tables is not first


def test_a_credit_model_keeps_the_pd_model_contract(fitted):
    from models.estimator import PDModel

    model, _ = fitted
    assert isinstance(model, PDModel) and not isinstance(QuantileModel(), PDModel)
