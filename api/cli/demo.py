"""``xyd demo``: the main job on embedded defaults, from nothing.

Each stage of the platform joins this command as it lands: today the demo city is generated
and ingested into the lake under ``XYD_HOME``, with the ingest report and the quality report,
the enterprise profile is built as of the city's last day and every loan's training snapshot is
written; models and the service follow (train → promote → publish → serve).
"""

from __future__ import annotations

import shutil

import click
from rich.console import Console

from api.cli.features import summary_table
from api.cli.ingest import report_table
from api.cli.synth import run_synth
from features.home import xyd_home
from features.ingest.run import drop_files, ingest
from features.profile.build import build, training_snapshots
from features.quality import quality_html, quality_table
from features.synth.city import CitySpec, city_last_day

DEMO_CITY = CitySpec(enterprises=5_000, months=24, seed=2024, dirty=0.01)
DEMO_MARKER = ".made-by-xyd-demo"


@click.command()
@click.option("--enterprises", type=int, default=DEMO_CITY.enterprises, show_default=True,
              help="Size of the demo city.")
def demo(enterprises: int) -> None:
    """Run the platform end to end on embedded defaults (state under XYD_HOME, default ./var)."""
    console = Console()
    home = xyd_home()
    out = home / "demo-city"
    marker = home / "lake" / DEMO_MARKER
    if (home / "lake" / "_manifest.json").exists() and not marker.exists():
        console.print(f"[red]error:[/red] {home} holds a lake that the demo did not make; "
                      "run the demo with another XYD_HOME")
        raise SystemExit(2)
    spec = CitySpec(enterprises=enterprises, months=DEMO_CITY.months, seed=DEMO_CITY.seed, dirty=DEMO_CITY.dirty)
    console.print(f"[bold]1/3 synthetic city[/bold] → {out}")
    run_synth(spec, out, force=True, console=console)
    console.print(f"[bold]2/3 ingest[/bold] → {home / 'lake'}")
    # the demo starts from nothing: a lake left by an earlier demo would hold another city
    for folder in ("lake", "quarantine"):
        shutil.rmtree(home / folder, ignore_errors=True)
    (home / "lake").mkdir(parents=True)
    marker.write_text("this lake was made by xyd demo and is replaced by the next one\n", "utf-8")
    console.print(report_table(ingest(home, drop_files(out))))
    quality = home / "reports" / "quality-demo.html"
    quality.parent.mkdir(parents=True, exist_ok=True)
    quality.write_text(quality_html(quality_table(home)), "utf-8")
    as_of = city_last_day(spec)
    console.print(f"[bold]3/3 profiles[/bold] as of {as_of} and training snapshots")
    for stale in ("profiles", "snapshots"):
        shutil.rmtree(home / stale, ignore_errors=True)
    result = build(home, as_of)
    console.print(summary_table(result))
    snapshots = home / "snapshots" / "training.parquet"
    snapshots.parent.mkdir(parents=True, exist_ok=True)
    training_snapshots(home).to_parquet(snapshots, index=False)
    console.print(f"Department files: {out}; ground truth: {out / 'ground_truth'}; lake: {home / 'lake'}; "
                  f"quarantine: {home / 'quarantine'}; data-quality report: {quality}; profile: {result.path}; "
                  f"training snapshots: {snapshots}.\n"
                  f"Try: xyd quality · xyd features list · xyd features show {result.profile['uscc'].iloc[0]} "
                  f"--as-of {as_of} · xyd uscc check 91350100M000100Y43")
