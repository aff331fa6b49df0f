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
import fcntl
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.ingest.normalise import normalise
from features.ingest.read import FileLayout, IngestFileError, inspect, read_batches
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

    @property
    def changed(self) -> bool:
        return any(f.accepted or f.newly_quarantined for f in self.files)

    def totals(self) -> dict[str, int]:
        return {k: sum(getattr(f, k) for f in self.files) for k in ("rows_in", "accepted", "duplicate", "quarantined")}

    def as_json(self) -> dict:
        return {**asdict(self), "totals": self.totals(), "changed": self.changed}


@contextmanager
def _exclusive(lake: Lake):
    """One ingestion at a time per home: a second one waits for the first."""
    with open(lake.root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def _hashes(source: Source, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    key = pd.util.hash_pandas_object(frame[list(source.natural_key)], index=False).to_numpy()
    row = pd.util.hash_pandas_object(frame[source.column_names], index=False).to_numpy()
    return key, row


class _Seen:
    """Natural keys and (key, content) pairs of one source already in the lake or this run."""

    def __init__(self, lake: Lake, source: str):
        existing = lake.read(source, ["_key_hash", "_row_hash"])
        self.keys = set(existing["_key_hash"].tolist()) if len(existing) else set()
        self.pairs = set(zip(existing["_key_hash"].tolist(), existing["_row_hash"].tolist())) if len(existing) else set()
        quarantined = lake.read_quarantine(source)
        self.quarantined = set(quarantined["_raw_hash"].tolist()) if len(quarantined) else set()


def ingest(home: Path, files: list[tuple[str, Path]], today: dt.date | None = None,
           batch_rows: int = 200_000, progress: Callable[[str, int], None] | None = None) -> RunReport:
    """Ingest ``files`` (source name, path) into the lake under ``home``.

    Every file's header is checked before anything is read: one file missing a required column
    refuses the whole run (:class:`IngestFileError`) and nothing is written.
    """
    today = today or dt.date.today()
    layouts = [(get_source(name), inspect(get_source(name), path)) for name, path in files]
    lake = Lake(home)
    started = time.perf_counter()
    report = RunReport(uuid.uuid4().hex[:12], dt.datetime.now().isoformat(timespec="seconds"))
    with _exclusive(lake):
        registry = lake.read(REGISTRY, ["uscc"])
        known = set(registry["uscc"].tolist()) if len(registry) else set()
        seen: dict[str, _Seen] = {}
        staged: dict[str, dict[str, list[str]]] = {"lake": {}, "quarantine": {}}
        for source, layout in layouts:
            if source.name not in seen:
                seen[source.name] = _Seen(lake, source.name)
            file_report = _ingest_file(lake, source, layout, today, known, seen[source.name], staged,
                                       report.run_id, batch_rows, progress)
            report.files.append(file_report)
        report.seconds = time.perf_counter() - started
        run = {"run_id": report.run_id, "started": report.started, **report.totals()}
        if report.changed:
            lake.commit(run, staged)
    _save_report(Path(home), report)
    return report


def _ingest_file(lake: Lake, source: Source, layout: FileLayout, today: dt.date, known: set,
                 seen: _Seen, staged: dict, run_id: str, batch_rows: int, progress) -> FileReport:
    tick = time.perf_counter()
    file_report = FileReport(source.name, str(layout.path), layout.encoding, unknown_headers=layout.unknown_headers)
    reasons_count: Counter = Counter()
    for raw in read_batches(layout, batch_rows):
        canon, reasons = normalise(source, raw, today, None if source.name == REGISTRY else known)
        clean = (reasons == "").to_numpy()
        key, row = _hashes(source, canon)
        duplicate = np.zeros(len(raw), dtype=bool)
        conflict = np.zeros(len(raw), dtype=bool)
        for i in np.flatnonzero(clean):
            pair = (int(key[i]), int(row[i]))
            if pair in seen.pairs:
                duplicate[i] = True
            elif pair[0] in seen.keys and not source.accepts_corrections:
                conflict[i] = True
            else:
                seen.pairs.add(pair)
                seen.keys.add(pair[0])
        reasons = reasons.mask(conflict, "conflicting_duplicate")
        accepted = clean & ~duplicate & ~conflict
        quarantined = ~clean | conflict
        if accepted.any():
            part = canon[accepted].copy()
            part["_key_hash"], part["_row_hash"] = key[accepted], row[accepted]
            part["_run_id"], part["_file"], part["_line"] = run_id, str(layout.path), raw["_line"].to_numpy()[accepted]
            staged["lake"].setdefault(source.name, []).append(lake.stage(source.name, part))
            if source.name == REGISTRY:
                known.update(part["uscc"].tolist())
        if quarantined.any():
            kept = raw[quarantined].copy()
            # the same line of the same file quarantined by an earlier run is not kept twice
            kept["_raw_hash"] = pd.util.hash_pandas_object(kept.assign(_name=layout.path.name), index=False).to_numpy()
            kept = kept[~kept["_raw_hash"].isin(list(seen.quarantined))]
            seen.quarantined.update(kept["_raw_hash"].tolist())
            file_report.newly_quarantined += len(kept)
            kept.insert(0, "_reasons", reasons.loc[kept.index].to_numpy())
            kept.insert(0, "_file", str(layout.path))
            kept["_run_id"] = run_id
            if len(kept):
                staged["quarantine"].setdefault(source.name, []).append(lake.stage(source.name, kept, "quarantine"))
            for text in reasons[quarantined]:
                reasons_count.update(r.split(":")[0] if r.startswith("missing") else r for r in text.split(";"))
        file_report.rows_in += len(raw)
        file_report.accepted += int(accepted.sum())
        file_report.duplicate += int(duplicate.sum())
        file_report.quarantined += int(quarantined.sum())
        if progress:
            progress(str(layout.path), len(raw))
    file_report.reasons = dict(reasons_count.most_common())
    file_report.seconds = time.perf_counter() - tick
    return file_report


def _save_report(home: Path, report: RunReport) -> Path:
    folder = home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ingest-{report.started.replace(':', '')}-{report.run_id}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(report.as_json(), ensure_ascii=False, indent=1), "utf-8")
    temporary.replace(path)
    return path
