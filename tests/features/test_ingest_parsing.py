"""General rules of parsing and hashing, checked as properties."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from features.ingest.normalise import parse_dates, parse_numbers
from features.ingest.rowhash import row_hash

amounts = st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)


@given(st.lists(amounts, min_size=1, max_size=20), st.booleans())
def test_amounts_read_back_whatever_the_separators(values, thousands):
    text = [f"{v:,.2f}" if thousands else f"{v:.2f}" for v in values]
    parsed = parse_numbers(pa.array(text)).to_pylist()
    assert parsed == [float(v) for v in values]


@given(st.lists(st.text(alphabet="abcxyz-.,元 ", min_size=1, max_size=6), min_size=1, max_size=10))
def test_text_that_is_no_number_is_refused_not_guessed(values):
    parsed = parse_numbers(pa.array(values)).to_pylist()
    for text, value in zip(values, parsed):
        cleaned = text.replace(",", "").replace(" ", "")
        try:
            expected = float(cleaned) if cleaned not in ("", "-", ".", "-.") else None
        except ValueError:
            expected = None
        assert value == expected, text


@given(st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2099, 12, 31)),
       st.sampled_from(["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日"]))
def test_every_real_date_reads_back_in_every_accepted_format(day, fmt):
    assert parse_dates(pd.Series([day.strftime(fmt)], dtype="str")).iloc[0] == pd.Timestamp(day)


@given(st.lists(st.tuples(st.text(max_size=8) | st.none(), st.integers(-10**12, 10**12) | st.none()),
                min_size=1, max_size=30), st.integers(0, 29))
def test_a_rows_hash_does_not_depend_on_its_batch(rows, cut):
    table = pa.table({"text": pa.array([r[0] for r in rows], pa.string()),
                      "number": pa.array([r[1] for r in rows], pa.int64())})
    whole = row_hash(table, ["text", "number"])
    cut = min(cut, len(rows))
    parts = [row_hash(table.slice(0, cut), ["text", "number"]), row_hash(table.slice(cut), ["text", "number"])]
    assert list(whole) == [*parts[0], *parts[1]]
    same = {(r[0], r[1]) for r in rows}
    assert len(set(whole.tolist())) == len(same)  # equal rows hash equal, different rows apart
