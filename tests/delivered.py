"""Read a delivered file back as text, the way a careful person would check it.

Not ingestion (that normalises and validates); this only decodes what the generator wrote so
tests can look at each line.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pandas as pd

from features.schemas import Source

EXCEL_EPOCH = datetime(1899, 12, 30)


def read_delivery(source: Source, path: Path) -> pd.DataFrame:
    """Every data row as strings ('' for empty) under canonical names, with its ``line``."""
    if path.suffix == ".xlsx":
        sheet = openpyxl.load_workbook(path, read_only=True).active
        rows = list(sheet.iter_rows(values_only=True))
        header, body = rows[0], rows[1:]
        assert list(header) == [c.zh for c in source.columns]
        frame = pd.DataFrame([[_cell(v) for v in row] for row in body], columns=source.column_names, dtype="str")
    else:
        frame = pd.read_csv(path, encoding=source.delivery.encoding, dtype="str", keep_default_na=False)
        assert list(frame.columns) == [c.zh for c in source.columns]
        frame.columns = source.column_names
    frame.insert(0, "line", range(2, len(frame) + 2))
    return frame


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def excel_serial_to_date(text: str) -> datetime:
    return EXCEL_EPOCH + timedelta(days=int(text))
