"""``xyd quality``: data-quality figures per source and department, on the terminal and in HTML."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from features.home import xyd_home
from features.quality import quality_html, quality_table


@click.command(short_help="Data quality of every source: a table and a page.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the HTML report (default: XYD_HOME/reports/quality-<date>.html).")
def quality(html_path: Path | None) -> None:
    """Compliance, timeliness, wrong and duplicate codes and coverage of every source.

    Example: xyd quality --html reports/quality.html"""
    home = xyd_home()
    table = quality_table(home)
    console = Console()
    if table.empty:
        console.print(f"[red]error:[/red] the lake under {home} is empty: run `xyd ingest --drop DIR` first "
                      "(or `xyd demo` for a generated city)", soft_wrap=True)
        raise SystemExit(2)
    shown = Table(title="data quality by source and reporting department")
    for column in table.columns:
        shown.add_column(column, justify="left" if column in ("source", "department") else "right")
    for row in table.itertuples(index=False):
        shown.add_row(*[_cell(v) for v in row])
    console.print(shown)
    html_path = html_path or home / "reports" / f"quality-{dt.date.today().isoformat()}.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = html_path.with_name(html_path.name + ".tmp")
    temporary.write_text(quality_html(table), "utf-8")
    os.replace(temporary, html_path)
    console.print(f"HTML report: {html_path}")


def _cell(value) -> str:
    if isinstance(value, float):
        return "–" if pd.isna(value) else f"{value:.1%}"
    return f"{value:,}" if isinstance(value, int) else str(value)
