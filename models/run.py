"""The analyst's two steps, as the command line and the notebooks run them: train a challenger,
and promote it to champion through the gate.

:func:`train_challenger` builds the training frame from the lake (each matured loan's profile as
of its grant date), splits it by time, fits the bundle, evaluates it out of time, writes the
validation report and logs everything to MLflow, registering the model as ``challenger``.
:func:`promote` scores the challenger and the champion on the same out-of-time loans and moves
``champion`` only when :func:`gate` holds, or when forced with a reason (which is logged).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from models.bundle import ModelBundle
from models.dataset import (LakeHistory, distress_training_frame, label_loans, mature_features,
                            split_by_time)
from models.fairness import fair_lending
from models.gate import GateCheck, Verdict, judge
from models.policy import Policy
from models.scorecard import benchmark_scorecard
from models.train import (Evaluation, evaluate, fit_bundle, monotonicity, policy_directions, profile_columns,
                          psi_table, stage_contributions)

MIN_DISTRESS_ROWS, MIN_DISTRESS_EVENTS = 2_000, 50
"""Below these, stage 1 would learn less than the loans already teach: one stage instead."""

@dataclass
class TrainingResult:
    """A trained challenger: where it is and how it did."""

    bundle: ModelBundle
    evaluation: Evaluation
    report_path: Path
    bundle_dir: Path
    run_id: str | None
    version: str | None
    seconds: dict[str, float] = field(default_factory=dict)
    registered_before: bool = False
    """The bundle was already registered as ``version`` (the same data and settings): no new version."""


def whole_list_fairness(home: Path, bundle, loans_fairness):
    """Fair lending on the whole pre-credit list (:func:`models.fairness.population_fairness`): every
    enterprise of the newest stored profile built under the bundle's feature set, or None when
    there is none (the report says how to get one)."""
    from features.profile.store import ProfileStore
    from models.fairness import population_fairness

    store = ProfileStore(home)
    for as_of in reversed(store.dates()):
        if store.info(as_of).feature_set_version == bundle.meta["feature_set_version"]:
            return population_fairness(bundle, store.read(as_of), as_of.isoformat(), loans_fairness)
    return None


def train_challenger(home: Path, snapshots: pd.DataFrame | None = None, policy: Policy | None = None,
                     params: dict | None = None, register: bool = True, split_months: dict | None = None,
                     progress=None, two_stage: bool = True, leave_out: tuple[str, ...] = (),
                     experiment: str | None = None, tags: dict[str, str] | None = None) -> TrainingResult:
    """Train, evaluate, report and register a challenger from the lake under ``home``: the loans
    split by evidence (:func:`~models.dataset.split_by_time`), the features the lake's history
    covers (:func:`~models.dataset.mature_features`), stage 1 on the city's enterprise-months
    before the out-of-time window (unless ``two_stage`` is False), stage 2 on the loans.
    ``leave_out``: features the models may not use, besides those the policy keeps out of every
    model (``[fair_use] not_in_model``): to measure what a fair-use choice costs.

    ``experiment``: the MLflow experiment to log to (default :data:`models.tracking.EXPERIMENT`);
    exploration (:data:`models.tracking.EXPLORATION`) never registers a version or moves an alias.
    ``tags`` go on the run (a notebook's name and parameters). Every run writes its own report file."""
    from features.lake import Lake
    from features.profile.build import training_snapshots
    from models import report as report_module
    from models import tracking

    say = progress or (lambda message: None)
    seconds: dict[str, float] = {}
    tick = time.perf_counter()
    say("building each loan's profile as of its grant date")
    snapshots = snapshots if snapshots is not None else training_snapshots(home)
    frame = label_loans(snapshots, Lake(home))
    windows, split = split_by_time(frame, **(split_months or {}))
    seconds["training frame"] = time.perf_counter() - tick

    tick = time.perf_counter()
    say("reading the whole lake: history starts and every enterprise's months")
    history = LakeHistory.read(home)
    fitted = pd.concat([windows[w]["grant_date"] for w in ("train", "valid", "calib")])
    columns, excluded = mature_features(history.starts, fitted.min().date(), profile_columns())
    kept_out = set(leave_out) | set((policy or Policy.load()).not_in_model)
    columns = [c for c in columns if c not in kept_out]
    distress = None
    if two_stage:
        before_oot = windows["oot"]["grant_date"].min() - pd.Timedelta(days=1)
        # Stage 1 never sees an enterprise of the loan book: a defaulted loan is followed by the
        # bank's enforcement case, which is a distress event, so a borrower's months would teach
        # stage 1 the very outcomes stage 2 is fitted, calibrated and tested on.
        distress = distress_training_frame(history, fitted.min().date(), before_oot.date(), seed=0,
                                           exclude=set(snapshots["uscc"]))
        if len(distress) < MIN_DISTRESS_ROWS or distress["distress"].sum() < MIN_DISTRESS_EVENTS:
            split.evidence.append(f"{len(distress):,} enterprise-months of enterprises outside the loan book have a "
                                  f"whole year of outcomes in the lake before the out-of-time window: too few for a "
                                  f"first stage ({MIN_DISTRESS_ROWS:,} months and {MIN_DISTRESS_EVENTS} distress "
                                  "events needed), so one stage, on the loans alone")
            distress = None
    seconds["distress frame"] = time.perf_counter() - tick

    tick = time.perf_counter()
    say(f"fitting on {len(windows['train']):,} loans ({split.train[0]}…{split.train[1]})"
        + (f" and {len(distress):,} enterprise-months" if distress is not None else "")
        + f", out of time {split.oot[0]}…{split.oot[1]}")
    bundle = fit_bundle(windows, split, policy, params, distress=distress, columns=columns)
    if distress is not None:
        bundle.meta["stages"]["excluded"] = "enterprises of the loan book (their outcomes are stage 2's)"
    bundle.meta["features_excluded"] = excluded.to_dict(orient="records")
    seconds["fit"] = time.perf_counter() - tick

    tick = time.perf_counter()
    say("evaluating out of time and writing the report")
    evaluation = evaluate(bundle, windows["oot"])
    train_scores = bundle.decide(windows["train"], explain=False).score
    psi = psi_table(windows["train"], windows["oot"], train_scores, evaluation.decisions.score, columns)
    monotone = monotonicity(bundle.pd_model, windows["oot"].sample(min(300, len(windows["oot"])), random_state=0),
                            directions=policy_directions(bundle.policy))
    benchmark = benchmark_scorecard(windows, columns, evaluation)
    stages = None
    if distress is not None:
        say("stage 1 out of time, on enterprises that borrowed and that never did")
        later = distress_training_frame(history, windows["oot"]["grant_date"].min().date(), history.end, 50_000, seed=1)
        stages = stage_contributions(bundle.pd_model, windows["oot"], later, set(snapshots["uscc"]))
    headline = {f"oot_{k}": v for k, v in evaluation.metrics.items()}
    headline["psi_score"] = float(psi.loc[psi["variable"] == "score", "psi"].iloc[0])
    features_psi = psi[psi["variable"] != "score"].sort_values("psi", ascending=False)
    headline["psi_max_feature"] = float(features_psi["psi"].iloc[0]) if len(features_psi) else 0.0
    headline["psi_worst_feature"] = str(features_psi["variable"].iloc[0]) if len(features_psi) else ""
    headline["monotonicity_holds"] = float(all(monotone.values()))
    headline["benchmark_auc"] = benchmark.metrics["auc"]
    bundle.meta["metrics"] = headline
    bundle.meta["monotonicity_holds"] = all(monotone.values())
    bundle.meta["benchmark"] = benchmark.metrics
    fairness = fair_lending(evaluation.frame, evaluation.decisions, bundle.policy)
    bundle.meta["fair_lending_findings"] = fairness.findings  # saved with the bundle, registered with it
    population = whole_list_fairness(home, bundle, fairness)
    if population is not None:
        bundle.meta["population_fair_lending"] = population.as_json()
    models_dir = Path(home) / "models"
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    bundle_dir = bundle.save(models_dir / stamp / "bundle")
    page = report_module.render(report_module.build(bundle, evaluation, psi, fairness, monotone,
                                                    (f"信易贷预授信模型 {bundle.meta['bundle_id']} 验证报告",
                                                     f"Pre-credit model {bundle.meta['bundle_id']}: validation report"),
                                                    benchmark, stages, excluded, population))
    report_path = _new_report_path(Path(home) / "reports", f"model-{bundle.meta['bundle_id']}-{stamp}")
    report_path.write_text(page, "utf-8")
    seconds["evaluate and report"] = time.perf_counter() - tick

    tick = time.perf_counter()
    say("logging to MLflow")
    run_params = {"split": split.as_dict(), "policy_version": bundle.policy.version,
                  "feature_set_version": bundle.meta["feature_set_version"], "pd_trees": bundle.meta["pd_trees"],
                  "capacity_trees": bundle.meta["capacity_trees"], "capacity_quantile": bundle.policy.capacity_quantile,
                  "model_params": params or "defaults", "loans": bundle.meta["loans"]}
    files = {"validation_report.html": page, "psi.csv": psi.to_csv(index=False),
             "calibration_by_decile.csv": evaluation.calibration.to_csv(index=False),
             "monotonicity.json": json.dumps(monotone, indent=1),
             "benchmark_scorecard.csv": benchmark.table.to_csv(index=False),
             "features_excluded.csv": excluded.to_csv(index=False),
             **({"stages.csv": stages.to_csv(index=False)} if stages is not None else {}),
             **{f"fair_lending_{by}.csv": table.to_csv(index=False) for by, table in fairness.tables.items()}}
    run_id, version, new_version = tracking.log_training(bundle, bundle_dir, windows["oot"], run_params, headline,
                                                         files, register, experiment=experiment, tags=tags)
    if version:
        bundle.meta["model_version"] = version
    seconds["mlflow"] = time.perf_counter() - tick
    return TrainingResult(bundle, evaluation, report_path, bundle_dir, run_id, version, seconds,
                          registered_before=bool(version) and not new_version)


def _new_report_path(folder: Path, stem: str) -> Path:
    """A report file name no earlier run used: a retrained bundle identical to an earlier one
    gets its own page, never the earlier run's."""
    folder.mkdir(parents=True, exist_ok=True)
    path, n = folder / f"{stem}.html", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.html"
    return path


@dataclass
class Promotion:
    """What ``xyd promote`` decided (or, in a dry run, would decide), and on what."""

    challenger_version: str
    champion_version: str | None
    challenger: dict
    champion: dict | None
    verdict: Verdict
    promoted: bool
    forced: bool
    reason: str | None
    dry_run: bool = False

    @property
    def checks(self) -> list[GateCheck]:
        return self.verdict.checks

    @property
    def loans(self) -> int:
        return self.verdict.loans

    @property
    def window(self) -> tuple[str, str]:
        return self.verdict.window


class PromotionError(ValueError):
    """A promotion that cannot be attempted as asked."""


class SameAsChampion(PromotionError):
    """The challenger is the champion's bundle again (retrained on the same data with the same
    settings): there is nothing to promote."""

    def __init__(self, message: str, champion_version: str):
        super().__init__(message)
        self.champion_version = champion_version


def comparison_loans(home: Path, window: tuple[str, str], snapshots: pd.DataFrame | None = None) -> pd.DataFrame:
    """The lake's labelled loans granted in ``window`` (first and last YYYY-MM): what a challenger
    and the champion are compared on. :class:`PromotionError` when they hold one outcome only."""
    from features.lake import Lake
    from features.profile.build import training_snapshots

    frame = label_loans(snapshots if snapshots is not None else training_snapshots(home), Lake(home))
    month = frame["grant_date"].dt.to_period("M").astype(str)
    loans = frame[(month >= window[0]) & (month <= window[1])].reset_index(drop=True)
    if loans.empty or loans["defaulted"].nunique() < 2:
        raise PromotionError(f"the lake holds no labelled loans of both outcomes in the challenger's out-of-time "
                             f"window {window[0]}…{window[1]}")
    return loans


def gate_verdict(home: Path, challenger: ModelBundle, snapshots: pd.DataFrame | None = None,
                 cache: Path | None = None) -> tuple[Verdict, ModelBundle | None, pd.DataFrame]:
    """The gate's verdict (:func:`models.gate.judge`) for ``challenger``, registered or not,
    against the registered champion (None before the first) on the challenger's out-of-time
    loans, with the tolerances of the champion's policy (the one in force). Returns the verdict,
    the champion and the loans. Changes nothing: what the notebooks show before anyone
    promotes, and what :func:`promote` acts on."""
    from models import tracking

    cache = cache or Path(home) / "models" / "registry-cache"
    try:
        champion = tracking.load_bundle(tracking.CHAMPION, cache)
    except tracking.ModelNotFound:
        champion = None
    window = tuple(challenger.meta["split"]["oot"])
    loans = comparison_loans(home, window, snapshots)
    if champion is not None:
        missing = [c for c in champion.features if c not in loans.columns]
        if missing:
            raise PromotionError(f"the champion (version {champion.version}) reads features the profile no longer "
                                 f"has ({missing[:5]}); promote with --force --reason")
    return judge(challenger, champion, loans, window, (champion or challenger).policy.gate), champion, loans


def promote(home: Path, force: bool = False, reason: str | None = None, snapshots: pd.DataFrame | None = None,
            cache: Path | None = None, dry_run: bool = False) -> Promotion:
    """Judge ``challenger`` against ``champion`` (:func:`gate_verdict`) and move ``champion``
    when the gate holds, or when forced with a reason. ``dry_run``: the whole verdict, and
    nothing moved or logged. A challenger that is the champion, or its bundle again, is refused
    (:class:`SameAsChampion`), forced or not."""
    from models import tracking

    if force and not (reason or "").strip():
        raise PromotionError("--force needs --reason: a forced promotion is logged with why")
    same = tracking.already_champion()
    if same is not None:
        raise SameAsChampion(*same)
    cache = cache or Path(home) / "models" / "registry-cache"
    challenger = tracking.load_bundle(tracking.CHALLENGER, cache)
    verdict, champion, loans = gate_verdict(home, challenger, snapshots, cache)
    if champion is not None and champion.version == challenger.version:
        raise SameAsChampion(f"version {challenger.version} is already the champion", champion.version)
    if verdict.identical:
        raise SameAsChampion(f"version {challenger.version}: {verdict.checks[0].evidence}", champion.version)
    measured = evaluate(challenger, loans).metrics
    champion_measures = evaluate(champion, loans).metrics if champion is not None else None
    promoted = not dry_run and (verdict.holds or force)
    forced = promoted and force and not verdict.holds
    if promoted:
        tags = {"promoted_at": dt.datetime.now().isoformat(timespec="seconds"), "promotion_forced": str(forced),
                "promotion_reason": reason or "gate held",
                "replaced_champion": champion.version if champion is not None else "none"}
        tracking.set_alias(tracking.CHAMPION, challenger.version, tags)
    result = Promotion(challenger.version, champion.version if champion else None, measured, champion_measures, verdict,
                       promoted, forced, reason, dry_run)
    if not dry_run:
        _log_promotion(Path(home), result)
    return result


def _log_promotion(home: Path, result: Promotion) -> None:
    """Append the decision to ``XYD_HOME/reports/promotions.jsonl`` (kept beside MLflow's tags)."""
    path = home / "reports" / "promotions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"at": dt.datetime.now().isoformat(timespec="seconds"), "challenger": result.challenger_version,
              "champion_before": result.champion_version, "promoted": result.promoted, "forced": result.forced,
              "reason": result.reason, "loans": result.loans, "defaults": result.verdict.defaults,
              "window": list(result.window), "checks": [c.__dict__ for c in result.checks]}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False, default=float) + "\n")


