"""Normalise and validate a batch of raw rows, column by column, vectorised.

Input: the department's text under canonical column names. Output: the canonical values (dates
as ``datetime64``, money as integer fen, enumerations as codes, codes normalised) and, per row,
the reasons it cannot be accepted. Every rule lives here once; the reason codes are::

    missing:<column>         a required value is empty
    uscc:<rule>              the code breaks a USCC rule (see features.uscc.RULES)
    unknown_enterprise       a valid code the enterprise registry does not know
    bad_date:<column>        not a date in any accepted format
    future_date:<column>     a date after the day of ingestion
    bad_period:<column>      not a month in any accepted format
    bad_number:<column>      not a number
    negative:<column>        an amount or quantity below zero
    out_of_range:<column>    outside the schema's declared range
    bad_enum:<column>        not an accepted spelling of the enumeration
    date_order:<a>><b>       <a> is after <b> where the schema says it cannot be
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from features import uscc
from features.schemas import MONEY_UNITS, Column, Source

DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日", "%Y.%m.%d")
PERIOD_FORMATS = ("%Y-%m", "%Y%m", "%Y年%m月", "%Y/%m", "%Y.%m")
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
EXCEL_SERIAL = re.compile(r"^\d{4,5}(\.0+)?$")  # 1927-2173: no 8-digit YYYYMMDD is confused with it
AMOUNT_NOISE = re.compile(r"[,，¥￥\s]")


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.str.strip() == "")


def parse_dates(values: pd.Series) -> pd.Series:
    """Text in any accepted date format (or an Excel serial number) → ``datetime64``; NaT if none."""
    text = values.str.strip()
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
    for fmt in DATE_FORMATS:
        todo = out.isna() & text.notna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    serial = out.isna() & text.str.match(EXCEL_SERIAL).fillna(False).astype(bool)
    if serial.any():
        out[serial] = EXCEL_EPOCH + pd.to_timedelta(text[serial].astype(float).astype(int), unit="D")
    return out


def parse_periods(values: pd.Series) -> pd.Series:
    """Text in any accepted month format → first day of the month; NaT if none."""
    text = values.str.strip()
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
    for fmt in PERIOD_FORMATS + DATE_FORMATS:
        todo = out.isna() & text.notna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    return out.dt.to_period("M").dt.to_timestamp().astype("datetime64[s]")


def parse_numbers(values: pd.Series) -> pd.Series:
    """Text with thousands separators or currency signs → float; NaN where not a number."""
    return pd.to_numeric(values.str.replace(AMOUNT_NOISE, "", regex=True), errors="coerce")


class Problems:
    """Collects reason codes per row of a batch."""

    def __init__(self, index: pd.Index):
        self.index = index
        self._reasons: list[pd.Series] = []

    def add(self, mask: pd.Series | np.ndarray, reason: str | pd.Series) -> None:
        mask = pd.Series(np.asarray(mask, dtype=bool), index=self.index)
        if mask.any():
            text = reason[mask] if isinstance(reason, pd.Series) else pd.Series(reason, index=self.index[mask])
            self._reasons.append(text.astype("str"))

    def reasons(self) -> pd.Series:
        """Per row, its reasons joined by ``;`` (empty string when the row is clean)."""
        if not self._reasons:
            return pd.Series("", index=self.index, dtype="str")
        joined = pd.concat(self._reasons).groupby(level=0).agg(";".join)
        return joined.reindex(self.index, fill_value="").astype("str")


def normalise(source: Source, raw: pd.DataFrame, today: dt.date,
              known_codes: set[str] | None) -> tuple[pd.DataFrame, pd.Series]:
    """Canonical values of a batch and the reasons each row is refused (empty when clean).

    ``known_codes`` are the registry's codes; ``None`` for the registry itself.
    """
    problems = Problems(raw.index)
    out = pd.DataFrame(index=raw.index)
    today_ts = pd.Timestamp(today)
    for column in source.columns:
        values = raw[column.name] if column.name in raw else pd.Series(pd.NA, index=raw.index, dtype="str")
        values = values.astype("str")
        blank = _blank(values)
        if column.required:
            problems.add(blank, f"missing:{column.name}")
        out[column.name] = _column(column, values, blank, problems, today_ts)
    if known_codes is not None:  # invalid and empty codes are already None
        codes = out["uscc"].to_numpy(dtype=object, na_value=None)
        unknown = np.fromiter((c is not None and c not in known_codes for c in codes), bool, len(codes))
        problems.add(unknown, "unknown_enterprise")
    for earlier, later in source.date_order:
        backwards = (out[earlier] > out[later]).fillna(False)
        problems.add(backwards, f"date_order:{earlier}>{later}")
    return out, problems.reasons()


def _column(column: Column, values: pd.Series, blank: pd.Series, problems: Problems,
            today: pd.Timestamp) -> pd.Series:
    name = column.name
    if column.kind == "uscc":
        codes = uscc.normalise_series(values)
        rule = uscc.check_series(codes)
        bad = rule.notna() & ~blank
        problems.add(bad, "uscc:" + rule.fillna(""))
        return codes.where(~bad & ~blank, None)
    if column.kind == "text":
        return values.str.strip().where(~blank, None)
    if column.kind == "date":
        parsed = parse_dates(values)
        problems.add(parsed.isna() & ~blank, f"bad_date:{name}")
        problems.add((parsed > today).fillna(False), f"future_date:{name}")
        return parsed
    if column.kind == "period":
        parsed = parse_periods(values)
        problems.add(parsed.isna() & ~blank, f"bad_period:{name}")
        problems.add((parsed > today).fillna(False), f"future_date:{name}")
        return parsed
    if column.kind == "year":
        number = parse_numbers(values)
        problems.add(number.isna() & ~blank, f"bad_number:{name}")
        return _ranged(column, number, problems).round().astype("Int64")
    if column.kind in ("money", "number", "int"):
        number = parse_numbers(values)
        problems.add(number.isna() & ~blank, f"bad_number:{name}")
        problems.add((number < 0).fillna(False), f"negative:{name}")
        number = _ranged(column, number, problems)
        if column.kind == "money":
            return (number * MONEY_UNITS[column.unit]).round().astype("Int64")
        return number.round().astype("Int64") if column.kind == "int" else number.astype("Float64")
    if column.kind == "enum":
        codes = values.str.strip().str.upper().map(column.enum_lookup())
        problems.add(codes.isna() & ~blank, f"bad_enum:{name}")
        return codes.astype("str")
    if column.kind == "bool":  # pragma: no cover - no source declares one yet
        raise NotImplementedError("bool columns")
    raise AssertionError(column.kind)


def _ranged(column: Column, number: pd.Series, problems: Problems) -> pd.Series:
    low = column.min if column.min is not None and column.min > 0 else None
    outside = pd.Series(False, index=number.index)
    if low is not None:
        outside |= (number < low).fillna(False)
    if column.max is not None:
        outside |= (number > column.max).fillna(False)
    problems.add(outside, f"out_of_range:{column.name}")
    return number
