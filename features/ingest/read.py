"""Read department files in bounded batches, whatever their format and encoding.

CSV (UTF-8, UTF-8 with BOM, GBK/GB18030 — detected from the bytes), XLSX and Parquet. Headers
written in Chinese, English or a known alias map onto the schema's columns. Each batch is the
file's text under canonical column names plus ``_line``, the line a person sees in an editor
(header = line 1).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from features.schemas import Source

BLOCK_BYTES = 1 << 20
FORMATS = (".csv", ".xlsx", ".parquet")


class IngestFileError(ValueError):
    """A file that cannot be ingested at all; the message names the file and the rule."""


@dataclass
class FileLayout:
    """What a file's header says: the mapping onto the schema and what it lacks or adds."""

    path: Path
    encoding: str | None
    mapping: dict[str, str]  # header as written → canonical column
    unknown_headers: list[str]
    headers: list[str]  # every header, as written


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` when the file starts with a BOM, ``utf-8`` when all its bytes are valid
    UTF-8, otherwise ``gb18030`` (a superset of GBK) when they decode as that. The whole file is
    read, a block at a time: an export can be plain ASCII for megabytes before its first 中文."""
    with open(path, "rb") as handle:
        start = handle.read(len(codecs.BOM_UTF8))
        if start == codecs.BOM_UTF8:
            return "utf-8-sig"
        for encoding in ("utf-8", "gb18030"):
            handle.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)()
            try:
                while block := handle.read(BLOCK_BYTES):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
                return encoding
            except UnicodeDecodeError:
                continue
    raise IngestFileError(f"{path}: not UTF-8, UTF-8 with BOM or GBK text")


def _header(path: Path, encoding: str | None) -> list[str]:
    if path.suffix.lower() == ".csv":
        return list(pd.read_csv(path, encoding=encoding, dtype="str", nrows=0).columns)
    if path.suffix.lower() == ".xlsx":
        first = next(_xlsx_sheet(path).iter_rows(), [])
        return ["" if v is None else str(v) for v in first]
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).schema_arrow.names


def inspect(source: Source, path: Path) -> FileLayout:
    """Map a file's header onto the schema; refuse it whole if a required column is missing."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise IngestFileError(f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(FORMATS)}")
    encoding = detect_encoding(path) if path.suffix.lower() == ".csv" else None
    try:
        headers = _header(path, encoding)
    except Exception as error:  # any reader's complaint about a broken file is the file's fault
        raise IngestFileError(f"{path}: cannot read the header ({type(error).__name__}: {error})") from None
    known = {k.strip().lower(): v for k, v in source.header_map().items()}
    mapping, unknown = {}, []
    for header in headers:
        column = known.get(str(header).strip().lstrip("\ufeff").lower())
        if column is None:
            unknown.append(header)
        elif column in mapping.values():
            raise IngestFileError(f"{path}: two headers map to column {column!r}")
        else:
            mapping[header] = column
    missing = [c for c in source.required_columns() if c not in mapping.values()]
    if missing:
        wanted = ", ".join(f"{c} ({source.column(c).zh})" for c in missing)
        raise IngestFileError(f"{path}: missing required columns for {source.name}: {wanted}")
    return FileLayout(path, encoding, mapping, unknown, headers)


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_batches(layout: FileLayout, batch_rows: int = 200_000) -> Iterator[pa.Table]:
    """The file's rows, about ``batch_rows`` at a time, as text under canonical names plus
    ``_line``. Memory stays bounded whatever the file's size."""
    suffix = layout.path.suffix.lower()
    if suffix == ".csv":
        batches = _with_lines(_csv_batches(layout, batch_rows))
    elif suffix == ".xlsx":
        batches = _xlsx_batches(layout, batch_rows)
    else:
        batches = _with_lines(_parquet_batches(layout.path, list(layout.mapping), batch_rows))
    for table, lines in batches:
        table = table.select(list(layout.mapping)).rename_columns(list(layout.mapping.values()))
        table = table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))
        yield table.append_column("_line", pa.array(lines, pa.int64()))


def _with_lines(tables: Iterator[pa.Table]) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """Number rows from line 2 (the header is line 1), one line per row."""
    first_line = 2
    for table in tables:
        yield table, np.arange(first_line, first_line + table.num_rows, dtype=np.int64)
        first_line += table.num_rows


def _csv_batches(layout: FileLayout, batch_rows: int) -> Iterator[pa.Table]:
    """Arrow's streaming CSV reader: every column as text, empty cells as empty strings.

    Lines are counted as rows + 1, so a blank line or a quoted value spanning lines shifts the
    numbers after it; departments' exports do not contain them.
    """
    encoding = "utf8" if layout.encoding in ("utf-8", "utf-8-sig") else layout.encoding
    pending: list[pa.RecordBatch] = []
    size = 0
    try:
        # a ragged row or undecodable bytes refuse the file (and the run): nothing is written
        reader = pacsv.open_csv(
            layout.path,
            read_options=pacsv.ReadOptions(encoding=encoding, block_size=32 << 20),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in layout.headers},
                                                 strings_can_be_null=False, include_columns=list(layout.mapping)))
        for batch in reader:
            pending.append(batch)
            size += batch.num_rows
            if size >= batch_rows:
                yield pa.Table.from_batches(pending)
                pending, size = [], 0
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise IngestFileError(f"{layout.path}: unreadable CSV ({error})") from None
    if pending:
        yield pa.Table.from_batches(pending)


def _xlsx_sheet(path: Path):
    """The first sheet, read by calamine (Rust): an order of magnitude faster than openpyxl."""
    from python_calamine import CalamineWorkbook

    return CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)


def _xlsx_batches(layout: FileLayout, batch_rows: int) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """Rows of the first sheet with their sheet row numbers; rows with no value are skipped."""
    rows = _xlsx_sheet(layout.path).iter_rows()
    header = ["" if v is None else str(v) for v in next(rows)]
    positions = {name: header.index(name) for name in layout.mapping}  # mapped headers are unique
    block, lines = [], []
    for line, row in enumerate(rows, start=2):
        cells = [_cell_text(v) for v in row]
        if not any(c.strip() for c in cells):
            continue
        cells += [""] * (len(header) - len(cells))
        block.append(cells)
        lines.append(line)
        if len(block) == batch_rows:
            yield _xlsx_table(block, positions), np.array(lines)
            block, lines = [], []
    if block:
        yield _xlsx_table(block, positions), np.array(lines)


def _xlsx_table(block: list[list[str]], positions: dict[str, int]) -> pa.Table:
    return pa.table({name: pa.array([row[i] for row in block], pa.string()) for name, i in positions.items()})


def _parquet_batches(path: Path, columns: list[str], batch_rows: int) -> Iterator[pa.Table]:
    """Parquet batches as text: every value goes through the same rendering as XLSX cells, so
    integers stay integers and timestamps become dates."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
        yield pa.table({name: pa.array([_cell_text(v) for v in batch.column(name).to_pylist()], pa.string())
                        for name in columns})
