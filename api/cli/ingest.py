"""``xyd ingest``: department files into the lake, with quarantine and a report."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli import InputError, output_console
from features.home import xyd_home
from features.ingest.read import IngestFileError
from features.ingest.run import RunReport, drop_files, ingest as ingest_files
from features.schemas import SOURCES


def report_table(report: RunReport, per_file: bool = False) -> Table:
    """Per source (or, with ``per_file``, per file): files, rows in, accepted, duplicate,
    quarantined, the top reasons, seconds; the caption names the kept report."""
    table = Table(title=f"ingest run {report.run_id}")
    first = ("source", "file") if per_file else ("source", "files")
    for header in (*first, "rows in", "accepted", "duplicate", "quarantined", "top reasons", "s"):
        table.add_column(header, justify="left" if header in ("source", "file", "top reasons") else "right")
    if per_file:
        for f in report.files:
            reasons = ", ".join(f"{k} {v:,}" for k, v in list(f.reasons.items())[:3])
            table.add_row(f.source, Path(f.file).name, f"{f.rows_in:,}", f"{f.accepted:,}", f"{f.duplicate:,}",
                          f"{f.quarantined:,}", reasons, f"{f.seconds:.2f}")
    else:
        reasons = report.reasons_by_source()
        for source, counts in report.totals_by_source().items():
            files = [f for f in report.files if f.source == source]
            table.add_row(source, f"{len(files):,}", f"{counts['rows_in']:,}", f"{counts['accepted']:,}",
                          f"{counts['duplicate']:,}", f"{counts['quarantined']:,}",
                          ", ".join(f"{k} {v:,}" for k, v in list(reasons[source].items())[:2]),
                          f"{sum(f.seconds for f in files):.2f}")
    totals = report.totals()
    table.add_row("[bold]all", f"{len(report.files):,}" if not per_file else "", f"{totals['rows_in']:,}",
                  f"{totals['accepted']:,}", f"{totals['duplicate']:,}", f"{totals['quarantined']:,}", "",
                  f"{report.seconds:.2f}")
    rate = totals["rows_in"] / report.seconds if report.seconds else 0
    table.caption = (f"{rate:,.0f} rows/s; " + ("the lake changed" if report.changed else
                     "nothing changed: every row was already in the lake or the quarantine")
                     + (f"; per file: {report.path}" if report.path and not per_file else ""))
    return table


@click.command(short_help="Ingest department files into the lake.")
@click.argument("source", required=False, type=click.Choice(list(SOURCES)))
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--drop", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder laid out as `xyd synth` writes it: one sub-folder per source.")
@click.option("--verbose", is_flag=True, help="One line per file instead of one per source.")
def ingest(source: str | None, files: tuple[Path, ...], drop: Path | None, verbose: bool) -> None:
    """Ingest FILE... of SOURCE (or a whole --drop folder) into the lake under XYD_HOME.

    Every row is accepted, skipped as a duplicate, or quarantined with its reasons; one line per
    source is printed (--verbose: per file) and the whole report is kept under XYD_HOME/reports.
    A file missing required columns refuses the whole run (exit 2) and nothing is written.

    Example: xyd ingest --drop cities/demo
    """
    console = output_console()
    if bool(drop) == bool(source or files):
        raise click.UsageError("give either SOURCE FILE... or --drop DIR")
    if source and not files:
        raise click.UsageError(f"no files given for {source}")
    try:
        targets = drop_files(drop) if drop else [(source, path) for path in files]
        with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                      TextColumn("{task.fields[rows]:>12,} rows  {task.fields[file]}"), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("ingest", total=len(targets), rows=0, file="")
            seen_files: set[str] = set()

            def advance(path: str, rows: int) -> None:
                if path not in seen_files:
                    seen_files.add(path)
                    progress.update(task, completed=len(seen_files) - 1, file=Path(path).name)
                progress.update(task, rows=progress.tasks[0].fields["rows"] + rows)

            report = ingest_files(xyd_home(), targets, progress=advance)
    except IngestFileError as error:
        raise InputError(f"{error}; nothing was written") from None
    console.print(report_table(report, per_file=verbose))
