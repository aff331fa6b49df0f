"""Tiny hand-made lakes for profile tests: records written as a department would report them
(canonical columns, money in fen, dates as text), prepared exactly as a build prepares the lake."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.profile.build import empty_records
from features.profile.pointintime import NEEDED, day_number, lake_columns, prepare
from features.schemas import SOURCES
from features.uscc import random_codes

CODES = list(random_codes(np.random.default_rng(11), 6, entity_type="1"))
"""Valid codes for the fixtures' enterprises."""


def day(text: str) -> int:
    return day_number(text)


class Lake:
    """Records per source, in the order they were 'ingested' (which breaks ties between versions)."""

    def __init__(self):
        self.rows: dict[str, list[dict]] = {s: [] for s in NEEDED}

    def add(self, source: str, **values) -> Lake:
        self.rows[source].append(values)
        return self

    def records(self) -> dict[str, pd.DataFrame]:
        return {source: _prepared(source, rows) for source, rows in self.rows.items()}


def _prepared(source: str, rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return empty_records(source)
    s = SOURCES[source]
    frame = pd.DataFrame(rows)
    for column in lake_columns(source):
        if column == "_key_hash":
            continue
        kind = s.column(column).kind
        if column not in frame:
            frame[column] = None
        if kind in ("date", "period"):
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ms]")
    frame["_key_hash"] = pd.util.hash_pandas_object(frame[list(s.natural_key)].astype(str), index=False).to_numpy()
    return prepare(source, frame, np.arange(len(frame), dtype=np.int64))


def registry(lake: Lake, code: str, established: str = "2016-06-30", deregistered: str | None = None,
             reported: str | None = None, kind: str = "enterprise", section: str = "C", district: str = "420502",
             capital_fen: int = 100_000_000) -> Lake:
    return lake.add("enterprise_registry", uscc=code, entity_type=kind, industry_section=section,
                    district_code=district, registered_capital=capital_fen, established_date=established,
                    deregistered_date=deregistered, reported_date=reported or established)


def month_start(first: str, count: int) -> list[str]:
    return [str(m) + "-01" for m in pd.period_range(first, periods=count, freq="M")]
