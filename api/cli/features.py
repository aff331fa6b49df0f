"""``xyd features``: the feature registry, profile builds and training snapshots."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd
from rich.table import Table

from api.cli import InputError, output_console
from features import uscc as uscc_rules
from features.home import xyd_home
from features.profile.build import (
    ENGINES,
    BuildResult,
    ProfileBuildError,
    build as build_profile,
    rebuild_changed,
    training_snapshots,
)
from features.profile.store import ProfileStore
from features.registry import COVERED_SOURCES, FAMILIES, FEATURES, feature_set_version, get_feature, registry_markdown

DATE = click.DateTime(formats=["%Y-%m-%d"])


RISK = {1: "higher ↑", -1: "lower ↓", 0: "—"}


@click.group(short_help="Build, show and publish enterprise credit profiles.")
def features() -> None:
    """The enterprise credit profile: its features, builds and training snapshots."""


@features.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document for machines.")
@click.option("--markdown", is_flag=True, help="A Markdown table, for documents.")
@click.option("--family", type=click.Choice(list(FAMILIES)), help="Only one family.")
def list_features(as_json: bool, markdown: bool, family: str | None) -> None:
    """Every profile feature: code, meaning in Chinese and English, unit, window, how risk moves
    with it, and (with --json) its sources and legal basis.

    Example: xyd features list --family tax"""
    chosen = [f for f in FEATURES if family in (None, f.family)]
    if as_json:
        click.echo(json.dumps({"feature_set_version": feature_set_version(), "count": len(chosen),
                               "features": [f.as_json() for f in chosen]}, ensure_ascii=False, indent=1))
        return
    if markdown:
        click.echo(registry_markdown())
        return
    table = Table(title=f"profile features · feature set {feature_set_version()}")
    for header in ("code", "feature", "中文", "English", "unit", "window", "risk as it grows"):
        table.add_column(header, overflow="fold", no_wrap=header in ("code", "feature"))
    for f in chosen:
        table.add_row(f.code, f.name, f.zh, f.en, f.unit, f"{f.window_months} m" if f.window_months else "—",
                      RISK[f.monotone])
    table.caption = f"{len(chosen)} features; `--json` adds sources, categories and the legal basis of each"
    output_console().print(table)


def read_codes(path: Path) -> list[str]:
    """Codes from a file, one per line (UTF-8, UTF-8 with BOM or GBK; blank lines and a header
    line ``uscc``/``统一社会信用代码`` skipped), normalised. Raises ClickException naming every
    line whose code breaks a rule."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gbk")
        except UnicodeDecodeError:
            raise InputError(f"{path}: neither UTF-8 nor GBK text") from None
    codes, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        cell = line.split(",")[0].strip()
        if not cell or (number == 1 and cell.lower() in ("uscc", "统一社会信用代码")):
            continue
        result = uscc_rules.check(cell)
        if result.valid:
            codes.append(result.normalised)
        else:
            problems.append(f"{path}:{number}: {cell!r} breaks rule {result.rule}: {result.reason}")
    if problems:
        shown = "\n".join(problems[:20]) + (f"\n… and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise InputError(f"{len(problems)} invalid code(s); nothing was built:\n{shown}")
    if not codes:
        raise InputError(f"{path}: no codes")
    return list(dict.fromkeys(codes))


def summary_table(result: BuildResult, path_note: str = "") -> Table:
    """What a build produced: rows, coverage per source, seconds per stage."""
    profile = result.profile
    table = Table(title=f"profile as of {result.as_of} · {result.mode} · {result.engine} · "
                        f"feature set {feature_set_version()}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("enterprises in the profile", f"{len(profile):,}")
    if result.mode != "full":
        table.add_row("enterprises rebuilt (alive on as_of)", f"{result.rebuilt:,}")
        table.add_row("removed (no longer alive)", f"{result.dropped:,}")
    table.add_row("features", f"{len(FEATURES)}")
    for name in COVERED_SOURCES:
        share = float(profile[name].mean()) if len(profile) else 0.0
        table.add_row(f"  {get_feature(name).en}", f"{share:.1%}")
    for stage, seconds in result.seconds.items():
        table.add_row(f"seconds: {stage}", f"{seconds:.2f}")
    table.caption = path_note or (f"written to {result.path}" if result.path else "")
    return table


@features.command("build")
@click.option("--as-of", "as_of", type=DATE, help="The date the profile describes (YYYY-MM-DD).")
@click.option("--uscc", "uscc_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rebuild only the enterprises listed in this file (one code per line) in the stored profile.")
@click.option("--changed", is_flag=True,
              help="Rebuild, in every stored profile (or the one --as-of names), the enterprises that data "
                   "ingested since it was built can change: repair notices, late records.")
@click.option("--engine", type=click.Choice(ENGINES), default="pandas", show_default=True)
@click.option("--scheduler", help="Address of a Dask scheduler (tcp://host:8786); without it a LocalCluster.")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True,
              help="Worker processes of the LocalCluster (Dask engine).")
def build(as_of: dt.datetime | None, uscc_file: Path | None, changed: bool, engine: str, scheduler: str | None,
          workers: int) -> None:
    """Build the profile as of a date from what the lake knew on that date; stored under
    XYD_HOME/profiles/as_of=DATE/.

    Example: xyd features build --as-of 2026-06-30"""
    console = output_console()
    if scheduler and engine != "dask":
        raise click.UsageError("--scheduler needs --engine dask")
    if changed and uscc_file:
        raise click.UsageError("give --changed or --uscc, not both")
    if not changed and as_of is None:
        raise click.UsageError("--as-of DATE is required (or --changed)")
    day = as_of.date() if as_of else None
    home = xyd_home()
    try:
        if changed:
            with console.status("rebuilding what changed since each profile was built"):
                results = rebuild_changed(home, engine, [day] if day else None, scheduler, workers)
            if not results:
                console.print("no stored profiles; build one with `xyd features build --as-of DATE`")
            for result in results:
                console.print(summary_table(result))
            return
        codes = read_codes(uscc_file) if uscc_file else None
        with console.status(f"building the profile as of {day} ({engine})") as status:
            result = build_profile(home, day, engine, codes, scheduler, workers,
                                   progress=lambda stage: status.update(f"{stage} …"))
    except ProfileBuildError as error:
        raise InputError(str(error)) from None
    console.print(summary_table(result))


@features.command("show")
@click.argument("code")
@click.option("--as-of", "as_of", type=DATE, required=True)
@click.option("--json", "as_json", is_flag=True)
def show(code: str, as_of: dt.datetime, as_json: bool) -> None:
    """One enterprise's stored profile, feature by feature, in Chinese and English.

    Example: xyd features show 91420502EFPX14RX05 --as-of 2026-06-30"""
    checked = uscc_rules.check(code)
    if not checked.valid:
        raise InputError(f"{code!r} breaks rule {checked.rule}: {checked.reason}")
    store = ProfileStore(xyd_home())
    try:
        profile = store.read(as_of.date())
    except FileNotFoundError as error:
        raise InputError(str(error)) from None
    info = store.info(as_of.date())
    if info.feature_set_version != feature_set_version():
        raise InputError(f"the profile as of {as_of.date()} was built under feature set {info.feature_set_version}; "
                         f"the registry is now {feature_set_version()}: rebuild it with "
                         f"`xyd features build --as-of {as_of.date()}`")
    row = profile[profile["uscc"] == checked.normalised]
    if row.empty:
        raise InputError(f"{checked.normalised} is not in the profile as of {as_of.date()} "
                                   "(unknown, or not alive on that date)")
    values = row.iloc[0]
    if as_json:
        click.echo(json.dumps({f.name: _plain(values[f.name]) for f in FEATURES} | {
            "uscc": checked.normalised, "as_of": as_of.date().isoformat()}, ensure_ascii=False, indent=1))
        return
    table = Table(title=f"{checked.normalised} as of {as_of.date()}")
    for header in ("code", "feature", "value", "unit", "中文"):
        table.add_column(header, overflow="fold")
    for f in FEATURES:
        value = _plain(values[f.name])
        table.add_row(f.code, f.name, _shown(value, f.unit), f.unit, f.zh)
    output_console().print(table)


def _shown(value, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if unit == "yuan" else f"{value:.4g}"
    return str(value)


def _plain(value):
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


@features.command("snapshots")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the training frame (default XYD_HOME/snapshots/training.parquet).")
@click.option("--engine", type=click.Choice(ENGINES), default="pandas", show_default=True)
@click.option("--scheduler", help="Address of a Dask scheduler; without it a LocalCluster.")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True)
def snapshots(out: Path | None, engine: str, scheduler: str | None, workers: int) -> None:
    """Training snapshots: every loan outcome beside its borrower's profile as of the grant date.

    Example: xyd features snapshots"""
    console = output_console()
    home = xyd_home()
    out = out or home / "snapshots" / "training.parquet"
    started = time.perf_counter()
    try:
        with console.status("building each loan's profile as of its grant date"):
            frame = training_snapshots(home, engine, scheduler, workers)
    except ProfileBuildError as error:
        raise InputError(str(error)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    frame.to_parquet(temporary, index=False)
    temporary.replace(out)
    table = Table(title=f"training snapshots · feature set {feature_set_version()}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    outcome = frame["default_12m"].astype("object")
    table.add_row("loans", f"{len(frame):,}")
    table.add_row("defaulted within 12 months", f"{int((outcome == 'Y').sum()):,}")
    table.add_row("repaid 12 months", f"{int((outcome == 'N').sum()):,}")
    table.add_row("outcome not yet known", f"{int(outcome.isna().sum()):,}")
    table.add_row("distinct grant dates (as_of)", f"{frame['as_of'].nunique():,}")
    table.add_row("seconds", f"{time.perf_counter() - started:.2f}")
    table.caption = f"written to {out}"
    console.print(table)


@features.command("publish")
@click.option("--as-of", "as_of", type=DATE, required=True, help="The stored profile to publish.")
def publish(as_of: dt.datetime) -> None:
    """Make a stored profile the one the service decides on (each enterprise's row replaced).

    Example: xyd features publish --as-of 2026-06-30"""
    from api.cli.service import database
    from api.db.engine import writing
    from api.precredit import publishing
    from features.lake import Lake
    from features.profile.build import unseen_runs
    from features.profile.evidence import evidence_for
    from features.profile.store import registered_names
    from features.registry import feature_names

    home = xyd_home()
    store = ProfileStore(home)
    day = as_of.date()
    try:
        profile = store.read(day)
    except FileNotFoundError as error:
        raise InputError(str(error)) from None
    info = store.info(day)
    if info.feature_set_version != feature_set_version():
        raise InputError(f"the profile as of {day} was built under feature set {info.feature_set_version}; the "
                         f"registry is now {feature_set_version()}: rebuild it first")
    lake = Lake(home)
    later = unseen_runs(lake, info)
    if later:  # the knock-outs' evidence and the sources' deliveries are read from the lake as it is now
        raise InputError(f"the lake has {len(later)} ingestion run(s) the profile as of {day} has not seen "
                         f"({', '.join(later[:3])}): rebuild it (xyd features build --as-of {day}) before publishing")
    started = time.perf_counter()
    evidence = evidence_for(lake, day, profile)  # the records behind knock-outs, read before writing
    with writing(database()) as session:
        count = publishing.publish_profiles(session, profile, feature_names(), info.feature_set_version, day,
                                            registered_names(home, day), evidence=evidence,
                                            deliveries=lake.deliveries(day))
    click.echo(f"published {count:,} enterprises as of {day} (feature set {info.feature_set_version}) "
               f"in {time.perf_counter() - started:.1f} s")
