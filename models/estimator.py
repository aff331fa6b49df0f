"""LightGBM models for any tabular pandas frame: a calibrated probability-of-default classifier
and a conservative quantile regressor, both explained by ``pred_contrib``.

Nothing here knows the profile's column names: numeric, categorical (pandas ``category``,
strings or objects) and missing values are handled as they come, monotone constraints and fixed
category sets are optional arguments. The pre-credit models (:mod:`models.train`) are built from
these; analysts can fit them on any frame.

Categorical columns are encoded with category sets fixed at fit time and stored with the model:
a value outside the set is treated as missing. An *ordered* categorical (``ordered=``, its
categories listed from the lowest to the highest) is read as its rank, a number, so that a monotone
constraint can hold on it; the others are LightGBM categories, which no constraint can order. Prediction runs on a float NumPy matrix (category
codes as numbers), which is what the service feeds the booster.

Example
-------
>>> model = CreditModel(monotone={"arrears_months": 1}).fit(train, y_train)   # cross-validated
>>> model = CreditModel(monotone={"arrears_months": 1}).fit(train, y_train, valid, y_valid, calib, y_calib)
>>> pd_ = model.predict_pd(new_rows)
>>> contributions = model.explain(new_rows)   # log-odds per column, plus "base_value"
"""

from __future__ import annotations

import json
from functools import cached_property
from math import nan
from pathlib import Path
from typing import Protocol, runtime_checkable

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from models import metrics
from models.fitting import ModelInputError, binary_outcome, platt

DEFAULT_PARAMS = {
    "learning_rate": 0.03, "num_leaves": 24, "max_depth": 5, "min_child_samples": 100,
    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 5.0,
    "max_cat_to_onehot": 8, "cat_smooth": 20.0, "verbose": -1,
}
"""Depth 5 with at most 24 leaves: SHAP cost grows with depth squared, so explanations of a
300-tree model stay well under a millisecond per enterprise; deeper trees bought nothing on the
synthetic city's out-of-time AUC."""


class TabularEncoder:
    """Columns → a float matrix LightGBM reads, with fixed category sets."""

    def __init__(self, categories: dict[str, list] | None = None, ordered=()):
        self.categories = dict(categories or {})
        self.ordered = tuple(ordered)
        self._row_plans: dict[tuple[str, ...], list[tuple[int, dict | None]]] = {}

    def fit(self, X: pd.DataFrame) -> TabularEncoder:
        self.features_ = [str(c) for c in X.columns]
        self._row_plans = {}
        self.categories_ = {}
        unknown = [c for c in self.ordered if c not in self.categories]
        if unknown:
            raise ModelInputError(f"ordered columns {unknown} need their categories listed in order")
        self.ordered_ = [c for c in self.features_ if c in self.ordered]
        for column in X.columns:
            series = X[column]
            if column in self.categories:
                self.categories_[column] = [str(v) for v in self.categories[column]]
            elif isinstance(series.dtype, pd.CategoricalDtype):
                self.categories_[column] = [str(v) for v in series.cat.categories]
            elif not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                self.categories_[column] = sorted(str(v) for v in series.dropna().unique())
        return self

    @property
    def categorical_indices(self) -> list[int]:
        """The columns LightGBM splits as categories (an ordered one is a number to it)."""
        ordered = set(getattr(self, "ordered_", ()))
        return [i for i, c in enumerate(self.features_) if c in self.categories_ and c not in ordered]

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features_ if c not in X.columns]
        if missing:
            raise ModelInputError(f"columns missing from the frame: {missing[:10]}")
        out = np.empty((len(X), len(self.features_)), dtype=np.float64)
        for j, column in enumerate(self.features_):
            series = X[column]
            if column in self.categories_:
                categories = self.categories_[column]
                if isinstance(series.dtype, pd.CategoricalDtype) and list(series.cat.categories) == categories:
                    codes = series.cat.codes.to_numpy()
                else:
                    text = series.astype("string")
                    # a value outside the fixed set is missing, not an error
                    codes = pd.Categorical(text.where(text.isin(categories)), categories=categories).codes
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                if np.isinf(values).any():
                    raise ModelInputError(f"column {column} holds infinite values")
                out[:, j] = values
        return out

    def transform_rows(self, rows: list[list], order: list[str]) -> np.ndarray:
        """Rows given as lists of values in ``order`` (text for categories, None for missing) →
        the same matrix :meth:`transform` makes; the service's path, without pandas."""
        plan = self._row_plan(tuple(order))
        # row by row in one comprehension: the service asks about one row at a time
        return np.array([[(nan if row[i] is None else row[i]) if lookup is None else lookup.get(row[i], nan)
                          for i, lookup in plan] for row in rows], dtype=np.float64).reshape(len(rows), len(plan))

    def _row_plan(self, order: tuple[str, ...]) -> list[tuple[int, dict | None]]:
        """Where each model column sits in ``order`` and its category codes (None if numeric), made
        once per order."""
        plans = self._row_plans
        if order not in plans:
            position = {name: i for i, name in enumerate(order)}
            missing = [c for c in self.features_ if c not in position]
            if missing:
                raise ModelInputError(f"columns missing from the rows: {missing[:10]}")
            codes = {column: {value: code for code, value in enumerate(values)}
                     for column, values in self.categories_.items()}
            plans[order] = [(position[c], codes.get(c)) for c in self.features_]
        return plans[order]

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        """The frame a matrix of :meth:`transform` stands for: numbers as they are, category codes
        back to their categories (missing as None)."""
        columns = {}
        for j, column in enumerate(self.features_):
            values = matrix[:, j]
            if column in self.categories_:
                categories = np.array([*self.categories_[column], None], dtype=object)
                codes = np.where(np.isnan(values), len(categories) - 1, values).astype(np.int64)
                columns[column] = categories[codes]
            else:
                columns[column] = values
        return pd.DataFrame(columns)

    def state(self) -> dict:
        return {"features": self.features_, "categories": self.categories_, "ordered": self.ordered_}

    @classmethod
    def from_state(cls, state: dict) -> TabularEncoder:
        encoder = cls(state["categories"], state.get("ordered", ()))
        encoder.features_ = list(state["features"])
        encoder.categories_ = {k: list(v) for k, v in state["categories"].items()}
        encoder.ordered_ = list(state.get("ordered", ()))  # a model saved before orders were declared has none
        return encoder


@runtime_checkable
class PDModel(Protocol):
    """The contract every probability-of-default model keeps (:class:`CreditModel`,
    :class:`models.stages.TwoStageModel`): what the bundle, the explanations, the reports and the
    gate read of it. A margin is the model's raw log-odds; ``calibrated_log_odds`` maps it (per
    row, with its calibration group read from the encoded ``matrix``) and ``predict_pd`` is the
    logistic of that. ``contributions`` of a matrix add up, with their base value, to its margin."""

    feature_names_in_: np.ndarray
    encoder_: TabularEncoder
    monotone_: dict[str, int]
    calibration_: tuple[float, float]
    calibration_shifts_: dict
    best_iteration_: int

    def matrix(self, X: pd.DataFrame) -> np.ndarray: ...

    def raw(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray: ...

    def contributions(self, matrix: np.ndarray, num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]: ...

    def explain(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> pd.DataFrame: ...

    def explainer(self, reference: np.ndarray): ...

    def intercepts(self, matrix: np.ndarray | None, rows: int) -> np.ndarray: ...

    def calibrated_log_odds(self, margin: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray: ...

    def predict_pd(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...


class _Boosted(BaseEstimator):
    """What both models share: encoding, the booster, contributions, saving and loading.

    scikit-learn's estimator contract: ``__init__`` only stores its parameters (``get_params``,
    ``clone``), ``fit`` learns the attributes ending in ``_`` (``feature_names_in_``,
    ``n_features_in_``) and using a model before it is fitted is sklearn's ``NotFittedError``."""

    kind = ""
    default_params: dict = {}

    def __init__(self, monotone: dict[str, int] | None = None, categories: dict[str, list] | None = None,
                 params: dict | None = None, n_estimators: int = 3000, early_stopping_rounds: int = 200,
                 seed: int = 0, num_threads: int = 0, ordered=()):
        self.monotone = monotone
        self.categories = categories
        self.ordered = ordered
        self.params = params
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads

    def _check_frames(self, X: pd.DataFrame, *others: pd.DataFrame) -> None:
        if not isinstance(X, pd.DataFrame) or X.empty:
            raise ModelInputError("training data must be a non-empty pandas DataFrame")
        for other in others:
            if other is not None and list(other.columns) != list(X.columns):
                raise ModelInputError("validation frames must have the training frame's columns, in order")

    def _prepare(self, X: pd.DataFrame) -> None:
        """Fix the encoding and the monotone constraints from the training frame."""
        self.encoder_ = TabularEncoder(self.categories, self.ordered).fit(X)
        self.__dict__.pop("tree_tables", None)  # a refit has other trees
        split_as_category = {self.encoder_.features_[i] for i in self.encoder_.categorical_indices}
        self.monotone_ = {c: 0 if c in split_as_category else int((self.monotone or {}).get(c, 0))
                          for c in self.encoder_.features_}

    def _lgb_params(self, extra: dict, objective: dict, metric: str) -> dict:
        params = {**DEFAULT_PARAMS, **self.default_params, **extra, **objective, "metric": metric, "seed": self.seed,
                  "num_threads": self.num_threads, "deterministic": True, "force_row_wise": True}
        monotone = [self.monotone_[c] for c in self.encoder_.features_]
        if any(monotone):
            # "basic": with LightGBM 4.7's "advanced" method predictions moved against the
            # constraint for 13 features of the profile (cf. lightgbm-org/LightGBM#6155); the
            # regulator's check must hold, and "basic" cost no measurable AUC here
            params.update(monotone_constraints=monotone, monotone_constraints_method="basic")
        return params

    def _boost(self, params: dict, matrix: np.ndarray, y: np.ndarray, offset: np.ndarray | None,
               valid: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None, rounds: int) -> lgb.Booster:
        """One booster: early stopping on ``valid`` (matrix, target, offset) when given, else
        exactly ``rounds`` trees. ``offset`` is a fixed margin the trees boost from."""
        train = lgb.Dataset(matrix, y, init_score=offset, feature_name=self.encoder_.features_,
                            categorical_feature=self.encoder_.categorical_indices, free_raw_data=True)
        if valid is None:
            return lgb.train(params, train, max(int(rounds), 1))
        valid_set = lgb.Dataset(valid[0], valid[1], init_score=valid[2], reference=train)
        return lgb.train(params, train, rounds, valid_sets=[valid_set],
                         callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])

    def _train(self, X: pd.DataFrame, y: np.ndarray, X_valid: pd.DataFrame, y_valid: np.ndarray,
               objective: dict, metric: str) -> None:
        self._prepare(X)
        params = self._lgb_params(self.params or {}, objective, metric)
        self.booster_ = self._boost(params, self.encoder_.transform(X), y, None,
                                    (self.encoder_.transform(X_valid), y_valid, None), self.n_estimators)
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "booster_")

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The columns the model was fitted on, in order (scikit-learn's name and type)."""
        check_is_fitted(self)
        return np.asarray(self.encoder_.features_, dtype=object)

    @property
    def n_features_in_(self) -> int:
        check_is_fitted(self)
        return len(self.encoder_.features_)

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The float matrix the booster reads."""
        check_is_fitted(self)
        return self.encoder_.transform(X)

    def raw(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray:
        """The booster's raw output per row (log-odds for the PD model, log amount for the quantile model)."""
        check_is_fitted(self)
        matrix = X if isinstance(X, np.ndarray) else self.matrix(X)
        return self.booster_.predict(matrix, raw_score=True, num_iteration=self.best_iteration_,
                                     num_threads=num_threads)

    def explain(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> pd.DataFrame:
        """Per row: each column's contribution to the raw model output (log-odds for the PD model,
        log capacity for the quantile model) and ``base_value``; they add up to the raw output."""
        contributions, base = self.contributions(X if isinstance(X, np.ndarray) else self.matrix(X), num_threads)
        return pd.DataFrame(np.column_stack([contributions, base]), columns=[*self.feature_names_in_, "base_value"])

    def contributions(self, matrix: np.ndarray, num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Per row of the booster's matrix: each column's contribution to the raw output, and the
        base value; ``contributions.sum(axis=1) + base`` is the raw output."""
        check_is_fitted(self)
        raw = self.booster_.predict(matrix, pred_contrib=True, num_iteration=self.best_iteration_,
                                    num_threads=num_threads)
        return raw[:, :-1], raw[:, -1]

    def explainer(self, reference: np.ndarray):
        """An :class:`models.shapley.Explainer` of the raw output against one encoded reference row."""
        from models.shapley import Explainer, ReferenceExplainer

        return Explainer([(1.0, ReferenceExplainer(self.tree_tables, reference))])

    @cached_property
    def tree_tables(self):
        """The booster's trees as flat arrays (built once per fit or load)."""
        from models.shapley import TreeTables

        check_is_fitted(self)
        return TreeTables(self.booster_, self.best_iteration_)

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path, name: str | None = None) -> None:
        """Booster as LightGBM text, everything else as JSON; no pickle. Files are called after
        ``name`` (the model's kind by default)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        name = name or self.kind
        self.booster_.save_model(str(folder / f"{name}.lgb.txt"), num_iteration=self.best_iteration_)
        (folder / f"{name}.json").write_text(json.dumps(self._state(), ensure_ascii=False, indent=1), "utf-8")

    def _state(self) -> dict:
        return {"encoder": self.encoder_.state(), "best_iteration": self.best_iteration_, "monotone": self.monotone_}

    @classmethod
    def load(cls, folder: Path, name: str | None = None) -> _Boosted:
        folder = Path(folder)
        name = name or cls.kind
        state = json.loads((folder / f"{name}.json").read_text("utf-8"))
        model = cls()
        model.booster_ = lgb.Booster(model_file=str(folder / f"{name}.lgb.txt"))
        model.encoder_ = TabularEncoder.from_state(state["encoder"])
        # the trees the model was validated with, as saved; a booster file holding fewer trees than
        # that is not the model the record describes (more is fine: predictions stop at the best)
        trees = model.booster_.current_iteration()
        model.best_iteration_ = int(state.get("best_iteration") or trees)
        if model.best_iteration_ > trees:
            raise ValueError(f"{folder / f'{name}.lgb.txt'} holds {trees} trees but {name}.json says the model's "
                             f"best iteration is {model.best_iteration_}: the two files are not one model")
        model.monotone_ = state["monotone"]
        model._restore(state)
        return model

    def _restore(self, state: dict) -> None:
        pass


HOLDOUT_FROM_ROWS = 50_000
"""From this many rows :class:`CreditModel` validates on one stratified held-out share instead of
5-fold cross-validation: the folds would cost five fits and the share is already large."""
FAST_FROM_ROWS = 150_000
"""From this many rows (stage 1's enterprise-months) trees learn at 0.1 instead of 0.03."""
STOPPING_METRIC = "binary_logloss"
"""Early stopping watches the log-loss: on a few hundred held-out rows the AUC moves in steps
(German credit, 5 folds, the book's own settings: AUC 0.792 stopping on the log-loss, 0.790 on
the AUC)."""


def auto_params(rows: int, positives: int) -> dict:
    """LightGBM settings for a book of ``rows`` loans with ``positives`` defaults: leaves grow
    with the defaults there are to split on (4 for a few dozen, 31 from about 800), the smallest
    leaf with the square root of the rows (16 for 1,000 rows, 100 for 40,000, 200 from 160,000)."""
    return {"num_leaves": int(np.clip(positives // 25, 4, 31)),
            "min_child_samples": int(np.clip(round(np.sqrt(rows) / 2), 10, 200))}


def candidate_params(rows: int, positives: int) -> list[dict]:
    """What :class:`CreditModel` tries when not given parameters: the book's own settings
    (:func:`auto_params`) and, below :data:`HOLDOUT_FROM_ROWS` rows, a shallow additive model
    (two leaves a tree, the boosted cousin of a scorecard), which small and noisy books often
    prefer. From :data:`FAST_FROM_ROWS` rows trees learn faster: there is evidence enough for
    bigger steps, and the fit and every explanation stay within their time."""
    auto = auto_params(rows, positives)
    if rows >= FAST_FROM_ROWS:
        return [{**auto, "learning_rate": 0.1}]
    if rows >= HOLDOUT_FROM_ROWS:
        return [auto]
    return [auto, {**auto, "num_leaves": 2, "max_depth": 1, "learning_rate": 0.05}]


class CreditModel(_Boosted):
    """A binary LightGBM classifier of default, with early stopping and a logistic (Platt)
    calibration of its log-odds.

    Given validation (and calibration) frames, it stops early on the first and calibrates on the
    second. Given only ``X, y``, it finds the number of trees and the calibration by stratified
    5-fold cross-validation (one stratified 20 % held-out share from
    :data:`HOLDOUT_FROM_ROWS` rows) on out-of-fold margins, then refits on every row. Without
    ``params`` it tries :func:`candidate_params` (chosen from the data's size) and keeps the one
    with the best validation AUC; with ``params`` it uses those.

    ``offset`` (per row, with ``offset_valid`` and ``offset_calib``) is a margin the trees boost
    from: the second stage of :class:`models.stages.TwoStageModel`. The calibration then maps the
    whole margin, offset plus trees.

    Given only ``X, y``, without monotone constraints and without an offset (an analyst's frame,
    a small book), it also weighs the boosted model against its benchmark, a WOE scorecard
    (:class:`models.scorecard.BenchmarkScorecard`), and blends of the two, on the same folds'
    out-of-fold log-odds, and keeps the best by that validation AUC (the boosted model on a tie):
    small and noisy books often prefer the scorecard. ``scorecard=False`` keeps it boosted. A model
    with monotone constraints stays boosted (a scorecard's bins do not honour them), and so does
    every model explained against a reference (:meth:`explainer`: trees only).

    Parameters are only stored here; :meth:`fit` learns ``booster_``, ``encoder_``,
    ``best_iteration_``, ``params_`` (the settings used), ``validation_auc_``, ``calibration_``
    (``a + b · margin`` is the calibrated log-odds), ``blend_weight_`` (the boosted model's weight
    in the margin: 1 boosted alone, 0 the scorecard alone) and ``scorecard_`` (None unless used).

    ``calibrate_within`` (a categorical column) calibrates within each of its groups as well: on
    the same calibration margins, each group's intercept moves by ``calibration_shifts_[group]``
    (:func:`_group_shifts`, shrunk towards 0 where a group has few outcomes), so that a group the
    trees under- or over-state is brought back to its own default rate. ``a + shift`` is then that
    group's intercept (:meth:`intercepts`); a group the calibration did not see keeps ``a``.
    """

    kind = "pd_model"
    BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75)
    """The boosted model's weights tried against the scorecard's (1 minus it) on the log-odds scale."""

    def __init__(self, monotone: dict[str, int] | None = None, categories: dict[str, list] | None = None,
                 params: dict | None = None, n_estimators: int = 3000, early_stopping_rounds: int = 200,
                 seed: int = 0, num_threads: int = 0, ordered=(), scorecard: bool = True,
                 calibrate_within: str | None = None):
        super().__init__(monotone, categories, params, n_estimators, early_stopping_rounds, seed, num_threads, ordered)
        self.scorecard = scorecard
        self.calibrate_within = calibrate_within

    def fit(self, X: pd.DataFrame, y, X_valid: pd.DataFrame | None = None, y_valid=None,
            X_calib: pd.DataFrame | None = None, y_calib=None, offset=None, offset_valid=None,
            offset_calib=None) -> CreditModel:
        """Fit on ``X`` (see the class docstring for what is validated and calibrated on what).
        Returns self."""
        self._check_frames(X, X_valid, X_calib)
        if self.calibrate_within is not None and self.calibrate_within not in X.columns:
            raise ModelInputError(f"calibrate_within: the frame has no column {self.calibrate_within!r}")
        if (X_valid is None) != (y_valid is None) or (X_calib is None) != (y_calib is None):
            raise ModelInputError("give each validation frame with its target")
        if X_calib is not None and X_valid is None:
            raise ModelInputError("a calibration frame needs a validation frame")
        y = binary_outcome(y, "training")
        self._prepare(X)
        if self.calibrate_within is not None and self.calibrate_within not in self.encoder_.categories_:
            raise ModelInputError(f"calibrate_within: column {self.calibrate_within!r} is not a category")
        matrix = self.encoder_.transform(X)
        offset = _offset(offset, len(X), "training")
        candidates = [self.params] if self.params else candidate_params(len(y), int(y.sum()))
        if X_valid is not None:
            y_valid = binary_outcome(y_valid, "validation")
            valid = (self.encoder_.transform(X_valid), y_valid, _offset(offset_valid, len(X_valid), "validation"))
            fits = [self._fit_on_window(params, matrix, y, offset, valid) for params in candidates]
            best = max(fits, key=lambda fit: fit[2])
            self.booster_, self.best_iteration_, self.validation_auc_, self.params_ = best
            if X_calib is None:
                calib_margin, calib_y = self.raw(valid[0]) + _zero(valid[2], len(y_valid)), y_valid
                calib_rows = X_valid
            else:
                calib_y = binary_outcome(y_calib, "calibration")
                calib_margin = self.raw(X_calib) + _zero(_offset(offset_calib, len(X_calib), "calibration"), len(calib_y))
                calib_rows = X_calib
        else:
            folds = _folds(y, self.seed)
            runs = [self._cross_validate(params, matrix, y, offset, folds) for params in candidates]
            rounds, calib_margin, calib_y, self.validation_auc_, self.params_ = max(runs, key=lambda run: run[3])
            full = self._lgb_params(self.params_, {"objective": "binary"}, STOPPING_METRIC)
            self.booster_ = self._boost(full, matrix, y, offset, None, rounds)
            self.best_iteration_ = self.booster_.current_iteration()
            if self.scorecard and offset is None and not any(self.monotone_.values()):
                calib_margin = self._weigh_scorecard(X, y, folds, calib_margin)
            # the out-of-fold margins come back in row order over the held-out rows (_cross_validate)
            calib_rows = X.iloc[np.sort(np.concatenate(folds))]
        self.calibration_ = platt(calib_margin, calib_y)
        self.calibration_shifts_ = {}
        if self.calibrate_within is not None:
            groups = calib_rows[self.calibrate_within].astype("string").to_numpy(dtype=object, na_value=None)
            self.calibration_shifts_ = _group_shifts(self.calibrated_log_odds(calib_margin), calib_y, groups)
        return self

    def _weigh_scorecard(self, X: pd.DataFrame, y: np.ndarray, folds, boosted_margin: np.ndarray) -> np.ndarray:
        """The WOE scorecard's out-of-fold log-odds on the same folds, and every blend of
        :data:`BLEND_WEIGHTS`, against the boosted model's: keeps the best by pooled out-of-fold AUC
        (the boosted model unless something beats it), refits the scorecard on every row if it is
        used, and returns the kept margin's out-of-fold values for the calibration."""
        from models.scorecard import BenchmarkScorecard

        held_rows = np.concatenate(folds)
        scored = np.full(len(y), np.nan)
        try:
            for held in folds:
                kept = np.ones(len(y), dtype=bool)
                kept[held] = False
                card = BenchmarkScorecard().fit(X.iloc[np.flatnonzero(kept)], y[kept])
                scored[held] = card.log_odds(X.iloc[held], calibrated=False)
        except ModelInputError:  # a fold too small or too flat to bin: the boosted model stands
            return boosted_margin
        # the boosted margins come back in row order over the held-out rows (see _cross_validate)
        order = np.sort(held_rows)
        scored, held_y = scored[order], y[order]
        best_weight, best_auc, best_margin = 1.0, self.validation_auc_, boosted_margin
        for weight in self.BLEND_WEIGHTS:
            margin = weight * boosted_margin + (1 - weight) * scored
            auc = metrics.auc(held_y, margin)
            if auc > best_auc + 1e-12:
                best_weight, best_auc, best_margin = weight, auc, margin
        self.blend_weight_, self.validation_auc_ = best_weight, best_auc
        if best_weight < 1.0:
            self.scorecard_ = BenchmarkScorecard().fit(X, y)
        return best_margin

    def _fit_on_window(self, params: dict, matrix, y, offset, valid):
        booster = self._boost(self._lgb_params(params, {"objective": "binary"}, STOPPING_METRIC), matrix, y, offset, valid,
                              self.n_estimators)
        rounds = int(booster.best_iteration or booster.current_iteration())
        margin = booster.predict(valid[0], raw_score=True, num_iteration=rounds) + _zero(valid[2], len(valid[1]))
        return booster, rounds, metrics.auc(valid[1], margin), params

    def _cross_validate(self, params: dict, matrix, y, offset, folds):
        """Rounds to refit with, the held-out margins (offset included) and outcomes, their pooled
        AUC, and the params tried."""
        lgb_params = self._lgb_params(params, {"objective": "binary"}, STOPPING_METRIC)
        out_of_fold = np.full(len(y), np.nan)
        rounds = []
        for held in folds:
            kept = np.ones(len(y), dtype=bool)
            kept[held] = False
            part = lambda a, rows: None if a is None else a[rows]  # noqa: E731
            booster = self._boost(lgb_params, matrix[kept], y[kept], part(offset, kept),
                                  (matrix[held], y[held], part(offset, held)), self.n_estimators)
            best = int(booster.best_iteration or booster.current_iteration())
            rounds.append(best)
            out_of_fold[held] = booster.predict(matrix[held], raw_score=True, num_iteration=best) + \
                _zero(part(offset, held), len(held))
        covered = ~np.isnan(out_of_fold)
        held_margin, held_y = out_of_fold[covered], y[covered]
        return max(1, int(round(np.mean(rounds)))), held_margin, held_y, metrics.auc(held_y, held_margin), params

    blend_weight_ = 1.0
    scorecard_ = None

    def raw(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray:
        """The margin: the boosted model's raw output, blended with the scorecard's log-odds when
        :meth:`fit` chose it (``blend_weight_`` below 1)."""
        boosted = super().raw(X, num_threads)
        if self.scorecard_ is None:
            return boosted
        frame = X if isinstance(X, pd.DataFrame) else self.encoder_.decode(X)
        return self.blend_weight_ * boosted + (1 - self.blend_weight_) * self.scorecard_.log_odds(frame, calibrated=False)

    def contributions(self, matrix: np.ndarray, num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Per row: each column's contribution to the margin and the base value (the scorecard's
        terms, which are additive, weighed in with the trees' when it is blended)."""
        trees, base = super().contributions(matrix, num_threads)
        if self.scorecard_ is None:
            return trees, base
        terms, intercept = self.scorecard_.contributions(self.encoder_.decode(matrix))
        weight, out = self.blend_weight_, self.blend_weight_ * trees
        position = {name: j for j, name in enumerate(self.encoder_.features_)}
        for k, column in enumerate(self.scorecard_.columns_):
            out[:, position[column]] += (1 - weight) * terms[:, k]
        return out, weight * base + (1 - weight) * intercept

    def explainer(self, reference: np.ndarray):
        if self.scorecard_ is not None:
            raise ModelInputError("this model chose a blend with its scorecard: explain() states its contributions; "
                                  "explanations against a reference walk trees only (fit with scorecard=False)")
        return super().explainer(reference)

    calibration_shifts_: dict = {}
    calibrate_within = None

    def intercepts(self, matrix: np.ndarray | None, rows: int) -> np.ndarray:
        """Per row, the calibration's intercept: ``a``, plus the row's group shift when the model is
        calibrated within groups (``matrix`` then gives the groups; None gives ``a`` to every row;
        a missing or unseen group keeps ``a``)."""
        a, _ = self.calibration_
        if matrix is None or not self.calibration_shifts_:
            return np.full(rows, a, dtype=np.float64)
        categories = self.encoder_.categories_[self.calibrate_within]
        by_code = np.array([*(self.calibration_shifts_.get(c, 0.0) for c in categories), 0.0])
        codes = matrix[:, self.encoder_.features_.index(self.calibrate_within)]
        # a + shift, computed once per row: the intercept a decision's page states
        return a + by_code[np.where(np.isnan(codes), len(categories), codes).astype(np.int64)]

    def calibrated_log_odds(self, margin: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray:
        """``intercept + b · margin`` per row (:meth:`intercepts`; ``a`` without ``matrix``)."""
        margin = np.asarray(margin, dtype=np.float64)
        _, b = self.calibration_
        return self.intercepts(matrix, margin.size).reshape(margin.shape) + b * margin

    def predict_pd(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Calibrated probability of default per row (of a model fitted without an offset)."""
        groups = None  # the encoded rows, read for their calibration groups when there are any
        if self.calibration_shifts_:
            groups = X if isinstance(X, np.ndarray) else self.matrix(X)
        return 1.0 / (1.0 + np.exp(-self.calibrated_log_odds(self.raw(X, num_threads), groups)))

    def _state(self) -> dict:
        return {**super()._state(), "calibration": list(self.calibration_), "params": self.params_,
                "validation_auc": self.validation_auc_, "blend_weight": self.blend_weight_,
                "scorecard": None if self.scorecard_ is None else self.scorecard_.state(),
                "calibrate_within": self.calibrate_within, "calibration_shifts": self.calibration_shifts_}

    def _restore(self, state: dict) -> None:
        from models.scorecard import BenchmarkScorecard

        self.calibration_ = tuple(state["calibration"])
        self.params_ = state.get("params")
        self.validation_auc_ = state.get("validation_auc")
        self.blend_weight_ = float(state.get("blend_weight", 1.0))
        self.scorecard_ = BenchmarkScorecard.from_state(state["scorecard"]) if state.get("scorecard") else None
        self.calibrate_within = state.get("calibrate_within")  # a model saved before has one calibration
        self.calibration_shifts_ = {str(k): float(v) for k, v in (state.get("calibration_shifts") or {}).items()}


def _offset(offset, rows: int, name: str) -> np.ndarray | None:
    if offset is None:
        return None
    values = np.asarray(offset, dtype=np.float64)
    if values.shape != (rows,) or not np.isfinite(values).all():
        raise ModelInputError(f"{name}: the offset must be one finite number per row")
    return values


def _zero(offset: np.ndarray | None, rows: int) -> np.ndarray:
    return np.zeros(rows) if offset is None else offset


def _folds(y: np.ndarray, seed: int) -> list[np.ndarray]:
    """Held-out row indices: 5 stratified folds, or one stratified 20 % share for big books."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    rows = np.arange(len(y))
    if len(y) >= HOLDOUT_FROM_ROWS:
        return [np.sort(train_test_split(rows, test_size=0.2, stratify=y, random_state=seed)[1])]
    splits = min(5, int(y.sum()), int(len(y) - y.sum()))
    if splits < 2:
        raise ModelInputError(f"training: {int(y.sum())} of {len(y)} rows are positive; cross-validation needs at "
                              "least 2 of each outcome")
    return [held for _, held in StratifiedKFold(splits, shuffle=True, random_state=seed).split(rows, y)]


GROUP_SHIFT_PRIOR_SD = 0.5
"""The prior spread of a group's calibration shift on the log-odds scale: a group with a few
hundred outcomes moves by what they show, a group with a handful stays near the pooled calibration
(a Gaussian prior, its penalty ``shift² / (2 · 0.5²)``)."""


def _group_shifts(log_odds: np.ndarray, y: np.ndarray, groups: np.ndarray,
                  prior_sd: float = GROUP_SHIFT_PRIOR_SD) -> dict[str, float]:
    """Per group, the intercept shift that best fits its outcomes on top of the pooled calibrated
    ``log_odds`` (penalised maximum likelihood, Newton's method; groups None are left out)."""
    shifts = {}
    for group in sorted({g for g in groups if g is not None}):
        chosen = np.array([g == group for g in groups])
        x, outcome, shift = log_odds[chosen], y[chosen], 0.0
        for _ in range(50):
            p = 1.0 / (1.0 + np.exp(-(x + shift)))
            gradient = np.sum(outcome - p) - shift / prior_sd ** 2
            hessian = np.sum(p * (1 - p)) + 1 / prior_sd ** 2
            step = gradient / hessian
            shift += step
            if abs(step) < 1e-10:
                break
        shifts[str(group)] = float(shift)
    return shifts


QUANTILE_PARAMS = {"learning_rate": 0.1, "num_leaves": 15, "max_depth": 4}
"""The capacity model learns faster and shallower than the PD model: it is not explained tree by
tree at scoring time, but it runs beside every decision, so its size is scoring time."""


class QuantileModel(_Boosted):
    """A LightGBM quantile regression of a positive amount (fitted on its logarithm, which keeps
    quantiles): ``predict`` gives the ``alpha`` quantile in the amount's own unit."""

    kind = "capacity_model"

    default_params = QUANTILE_PARAMS

    def __init__(self, alpha: float = 0.2, monotone: dict[str, int] | None = None,
                 categories: dict[str, list] | None = None, params: dict | None = None, n_estimators: int = 800,
                 early_stopping_rounds: int = 200, seed: int = 0, num_threads: int = 0, ordered=()):
        super().__init__(monotone=monotone, categories=categories, params=params, n_estimators=n_estimators,
                         early_stopping_rounds=early_stopping_rounds, seed=seed, num_threads=num_threads,
                         ordered=ordered)
        self.alpha = alpha

    def fit(self, X: pd.DataFrame, amount, X_valid: pd.DataFrame, amount_valid) -> QuantileModel:
        self._check_frames(X, X_valid)
        if not 0 < self.alpha < 1:
            raise ModelInputError(f"alpha must be a quantile between 0 and 1; got {self.alpha}")
        target, target_valid = (np.log1p(np.asarray(a, dtype=float).clip(0)) for a in (amount, amount_valid))
        if np.isnan(target).any() or np.isnan(target_valid).any():
            raise ModelInputError("the amounts to learn have missing values")
        self._train(X, target, X_valid, target_valid, {"objective": "quantile", "alpha": self.alpha}, "quantile")
        return self

    def predict(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray:
        return np.expm1(self.raw(X, num_threads)).clip(0)

    def _state(self) -> dict:
        return {**super()._state(), "alpha": self.alpha}

    def _restore(self, state: dict) -> None:
        self.alpha = state["alpha"]
