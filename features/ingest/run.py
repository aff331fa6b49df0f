"""One ingestion run: files → normalised, validated rows → lake, duplicates or quarantine.

Every input row ends in exactly one of three places: **accepted** (appended to the lake),
**duplicate** (same natural key and content as a row already in the lake or earlier in the run:
skipped) or **quarantined** (kept with file, line, original text and reasons). A row with a known
key and new content is a conflict and is quarantined, unless the source accepts corrections;
then it is accepted as a newer version and the older one stays as history.

The whole run commits at once (see :mod:`features.lake`); its report is kept as JSON.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.ingest.normalise import normalise
from features.ingest.read import FileLayout, IngestFileError, inspect, read_batches
from features.ingest.rowhash import row_hash
from features.lake import Lake
from features.schemas import SOURCES, Source, get_source

REGISTRY = "enterprise_registry"


@dataclass
class FileReport:
    """What became of one file's rows: rows_in = accepted + duplicate + quarantined."""

    source: str
    file: str
    encoding: str | None
    rows_in: int = 0
    accepted: int = 0
    duplicate: int = 0
    quarantined: int = 0
    newly_quarantined: int = 0  # quarantined rows not already kept by an earlier run
    reasons: dict[str, int] = field(default_factory=dict)
    unknown_headers: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class RunReport:
    """A run: its files, when, and whether it changed anything."""

    run_id: str
    started: str
    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0
    path: str | None = None
    """Where the report is kept (``XYD_HOME/reports/ingest-<time>-<run>.json``), once saved."""

    @property
    def changed(self) -> bool:
        return any(f.accepted or f.newly_quarantined for f in self.files)

    def totals(self) -> dict[str, int]:
        return {k: sum(getattr(f, k) for f in self.files) for k in ("rows_in", "accepted", "duplicate", "quarantined")}

    def totals_by_source(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            counts = out.setdefault(f.source, dict.fromkeys(("rows_in", "accepted", "duplicate", "quarantined"), 0))
            for k in counts:
                counts[k] += getattr(f, k)
        return out

    def reasons_by_source(self) -> dict[str, dict[str, int]]:
        """Per source, how many rows each quarantine reason took, commonest first."""
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            counts = out.setdefault(f.source, {})
            for reason, n in f.reasons.items():
                counts[reason] = counts.get(reason, 0) + n
        return {source: dict(sorted(counts.items(), key=lambda item: -item[1])) for source, counts in out.items()}

    def as_json(self) -> dict:
        return {**asdict(self), "totals": self.totals(), "changed": self.changed}


def drop_files(folder: Path) -> list[tuple[str, Path]]:
    """(source, file) for every delivered file in a folder laid out as ``xyd synth`` writes it,
    the registry first so the codes it brings are known to the rest."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestFileError(f"{folder}: not a folder")
    out = []
    for name in SOURCES:
        sub = folder / name
        if sub.is_dir():
            out.extend((name, p) for p in sorted(sub.iterdir()) if p.is_file() and not p.name.startswith("."))
    if not out:
        raise IngestFileError(f"{folder}: no source folders ({', '.join(SOURCES)})")
    return out


def _hashes(source: Source, canon: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Per row: a hash of its natural key, and one of the whole row (key and content)."""
    return row_hash(canon, list(source.natural_key)), row_hash(canon, source.column_names)


class _HashSet:
    """A set of uint64 hashes kept as one sorted array: membership for a whole batch at once."""

    def __init__(self, values: np.ndarray | None = None):
        self.values = np.sort(values) if values is not None else np.zeros(0, dtype=np.uint64)

    def contains(self, probe: np.ndarray) -> np.ndarray:
        if not len(self.values):
            return np.zeros(len(probe), dtype=bool)
        # probing in sorted order walks the held array once instead of jumping around it
        order = np.argsort(probe)
        ordered = probe[order]
        where = np.searchsorted(self.values, ordered).clip(0, len(self.values) - 1)
        found = np.empty(len(probe), dtype=bool)
        found[order] = self.values[where] == ordered
        return found

    def add(self, more: np.ndarray) -> None:
        # two sorted runs: the stable sort (timsort) merges them in linear time
        if len(more):
            self.values = np.sort(np.concatenate([self.values, np.sort(more)]), kind="stable")


class _Seen:
    """What one source already holds: natural keys, whole rows, quarantined lines."""

    def __init__(self, lake: Lake, source: str):
        existing = lake.read_arrow(source, ["_key_hash", "_row_hash"])
        has = existing is not None
        self.keys = _HashSet(existing.column("_key_hash").to_numpy() if has else None)
        self.rows = _HashSet(existing.column("_row_hash").to_numpy() if has else None)
        quarantined = lake.read_quarantine(source)
        self.quarantined = set(quarantined["_raw_hash"].tolist()) if len(quarantined) else set()


def ingest(home: Path, files: list[tuple[str, Path]], today: dt.date | None = None,
           batch_rows: int = 200_000, progress: Callable[[str, int], None] | None = None) -> RunReport:
    """Ingest ``files`` (source name, path) into the lake under ``home``.

    Every file's header is checked before anything is read: one file missing a required column
    refuses the whole run (:class:`IngestFileError`) and nothing is written. Registry files go
    first, so the codes they bring are known to the other sources' rows.
    """
    today = today or dt.date.today()
    layouts = [(get_source(name), inspect(get_source(name), path)) for name, path in files]
    order = list(SOURCES)  # the registry first; each source's files together, in the order given
    layouts.sort(key=lambda pair: order.index(pair[0].name))
    lake = Lake(home)
    started = time.perf_counter()
    report = RunReport(uuid.uuid4().hex[:12], dt.datetime.now().isoformat(timespec="seconds"))
    with lake.locked():  # one ingestion at a time per home: a second one waits for the first
        registry = lake.read(REGISTRY, ["uscc"])
        known = set(registry["uscc"].tolist()) if len(registry) else set()
        staged: dict[str, dict[str, list[str]]] = {"lake": {}, "quarantine": {}}
        for source, group in itertools.groupby(layouts, key=lambda pair: pair[0]):
            group = [layout for _, layout in group]
            seen = _Seen(lake, source.name)
            files_here = {layout.path: FileReport(source.name, str(layout.path), layout.encoding,
                                                  unknown_headers=layout.unknown_headers) for layout in group}
            known_codes = None if source.name == REGISTRY else pa.array(list(known), pa.string())
            for layout, batch in _prepared(source, group, today, known_codes, batch_rows):
                _store(lake, source, layout, batch, known, seen, staged, report.run_id, files_here[layout.path])
                if progress:
                    progress(str(layout.path), batch.rows)
            report.files.extend(files_here.values())
        report.seconds = time.perf_counter() - started
        run = {"run_id": report.run_id, "started": report.started, **report.totals(),
               "sources": report.totals_by_source()}
        if report.changed:
            lake.commit(run, staged)
    report.path = str(_save_report(Path(home), report))
    return report


@dataclass
class _Batch:
    """A batch read, normalised and hashed, ready to be sorted into lake, duplicates, quarantine."""

    raw: pa.Table
    canon: pa.Table
    reasons: np.ndarray
    key: np.ndarray
    row: np.ndarray
    seconds: float

    @property
    def rows(self) -> int:
        return self.raw.num_rows


def _prepared(source: Source, layouts: list[FileLayout], today: dt.date, known_codes: pa.Array | None,
              batch_rows: int, depth: int = 3):
    """(layout, batch) for every batch of the files, in order, normalised by two worker threads
    while the caller stores the previous one (Arrow and NumPy release the GIL; at most ``depth``
    batches in flight keep memory bounded)."""
    def prepare(layout: FileLayout, raw: pa.Table) -> tuple[FileLayout, _Batch]:
        tick = time.perf_counter()
        canon, reasons = normalise(source, raw, today, known_codes)
        key, row = _hashes(source, canon)
        return layout, _Batch(raw, canon, reasons, key, row, time.perf_counter() - tick)

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque = deque()
        for layout in layouts:
            for raw in read_batches(layout, batch_rows):
                pending.append(pool.submit(prepare, layout, raw))
                if len(pending) >= depth:
                    yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _store(lake: Lake, source: Source, layout: FileLayout, batch: _Batch, known: set, seen: _Seen,
           staged: dict, run_id: str, file_report: FileReport) -> None:
    """Sort one batch's rows into accepted, duplicate and quarantined, and stage what is new."""
    tick = time.perf_counter()
    raw, canon, reasons, key, row = batch.raw, batch.canon, batch.reasons, batch.key, batch.row
    clean = reasons == ""
    duplicate, conflict = _classify(source, seen, key, row, clean)
    reasons[conflict] = "conflicting_duplicate"
    accepted = clean & ~duplicate & ~conflict
    quarantined = ~clean | conflict
    if accepted.any():
        mask = pa.array(accepted)
        part = canon.filter(mask)
        part = (part.append_column("_key_hash", pa.array(key[accepted]))
                .append_column("_row_hash", pa.array(row[accepted]))
                .append_column("_run_id", pa.repeat(pa.scalar(run_id), len(part)))
                .append_column("_file", pa.repeat(pa.scalar(str(layout.path)), len(part)))
                .append_column("_line", raw.column("_line").filter(mask)))
        staged["lake"].setdefault(source.name, []).append(lake.stage(source.name, part))
        if source.name == REGISTRY:
            known.update(part.column("uscc").to_pylist())
    if quarantined.any():
        _quarantine(lake, source, layout, raw, reasons, quarantined, seen, staged, run_id, file_report)
    file_report.rows_in += raw.num_rows
    file_report.accepted += int(accepted.sum())
    file_report.duplicate += int(duplicate.sum())
    file_report.quarantined += int(quarantined.sum())
    file_report.seconds += batch.seconds + time.perf_counter() - tick


def _quarantine(lake: Lake, source: Source, layout: FileLayout, raw: pa.Table, reasons: np.ndarray,
                quarantined: np.ndarray, seen: _Seen, staged: dict, run_id: str, file_report: FileReport) -> None:
    """Keep refused rows with file, line, original text and reasons (once per file line)."""
    kept = raw.filter(pa.array(quarantined)).to_pandas()
    # the same line of the same file quarantined by an earlier run is not kept twice
    raw_hash = pd.util.hash_pandas_object(kept.assign(_name=layout.path.name), index=False).to_numpy()
    new = np.array([h not in seen.quarantined for h in raw_hash.tolist()], dtype=bool)
    seen.quarantined.update(raw_hash.tolist())
    kept = kept[new].assign(_raw_hash=raw_hash[new], _run_id=run_id)
    kept.insert(0, "_reasons", reasons[quarantined][new])
    kept.insert(0, "_file", str(layout.path))
    file_report.newly_quarantined += len(kept)
    if len(kept):
        staged["quarantine"].setdefault(source.name, []).append(lake.stage(source.name, kept, "quarantine"))
    counts = Counter(r.split(":")[0] if r.startswith("missing") else r
                     for text in reasons[quarantined] for r in text.split(";"))
    for reason, count in counts.items():
        file_report.reasons[reason] = file_report.reasons.get(reason, 0) + count


def _repeated(values: np.ndarray) -> np.ndarray:
    """True where a value already appeared earlier in the array."""
    repeated = np.ones(len(values), dtype=bool)
    repeated[np.unique(values, return_index=True)[1]] = False
    return repeated


def _classify(source: Source, seen: _Seen, key: np.ndarray, row: np.ndarray,
              clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Duplicates (the whole row already held, or earlier in the batch) and conflicts (a held key
    with other content, where the source does not take corrections) among the clean rows; the
    rest are recorded as held."""
    n = len(key)
    duplicate = np.zeros(n, dtype=bool)
    conflict = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(clean)
    held = seen.rows.contains(row[rows]) | _repeated(row[rows])
    duplicate[rows[held]] = True
    if not source.accepts_corrections:
        fresh = rows[~held]
        known_key = seen.keys.contains(key[fresh]) | _repeated(key[fresh])
        conflict[fresh[known_key]] = True
    accepted = rows[~duplicate[rows] & ~conflict[rows]]
    seen.rows.add(row[accepted])
    seen.keys.add(key[accepted])
    return duplicate, conflict


def _save_report(home: Path, report: RunReport) -> Path:
    folder = home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ingest-{report.started.replace(':', '')}-{report.run_id}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(report.as_json(), ensure_ascii=False, indent=1), "utf-8")
    temporary.replace(path)
    return path
