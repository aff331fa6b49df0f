"""Normalise and validate a batch of raw rows, column by column, vectorised with Arrow.

Input: the department's text under canonical column names (an Arrow table of strings). Output:
the canonical values (dates as ``datetime64``, money as integer fen, enumerations as codes, codes
normalised) as a pandas frame with stable dtypes, and per row the reasons it cannot be accepted.
Every rule lives here once; the reason codes are::

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
    conflicting_duplicate    (set by the run) a known key with other content
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features import uscc
from features.schemas import MONEY_UNITS, Column, Source

DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日", "%Y.%m.%d")
PERIOD_FORMATS = ("%Y-%m", "%Y%m", "%Y年%m月", "%Y/%m", "%Y.%m")
EXCEL_EPOCH = dt.datetime(1899, 12, 30)
EXCEL_SERIAL = r"^\d{5}(\.0+)?$"  # 10000-99999 = 1927-05-18 … 2173-10-13; never a YYYYMMDD or a year
EARLIEST = dt.datetime(1900, 1, 1)  # a date before it is a typing error, not a record
LARGEST_FEN = 2**62  # amounts beyond this do not fit the lake's integers (and are no SME's)
AMOUNT_NOISE = r"[,，¥￥\s]"
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
DATE_PARTS = r"^(?P<y>\d{4})[-/.年]?(?P<m>\d{1,2})[-/.月]?(?P<d>\d{1,2})日?$"

def _text(values) -> pa.Array:
    if isinstance(values, pd.Series):
        values = pa.array(values.astype("str"), type=pa.string(), from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values


def _format_order(text: pa.Array, formats: tuple[str, ...]) -> list[str]:
    """Formats ordered by how many of the first non-empty values they read: a department writes
    one format, so one pass over the column usually parses it all."""
    sample = pc.filter(text, pc.fill_null(pc.not_equal(text, ""), False))[:64]
    if len(sample) == 0:
        return list(formats)
    hits = [len(sample) - pc.strptime(sample, format=f, unit="s", error_is_null=True).null_count for f in formats]
    return [f for _, f in sorted(zip(hits, formats), key=lambda pair: -pair[0])]


def _first_parse(text: pa.Array, formats: tuple[str, ...], check_days: bool = False) -> pa.Array:
    """Parse with each format in turn where the previous ones failed; with ``check_days``, a
    date must also be written as parsed (Arrow rolls 30 February over to 1 March)."""
    parsed = pa.nulls(len(text), pa.timestamp("s"))
    empty = pc.fill_null(pc.equal(text, ""), True)
    earliest = pa.scalar(EARLIEST, pa.timestamp("s"))
    for fmt in _format_order(text, formats):
        todo = pc.and_(pc.is_null(parsed), pc.invert(empty))
        if not pc.any(todo).as_py():
            break
        attempt = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
        if check_days and "%d" in fmt:
            attempt = _written_as_parsed(text, attempt)
        parsed = pc.coalesce(parsed, pc.if_else(pc.fill_null(pc.less(attempt, earliest), False), None, attempt))
    return parsed


def _written_as_parsed(text: pa.Array, parsed: pa.Array) -> pa.Array:
    """Drop dates Arrow rolled over (30 February → 1 March). A rolled date lands on day 1-3 of
    the next month, so only those are checked against their written parts."""
    suspect = pc.fill_null(pc.less_equal(pc.day(parsed), 3), False)
    if not pc.any(suspect).as_py():
        return parsed
    checked = _real_days_only(pc.filter(text, suspect), pc.filter(parsed, suspect))
    return pc.replace_with_mask(parsed, suspect, checked)


def _real_days_only(text: pa.Array, parsed: pa.Array) -> pa.Array:
    """Arrow rolls 30 February over to 1 March; keep only dates whose written year, month and
    day are the ones parsed."""
    parts = pc.extract_regex(text, DATE_PARTS)
    same = pc.and_(pc.and_(
        pc.equal(pc.cast(pc.struct_field(parts, "y"), pa.int64()), pc.year(parsed)),
        pc.equal(pc.cast(pc.struct_field(parts, "m"), pa.int64()), pc.month(parsed))),
        pc.equal(pc.cast(pc.struct_field(parts, "d"), pa.int64()), pc.day(parsed)))
    return pc.if_else(pc.fill_null(same, False), parsed, None)


def _like(values, parsed: pa.Array) -> pd.Series | pa.Array:
    """``parsed`` in the caller's type: a Series indexed like ``values``, or the Arrow array."""
    if isinstance(values, pd.Series):
        return pd.Series(parsed.to_numpy(zero_copy_only=False), index=values.index)
    return parsed


def _dates(text: pa.Array) -> pa.Array:
    """:func:`parse_dates` for text that is already trimmed."""
    parsed = _first_parse(text, DATE_FORMATS, check_days=True)
    unparsed = pc.and_(pc.is_null(parsed), pc.fill_null(pc.not_equal(text, ""), False))
    if not pc.any(unparsed).as_py():
        return parsed
    serial = pc.and_(unparsed, pc.fill_null(pc.match_substring_regex(text, EXCEL_SERIAL), False))
    if pc.any(serial).as_py():
        days = pc.cast(pc.cast(pc.if_else(serial, text, None), pa.float64()), pa.int64())
        offsets = pc.multiply(days, 86_400)
        stamps = pc.cast(pc.add(offsets, int(EXCEL_EPOCH.replace(tzinfo=dt.timezone.utc).timestamp())),
                         pa.timestamp("s"))
        parsed = pc.coalesce(parsed, stamps)
    return parsed


def _periods(text: pa.Array) -> pa.Array:
    """:func:`parse_periods` for text that is already trimmed."""
    return pc.floor_temporal(_first_parse(text, PERIOD_FORMATS + DATE_FORMATS, check_days=True), unit="month")


def parse_dates(values) -> pd.Series | pa.Array:
    """Text in any accepted date format (or an Excel serial number) → timestamps; null if none.

    Takes and returns an Arrow array, or a pandas Series (for analysts and tests).
    """
    return _like(values, _dates(pc.utf8_trim_whitespace(_text(values))))


def parse_periods(values) -> pd.Series | pa.Array:
    """Text in any accepted month format → the first day of that month; null if none."""
    return _like(values, _periods(pc.utf8_trim_whitespace(_text(values))))


def parse_numbers(text: pa.Array) -> pa.Array:
    """Text with thousands separators or currency signs → float; null where not a number.

    A column of plain numbers is cast in one step; otherwise plain ones (digits, one point, a
    leading minus) are cast directly and only the rest pays for the regular expressions.
    """
    try:
        values = pc.cast(pc.if_else(pc.equal(text, ""), None, text), pa.float64())
        return pc.if_else(pc.is_finite(values), values, None)  # "inf" and "nan" are no amounts
    except pa.ArrowInvalid:
        pass
    negative = pc.fill_null(pc.starts_with(text, "-"), False)
    body = pc.if_else(negative, pc.utf8_slice_codeunits(text, 1), text)
    plain = pc.fill_null(pc.and_(pc.ascii_is_decimal(pc.replace_substring(body, ".", "", max_replacements=1)),
                                 pc.greater(pc.utf8_length(body), 0)), False)
    if not pc.any(pc.and_(pc.invert(plain), pc.is_valid(text))).as_py():
        return pc.cast(pc.if_else(plain, text, None), pa.float64())
    cleaned = pc.replace_substring_regex(pc.if_else(plain, None, text), AMOUNT_NOISE, "")
    valid = pc.fill_null(pc.match_substring_regex(cleaned, NUMBER), False)
    values = pc.cast(pc.coalesce(pc.if_else(plain, text, None), pc.if_else(valid, cleaned, None)), pa.float64())
    return pc.if_else(pc.is_finite(values), values, None)


class Problems:
    """Collects (rows, reason) pairs for a batch and joins them per row at the end."""

    def __init__(self, n: int):
        self.n = n
        self._rules: list[tuple[np.ndarray, str | np.ndarray]] = []

    def add(self, mask, reason: str | np.ndarray) -> None:
        mask = np.asarray(mask.to_numpy(zero_copy_only=False) if isinstance(mask, (pa.Array, pa.ChunkedArray))
                          else mask, dtype=bool)
        if mask.any():
            self._rules.append((mask, reason))

    def reasons(self) -> np.ndarray:
        """Per row, its reasons joined by ``;`` (empty string when the row is clean)."""
        out = np.full(self.n, "", dtype=object)
        if not self._rules:
            return out
        flagged = np.flatnonzero(np.logical_or.reduce([m for m, _ in self._rules]))
        parts: dict[int, list[str]] = {int(i): [] for i in flagged}
        for mask, reason in self._rules:
            for i in np.flatnonzero(mask):
                parts[int(i)].append(reason if isinstance(reason, str) else reason[i])
        for i, texts in parts.items():
            out[i] = ";".join(texts)
        return out


def normalise(source: Source, raw: pa.Table, today: dt.date,
              known_codes: pa.Array | None) -> tuple[pa.Table, np.ndarray]:
    """Canonical values of a batch (an Arrow table with one fixed type per column kind) and the
    reasons each row is refused (empty when clean).

    ``known_codes`` are the registry's codes; ``None`` for the registry itself.
    """
    n = raw.num_rows
    problems = Problems(n)
    today_ts = pa.scalar(dt.datetime.combine(today, dt.time()), pa.timestamp("s"))
    columns: dict[str, pa.Array] = {}
    for column in source.columns:
        values = _text(raw.column(column.name)) if column.name in raw.column_names else pa.nulls(n, pa.string())
        text = pc.utf8_trim_whitespace(values)
        blank = pc.fill_null(pc.equal(text, ""), True).to_numpy(zero_copy_only=False)
        if column.required:
            problems.add(blank, f"missing:{column.name}")
        columns[column.name] = _column(column, text, blank, problems, today_ts)
    if known_codes is not None:  # invalid and empty codes are already null
        codes = columns["uscc"]
        unknown = pc.and_(pc.is_valid(codes), pc.invert(pc.is_in(codes, value_set=known_codes)))
        problems.add(pc.fill_null(unknown, False), "unknown_enterprise")
    for earlier, later in source.date_order:
        backwards = pc.fill_null(pc.greater(columns[earlier], columns[later]), False)
        problems.add(backwards, f"date_order:{earlier}>{later}")
    return pa.table(columns), problems.reasons()


def _column(column: Column, text: pa.Array, blank: np.ndarray, problems: Problems,
            today: pa.Scalar) -> pa.Array:
    name = column.name
    not_blank = pa.array(~blank)
    if column.kind == "uscc":
        codes = uscc.normalise_array(text)
        rule = uscc.check_array(codes)
        bad = np.not_equal(rule, None) & ~blank
        labelled = np.full(len(rule), "", dtype=object)
        labelled[bad] = ["uscc:" + r for r in rule[bad]]
        problems.add(bad, labelled)
        return pc.if_else(pa.array(~(bad | blank)), codes, None)
    if column.kind == "text":
        return pc.if_else(not_blank, text, None)
    if column.kind in ("date", "period"):
        parsed = _dates(text) if column.kind == "date" else _periods(text)  # text is trimmed already
        failed = pc.and_(pc.is_null(parsed), not_blank)
        problems.add(failed, f"bad_date:{name}" if column.kind == "date" else f"bad_period:{name}")
        problems.add(pc.fill_null(pc.greater(parsed, today), False), f"future_date:{name}")
        return parsed
    if column.kind in ("money", "number", "int", "year"):
        number = pc.add(parse_numbers(text), 0.0)  # -0 is 0: the same value must hash the same
        if column.kind in ("int", "year"):  # 12.7 months is no term: refuse, do not round
            number = pc.if_else(pc.fill_null(pc.equal(pc.floor(number), number), False), number, None)
        too_large = pa.array(np.zeros(len(text), dtype=bool))
        if column.kind == "money":
            too_large = pc.fill_null(pc.greater_equal(pc.abs(pc.multiply(number, MONEY_UNITS[column.unit])),
                                                      float(LARGEST_FEN)), False)
            problems.add(too_large, f"out_of_range:{name}")
            number = pc.if_else(too_large, None, number)
        problems.add(pc.and_(pc.and_(pc.is_null(number), not_blank), pc.invert(too_large)), f"bad_number:{name}")
        if column.kind != "year":
            problems.add(pc.fill_null(pc.less(number, 0), False), f"negative:{name}")
        _check_range(column, number, problems)
        if column.kind == "money":
            return pc.cast(pc.round(pc.multiply(number, MONEY_UNITS[column.unit])), pa.int64())
        if column.kind in ("int", "year"):
            return pc.cast(pc.round(number), pa.int64())
        return number
    if column.kind == "enum":
        lookup = column.enum_lookup()
        position = pc.index_in(pc.utf8_upper(text), value_set=pa.array(list(lookup), pa.string()))
        codes = pc.take(pa.array(list(lookup.values()), pa.string()), position)
        problems.add(pc.and_(pc.is_null(codes), not_blank), f"bad_enum:{name}")
        return codes
    raise AssertionError(f"column {name}: no rule for kind {column.kind!r}")


def _check_range(column: Column, number: pa.Array, problems: Problems) -> None:
    outside = pa.array(np.zeros(len(number), dtype=bool))
    if column.min is not None and column.min > 0:
        outside = pc.or_(outside, pc.fill_null(pc.less(number, column.min), False))
    if column.max is not None:
        outside = pc.or_(outside, pc.fill_null(pc.greater(number, column.max), False))
    problems.add(outside, f"out_of_range:{column.name}")
