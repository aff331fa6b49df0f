"""``xyd synth``: write a synthetic city the way departments deliver their files."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli import InputError, output_console
from features.synth.city import DEFAULT_END, CitySpec, CitySummary, check_destination, generate_city


def run_synth(spec: CitySpec, out: Path, force: bool, console: Console, table: bool = True) -> CitySummary:
    """Generate a city with a progress bar and print its summary table (unless ``table`` is
    False); exits 2 on bad input."""
    # only the operator's mistakes are caught: anything raised during generation is a bug to see
    try:
        spec.validate()
        check_destination(out, force)
    except (ValueError, FileExistsError) as error:
        raise InputError(str(error)) from None
    with Progress(TextColumn("[bold]synth"), BarColumn(), MofNCompleteColumn(), TextColumn("entities"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("synth", total=spec.enterprises)
        summary = generate_city(spec, out, force=force,
                                progress=lambda done, total: progress.update(task, completed=done))
    if table:
        console.print(summary_table(summary, out))
    return summary


def summary_table(summary: CitySummary, out: Path) -> Table:
    """Rows, injected dirt and write speed per source."""
    spec = summary.spec
    table = Table(title=f"synthetic city → {out}  ({spec.enterprises:,} entities, {summary.window[0]}…"
                        f"{summary.window[1]}, seed {spec.seed}, dirty {spec.dirty:g})")
    for header in ("source", "files", "rows", "dirty rows", "write s", "rows/s"):
        table.add_column(header, justify="left" if header == "source" else "right")
    for name, rows in summary.rows.items():
        seconds = summary.seconds.get(name, 0.0)
        table.add_row(name, str(len(summary.files.get(name, []))), f"{rows:,}", f"{summary.dirty_rows.get(name, 0):,}",
                      f"{seconds:.2f}", f"{rows / seconds:,.0f}" if seconds else "-")
    total = sum(summary.rows.values())
    table.add_row("[bold]all", str(sum(len(f) for f in summary.files.values())), f"[bold]{total:,}",
                  f"{sum(summary.dirty_rows.values()):,}", f"{summary.total_seconds:.2f}",
                  f"{total / summary.total_seconds:,.0f}" if summary.total_seconds else "-")
    rate = summary.loans_defaulted / summary.loans if summary.loans else 0.0
    table.caption = (f"entities by type: {summary.entities_by_type}; loans {summary.loans:,}, "
                     f"defaulted within 12 months {rate:.2%}; simulation {summary.seconds.get('simulate', 0):.1f}s; "
                     f"ground truth in {out}/ground_truth")
    return table


@click.command(short_help="Generate a synthetic Yichang, as its departments deliver.")
@click.option("--enterprises", type=int, default=2_000, show_default=True,
              help="Market entities (enterprises, individual businesses and cooperatives).")
@click.option("--months", type=int, default=24, show_default=True, help="Months of monthly records.")
@click.option("--end", default=DEFAULT_END, show_default=True, help="Last month of the window, YYYY-MM.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same city.")
@click.option("--dirty", type=float, default=0.0, show_default=True,
              help="Share of rows per source to damage on purpose (listed in ground_truth/dirty_manifest.csv).")
@click.option("--loan-rate", type=float, default=1.0, show_default=True,
              help="Multiplier on how often entities borrow (more loans for model training).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the city into.")
@click.option("--force", is_flag=True, help="Replace the folder if it already holds files.")
def synth(enterprises: int, months: int, end: str, seed: int, dirty: float, loan_rate: float, out: Path,
          force: bool) -> None:
    """Generate a synthetic Yichang: one folder per department source, as they deliver them,
    plus the banks' loan outcomes and, apart, the ground truth.

    Example: xyd synth --enterprises 3000 --months 36 --seed 7 --out cities/small"""
    spec = CitySpec(enterprises=enterprises, months=months, seed=seed, dirty=dirty, end=end, loan_rate=loan_rate)
    run_synth(spec, out, force, output_console())
