"""Tiny hand-made lakes for profile tests: records written as a department would report them
(canonical columns, money in fen, dates as text), prepared exactly as a build prepares the lake;
and :func:`records`, the prepared records of a sample of the profile city."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.lake import Lake as CityLake
from features.profile.build import load_records
from features.profile.reading import empty_records
from features.profile.pointintime import NEEDED, day_number, lake_columns, prepare
from features.schemas import SOURCES
from features.uscc import random_codes

CODES = list(random_codes(np.random.default_rng(11), 6, entity_type="1"))
"""Valid codes for the fixtures' enterprises."""


@pytest.fixture(scope="module")
def records(profile_home) -> dict[str, pd.DataFrame]:
    """The prepared records of 150 enterprises of the profile city: enough of every source, quick
    to build (a test module imports this fixture by name)."""
    lake = CityLake(profile_home)
    codes = lake.read("enterprise_registry", ["uscc"])["uscc"].drop_duplicates().to_numpy()
    chosen = np.random.default_rng(0).choice(codes, 150, replace=False)
    return load_records(lake, chosen)


def codes_of(records: dict[str, pd.DataFrame]) -> list[str]:
    """The enterprises whose records ``records`` holds, sorted."""
    return sorted(pd.unique(records["enterprise_registry"]["uscc"].to_numpy()).tolist())


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

    def prepared(self, source: str) -> pd.DataFrame:
        """One source's records, prepared (quicker than :meth:`records` when only one is wanted)."""
        return _prepared(source, self.rows[source])


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


def deliver(home, deliveries: list[dict[str, list[dict]]], folder, today: str = "2026-12-01") -> list[str]:
    """Ingest into the lake under ``home`` each delivery (per source, rows as a department writes
    them: canonical headers, dates as text, money in the source's unit), one ingestion run each,
    as CSV files in ``folder``; returns the runs' ids."""
    import datetime as dt
    from pathlib import Path

    from features.ingest.run import ingest

    runs = []
    for i, delivery in enumerate(deliveries):
        files = []
        for source, rows in delivery.items():
            path = Path(folder) / f"{source}-{i}-{len(list(Path(folder).iterdir()))}.csv"
            columns = [c.name for c in SOURCES[source].columns]
            pd.DataFrame(rows).reindex(columns=columns).to_csv(path, index=False)
            files.append((source, path))
        report = ingest(home, files, today=dt.date.fromisoformat(today))
        assert report.totals()["accepted"] == sum(len(rows) for rows in delivery.values()), report.totals()
        runs.append(report.run_id)
    return runs


def registered(code: str, established: str = "2018-03-01", reported: str | None = None,
               deregistered: str | None = None) -> dict:
    """A registry row of an enterprise as the market regulator writes it."""
    return {"uscc": code, "name": f"企业{code[-4:]}", "entity_type": "enterprise", "industry_section": "C",
            "district_code": "420502", "registered_capital": "100", "established_date": established,
            "deregistered_date": deregistered, "reported_date": reported or established}
