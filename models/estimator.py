"""LightGBM models for any tabular pandas frame: a calibrated probability-of-default classifier
and a conservative quantile regressor, both explained by ``pred_contrib``.

Nothing here knows the profile's column names: numeric, categorical (pandas ``category``,
strings or objects) and missing values are handled as they come, monotone constraints and fixed
category sets are optional arguments. The pre-credit models (:mod:`models.train`) are built from
these; analysts can fit them on any frame.

Categorical columns are encoded with category sets fixed at fit time and stored with the model:
a value outside the set is treated as missing. Prediction runs on a float NumPy matrix (category
codes as numbers), which is what the service feeds the booster.

Example
-------
>>> model = CreditModel(monotone={"arrears_months": 1}).fit(train, y_train, valid, y_valid, calib, y_calib)
>>> pd_ = model.predict_pd(new_rows)
>>> contributions = model.explain(new_rows)   # log-odds per column, plus "base_value"
"""

from __future__ import annotations

import json
from math import nan
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

DEFAULT_PARAMS = {
    "learning_rate": 0.03, "num_leaves": 24, "max_depth": 5, "min_child_samples": 100,
    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 5.0,
    "max_cat_to_onehot": 8, "cat_smooth": 20.0, "verbose": -1,
}
"""Depth 5 with at most 24 leaves: SHAP cost grows with depth squared, so explanations of a
300-tree model stay well under a millisecond per enterprise; deeper trees bought nothing on the
synthetic city's out-of-time AUC."""


class ModelInputError(ValueError):
    """Training or scoring data that cannot be used as given."""


class TabularEncoder:
    """Columns → a float matrix LightGBM reads, with fixed category sets."""

    def __init__(self, categories: dict[str, list] | None = None):
        self.categories = dict(categories or {})
        self._row_plans: dict[tuple[str, ...], list[tuple[int, dict | None]]] = {}

    def fit(self, X: pd.DataFrame) -> TabularEncoder:
        self.features_ = [str(c) for c in X.columns]
        self._row_plans = {}
        self.categories_ = {}
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
        return [i for i, c in enumerate(self.features_) if c in self.categories_]

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

    def state(self) -> dict:
        return {"features": self.features_, "categories": self.categories_}

    @classmethod
    def from_state(cls, state: dict) -> TabularEncoder:
        encoder = cls(state["categories"])
        encoder.features_ = list(state["features"])
        encoder.categories_ = {k: list(v) for k, v in state["categories"].items()}
        return encoder


def _binary(y, name: str) -> np.ndarray:
    values = pd.Series(y).to_numpy()
    if pd.isna(values).any():
        raise ModelInputError(f"{name}: the target has missing values")
    out = values.astype(np.float64)
    if not np.isin(out, (0.0, 1.0)).all():
        raise ModelInputError(f"{name}: the target must be 0 or 1")
    if out.sum() == 0 or out.sum() == len(out):
        raise ModelInputError(f"{name}: both outcomes must occur (got {int(out.sum())} of {len(out)} positive)")
    return out


class _Boosted:
    """What both models share: encoding, the booster, contributions, saving and loading."""

    kind = ""
    default_params: dict = {}

    def __init__(self, monotone: dict[str, int] | None = None, categories: dict[str, list] | None = None,
                 params: dict | None = None, n_estimators: int = 3000, early_stopping_rounds: int = 200,
                 seed: int = 0, num_threads: int = 0):
        self.monotone = monotone
        self.categories = categories
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

    def _train(self, X: pd.DataFrame, y: np.ndarray, X_valid: pd.DataFrame, y_valid: np.ndarray,
               objective: dict, metric: str) -> None:
        self.encoder_ = TabularEncoder(self.categories).fit(X)
        monotone = [0 if c in self.encoder_.categories_ else int((self.monotone or {}).get(c, 0))
                    for c in self.encoder_.features_]
        params = {**DEFAULT_PARAMS, **self.default_params, **(self.params or {}), **objective, "metric": metric, "seed": self.seed,
                  "num_threads": self.num_threads, "deterministic": True, "force_row_wise": True}
        if any(monotone):
            # "basic": with LightGBM 4.7's "advanced" method predictions moved against the
            # constraint for 13 features of the profile (cf. lightgbm-org/LightGBM#6155); the
            # regulator's check must hold, and "basic" cost no measurable AUC here
            params.update(monotone_constraints=monotone, monotone_constraints_method="basic")
        categorical = self.encoder_.categorical_indices
        train = lgb.Dataset(self.encoder_.transform(X), y, feature_name=self.encoder_.features_,
                            categorical_feature=categorical, free_raw_data=True)
        valid = lgb.Dataset(self.encoder_.transform(X_valid), y_valid, reference=train)
        self.booster_ = lgb.train(params, train, self.n_estimators, valid_sets=[valid],
                                  callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        self.monotone_ = dict(zip(self.encoder_.features_, monotone))

    @property
    def feature_names_(self) -> list[str]:
        return list(self.encoder_.features_)

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The float matrix the booster reads."""
        return self.encoder_.transform(X)

    def raw(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray:
        matrix = X if isinstance(X, np.ndarray) else self.matrix(X)
        return self.booster_.predict(matrix, raw_score=True, num_iteration=self.best_iteration_,
                                     num_threads=num_threads)

    def explain(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> pd.DataFrame:
        """Per row: each column's contribution to the raw model output (log-odds for the PD model,
        log capacity for the quantile model) and ``base_value``; they add up to the raw output."""
        matrix = X if isinstance(X, np.ndarray) else self.matrix(X)
        contributions = self.booster_.predict(matrix, pred_contrib=True, num_iteration=self.best_iteration_,
                                              num_threads=num_threads)
        return pd.DataFrame(contributions, columns=[*self.feature_names_, "base_value"])

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path) -> None:
        """Booster as LightGBM text, everything else as JSON; no pickle."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(folder / f"{self.kind}.lgb.txt"), num_iteration=self.best_iteration_)
        (folder / f"{self.kind}.json").write_text(json.dumps(self._state(), ensure_ascii=False, indent=1), "utf-8")

    def _state(self) -> dict:
        return {"encoder": self.encoder_.state(), "best_iteration": self.best_iteration_, "monotone": self.monotone_}

    @classmethod
    def load(cls, folder: Path) -> _Boosted:
        folder = Path(folder)
        state = json.loads((folder / f"{cls.kind}.json").read_text("utf-8"))
        model = cls()
        model.booster_ = lgb.Booster(model_file=str(folder / f"{cls.kind}.lgb.txt"))
        model.encoder_ = TabularEncoder.from_state(state["encoder"])
        model.best_iteration_ = model.booster_.current_iteration()
        model.monotone_ = state["monotone"]
        model._restore(state)
        return model

    def _restore(self, state: dict) -> None:
        pass


class CreditModel(_Boosted):
    """A binary LightGBM classifier of default with early stopping on a validation window and a
    logistic (Platt) calibration of its log-odds fitted on a separate held-out window.

    Parameters are only stored here; :meth:`fit` learns ``booster_``, ``encoder_``,
    ``best_iteration_`` and ``calibration_`` (``a + b · margin`` is the calibrated log-odds).
    """

    kind = "pd_model"

    def fit(self, X: pd.DataFrame, y, X_valid: pd.DataFrame, y_valid, X_calib: pd.DataFrame | None = None,
            y_calib=None) -> CreditModel:
        """Fit on ``X``, stop early on ``X_valid``, calibrate on ``X_calib`` (the validation
        window when not given). Returns self."""
        self._check_frames(X, X_valid, X_calib)
        y, y_valid = _binary(y, "training"), _binary(y_valid, "validation")
        self._train(X, y, X_valid, y_valid, {"objective": "binary"}, "auc")
        calib_X, calib_y = (X_valid, y_valid) if X_calib is None else (X_calib, _binary(y_calib, "calibration"))
        self.calibration_ = _platt(self.raw(calib_X), calib_y)
        return self

    def calibrated_log_odds(self, margin: np.ndarray) -> np.ndarray:
        a, b = self.calibration_
        return a + b * np.asarray(margin)

    def predict_pd(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Calibrated probability of default per row."""
        return 1.0 / (1.0 + np.exp(-self.calibrated_log_odds(self.raw(X, num_threads))))

    def _state(self) -> dict:
        return {**super()._state(), "calibration": list(self.calibration_)}

    def _restore(self, state: dict) -> None:
        self.calibration_ = tuple(state["calibration"])


def _platt(margin: np.ndarray, y: np.ndarray) -> tuple[float, float]:
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


QUANTILE_PARAMS = {"learning_rate": 0.1, "num_leaves": 15, "max_depth": 4}
"""The capacity model learns faster and shallower than the PD model: it is not explained tree by
tree at scoring time, but it runs beside every decision, so its size is scoring time."""


class QuantileModel(_Boosted):
    """A LightGBM quantile regression of a positive amount (fitted on its logarithm, which keeps
    quantiles): ``predict`` gives the ``alpha`` quantile in the amount's own unit."""

    kind = "capacity_model"

    default_params = QUANTILE_PARAMS

    def __init__(self, alpha: float = 0.2, n_estimators: int = 800, **kwargs):
        super().__init__(n_estimators=n_estimators, **kwargs)
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
