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

SAMPLE_BYTES = 1 << 20
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
    """``utf-8-sig`` when the file starts with a BOM, ``utf-8`` when its bytes are valid UTF-8,
    otherwise ``gb18030`` (a superset of GBK) when they decode as that."""
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=len(sample) < SAMPLE_BYTES)
            return encoding
        except UnicodeDecodeError:
            continue
    raise IngestFileError(f"{path}: not UTF-8, UTF-8 with BOM or GBK text")


def _header(path: Path, encoding: str | None) -> list[str]:
    if path.suffix == ".csv":
        return list(pd.read_csv(path, encoding=encoding, dtype="str", nrows=0).columns)
    if path.suffix == ".xlsx":
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
    path, first_line = layout.path, 2
    if path.suffix == ".csv":
        batches = _csv_batches(layout, batch_rows)
    elif path.suffix == ".xlsx":
        batches = (pa.Table.from_pandas(b, preserve_index=False) for b in _xlsx_batches(path, batch_rows))
    else:
        batches = (pa.Table.from_pandas(b, preserve_index=False)
                   for b in _parquet_batches(path, list(layout.mapping), batch_rows))
    for batch in batches:
        table = batch.select(list(layout.mapping)).rename_columns(list(layout.mapping.values()))
        table = table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))
        lines = pa.array(np.arange(first_line, first_line + table.num_rows, dtype=np.int64))
        first_line += table.num_rows
        yield table.append_column("_line", lines)


def _csv_batches(layout: FileLayout, batch_rows: int) -> Iterator[pa.Table]:
    """Arrow's streaming CSV reader: every column as text, empty cells as empty strings.

    Lines are counted as rows + 1, so a quoted value spanning lines would shift the numbers after
    it; departments' exports do not contain them (and Arrow refuses them by default).
    """
    encoding = "utf8" if layout.encoding in ("utf-8", "utf-8-sig") else layout.encoding
    reader = pacsv.open_csv(
        layout.path,
        read_options=pacsv.ReadOptions(encoding=encoding, block_size=32 << 20),
        convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in layout.headers},
                                             strings_can_be_null=False, include_columns=list(layout.mapping)))
    pending: list[pa.RecordBatch] = []
    size = 0
    try:
        for batch in reader:
            pending.append(batch)
            size += batch.num_rows
            if size >= batch_rows:
                yield pa.Table.from_batches(pending)
                pending, size = [], 0
    except pa.ArrowInvalid as error:
        raise IngestFileError(f"{layout.path}: unreadable CSV ({error})") from None
    if pending:
        yield pa.Table.from_batches(pending)


def _xlsx_sheet(path: Path):
    """The first sheet, read by calamine (Rust): an order of magnitude faster than openpyxl."""
    from python_calamine import CalamineWorkbook

    return CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)


def _xlsx_batches(path: Path, batch_rows: int) -> Iterator[pd.DataFrame]:
    rows = _xlsx_sheet(path).iter_rows()
    header = ["" if v is None else str(v) for v in next(rows)]
    block = []
    for row in rows:
        block.append([_cell_text(v) for v in row])
        if len(block) == batch_rows:
            yield pd.DataFrame(block, columns=header, dtype="str")
            block = []
    if block:
        yield pd.DataFrame(block, columns=header, dtype="str")


def _parquet_batches(path: Path, columns: list[str], batch_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
        frame = batch.to_pandas()
        yield frame.apply(lambda s: s.map(_cell_text, na_action="ignore").fillna("") if s.dtype == object
                          else s.astype("str").where(s.notna(), ""))
