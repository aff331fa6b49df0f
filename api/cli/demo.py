"""``xyd demo``: the main job on embedded defaults, from nothing.

Today it builds the demo city under ``XYD_HOME``; each stage of the platform joins this command
as it lands (ingest → build → train → promote → publish → serve).
"""

from __future__ import annotations

import click
from rich.console import Console

from api.cli.synth import run_synth
from features.home import xyd_home
from features.synth.city import CitySpec

DEMO_CITY = CitySpec(enterprises=5_000, months=24, seed=2024, dirty=0.01)


@click.command()
@click.option("--enterprises", type=int, default=DEMO_CITY.enterprises, show_default=True,
              help="Size of the demo city.")
def demo(enterprises: int) -> None:
    """Run the platform end to end on embedded defaults (state under XYD_HOME, default ./var)."""
    console = Console()
    home = xyd_home()
    out = home / "demo-city"
    spec = CitySpec(enterprises=enterprises, months=DEMO_CITY.months, seed=DEMO_CITY.seed, dirty=DEMO_CITY.dirty)
    console.print(f"[bold]1/1 synthetic city[/bold] → {out}")
    run_synth(spec, out, force=True, console=console)
    console.print(f"Department files are in {out}; the generator's ground truth in {out / 'ground_truth'}.\n"
                  f"Check a code: xyd uscc check 91350100M000100Y43")
