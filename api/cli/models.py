"""``xyd train``, ``xyd promote``, ``xyd score``: the models' life cycle from the command line."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
from rich.table import Table

from api.cli import InputError, frame_records, output_console, print_json
from features.home import xyd_home
from features.profile.build import ProfileBuildError

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _refuse(error: Exception | str) -> None:
    """The model stack's refusal as the command line's: one line on standard error, naming what to
    run instead; exit 1."""
    raise InputError(str(error)) from None


@click.command(short_help="Train a challenger and register it in MLflow.")
@click.option("--no-register", is_flag=True, help="Log the run to MLflow without registering the model.")
@click.option("--oot-months", type=click.IntRange(1, 60), default=None,
              help="Newest matured grant months kept out of time [default: the fewest holding --min-defaults].")
@click.option("--calib-months", type=click.IntRange(1, 60), default=None,
              help="Grant months before those, for the calibration map [default: by defaults, as above].")
@click.option("--valid-months", type=click.IntRange(1, 60), default=None,
              help="Grant months before those, for early stopping [default: by defaults, as above].")
@click.option("--warmup-months", type=click.IntRange(0, 60), default=13, show_default=True,
              help="The lake's first months, left out; features needing more history than this are not used.")
@click.option("--min-defaults", type=click.IntRange(1, 10_000), default=30, show_default=True,
              help="Defaults each validation, calibration and out-of-time window needs.")
@click.option("--one-stage", is_flag=True, help="Learn from the banks' loans alone (no distress stage).")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The credit policy to train under (a copy goes into the bundle) [default: the packaged one].")
@click.option("--explore", is_flag=True,
              help="Log to the exploration experiment: nothing registered, no alias moved (implies --no-register).")
def train(no_register: bool, oot_months: int | None, calib_months: int | None, valid_months: int | None,
          warmup_months: int, min_defaults: int, one_stage: bool, policy_file: Path | None, explore: bool) -> None:
    """Train a challenger: each matured loan's profile as of its grant date, windows sized by
    defaults, distress learned from every enterprise's months (stage 1) and defaults from the
    loans (stage 2), an out-of-time validation report beside a benchmark scorecard, an MLflow run
    and registry.

    Example: xyd train --min-defaults 50"""
    from models import tracking
    from models.estimator import ModelInputError
    from models.policy import Policy, PolicyError
    from models.run import train_challenger

    console = output_console()
    try:
        policy = Policy.load(policy_file)
        with console.status("training") as status:
            result = train_challenger(xyd_home(), policy=policy, register=not (no_register or explore),
                                      experiment=tracking.EXPLORATION if explore else None,
                                      split_months={"oot_months": oot_months, "calib_months": calib_months,
                                                    "valid_months": valid_months, "warmup_months": warmup_months,
                                                    "min_defaults": min_defaults},
                                      progress=lambda message: status.update(message + " …"), two_stage=not one_stage)
    except (ProfileBuildError, PolicyError, ModelInputError) as error:
        _refuse(error)
    bundle, measures = result.bundle, result.evaluation.metrics
    split = bundle.meta["split"]
    registered = result.version or ("(explored: not registered)" if explore else "(not registered)")
    if result.registered_before:
        registered += " (this bundle was registered before: no new version)"
    table = Table(title=f"challenger {registered} · bundle {bundle.meta['bundle_id']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for window in ("train", "valid", "calib", "oot"):
        months = "…".join(split[window]) if split[window][0] else "cross-validated on the training loans"
        table.add_row(f"{window} window", f"{months}: {bundle.meta['loans'][window]:,} loans, "
                                          f"{bundle.meta['defaults'][window]:,} defaults")
    stages = bundle.meta.get("stages")
    if stages:
        table.add_row("stage 1: enterprise-months, distressed", f"{stages['enterprise_months']:,}, "
                                                                f"{stages['distress_rate']:.1%}")
    table.add_row("features used (not yet mature: left out)",
                  f"{bundle.meta['features_used']} ({len(bundle.meta['features_excluded'])})")
    table.add_row("out of time: auc (95 % interval)",
                  f"{measures['auc']:.4f} ({measures['auc_low']:.3f}…{measures['auc_high']:.3f})")
    for key in ("ks", "brier", "ece", "approval_rate", "limit_within_capacity"):
        table.add_row(f"out of time: {key}", f"{measures[key]:.4f}")
    table.add_row("benchmark scorecard: out-of-time auc", f"{bundle.meta['benchmark']['auc']:.4f}")
    table.add_row("score PSI training → out of time", f"{bundle.meta['metrics']['psi_score']:.4f}")
    table.add_row(f"largest feature PSI ({bundle.meta['metrics']['psi_worst_feature']})",
                  f"{bundle.meta['metrics']['psi_max_feature']:.4f}")
    table.add_row("monotone constraints hold", "yes" if bundle.meta["monotonicity_holds"] else "NO")
    table.add_row("trees (PD, capacity)", f"{bundle.meta['pd_trees']}, {bundle.meta['capacity_trees']}")
    for stage, seconds in result.seconds.items():
        table.add_row(f"seconds: {stage}", f"{seconds:.1f}")
    table.caption = f"report: {result.report_path} · MLflow run {result.run_id}"
    console.print(table)
    for note in split.get("evidence", []):
        console.print(f"[yellow]evidence:[/yellow] {note}")


@click.command(short_help="Promote the challenger through the gate (or --dry-run).")
@click.option("--dry-run", is_flag=True, help="Show the whole verdict and change nothing (no alias moved, nothing logged).")
@click.option("--force", is_flag=True, help="Promote even if the gate does not hold (needs --reason).")
@click.option("--reason", help="Why: logged with the promotion.")
def promote(dry_run: bool, force: bool, reason: str | None) -> None:
    """Judge the challenger against the champion on the same out-of-time loans and move
    `champion` when the gate holds: a clean comparison window, the AUC drop's paired interval
    within the policy's tolerance, monotone, PSI and ECE limits, and business impact (approval
    rate, mean limit, grade mix) within the policy's [gate] limits. Exit 1 when refused.

    Example: xyd promote --dry-run
    """
    if dry_run and force:
        raise click.UsageError("--dry-run changes nothing: it cannot be forced")
    if force and not reason:  # said before the model stack loads
        raise click.UsageError("--force needs --reason: a forced promotion is logged with why")
    from models import registry_store

    same = registry_store.refusal_from_store()  # nothing to judge: said from the store before MLflow loads
    if same == registry_store.CANNOT_TELL:
        from models import tracking

        try:  # from the registry, through MLflow, before the model stack loads
            same = tracking.already_champion()
        except tracking.ModelNotFound as error:
            _refuse(error)
    if same is not None:
        _refuse(same[0])
    from models.run import PromotionError, promote as run_promotion

    console = output_console()
    try:
        with console.status("scoring challenger and champion on the same loans"):
            result = run_promotion(xyd_home(), force, reason, dry_run=dry_run)
    except (PromotionError, tracking.ModelNotFound, ProfileBuildError) as error:
        _refuse(error)
    verdict = result.verdict
    table = Table(title=f"promotion gate · challenger {result.challenger_version} vs champion "
                        f"{result.champion_version or '(none yet)'} · {verdict.loans:,} loans granted "
                        f"{verdict.window[0]}…{verdict.window[1]}, {verdict.defaults:,} defaults")
    for header in ("kind", "rule", "value", "limit", "holds", "evidence"):
        table.add_column(header, justify="right" if header in ("value", "holds") else "left")
    for check in verdict.checks:
        table.add_row(check.kind, check.rule, f"{check.value:.4f}", check.limit, "yes" if check.holds else "[red]no",
                      check.evidence)
    console.print(table)
    if len(verdict.differences):
        differences = Table(title=f"challenger − champion, {verdict.tolerances['confidence']:.0%} paired intervals")
        for header in ("measure", "champion", "challenger", "change", "interval", "p", "method"):
            differences.add_column(header, justify="left" if header in ("measure", "method") else "right")
        for row in verdict.differences.itertuples(index=False):
            differences.add_row(row.measure, f"{row.champion:.4f}", f"{row.challenger:.4f}", f"{row.change:+.4f}",
                                f"{row.low:+.4f}…{row.high:+.4f}", f"{row.p_value:.3f}", row.method)
        console.print(differences)
    if dry_run:
        console.print(("[green]dry run: the gate holds; `xyd promote` would make version "
                       f"{result.challenger_version} the champion") if verdict.holds else
                      "[yellow]dry run: the gate refuses (" + "; ".join(c.rule for c in verdict.failed) + ")")
        console.print("nothing was changed")
        if not verdict.holds:  # a script asking "would it pass?" reads the answer from the exit status
            sys.exit(1)
    elif result.promoted:
        note = " (forced: " + (result.reason or "") + ")" if result.forced else ""
        console.print(f"[green]version {result.challenger_version} is now the champion{note}")
    else:
        console.print("[red]the gate does not hold: the champion stays; --force --reason '…' overrides, logged")
        sys.exit(1)


@click.command(short_help="Write the pre-credit list (预授信名单) of a stored profile.")
@click.option("--as-of", "as_of", type=DATE, required=True, help="The stored profile to score (YYYY-MM-DD).")
@click.option("--model", "model", default="champion", show_default=True,
              help="Registry alias (champion, challenger) or version number.")
@click.option("--json", "as_json", is_flag=True, help='One JSON object instead of the table: the model and policy '
                                                        'versions, the files written and a row per grade.')
def score(as_of: dt.datetime, model: str, as_json: bool) -> None:
    """Write the pre-credit list (预授信名单) for a stored profile: Parquet, and CSV for Excel.

    Example: xyd score --as-of 2026-06-30"""
    from models import tracking
    from models.batch import ScoringError, score_profile, summary

    console = output_console()
    home = xyd_home()
    try:
        bundle = tracking.load_bundle(model, home / "models" / "registry-cache")
        result = score_profile(home, as_of.date(), bundle)
    except (tracking.ModelNotFound, ScoringError) as error:
        _refuse(error)
    frame = summary(result.frame)
    if as_json:
        print_json({"as_of": as_of.date().isoformat(), "model_version": bundle.version,
                    "policy_version": bundle.policy.version, "enterprises": len(result.frame),
                    "parquet": str(result.parquet), "csv": str(result.csv),
                    "by_grade": frame_records(frame)})
        return
    table = Table(title=f"pre-credit list as of {as_of.date()} · model {bundle.version} · policy {bundle.policy.version}")
    for column in frame.columns:
        table.add_column(column, justify="left" if column == "grade" else "right")
    for row in frame.itertuples(index=False):
        table.add_row(row.grade, f"{row.enterprises:,}", f"{row.mean_pd:.4f}", f"{row.approved:,}", f"{row.referred:,}",
                      f"{row.declined:,}", f"{row.total_limit_yuan:,.0f}")
    rate = len(result.frame) / result.decide_seconds if result.decide_seconds else 0
    table.caption = (f"{len(result.frame):,} enterprises, {rate:,.0f}/s with reason codes · "
                     f"{result.parquet} · {result.csv}")
    console.print(table)


@click.command(short_help="Drift on like populations: stable, watch or retrain.")
@click.option("--as-of", "as_of", type=DATE, required=True, help="The latest profile date to monitor (YYYY-MM-DD).")
@click.option("--model", "model", default="champion", show_default=True,
              help="Registry alias (champion, challenger) or version number.")
@click.option("--recent-months", type=click.IntRange(1, 36), default=6, show_default=True,
              help="Recent applicants: loans granted in this many months up to --as-of.")
@click.option("--fail-on", type=click.Choice(["retrain", "watch"]), default=None,
              help="Exit 1 when the verdict is this or worse (for a scheduled job).")
@click.option("--json", "as_json", is_flag=True, help='One JSON object instead of the tables: the verdict, the rules '
              'that fired, the populations compared and every table behind them (applicants, population, missing, '
              'realised, silent), a row per line.')
def monitor(as_of: dt.datetime, model: str, recent_months: int, fail_on: str | None, as_json: bool) -> None:
    """Is the model still deciding on the population it learned from? Training borrowers against
    recent applicants and the living population against itself a year before (score first, then
    features), sources' missing shares and deliveries, realised against predicted default; then a
    verdict, stable, watch or retrain, with the rules that fired.

    Example: xyd monitor --as-of 2026-06-30 --fail-on retrain"""
    from models import tracking
    from models.monitoring import drift_text, monitor as run_monitoring

    console = output_console()
    home = xyd_home()
    try:
        bundle = tracking.load_bundle(model, home / "models" / "registry-cache")
        with console.status("measuring drift on like populations"):
            found = run_monitoring(bundle, home, as_of.date(), recent_months=recent_months)
    except (tracking.ModelNotFound, ProfileBuildError) as error:
        _refuse(error)
    order = ("stable", "watch", "retrain")
    failed = bool(fail_on) and order.index(found.verdict) >= order.index(fail_on)
    if as_json:
        print_json({"as_of": as_of.date().isoformat(), "model_version": bundle.version, "verdict": found.verdict,
                    "rules": found.rules, "populations": found.populations,
                    **{name: frame_records(getattr(found, name))
                       for name in ("applicants", "population", "missing", "realised", "silent")}})
        sys.exit(1 if failed else 0)
    for name, rows in found.populations.items():
        console.print(f"{name}: {rows}")
    table = Table(title=f"model {bundle.version} · applicants: training borrowers → recent applicants")
    shown = drift_text(found.applicants.head(12))
    for column in shown.columns:
        table.add_column(column)
    for row in shown.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)
    colour = {"stable": "green", "watch": "yellow", "retrain": "red"}[found.verdict]
    console.print(f"[{colour}]verdict: {found.verdict}[/{colour}]")
    for rule in found.rules:
        console.print(f" - {rule}")
    if failed:
        sys.exit(1)
