"""The two-stage PD model: distress learned from the whole city, defaults from the banks' loans.

Stage 1 is a :class:`~models.estimator.CreditModel` of distress (:mod:`features.proxy`) in the
12 months after an as_of, fitted on enterprise-months of the enterprises outside the loan book
(:func:`models.run.train_challenger` leaves borrowers out, whose distress includes the banks'
own enforcement of the loans stage 2 learns): tens of thousands of outcomes where the banks
report a few hundred defaults. Stage 2 is a
:class:`~models.estimator.CreditModel` of the banks' defaults on granted loans that boosts from
stage 1's margin mapped to the default scale, ``a + b · m1`` (a logistic fit of default on the
stage-1 margin over the training loans, ``b ≥ 0`` so that both stages move every feature the
same declared way). The final margin is ``a + b · m1 + m2``; the calibration maps it to the PD.

One explanation. Both boosters are tree models of the same raw features, so their
``pred_contrib`` add feature by feature: a feature's contribution is ``b · c1 + c2`` and the base
value ``a + b · base1 + base2``; they sum to the final margin. A reason never says "stage-1
score". Both stages carry the registry's monotone constraints, so the sum does too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from models.estimator import CreditModel, candidate_params
from models.fitting import ModelInputError, binary_outcome, platt

STAGE1, STAGE2 = "stage1_model", "pd_model"
STAGE1_TREES = 400
STAGE1_LEAVES = 15
"""At most this many stage-1 trees of at most this many leaves. Every decision explains both
stages tree by tree (the cost grows with trees × leaves × depth), so stage 1's size is the
service's latency and the pre-credit list's speed. Stage 1 reaches the cap on the bench city;
the loans' out-of-time AUC did not depend on it there (0.7707 with stage 1, 0.7712 without)."""


class TwoStageModel(BaseEstimator):
    """Distress (stage 1) then default (stage 2), one additive explanation.

    Parameters are only stored; :meth:`fit` learns ``stage1_``, ``stage2_``, ``link_`` (a, b)
    and, through stage 2, ``calibration_``.

    Example
    -------
    >>> model = TwoStageModel(monotone={"arrears_months": 1}).fit(months, distress, loans, defaulted)
    >>> model.predict_pd(new_rows)
    """

    kind = "two_stage"

    def __init__(self, monotone: dict[str, int] | None = None, categories: dict[str, list] | None = None,
                 params: dict | None = None, seed: int = 0, num_threads: int = 0, ordered=(),
                 calibrate_within: str | None = None):
        self.calibrate_within = calibrate_within  # stage 2's calibration within groups (CreditModel)
        self.monotone = monotone
        self.categories = categories
        self.ordered = ordered
        self.params = params
        self.seed = seed
        self.num_threads = num_threads

    def fit(self, X_distress: pd.DataFrame, y_distress, X: pd.DataFrame, y, X_valid: pd.DataFrame | None = None,
            y_valid=None, X_calib: pd.DataFrame | None = None, y_calib=None, groups=None) -> TwoStageModel:
        """Stage 1 on enterprise-months (``X_distress``, ``y_distress``), stage 2 on loans (as
        :meth:`CreditModel.fit` takes them). Both frames have the same columns. ``groups`` (one
        enterprise code per month) holds a fifth of the enterprises out for stage 1's early
        stopping: months of one enterprise share 11 of their 12 outcome months, so a random
        held-out share would flatter it. Returns self."""
        if list(X_distress.columns) != list(X.columns):
            raise ModelInputError("the distress frame and the loans must have the same columns, in order")
        settings = {"monotone": self.monotone, "params": self.params, "seed": self.seed,
                    "num_threads": self.num_threads}
        first = {**settings}
        if self.params is None:
            events = int(np.asarray(y_distress).sum())
            book = candidate_params(len(X_distress), events)[0]
            first["params"] = {**book, "num_leaves": min(book["num_leaves"], STAGE1_LEAVES)}
        # both stages are explained tree by tree against a reference: no scorecard in them
        stage1 = CreditModel(categories=self.categories, ordered=self.ordered, n_estimators=STAGE1_TREES,
                             scorecard=False, **first)
        if groups is None:
            self.stage1_ = stage1.fit(X_distress, y_distress)
        else:
            from sklearn.model_selection import GroupShuffleSplit
            kept, held = next(GroupShuffleSplit(1, test_size=0.2, random_state=self.seed).split(
                X_distress, groups=np.asarray(groups)))
            y_all = np.asarray(y_distress)
            self.stage1_ = stage1.fit(X_distress.iloc[kept], y_all[kept], X_distress.iloc[held], y_all[held])
        categories = self.stage1_.encoder_.categories_  # the same matrix for both stages
        y_fit = binary_outcome(y, "training")
        a, b = platt(self.stage1_.raw(X), y_fit)
        if b <= 0:  # stage 1 ranks the loans the wrong way: it must not reverse the constraints
            b = 0.0
            a = float(np.log(y_fit.mean() / (1 - y_fit.mean())))
        self.link_ = (float(a), float(b))
        offsets = {name: None if frame is None else self.link_[0] + self.link_[1] * self.stage1_.raw(frame)
                   for name, frame in (("train", X), ("valid", X_valid), ("calib", X_calib))}
        self.stage2_ = CreditModel(categories=categories, ordered=self.ordered, scorecard=False,
                                   calibrate_within=self.calibrate_within, **settings).fit(
            X, y, X_valid, y_valid, X_calib, y_calib, offsets["train"], offsets["valid"], offsets["calib"])
        return self

    # the interface the bundle and the reports read (models.estimator.PDModel), as a CreditModel offers it
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "stage2_")

    @property
    def encoder_(self):
        return self.stage2_.encoder_

    @property
    def feature_names_in_(self) -> np.ndarray:
        check_is_fitted(self)
        return self.stage2_.feature_names_in_

    @property
    def n_features_in_(self) -> int:
        check_is_fitted(self)
        return self.stage2_.n_features_in_

    @property
    def monotone_(self) -> dict[str, int]:
        return self.stage2_.monotone_

    @property
    def calibration_(self) -> tuple[float, float]:
        return self.stage2_.calibration_

    @property
    def best_iteration_(self) -> int:
        return self.stage2_.best_iteration_

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        return self.stage2_.matrix(X)

    def contributions(self, matrix: np.ndarray, num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Per row: each feature's contribution to the final margin (both stages added) and the
        base value; they sum to the final margin."""
        check_is_fitted(self)
        a, b = self.link_
        first, base1 = self.stage1_.contributions(matrix, num_threads)
        second, base2 = self.stage2_.contributions(matrix, num_threads)
        return b * first + second, a + b * base1 + base2

    def explainer(self, reference: np.ndarray):
        """An :class:`models.shapley.Explainer` of the final margin against one encoded reference
        row: ``b ·`` stage 1's Shapley values ``+`` stage 2's, the reference margin likewise."""
        from models.shapley import Explainer, ReferenceExplainer

        a, b = self.link_
        return Explainer([(b, ReferenceExplainer(self.stage1_.tree_tables, reference)),
                          (1.0, ReferenceExplainer(self.stage2_.tree_tables, reference))], a)

    def stage_margins(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Per row: stage 1's share of the final margin (``a + b · m1``) and stage 2's (``m2``)."""
        check_is_fitted(self)
        matrix = X if isinstance(X, np.ndarray) else self.matrix(X)
        a, b = self.link_
        return a + b * self.stage1_.raw(matrix, num_threads), self.stage2_.raw(matrix, num_threads)

    def raw(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray:
        """The final margin (log-odds before calibration)."""
        first, second = self.stage_margins(X, num_threads)
        return first + second

    def explain(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> pd.DataFrame:
        """Per row: each column's contribution to the final margin, and ``base_value``."""
        contributions, base = self.contributions(X if isinstance(X, np.ndarray) else self.matrix(X), num_threads)
        return pd.DataFrame(np.column_stack([contributions, base]), columns=[*self.feature_names_in_, "base_value"])

    @property
    def calibration_shifts_(self) -> dict:
        return self.stage2_.calibration_shifts_

    def intercepts(self, matrix: np.ndarray | None, rows: int) -> np.ndarray:
        return self.stage2_.intercepts(matrix, rows)

    def calibrated_log_odds(self, margin: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray:
        return self.stage2_.calibrated_log_odds(margin, matrix)

    def predict_pd(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Calibrated probability of default per row (within its group, :class:`CreditModel`)."""
        matrix = X if isinstance(X, np.ndarray) else self.matrix(X)
        return 1.0 / (1.0 + np.exp(-self.calibrated_log_odds(self.raw(matrix, num_threads), matrix)))

    def predict_distress(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Stage 1's own probability of distress in the next 12 months (its calibration)."""
        return self.stage1_.predict_pd(X, num_threads)

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path) -> None:
        """Both boosters as LightGBM text and the link as JSON."""
        folder = Path(folder)
        self.stage1_.save(folder, STAGE1)
        self.stage2_.save(folder, STAGE2)
        (folder / f"{self.kind}.json").write_text(json.dumps({"link": list(self.link_)}, indent=1), "utf-8")

    @classmethod
    def load(cls, folder: Path) -> TwoStageModel:
        folder = Path(folder)
        model = cls()
        model.stage1_ = CreditModel.load(folder, STAGE1)
        model.stage2_ = CreditModel.load(folder, STAGE2)
        model.link_ = tuple(json.loads((folder / f"{cls.kind}.json").read_text("utf-8"))["link"])
        model.calibrate_within = model.stage2_.calibrate_within
        return model

    @classmethod
    def saved_in(cls, folder: Path) -> bool:
        return (Path(folder) / f"{cls.kind}.json").exists()

    FILES = (f"{STAGE1}.lgb.txt", f"{STAGE1}.json", f"{kind}.json")
    """What it saves besides stage 2's files (``pd_model.*``)."""
