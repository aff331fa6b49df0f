"""Frames and plots as a person reads them: shares as percentages, money in yuan with separators,
counts with separators, category codes by name. For the analysts' notebooks; the numbers stay
numbers in the packages, and only what is shown is turned into text."""

from __future__ import annotations

import math

import pandas as pd

from features.registry import CATEGORY_NAMES, category_name


def _percent(value, digits: int) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value * 100:.{digits}f} %"


def _money(value) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"¥{value:,.0f}"


def _count(value) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{int(round(value)):,}"


def _number(value, digits: int) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def readable(frame: pd.DataFrame, percent=(), money=(), counts=(), digits: int = 1, decimals: dict | None = None,
             names: bool = True) -> pd.DataFrame:
    """A copy of ``frame`` for reading: ``percent`` columns (shares 0–1) as "12.3 %", ``money``
    columns (yuan) as "¥1,234,567", ``counts`` as "12,345", ``decimals`` (column → digits) as
    fixed-point numbers; with ``names``, the registry's coded categories (district, industry,
    entity type) by name. Missing values read "—"."""
    out = frame.copy()
    for column in percent:
        if column in out:
            out[column] = [_percent(v, digits) for v in out[column]]
    for column in money:
        if column in out:
            out[column] = [_money(v) for v in out[column]]
    for column in counts:
        if column in out:
            out[column] = [_count(v) for v in out[column]]
    for column, places in (decimals or {}).items():
        if column in out:
            out[column] = [_number(v, places) for v in out[column]]
    if names:
        for column in CATEGORY_NAMES:
            if column in out:
                out[column] = [category_name(column, v) if v == v and v is not None else "∅" for v in out[column]]
            if out.index.name == column:
                out.index = [category_name(column, v) for v in out.index]
                out.index.name = column
    return out


def percent_axis(axes, which: str = "y", digits: int = 0) -> None:
    """Label a matplotlib axis holding shares (0–1) in percent."""
    from matplotlib.ticker import PercentFormatter

    (axes.yaxis if which == "y" else axes.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=digits))
