"""``xyd quality``: data-quality figures per source and department, on the terminal and in HTML."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click
import pandas as pd
from rich.table import Table

from api.cli import InputError, frame_records, output_console, print_json
from features.home import xyd_home
from features.quality import quality_html, quality_table


@click.command(short_help="Data quality of every source: a table and a page.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the HTML report (default: XYD_HOME/reports/quality-<date>.html).")
@click.option("--json", "as_json", is_flag=True, help='One JSON object instead of the tables: {"sources": a row per '
                                                        'source and department, shares as fractions, "objections": '
                                                        'item 5\'s rows, "html": the page written}.')
def quality(html_path: Path | None, as_json: bool) -> None:
    """Compliance, timeliness, wrong and duplicate codes and coverage of every source.

    Example: xyd quality --html reports/quality.html"""
    home = xyd_home()
    table = quality_table(home)
    if table.empty:
        raise InputError(f"the lake under {home} is empty: run `xyd ingest --drop DIR` first (or `xyd demo` for a "
                         "generated city)")
    figures = objection_figures(home)
    html_path = html_path or home / "reports" / f"quality-{dt.date.today().isoformat()}.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = html_path.with_name(html_path.name + ".tmp")
    temporary.write_text(quality_html(table, sections=((("异议处理", "objections (work plan item 5)"), figures, ITEM5_NOTE),)),
                         "utf-8")
    os.replace(temporary, html_path)
    if as_json:
        print_json({"sources": frame_records(table), "objections": frame_records(figures), "html": str(html_path)})
        return
    console = output_console()
    shown = Table(title="data quality by source and reporting department")
    for column in table.columns:
        shown.add_column(column, justify="left" if column in ("source", "department") else "right")
    for row in table.itertuples(index=False):
        shown.add_row(*[_cell(v) for v in row])
    console.print(shown)
    item5 = Table(title="objections (异议) by owning department: work plan item 5 asks under 1 valid objection "
                        "per 100,000 records, each settled within 5 working days")
    for column in figures.columns:
        item5.add_column(column, justify="left" if column == "department" else "right")
    for row in figures.itertuples(index=False):
        item5.add_row(*[str(v) for v in row])
    console.print(item5)
    console.print(f"HTML report: {html_path}")


ITEM5_NOTE = ("Objections (not repair notices) by the department that owns the record. per 100k: objections per "
              "100,000 lake records the department delivered (every version); valid: corrected or removed, of those "
              "settled; on time: settled within 5 working days of filing on China's official calendar, open ones "
              "past due counting as late; shares with Wilson 95 % intervals, so that a handful of objections is "
              "read as the thin evidence it is.")


def objection_figures(home: Path) -> pd.DataFrame:
    """Work plan item 5's figures per department and in total, formatted for the table and the page."""
    from api.cli.service import database
    from api.objections import figures as objection_figures

    def share(value, interval) -> str:
        return "–" if value is None else f"{value:.1%} ({interval[0]:.0%}–{interval[1]:.0%})"

    rows = objection_figures.item5_figures(database(), home)
    return pd.DataFrame([{
        "department": r.department, "records": f"{r.records:,}", "objections": r.objections,
        "per 100k": "–" if r.per_100k != r.per_100k else f"{r.per_100k:.2f}", "settled": r.settled,
        "valid (95% CI)": share(r.valid_share, r.valid_share_ci), "on time (95% CI)": share(r.on_time_share, r.on_time_share_ci),
        "median days": "–" if r.median_working_days is None else f"{r.median_working_days:g}",
        "worst days": "–" if r.worst_working_days is None else r.worst_working_days, "open, late": r.open_late}
        for r in rows])


def _cell(value) -> str:
    if isinstance(value, float):
        return "–" if pd.isna(value) else f"{value:.1%}"
    return f"{value:,}" if isinstance(value, int) else str(value)
