"""Generate a whole synthetic city, chunk by chunk, into a folder laid out like a monthly drop.

Layout of ``out``::

    <source>/<source>[_<YYYY-MM>].csv|xlsx   what each department delivers (one folder per source)
    ground_truth/                            never ingested: what only the generator knows
        loans.parquet                        each loan's true PD, realised default and capacity
        entities.parquet                     each entity's hidden state and capacity after the window
        dirty_manifest.csv                   every injected row: file, line, kind, expected outcome
    city.json                                parameters, row counts, files

The folder is written under a temporary name and renamed when complete, so an interrupted run
leaves nothing that looks like a city.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.schemas import SOURCES
from features.synth import records
from features.synth.deliver import DeliveryWriter, format_records, inject_dirt
from features.synth.population import Calendar, build_population, foreign_codes

CHUNK_SIZE = 20_000
"""Entities per chunk. Part of the city's definition: a seed gives the same city only with it."""

DEFAULT_END = "2026-06"
GROUND_TRUTH = "ground_truth"
GENERATOR_VERSION = "1"


@dataclass
class CitySpec:
    """What to generate. ``end`` is the last month of the window (YYYY-MM)."""

    enterprises: int = 2_000
    months: int = 24
    seed: int = 1
    dirty: float = 0.0
    end: str = DEFAULT_END
    loan_rate: float = 1.0

    def validate(self) -> None:
        """Refuse parameters that cannot make a city, in the domain's words."""
        if self.enterprises < 1:
            raise ValueError(f"enterprises must be at least 1; got {self.enterprises}")
        if not 1 <= self.months <= 120:
            raise ValueError(f"months must be between 1 and 120; got {self.months}")
        if not 0 <= self.dirty <= 0.5:
            raise ValueError(f"dirty must be a share between 0 and 0.5; got {self.dirty}")
        if self.loan_rate < 0:
            raise ValueError(f"loan rate must not be negative; got {self.loan_rate}")
        try:
            np.datetime64(self.end, "M")
        except ValueError:
            raise ValueError(f"end must be a month written YYYY-MM; got {self.end!r}") from None


@dataclass
class CitySummary:
    """What was generated: rows per source (clean and dirty), files and timings."""

    spec: CitySpec
    window: tuple[str, str]
    rows: dict[str, int] = field(default_factory=dict)
    dirty_rows: dict[str, int] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    loans: int = 0
    loans_defaulted: int = 0
    entities_by_type: dict[str, int] = field(default_factory=dict)
    total_seconds: float = 0.0

    def as_json(self) -> dict:
        out = asdict(self)
        out["generator_version"] = GENERATOR_VERSION
        return out


SOURCE_ORDER = list(SOURCES)


def _chunk_records(pop, rng: np.random.Generator, chunk: int) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Every source's canonical records for one chunk, and the chunk's ground truth."""
    cases = records.court_executions(pop, rng, chunk)
    loans, loans_truth = records.loan_outcomes(pop, rng, chunk)
    out = {
        "enterprise_registry": records.enterprise_registry(pop, rng),
        "tax_filings": records.tax_filings(pop, rng),
        "tax_grades": records.tax_grades(pop, rng),
        "electricity": records.utility("electricity", pop, rng),
        "water": records.utility("water", pop, rng),
        "gas": records.utility("gas", pop, rng),
        "real_estate": records.real_estate(pop, rng, cases, chunk),
        "intellectual_property": records.intellectual_property(pop, rng, chunk),
        "court_executions": records.versions(cases.drop(columns=["_entity", "_health"]),
                                             ["filing_date", "closing_date"], pop, rng, (2, 15)),
        "dishonest_debtors": records.dishonest_debtors(cases, pop, rng),
        "administrative_penalties": records.administrative_penalties(pop, rng, chunk),
        "credit_commitments": records.credit_commitments(pop, rng, chunk),
        "loan_outcomes": loans,
    }
    return out, {"loans": loans_truth, "entities": records.entity_truth(pop)}


def city_last_day(spec: CitySpec) -> dt.date:
    """The last day of the city's window: the natural as_of for its profile."""
    month = np.datetime64(spec.end, "M")
    return (month + 1).astype("datetime64[D]").astype(dt.date) - dt.timedelta(days=1)


def check_destination(out: Path, force: bool) -> None:
    """Refuse to write a city over a folder that holds files, unless forced."""
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty; choose another folder or pass --force")


def generate_city(spec: CitySpec, out: Path, force: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> CitySummary:
    """Generate the city described by ``spec`` into ``out``.

    Deterministic for a spec: the same spec writes byte-identical department files.
    ``progress(done, total)`` is called after every chunk of entities.
    """
    spec.validate()
    out = Path(out)
    check_destination(out, force)
    started = time.perf_counter()
    calendar = Calendar(np.datetime64(spec.end, "M"), spec.months)
    summary = CitySummary(spec, (str(calendar.start), str(calendar.end)))
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    truth_dir = staging / GROUND_TRUTH
    truth_dir.mkdir()
    writers = {name: DeliveryWriter(source, staging / name) for name, source in SOURCES.items()}
    truth_writers: dict[str, pq.ParquetWriter] = {}
    manifest_parts = []
    chunks = range(0, spec.enterprises, CHUNK_SIZE)
    try:
        for number, first in enumerate(chunks):
            index = np.arange(first, min(first + CHUNK_SIZE, spec.enterprises), dtype=np.int64)
            tick = time.perf_counter()
            pop = build_population(number, index, calendar, spec.seed, spec.loan_rate)
            rng = np.random.default_rng([spec.seed, number, 1])
            chunk_records, truth = _chunk_records(pop, rng, number)
            summary.seconds["simulate"] = summary.seconds.get("simulate", 0) + time.perf_counter() - tick
            for kind, count in zip(*np.unique(pop.kind, return_counts=True)):
                summary.entities_by_type[str(kind)] = summary.entities_by_type.get(str(kind), 0) + int(count)
            dirt_rng = np.random.default_rng([spec.seed, number, 2])
            for name in SOURCE_ORDER:
                tick = time.perf_counter()
                manifest_parts.append(_deliver(name, chunk_records[name], writers[name], dirt_rng, spec.dirty, summary))
                summary.seconds[name] = summary.seconds.get(name, 0) + time.perf_counter() - tick
            for name, frame in truth.items():
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if name not in truth_writers:
                    truth_writers[name] = pq.ParquetWriter(truth_dir / f"{name}.parquet", table.schema)
                truth_writers[name].write_table(table)
            summary.loans += len(truth["loans"])
            summary.loans_defaulted += int(truth["loans"]["defaulted_12m"].sum())
            if progress:
                progress(int(index[-1]) + 1, spec.enterprises)
        for writer in writers.values():
            writer.close()
        for writer in truth_writers.values():
            writer.close()
        manifest = pd.concat(manifest_parts, ignore_index=True)
        manifest.to_csv(truth_dir / "dirty_manifest.csv", index=False)
        summary.files = {name: sorted(w.lines) for name, w in writers.items()}
        summary.total_seconds = time.perf_counter() - started
        (staging / "city.json").write_text(json.dumps(summary.as_json(), ensure_ascii=False, indent=2), "utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        for writer in writers.values():
            writer.close()
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def _deliver(name: str, frame: pd.DataFrame, writer: DeliveryWriter, rng: np.random.Generator,
             rate: float, summary: CitySummary) -> pd.DataFrame:
    """Format, dirty and write one source's chunk; returns its manifest rows."""
    source = SOURCES[name]
    table = format_records(source, frame)
    periods = None
    if source.delivery.split_by_period:
        periods = frame["period"].to_numpy().astype("datetime64[M]").astype(str)
    table, dirt = inject_dirt(source, table, rng, rate, lambda k: foreign_codes(rng, k))
    if periods is not None:
        # an added row goes to the file of the row it was copied from
        copied_from = [d.copied_from for d in dirt if d.row >= len(periods)]
        periods = np.concatenate([periods, periods[copied_from]])
    placed = writer.write(table, periods)
    summary.rows[name] = summary.rows.get(name, 0) + len(frame)
    summary.dirty_rows[name] = summary.dirty_rows.get(name, 0) + len(dirt)
    return pd.DataFrame({
        "source": name,
        "file": [f"{name}/{placed[d.row, 0]}" for d in dirt],
        "line": [int(placed[d.row, 1]) for d in dirt],
        "kind": [d.kind for d in dirt],
        "expected": [d.expected for d in dirt],
        "column": [d.column for d in dirt],
    }, columns=["source", "file", "line", "kind", "expected", "column"])
