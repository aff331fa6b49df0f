"""The lake: validated records, one Parquet dataset per source, under ``XYD_HOME/lake``.

A run of ingestion writes new part files and then commits them all at once by replacing the
manifest (``_manifest.json``) with ``os.replace``. Readers see only parts the manifest lists, so
a run killed at any point leaves the lake as it was before, or as it is after, never half. Parts
a dead run left behind are swept by the next commit.

Each row carries, beside the schema's columns: ``_key_hash`` and ``_row_hash`` (of the natural
key and of the whole row, for duplicates and conflicts), ``_run_id``, ``_file`` and ``_line``
(where it came from).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "_manifest.json"
_HELD = threading.local()  # the lake roots whose writer lock this thread holds


class Lake:
    """The lake and quarantine of one ``XYD_HOME``."""

    def __init__(self, home: Path):
        self.root = Path(home) / "lake"
        self.quarantine_root = Path(home) / "quarantine"
        self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ reading

    def manifest(self) -> dict:
        """The committed state: ``{"lake": {source: [parts]}, "quarantine": {...}, "runs": [...]}``."""
        path = self.root / MANIFEST
        if not path.exists():
            return {"lake": {}, "quarantine": {}, "runs": []}
        return json.loads(path.read_text("utf-8"))

    def parts(self, source: str, area: str = "lake") -> list[Path]:
        """Committed part files of a source, oldest first."""
        root = self.root if area == "lake" else self.quarantine_root
        return [root / source / name for name in self.manifest()[area].get(source, [])]

    def read_arrow(self, source: str, columns: list[str] | None = None) -> pa.Table | None:
        """Every committed row of a source as an Arrow table; None when there is none."""
        parts = self.parts(source)
        return pq.read_table(parts, columns=columns) if parts else None

    def read(self, source: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Every committed row of a source (all versions), optionally only some columns.

        Integers stay integers where values are missing (pandas' nullable ``Int64``)."""
        table = self.read_arrow(source, columns)
        if table is None:
            return pd.DataFrame(columns=columns) if columns else pd.DataFrame()
        return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)

    def current(self, source: str, key: tuple[str, ...], known_date: str) -> pd.DataFrame:
        """The newest version of every record: the one reported last (ties: ingested last).
        Older versions stay in the lake as history; :meth:`read` returns them all."""
        rows = self.read(source)
        if rows.empty:
            return rows
        rows["_order"] = range(len(rows))  # parts are read in commit order
        newest = rows.sort_values([known_date, "_order"], kind="stable").drop_duplicates(list(key), keep="last")
        return newest.drop(columns="_order").sort_index().reset_index(drop=True)

    def deliveries(self, as_of) -> dict[str, str | None]:
        """Per source the platform receives, the newest date it learned of a record on or before
        ``as_of`` (its latest delivery as the profile of that day sees it; None when it had
        delivered nothing by then): what the regulator's page reports as each source's freshness."""
        import pyarrow.compute as pc

        from features.schemas import SOURCES

        day = pa.scalar(pd.Timestamp(as_of), pa.timestamp("ms"))
        out = {}
        for source in SOURCES:
            column = SOURCES[source].known_date
            table = self.read_arrow(source, [column])
            if table is None:
                continue
            known = table.column(column).cast(pa.timestamp("ms"))
            newest = pc.max(pc.filter(known, pc.less_equal(known, day))).as_py()
            out[source] = newest.date().isoformat() if newest is not None else None
        return out

    def read_quarantine(self, source: str) -> pd.DataFrame:
        """Every quarantined row of a source, with its file, line, original values and reasons."""
        parts = self.parts(source, "quarantine")
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else pd.DataFrame()

    # ------------------------------------------------------------------ writing

    def stage(self, source: str, rows: pd.DataFrame | pa.Table, area: str = "lake") -> str:
        """Write a part file that no reader sees until :meth:`commit` lists it; returns its name."""
        folder = (self.root if area == "lake" else self.quarantine_root) / source
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}.parquet"
        temporary = folder / (name + ".tmp")
        table = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(rows, preserve_index=False)
        # lz4 without dictionaries: ingestion writes far more than it reads back
        pq.write_table(table, temporary, compression="lz4", use_dictionary=False, write_statistics=False)
        os.replace(temporary, folder / name)
        return name

    @contextlib.contextmanager
    def locked(self):
        """Hold the lake's writer lock (an flock on ``lake/.lock``) for a whole write: one ingestion,
        or one objection's settlement, at a time per home; the others wait their turn. Every part a
        writer stages is committed or swept while it still holds the lock. A thread that holds it
        already goes on (a settlement takes it before its database transaction, then writes)."""
        held = getattr(_HELD, "roots", None)
        if held is None:
            held = _HELD.roots = set()
        root = str(self.root.resolve())
        if root in held:
            yield
            return
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.add(root)
            try:
                yield
            finally:
                held.discard(root)
                fcntl.flock(handle, fcntl.LOCK_UN)

    def commit(self, run: dict, staged: dict[str, dict[str, list[str]]]) -> None:
        """Atomically add staged parts (``{area: {source: [names]}}``) and the run to the manifest,
        then sweep what dead runs left behind (the caller holds :meth:`locked`)."""
        manifest = self.manifest()
        for area, sources in staged.items():
            for source, names in sources.items():
                manifest[area].setdefault(source, []).extend(names)
        manifest["runs"].append(run)
        temporary = self.root / f"{MANIFEST}.{uuid.uuid4().hex}.tmp"
        temporary.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
        os.replace(temporary, self.root / MANIFEST)
        self.sweep()

    def commit_rows(self, source: str, rows: pd.DataFrame | pa.Table, run: dict) -> None:
        """Stage ``rows`` and commit them as ``run``, holding the lock for both (a small write, like
        an objection's settlement; it waits for an ingestion in progress)."""
        with self.locked():
            self.commit(run, {"lake": {source: [self.stage(source, rows)]}})

    def sweep(self) -> None:
        """Delete part files no committed manifest lists (left by a run that died)."""
        manifest = self.manifest()
        for area, root in (("lake", self.root), ("quarantine", self.quarantine_root)):
            if not root.exists():
                continue
            for folder in root.iterdir():
                if not folder.is_dir():
                    continue
                listed = set(manifest[area].get(folder.name, []))
                for path in folder.iterdir():
                    if path.name not in listed:
                        path.unlink()
        for path in self.root.glob(f"{MANIFEST}.*.tmp"):
            path.unlink()
