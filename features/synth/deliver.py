"""Write records the way departments deliver them, and make them dirty on purpose.

:func:`format_records` turns canonical records into the department's text (Chinese labels, money
in the department's unit, its date and period formats). :func:`inject_dirt` adds rows of named
kinds that ingestion must catch, and changes some rows in ways normalisation must undo, recording
each in the manifest with the outcome ingestion owes it. :class:`DeliveryWriter` appends chunk
after chunk to CSV (UTF-8, UTF-8 with BOM or GBK) or XLSX files and numbers every line.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from features import uscc
from features.schemas import Source

EXCEL_EPOCH = datetime(1899, 12, 30)
XLSX_MAX_ROWS = 1_048_576
XLSX_CREATED = datetime(2026, 1, 1)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# kind → outcome ingestion owes the row
DIRT_KINDS = {
    "bad_check_char": "quarantined",
    "unknown_enterprise": "quarantined",
    "future_date": "quarantined",
    "negative_amount": "quarantined",
    "malformed_date": "quarantined",
    "missing_required": "quarantined",
    "bad_enum": "quarantined",
    "date_order": "quarantined",
    "exact_duplicate": "duplicate",
    "conflicting_duplicate": "quarantined",
    "fullwidth_code": "accepted",
    "padded_lowercase_code": "accepted",
    "excel_serial_date": "accepted",
}
IN_PLACE = ("fullwidth_code", "padded_lowercase_code", "excel_serial_date")
MALFORMED_DATES = ("2025-13-45", "2024/02/30", "二〇二四年", "N/A", "45Q3", "2024-6")


def _date_format(source: Source) -> str:
    return "%Y-%m-%d" if source.delivery.format == "xlsx" else source.delivery.date_format


def _money_text(fen: np.ndarray, unit: str, thousands: bool) -> pa.Array:
    """Fen as the department writes it: yuan with 2 decimals or 万元 with 2 decimals."""
    fen = np.asarray(fen, dtype=np.int64)
    divisor = 100 if unit == "yuan" else 1_000_000
    step = 1 if unit == "yuan" else 10_000
    if (fen % step).any():
        raise ValueError(f"amounts in {unit} must be whole multiples of {step} fen")
    whole, cents = np.divmod(fen, divisor)
    cents //= step
    if thousands:
        whole_text = pa.array([f"{w:,}" for w in whole.tolist()], pa.string())
    else:
        whole_text = pc.cast(pa.array(whole), pa.string())
    cents_text = pc.utf8_lpad(pc.cast(pa.array(cents), pa.string()), 2, "0")
    return pc.binary_join_element_wise(whole_text, cents_text, ".")


def format_records(source: Source, df: pd.DataFrame) -> pa.Table:
    """Canonical records → the department's text, one string column per schema column
    (missing values are nulls, written as empty cells)."""
    columns = {}
    for col in source.columns:
        values = df[col.name]
        missing = values.isna().to_numpy()
        if col.kind in ("date", "period"):
            fmt = _date_format(source) if col.kind == "date" else source.delivery.period_format
            stamps = pa.array(values.to_numpy(dtype="datetime64[s]"), pa.timestamp("s"))
            text = pc.strftime(stamps, format=fmt)
        elif col.kind == "money":
            filled = values.fillna(0).to_numpy(dtype=np.int64)
            text = _money_text(filled, col.unit, source.delivery.thousands_separator)
        elif col.kind == "enum":
            labels = {v.code: v.zh for v in col.values}
            text = pa.array(values.map(labels).to_numpy(dtype=object), pa.string(), from_pandas=True)
        else:
            raw = values.to_numpy(dtype=object) if col.kind in ("text", "uscc") else values.fillna(0).to_numpy()
            text = pc.cast(pa.array(raw, from_pandas=True), pa.string())
        columns[col.name] = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), text)
    return pa.table(columns)


@dataclass
class DirtyRow:
    """A row of the manifest: where the dirt is (row index in the chunk table until written)."""

    kind: str
    column: str
    row: int
    copied_from: int  # the clean row it was made from (itself for in-place changes)
    expected: str = field(init=False)

    def __post_init__(self) -> None:
        self.expected = DIRT_KINDS[self.kind]


def applicable_kinds(source: Source) -> list[str]:
    """The dirt kinds that make sense for a source."""
    kinds = ["bad_check_char", "exact_duplicate", "fullwidth_code", "padded_lowercase_code", "malformed_date",
             "future_date", "missing_required"]
    if source.name != "enterprise_registry":
        kinds.append("unknown_enterprise")
    if any(c.kind == "money" for c in source.columns):
        kinds.append("negative_amount")
    if any(c.kind == "enum" for c in source.columns):
        kinds.append("bad_enum")
    if source.date_order:
        kinds.append("date_order")
    if not source.accepts_corrections:
        kinds.append("conflicting_duplicate")
    if source.delivery.format == "csv":
        kinds.append("excel_serial_date")
    return kinds


def _shift_date(text: str, fmt: str, days: int = 0, years: int = 0) -> str:
    parsed = datetime.strptime(text, fmt)
    if years:
        # 29 February has no twin in most years: move to the 28th
        parsed = parsed.replace(year=parsed.year + years, day=min(parsed.day, 28) if parsed.month == 2 else parsed.day)
    return (parsed + timedelta(days=days)).strftime(fmt)


def _fullwidth(code: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in code)


def inject_dirt(source: Source, table: pa.Table, rng: np.random.Generator, rate: float,
                foreign_codes) -> tuple[pa.Table, list[DirtyRow]]:
    """Dirty ``rate`` of a chunk's rows.

    Rows that must be refused or skipped are added (copies of a clean row, then damaged), so
    every clean row still reaches the lake; rows normalisation must repair are changed in place.
    Returns the new table and the manifest rows, indexed by position in the new table.
    """
    n = table.num_rows
    count = int(rng.binomial(n, rate)) if n and rate > 0 else 0
    if count == 0:
        return table, []
    kinds = applicable_kinds(source)
    picked = rng.choice(n, size=count, replace=False)
    chosen = np.array(kinds)[rng.integers(0, len(kinds), count)]
    fmt = _date_format(source)
    date_columns = [c.name for c in source.columns if c.kind == "date"]
    event_column = source.event_date if source.column(source.event_date).kind == "date" else date_columns[0]
    rows = table.take(pa.array(picked)).to_pylist()
    manifest: list[DirtyRow] = []
    extra: list[dict] = []
    changed: dict[str, dict[int, str]] = {}

    def add(row: dict, kind: str, column: str, copied_from: int) -> None:
        extra.append(row)
        manifest.append(DirtyRow(kind, column, n + len(extra) - 1, copied_from))

    for template, kind, index in zip(rows, chosen.tolist(), picked.tolist()):
        row = dict(template)

        present_dates = [c for c in date_columns if row[c]]
        if kind == "fullwidth_code":
            changed.setdefault("uscc", {})[index] = _fullwidth(row["uscc"])
            manifest.append(DirtyRow(kind, "uscc", index, index))
        elif kind == "padded_lowercase_code":
            changed.setdefault("uscc", {})[index] = f"  {row['uscc'].lower()} "
            manifest.append(DirtyRow(kind, "uscc", index, index))
        elif kind == "excel_serial_date":
            column = present_dates[int(rng.integers(len(present_dates)))]
            serial = (datetime.strptime(row[column], fmt) - EXCEL_EPOCH).days
            changed.setdefault(column, {})[index] = str(serial)
            manifest.append(DirtyRow(kind, column, index, index))
        elif kind == "bad_check_char":
            last = uscc.CHARSET.index(row["uscc"][-1])
            row["uscc"] = row["uscc"][:-1] + uscc.CHARSET[(last + 1 + int(rng.integers(30))) % 31]
            add(row, kind, "uscc", index)
        elif kind == "unknown_enterprise":
            row["uscc"] = str(foreign_codes(1)[0])
            add(row, kind, "uscc", index)
        elif kind == "future_date":
            row[event_column] = _shift_date(row[event_column], fmt, years=70)
            add(row, kind, event_column, index)
        elif kind == "negative_amount":
            column = [c.name for c in source.columns if c.kind == "money" and row[c.name]][0]
            row[column] = "-" + row[column] if row[column] != "0.00" else "-1.00"
            add(row, kind, column, index)
        elif kind == "malformed_date":
            column = present_dates[int(rng.integers(len(present_dates)))]
            row[column] = MALFORMED_DATES[int(rng.integers(len(MALFORMED_DATES)))]
            add(row, kind, column, index)
        elif kind == "missing_required":
            required = [c.name for c in source.columns if c.required and c.name != "uscc"]
            column = required[int(rng.integers(len(required)))]
            row[column] = None
            add(row, kind, column, index)
        elif kind == "bad_enum":
            column = [c.name for c in source.columns if c.kind == "enum"][0]
            row[column] = "其他类型"
            add(row, kind, column, index)
        elif kind == "date_order":
            pairs = [(a, b) for a, b in source.date_order if row[a] and row[b]]
            earlier, later = pairs[int(rng.integers(len(pairs)))]
            row[later] = _shift_date(row[earlier], fmt, days=-int(rng.integers(1, 60)))
            add(row, kind, later, index)
        elif kind == "exact_duplicate":
            add(row, kind, "", index)
        elif kind == "conflicting_duplicate":
            add(_conflict(source, row), kind, "", index)
        else:  # pragma: no cover - kinds come from DIRT_KINDS
            raise AssertionError(kind)
    for column, updates in changed.items():
        values = table.column(column).to_numpy(zero_copy_only=False).copy()
        values[list(updates)] = list(updates.values())
        table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, pa.string()))
    if extra:
        table = pa.concat_tables([table, pa.Table.from_pylist(extra, schema=table.schema)])
    return table, manifest


def _conflict(source: Source, row: dict) -> dict:
    """The same natural key with different content."""
    row = dict(row)
    key = set(source.natural_key)
    for col in source.columns:
        if col.name in key or not row[col.name]:
            continue
        if col.kind == "money":
            whole, _, cents = row[col.name].replace(",", "").partition(".")
            row[col.name] = f"{int(whole) + 1}.{cents or '00'}"
            return row
        if col.kind == "enum":
            others = [v.zh for v in col.values if v.zh != row[col.name]]
            row[col.name] = others[0]
            return row
    raise AssertionError(f"{source.name}: no column to make a conflicting duplicate")


class DeliveryWriter:
    """Appends formatted chunks to a source's files and numbers their lines.

    Line numbers are 1-based with the header on line 1, as a person opening the file sees them
    (for XLSX: the sheet's row number).
    """

    def __init__(self, source: Source, folder: Path):
        self.source = source
        self.folder = folder
        self.lines: dict[str, int] = {}
        self._xlsx: dict[str, tuple] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def file_name(self, period: str | None) -> str:
        ext = "xlsx" if self.source.delivery.format == "xlsx" else "csv"
        return f"{self.source.file_stem(period)}.{ext}"

    def write(self, table: pa.Table, periods: np.ndarray | None) -> np.ndarray:
        """Append ``table`` (split by ``periods`` when the source is monthly); returns, per row,
        the file name and line it landed on."""
        files = np.empty(table.num_rows, dtype=object)
        lines = np.zeros(table.num_rows, dtype=np.int64)
        groups = [(None, np.arange(table.num_rows))] if periods is None else \
            [(p, np.flatnonzero(periods == p)) for p in np.unique(periods)]
        for period, rows in groups:
            name = self.file_name(period)
            start = self.lines.get(name, 1)
            part = table.take(pa.array(rows)) if periods is not None else table
            if self.source.delivery.format == "xlsx":
                self._write_xlsx(name, part)
            else:
                self._write_csv(name, part, header=name not in self.lines)
            files[rows] = name
            lines[rows] = start + 1 + np.arange(len(rows))
            self.lines[name] = start + len(rows)
        return np.stack([files, lines], axis=1)

    def _write_csv(self, name: str, table: pa.Table, header: bool) -> None:
        renamed = table.rename_columns([c.zh for c in self.source.columns])
        buffer = io.BytesIO()
        pacsv.write_csv(renamed, buffer, pacsv.WriteOptions(include_header=header, quoting_style="needed"))
        data = buffer.getvalue()
        encoding = self.source.delivery.encoding
        if header:
            # pyarrow quotes header names; departments' exports do not.
            first, _, rest = data.partition(b"\n")
            data = first.replace(b'"', b"") + b"\n" + rest
        if encoding == "gbk":
            data = data.decode("utf-8").encode("gbk")
        elif encoding == "utf-8-sig" and header:
            data = b"\xef\xbb\xbf" + data
        with open(self.folder / name, "ab") as handle:
            handle.write(data)

    def _write_xlsx(self, name: str, table: pa.Table) -> None:
        import xlsxwriter

        if name not in self._xlsx:
            book = xlsxwriter.Workbook(str(self.folder / name), {"constant_memory": True})
            book.set_properties({"created": XLSX_CREATED})  # a fixed stamp keeps a seed's files identical
            sheet = book.add_worksheet(self.source.title_zh[:31])
            date_format = book.add_format({"num_format": "yyyy-mm-dd"})
            sheet.write_row(0, 0, [c.zh for c in self.source.columns])
            self._xlsx[name] = (book, sheet, date_format)
        book, sheet, date_format = self._xlsx[name]
        row = self.lines.get(name, 1)
        if row + table.num_rows > XLSX_MAX_ROWS:
            raise ValueError(f"{self.source.name}: more than {XLSX_MAX_ROWS - 1} rows do not fit one XLSX sheet")
        kinds = [c.kind for c in self.source.columns]
        for values in zip(*(table.column(i).to_pylist() for i in range(table.num_columns))):
            for col, (kind, value) in enumerate(zip(kinds, values)):
                if value is None:
                    continue
                if kind == "date" and (serial := _excel_serial(value)) is not None:
                    sheet.write_number(row, col, serial, date_format)
                elif kind in ("money", "number") and _is_number(value):
                    sheet.write_number(row, col, float(value))
                else:
                    sheet.write_string(row, col, value)
            row += 1

    def close(self) -> None:
        """Finish XLSX workbooks; CSV files are complete after every write."""
        for book, _, _ in self._xlsx.values():
            book.close()
        self._xlsx.clear()
        if not self.lines:  # a source with no rows still gets a file with its header
            self.write(pa.table({c.name: pa.array([], pa.string()) for c in self.source.columns}), None)
            for book, _, _ in self._xlsx.values():
                book.close()


def _excel_serial(text: str) -> int | None:
    """The Excel date serial of an ISO date; None for text that is not a real date."""
    if not ISO_DATE.match(text):
        return None
    try:
        return (datetime.strptime(text, "%Y-%m-%d") - EXCEL_EPOCH).days
    except ValueError:
        return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
