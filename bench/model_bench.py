"""Benchmark: train the pre-credit models on big cities, check the quality targets against the
generator's ground truth, and measure batch scoring with reason codes against the bare boosters.

    python bench/model_bench.py --seeds 9 10 11 --runs 3

Each city (100,000 entities x 36 months, 14x the usual loans: over 100,000 matured loans) is
generated and ingested into ``cities/bench-model-100k-s<seed>-home`` the first time. Training runs
as ``xyd train`` in a fresh process (training frame, the whole city's enterprise-months for stage
1, both fits, the benchmark scorecard, report, MLflow logging and registration included) into a
private MLflow store. Quality, out of time, on the model's out-of-time loans: AUC against the AUC
of the generator's true PD and against the hidden-state ceiling (what a model knowing the
generator's hidden state at each loan's anchor month reaches), ECE, the share of repaid loans
whose limit stays within the capacity the borrower really had, the largest feature PSI, the
benchmark scorecard's AUC; stage 1's ranking of every living enterprise against the generator's
true PD at the city's end, for those that never borrowed and those that did. Scoring: the whole
profile as of the city's last day, ``ModelBundle.decide`` plus the reason-code table, against
``Booster.predict(pred_contrib=True)`` of both stages alone on the same rows, alternating, in one
process; then the advice for the whole profile and for 200 single enterprises below grade A. Medians over seeds (quality) and runs (speed); ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synth_bench import machine  # noqa: E402

AS_OF = dt.date(2026, 6, 30)


def paths(seed: int) -> tuple[Path, Path]:
    """The city and its platform home for a seed."""
    return Path(f"cities/bench-model-100k-s{seed}"), Path(f"cities/bench-model-100k-s{seed}-home")


def xyd(*args: str, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "api.cli", *args], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def ensure_city(seed: int, env: dict) -> None:
    city, home = paths(seed)
    if not city.exists():
        print(f"generating {city} (100,000 entities x 36 months, loan rate 14)")
        xyd("synth", "--enterprises", "100000", "--months", "36", "--seed", str(seed), "--loan-rate", "14", "--dirty",
            "0.01", "--out", str(city), env=env)
    if not (home / "lake" / "_manifest.json").exists():
        print(f"ingesting into {home}")
        shutil.rmtree(home, ignore_errors=True)
        xyd("ingest", "--drop", str(city), env={**env, "XYD_HOME": str(home)})


def quality(bundle, seed: int) -> dict:
    """The out-of-time figures of one city's model (printed, and returned for the medians)."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from features.lake import Lake
    from models.dataset import label_loans
    from models.train import evaluate

    city, home = paths(seed)
    snapshots = pd.read_parquet(home / "snapshots" / "bench-training.parquet")
    frame = label_loans(snapshots, Lake(home))
    split = bundle.meta["split"]
    first, last = split["oot"]
    month = frame["grant_date"].dt.to_period("M").astype(str)
    oot = frame[(month >= first) & (month <= last)].reset_index(drop=True)
    evaluation = evaluate(bundle, oot)
    truth = pd.read_parquet(city / "ground_truth" / "loans.parquet").set_index("loan_no").loc[oot["loan_no"]]
    oracle = roc_auc_score(truth["defaulted_12m"], truth["true_pd"])
    repaid = ~truth["defaulted_12m"].to_numpy()
    within = evaluation.decisions.limit[repaid] <= truth["realised_capacity_12m"].to_numpy()[repaid] / 100
    fitted_until = max(w[1] for w in (split["train"], split["valid"], split["calib"]) if w[0])
    fitted = frame[(month >= split["train"][0]) & (month <= fitted_until)]
    ceiling = hidden_state_ceiling(city, fitted["loan_no"], oot["loan_no"])
    m = evaluation.metrics
    out = {"auc": m["auc"], "true_pd_auc": oracle, "ceiling": ceiling, "of_ceiling": m["auc"] / ceiling,
           "ece": m["ece"], "within_capacity": float(within.mean()), "approval": m["approval_rate"],
           "max_feature_psi": bundle.meta["metrics"]["psi_max_feature"], "benchmark_auc": bundle.meta["benchmark"]["auc"]}
    print(f"out of time {first}…{last}: {len(oot):,} loans, {int(oot['defaulted'].sum()):,} defaults; "
          f"{bundle.meta['features_used']} features used, {len(bundle.meta['features_excluded'])} not yet mature")
    print(f"  AUC {m['auc']:.4f} (95 % {m['auc_low']:.4f}…{m['auc_high']:.4f}); true PD {oracle:.4f}; hidden-state "
          f"ceiling {ceiling:.4f} ({ceiling / oracle:.4f} x the true PD's); model {out['of_ceiling']:.4f} x the "
          f"ceiling (target >= 0.985)")
    print(f"  ECE {m['ece']:.4f} (target <= 0.01); Brier {m['brier']:.4f}; KS {m['ks']:.4f}; approval "
          f"{m['approval_rate']:.1%}; limit within realised capacity for {within.mean():.1%} of repaid loans "
          f"(target >= 90 %)")
    print(f"  largest feature PSI {out['max_feature_psi']:.3f} ({bundle.meta['metrics']['psi_worst_feature']}; "
          f"target < 0.25); benchmark scorecard AUC {out['benchmark_auc']:.4f} (the champion must beat it)")
    out.update(feature_ceiling(bundle, frame, month, truth_all=pd.read_parquet(city / "ground_truth" / "loans.parquet")))
    out["features_of_ceiling"] = out["features_auc"] / ceiling
    print(f"  the model's own features with the true PD as label: AUC {out['features_auc']:.4f} = "
          f"{out['features_of_ceiling']:.4f} x the ceiling; every profile feature, mature or not: "
          f"{out['all_features_auc']:.4f} = {out['all_features_auc'] / ceiling:.4f} x")
    out.update(stage_one_ranking(bundle, city, home))
    out.update(fair_use_cost(bundle, home, snapshots, m["auc"]))
    return out


def fair_use_cost(bundle, home: Path, snapshots, champion_auc: float) -> dict:
    """What the policy's fair-use choices cost, on the same out-of-time loans: the same training
    with the features the policy keeps out of the model (district and industry) put back in, and
    with every firmographic feature left out as well."""
    import dataclasses

    from models.run import train_challenger

    kept_out = bundle.policy.not_in_model
    with_them = train_challenger(home, snapshots, policy=dataclasses.replace(bundle.policy, not_in_model=()),
                                 register=False).evaluation.metrics["auc"]
    print(f"  with the features the policy keeps out ({', '.join(kept_out) or 'none'}) put back: AUC {with_them:.4f}; "
          f"keeping them out costs {with_them - champion_auc:+.4f} (champion {champion_auc:.4f})")
    left_out = tuple(f for f in bundle.policy.not_named if f in bundle.features)
    result = train_challenger(home, snapshots, policy=bundle.policy, register=False, leave_out=left_out)
    auc = result.evaluation.metrics["auc"]
    print(f"  without the never-named features still in the model ({', '.join(left_out)}): AUC {auc:.4f}, "
          f"{auc - champion_auc:+.4f} against the champion's {champion_auc:.4f}")
    return {"auc_with_kept_out": with_them, "kept_out_cost": with_them - champion_auc,
            "auc_without_never_named": auc, "never_named_cost": champion_auc - auc}


def feature_ceiling(bundle, frame, month, truth_all) -> dict:
    """What the profile's features can give with unlimited labels: a booster of the champion's
    settings and monotone constraints fitted, on the same training loans, to the generator's
    true PD instead of the realised default (cross-entropy on the probability itself: the limit
    of infinitely many outcomes per loan, so neither label scarcity nor a first stage matters),
    stopped early on the validation window's true PD and scored out of time against the
    realised defaults. Once on the features the champion uses (mature ones), once on every
    feature of the profile."""
    import lightgbm as lgb
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from features.registry import FEATURES
    from models.estimator import DEFAULT_PARAMS, TabularEncoder

    split = bundle.meta["split"]
    truth = truth_all.set_index("loan_no")["true_pd"]
    windows = {}
    for name in ("train", "valid", "oot"):
        first, last = split[name] if split[name][0] else split["train"]
        windows[name] = frame[(month >= first) & (month <= last)]
    monotone = {f.name: f.monotone for f in FEATURES}
    categories = {f.name: list(f.categories) for f in FEATURES if f.is_categorical}
    params = {**DEFAULT_PARAMS, **bundle.meta["pd_params"], "objective": "cross_entropy", "metric": "cross_entropy",
              "monotone_constraints_method": "basic", "seed": 0, "deterministic": True, "force_row_wise": True}
    out = {}
    for key, columns in (("features_auc", bundle.pd_model.feature_names_in_),
                         ("all_features_auc", [f.name for f in FEATURES])):
        encoder = TabularEncoder(categories).fit(windows["train"][columns])
        matrix = {name: encoder.transform(w[columns]) for name, w in windows.items()}
        label = {name: truth.loc[w["loan_no"]].to_numpy() for name, w in windows.items()}
        constraints = [0 if c in encoder.categories_ else monotone.get(c, 0) for c in encoder.features_]
        train = lgb.Dataset(matrix["train"], label["train"], categorical_feature=encoder.categorical_indices)
        valid = lgb.Dataset(matrix["valid"], label["valid"], reference=train)
        booster = lgb.train({**params, "monotone_constraints": constraints}, train, 3000, valid_sets=[valid],
                            callbacks=[lgb.early_stopping(200, verbose=False)])
        out[key] = roc_auc_score(windows["oot"]["defaulted"], booster.predict(matrix["oot"], raw_score=True))
    return out


def stage_one_ranking(bundle, city: Path, home: Path) -> dict:
    """How stage 1 (and the whole model) rank every living enterprise at the city's end against
    the generator's true PD then: Spearman correlation and the expected AUC (each enterprise a
    default with its true PD's weight), for those that never borrowed and those that did."""
    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from features.profile.store import ProfileStore

    profile = ProfileStore(home).read(AS_OF)
    truth = pd.read_parquet(city / "ground_truth" / "entities.parquet").set_index("uscc")
    profile = profile[profile["uscc"].isin(truth.index)].reset_index(drop=True)
    true_pd = truth.loc[profile["uscc"], "true_pd_at_end"].to_numpy()
    borrowed = profile["uscc"].isin(set(pd.read_parquet(city / "ground_truth" / "loans.parquet")["uscc"])).to_numpy()
    model = bundle.pd_model
    scores = {"stage 1": model.stage1_.raw(profile[model.feature_names_in_]) if hasattr(model, "stage1_") else None,
              "both stages": model.raw(profile[model.feature_names_in_])}
    out = {}
    for name, score in scores.items():
        if score is None:
            continue
        for label, chosen in (("never borrowed", ~borrowed), ("borrowed", borrowed)):
            p, s = true_pd[chosen], score[chosen]
            soft = roc_auc_score(np.r_[np.ones(len(p)), np.zeros(len(p))], np.r_[s, s], sample_weight=np.r_[p, 1 - p])
            rho = spearmanr(s, p).statistic
            print(f"  {name}, {label} ({chosen.sum():,} enterprises): Spearman with the true PD {rho:.3f}, "
                  f"expected AUC {soft:.4f}")
            out[f"{name} {label} expected AUC"] = soft
    return out


def hidden_state_ceiling(city: Path, fit_loans, oot_loans) -> float:
    """Out-of-time AUC of a logistic model given what the generator knows at each loan's anchor
    month (the newest month every department has delivered: the month before the grant from the
    24th on, else the one before): the enterprise's permanent quality, its health deviation then,
    whether it is young, and the loan's leverage (which the profile does not hold). Only the
    owner factor and the health moves since the anchor are hidden from it, so no model of the
    profile can be expected to beat it."""
    import json

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from features.synth.city import CHUNK_SIZE
    from features.synth.population import Calendar, build_population

    spec = json.loads((city / "city.json").read_text())["spec"]
    calendar = Calendar(np.datetime64(spec["end"], "M"), spec["months"])
    parts = []
    for number, first in enumerate(range(0, spec["enterprises"], CHUNK_SIZE)):
        index = np.arange(first, min(first + CHUNK_SIZE, spec["enterprises"]), dtype=np.int64)
        pop = build_population(number, index, calendar, spec["seed"], spec["loan_rate"])
        entity, step = pop.loans["entity"], pop.loans["step"]
        lag = np.where(pop.loans["day"] + 1 >= 24, 1, 2)
        deviation = (pop.health - pop.quality[:, None])[entity, np.clip(step - lag, 0, None)]
        age_months = (calendar.month_start(step) - pop.established[entity]).astype(float) / 30.44
        parts.append(pd.DataFrame({
            "true_pd": pop.loans["true_pd"], "quality": pop.quality[entity], "deviation": deviation,
            "deviation_last_month": np.where(lag == 1, deviation, 0.0), "young": (age_months < 24).astype(float),
            "leverage": np.log(pop.loans["amount"] / (12 * np.exp(pop.log_size[entity])))}))
    hidden = pd.concat(parts, ignore_index=True)
    truth = pd.read_parquet(city / "ground_truth" / "loans.parquet")
    if len(hidden) != len(truth) or not np.allclose(hidden["true_pd"], truth["true_pd"]):
        raise SystemExit("the regenerated loans do not line up with the ground truth; was the generator changed?")
    hidden.index, hidden["defaulted"] = truth["loan_no"].to_numpy(), truth["defaulted_12m"].to_numpy()
    columns = ["quality", "deviation", "deviation_last_month", "young", "leverage"]
    fit, oot = hidden.loc[fit_loans], hidden.loc[oot_loans]
    model = LogisticRegression(C=100, max_iter=2000).fit(fit[columns], fit["defaulted"])
    return roc_auc_score(oot["defaulted"], model.decision_function(oot[columns]))


def scoring(bundle, home: Path, runs: int) -> dict:
    from features.profile.store import ProfileStore

    profile = ProfileStore(home).read(AS_OF)
    model = bundle.pd_model
    boosters = [model.stage1_, model.stage2_] if hasattr(model, "stage1_") else [model]
    started = time.perf_counter()
    bundle.decide(profile.head(256))  # once per process: the explainer's tables and the compiled walk
    print(f"  first decisions in this process (explainer tables, loading the compiled walk): "
          f"{time.perf_counter() - started:.2f} s, not counted below")
    full_rates, bare_rates, ratios = [], [], []
    for run in range(runs):
        started = time.perf_counter()
        decisions = bundle.decide(profile)
        table = decisions.frame()
        full = time.perf_counter() - started
        matrix = model.matrix(profile)
        started = time.perf_counter()
        for stage in boosters:
            stage.booster_.predict(matrix, pred_contrib=True, num_iteration=stage.best_iteration_)
        bare = time.perf_counter() - started
        full_rates.append(len(profile) / full)
        bare_rates.append(len(profile) / bare)
        ratios.append(bare / full)
        print(f"  run {run + 1}: decisions with reason codes {len(table) / full:,.0f}/s; bare pred_contrib of "
              f"{len(boosters)} stage(s) {len(profile) / bare:,.0f}/s; ratio {bare / full:.2f}")
    from models.advice import advise

    advice_rates = []
    for run in range(runs):
        started = time.perf_counter()
        given = sum(a is not None for a in advise(bundle, profile))
        advice_rates.append(len(profile) / (time.perf_counter() - started))
    wanting = profile[(decisions.grade != "A") | (decisions.decision != "approve")].sample(200, random_state=0)
    one = []
    for i in range(len(wanting)):
        started = time.perf_counter()
        advise(bundle, wanting.iloc[[i]])
        one.append((time.perf_counter() - started) * 1000)
    print(f"  advice for {len(profile):,} enterprises ({given:,} given): median {statistics.median(advice_rates):,.0f}/s "
          f"(target >= 200/s); one enterprise below A, in process: p50 {statistics.median(one):.1f} ms "
          f"(target <= 50 ms)")
    trees = " + ".join(str(stage.best_iteration_) for stage in boosters)
    print(f"  scoring {len(profile):,} enterprises ({trees} trees): median {statistics.median(full_rates):,.0f}/s "
          f"with reason codes (target >= 3,000/s), bare pred_contrib {statistics.median(bare_rates):,.0f}/s, "
          f"median ratio {statistics.median(ratios):.2f} (target >= 0.8)")
    return {"rate": statistics.median(full_rates), "ratio": statistics.median(ratios),
            "advice_rate": statistics.median(advice_rates), "advice_one_ms": statistics.median(one)}


def train_city(seed: int) -> tuple:
    """Generate and ingest the city (once), build its training snapshots and train with ``xyd train``
    in a fresh process into a private MLflow store: (bundle, home, store, seconds, xyd train's output).
    The process's environment then points at that home and store."""
    _, home = paths(seed)
    store = Path(tempfile.mkdtemp(prefix="xyd-model-bench-"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db", "XYD_HOME": str(home)}
    ensure_city(seed, env)
    os.environ.update({"MLFLOW_TRACKING_URI": env["MLFLOW_TRACKING_URI"], "XYD_HOME": str(home)})
    print(f"\n== city seed {seed} ==")
    seconds = xyd("features", "snapshots", "--out", str(home / "snapshots" / "bench-training.parquet"), env=env)
    print(f"training snapshots (every loan's profile at its grant date): {seconds:.1f} s")
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "api.cli", "train"], env={**env, "COLUMNS": "200"},
                             stdout=subprocess.PIPE, text=True)
    output, _ = child.communicate()
    train_seconds = time.perf_counter() - started
    if child.returncode:
        raise SystemExit(f"xyd train failed:\n{output}")
    from models import tracking
    bundle = tracking.load_bundle(tracking.CHALLENGER, store / "cache")
    xyd("features", "build", "--as-of", AS_OF.isoformat(), env=env)
    return bundle, home, store, train_seconds, output


def one_city(seed: int, runs: int) -> dict:
    """Generate (once), train in a fresh process, check quality and scoring for one city."""
    bundle, home, store, train_seconds, output = train_city(seed)
    trained = sum(bundle.meta["loans"][w] for w in ("train", "valid", "calib"))
    stages = bundle.meta.get("stages") or {}
    print(f"xyd train: {train_seconds:.1f} s in a fresh process (target <= 180 s), including the training frame, "
          f"{stages.get('enterprise_months', 0):,} enterprise-months for stage 1, the scorecard, the report and "
          f"MLflow; {sum(bundle.meta['loans'].values()):,} matured loans after the warm-up ({trained:,} to fit, "
          f"validate and calibrate, {bundle.meta['loans']['oot']:,} out of time)")
    print("\n".join(line for line in output.splitlines() if "seconds:" in line))
    result = {"train_seconds": train_seconds}
    result.update(quality(bundle, seed))
    result.update(scoring(bundle, home, runs))
    shutil.rmtree(store, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[9, 10, 11])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print_medians([one_city(seed, args.runs) for seed in args.seeds], args.seeds)


def print_medians(results: list[dict], seeds: list[int]) -> None:
    """Each figure's median over the cities, with every city's value."""
    print(f"\n== medians over {len(results)} cit{'y' if len(results) == 1 else 'ies'} (seeds {seeds}) ==")
    for key in results[0]:
        values = [r[key] for r in results if key in r]
        print(f"  {key}: median {statistics.median(values):.4f} ({', '.join(f'{v:.4f}' for v in values)})")


if __name__ == "__main__":
    main()
