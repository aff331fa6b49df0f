"""One lake record found by its natural key, and what an objection's settlement writes for it.

An enterprise that disputes a record names it the way the department does: its source and
natural key (a case number, a decision number, a code and a month). The key is normalised by the
ingestion rules themselves and hashed as ingestion hashes it, so "（2023）鄂0581执1号" typed with
full-width brackets finds the record ingested from a file.

A settlement reaches profiles the way everything does, as lake records (features/ never learns of
the service's objections):

* **corrected**: a new version of the record, the changed columns validated by the ingestion rules,
  reported on the same day as the version it corrects (a wrong record was never true: the correction
  stands in for it from the day the platform learned of it; ties go to the version ingested last);
* **repaired**: the same, with the source's repair date set (work plan item 16: from that day on the
  record stops counting, whenever the platform learned of it);
* **removed**: a withdrawal, kept in the lake's ``_withdrawals`` dataset; a withdrawn record counts
  in no profile, at any date (:func:`withdrawn_keys`, read by the profile build).

Each write is one committed lake run, so ``xyd features build --changed`` finds the enterprises
it touches like any other delivery.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.ingest.normalise import normalise
from features.ingest.rowhash import row_hash
from features.lake import Lake
from features.schemas import SOURCES, Source

WITHDRAWALS = "_withdrawals"
"""The lake dataset of removed records: source, key hash, the enterprise, the reference and the day."""
KEY = "_key_hash"


class RecordError(ValueError):
    """A record named or changed in a way the lake cannot take (the message says which rule)."""


@dataclass
class Record:
    """The newest version of one lake record."""

    source: str
    key: dict[str, str]  # the natural key as the department writes it (normalised)
    key_hash: int
    uscc: str
    values: dict  # every column of the source, as plain Python values
    row: pa.Table  # the same, one row with the lake's types

    def label(self) -> str:
        """The record in words: ``administrative_penalties 宜环罚〔2024〕12号``."""
        return f"{self.source} {' / '.join(self.key.values())}"


def source_of(name: str) -> Source:
    """The department source ``name`` (a RecordError naming the known ones otherwise)."""
    if name not in SOURCES or name == "loan_outcomes":
        known = ", ".join(s for s in SOURCES if s != "loan_outcomes")
        raise RecordError(f"unknown source {name!r}: an objection names one of {known}")
    return SOURCES[name]


def key_hash(source: Source, key: dict[str, str]) -> tuple[int, dict[str, str]]:
    """The lake's hash of a natural key given as text (and the key as ingestion normalises it)."""
    wanted = list(source.natural_key)
    unknown = sorted(set(key) - set(wanted))
    missing = [c for c in wanted if c not in key or not str(key[c]).strip()]
    if unknown or missing:
        raise RecordError(f"{source.name} records are named by {', '.join(wanted)}"
                          + (f"; missing: {', '.join(missing)}" if missing else "")
                          + (f"; not part of the key: {', '.join(unknown)}" if unknown else ""))
    canon, reasons = _normalised(source, {c: str(key[c]) for c in wanted}, dt.date.max, None)
    broken = [r for r in _broken(reasons, wanted) if not r.startswith("missing:")]
    if broken:
        raise RecordError(f"{source.name}: the key breaks ingestion rule(s) {', '.join(broken)}")
    values = {c: canon.column(c)[0].as_py() for c in wanted}
    shown = {c: (v.strftime("%Y-%m") if source.column(c).kind == "period" else
                 v.date().isoformat() if isinstance(v, dt.datetime) else str(v)) for c, v in values.items()}
    return int(row_hash(canon, wanted)[0]), shown


def _normalised(source: Source, values: dict[str, str | None], today: dt.date, known_codes):
    """One row of text through the ingestion rules; a value no Arrow type can hold (a year of
    twenty digits) is a RecordError, as any other broken rule."""
    raw = pa.table({c: pa.array([v], pa.string()) for c, v in values.items()})
    try:
        return normalise(source, raw, today, known_codes)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
        raise RecordError(f"{source.name}: {', '.join(values)}: a value out of every range ({error})") from None


def _broken(reasons, columns: list[str]) -> list[str]:
    """The ingestion reasons (``bad_date:decision_date``, ``uscc:R2``, ``unknown_enterprise``)
    that concern ``columns``."""
    out = []
    for reason in str(reasons[0]).split(";"):
        parts = reason.split(":")
        named = {"uscc"} if reason == "unknown_enterprise" else set(parts)
        if reason and named & set(columns):
            out.append(reason)
    return out


_TO_HALF_WIDTH = str.maketrans("（）", "()")
_TO_FULL_WIDTH = str.maketrans("()", "（）")


def _written_either_way(key: dict[str, str]) -> list[dict[str, str]]:
    """``key`` as given, then with its round brackets in the other width: a department writes a
    case or decision number (（2025）鄂0502执12号) with full-width brackets, a person typing it often
    with half-width ones, and the lake keeps each record as its department wrote it."""
    variants = [key]
    for table in (_TO_HALF_WIDTH, _TO_FULL_WIDTH):
        other = {c: str(v).translate(table) for c, v in key.items()}
        if other not in variants:
            variants.append(other)
    return variants


def find(lake: Lake, source_name: str, key: dict[str, str]) -> Record | None:
    """The newest version of the record ``key`` names in ``source_name`` (the one reported last;
    ties: ingested last), or None when the lake holds no such record or it was withdrawn. A key
    whose round brackets are in the other width than the department wrote them finds the record."""
    for variant in _written_either_way(key):
        found = _find_exactly(lake, source_name, variant)
        if found is not None:
            return found
    return None


def _find_exactly(lake: Lake, source_name: str, key: dict[str, str]) -> Record | None:
    source = source_of(source_name)
    digest, shown = key_hash(source, key)
    if digest in set(withdrawn_keys(lake).get(source.name, np.zeros(0, np.uint64)).tolist()):
        return None
    newest, newest_known = None, None
    for path in lake.parts(source.name):
        hashes = pq.read_table(path, columns=[KEY]).column(KEY).to_numpy()
        rows = np.flatnonzero(hashes == np.uint64(digest))
        if not len(rows):
            continue
        table = pq.read_table(path).take(pa.array(rows))
        for i in range(table.num_rows):
            known = table.column(source.known_date)[i].as_py()
            if newest is None or known >= newest_known:
                newest, newest_known = table.slice(i, 1), known
    if newest is None:
        return None
    values = {c: newest.column(c)[0].as_py() for c in source.column_names}
    return Record(source.name, shown, digest, str(values["uscc"]), values, newest.select(source.column_names))


def _new_version(lake: Lake, record: Record, changes: dict[str, str], reference: str,
                 known_codes: pa.Array | None) -> pa.Table:
    """The record with ``changes`` (text, as a department writes it) applied and checked by the
    ingestion rules; a RecordError naming each broken rule otherwise."""
    source = SOURCES[record.source]
    unknown = sorted(set(changes) - set(source.column_names))
    if unknown:
        raise RecordError(f"{source.name} has no column(s) {', '.join(unknown)}; its columns: "
                          f"{', '.join(source.column_names)}")
    fixed = sorted(set(changes) & (set(source.natural_key) | {source.known_date}))
    if fixed:
        raise RecordError(f"a correction cannot change {', '.join(fixed)}: the natural key names the record and the "
                          "reporting date is the platform's; remove the record instead")
    if not changes:
        raise RecordError("a correction names at least one column and its corrected value")
    canon, reasons = _normalised(source, {c: None if v is None else str(v) for c, v in changes.items()},
                                 dt.date.today(), known_codes if "uscc" in changes else None)
    broken = [r for r in _broken(reasons, list(changes))
              if not (r.startswith("missing:") and not source.column(r.split(":")[1]).required)]
    if broken:
        raise RecordError(f"the corrected {source.name} record breaks ingestion rule(s) {', '.join(broken)}")
    row = record.row
    for name in changes:
        row = row.set_column(row.column_names.index(name), name, canon.column(name).cast(row.schema.field(name).type))
    for earlier, later in source.date_order:
        if pc.fill_null(pc.greater(row.column(earlier), row.column(later)), False)[0].as_py():
            raise RecordError(f"the corrected {source.name} record breaks ingestion rule date_order:{earlier}>{later}")
    return _as_lake_rows(row, source, reference)


def _as_lake_rows(row: pa.Table, source: Source, reference: str) -> pa.Table:
    """The row with the lake's own columns; its run id is the commit's (:func:`_commit` sets it)."""
    n = row.num_rows
    return (row.append_column(KEY, pa.array(row_hash(row, list(source.natural_key))))
            .append_column("_row_hash", pa.array(row_hash(row, source.column_names)))
            .append_column("_run_id", pa.repeat(pa.scalar(""), n))
            .append_column("_file", pa.repeat(pa.scalar(reference), n))
            .append_column("_line", pa.repeat(pa.scalar(0, pa.int64()), n)))


def _commit(lake: Lake, dataset: str, rows: pa.Table, reference: str, kind: str) -> str:
    run_id = f"{kind}-{uuid.uuid4().hex[:12]}"
    rows = rows.set_column(rows.column_names.index("_run_id"), "_run_id", pa.repeat(pa.scalar(run_id), rows.num_rows)) \
        if "_run_id" in rows.column_names else rows
    lake.commit_rows(dataset, rows, {"run_id": run_id, "kind": kind, "reference": reference,
                                     "committed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                     "sources": {dataset: {"accepted": rows.num_rows}}})
    return run_id


def correct(lake: Lake, record: Record, changes: dict[str, str], reference: str) -> str:
    """Commit a corrected version of ``record`` (``reference``: the objection it settles); the
    lake run's id. The registry's codes are checked when the enterprise itself changes."""
    known = None
    if "uscc" in changes:
        registry = lake.read_arrow("enterprise_registry", ["uscc"])
        known = registry.column("uscc").combine_chunks() if registry is not None else pa.array([], pa.string())
    return _commit(lake, record.source, _new_version(lake, record, changes, reference, known), reference, "correction")


def repair(lake: Lake, record: Record, repaired_on: dt.date, reference: str) -> str:
    """Commit a version of ``record`` repaired on ``repaired_on`` (a source with a repair date only)."""
    source = SOURCES[record.source]
    if not source.repair_column:
        with_repair = ", ".join(s.name for s in SOURCES.values() if s.repair_column)
        raise RecordError(f"{source.name} records cannot be repaired (only {with_repair} carry a repair date); "
                          "settle the objection as corrected or removed instead")
    return correct(lake, record, {source.repair_column: repaired_on.isoformat()}, reference)


def remove(lake: Lake, record: Record, reference: str) -> str:
    """Withdraw ``record`` from every profile (a record that should never have been delivered)."""
    rows = pa.table({"source": [record.source], KEY: pa.array([record.key_hash], pa.uint64()),
                     "uscc": [record.uscc], "reference": [reference],
                     "withdrawn_at": [dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")],
                     "_run_id": [""]})
    return _commit(lake, WITHDRAWALS, rows, reference, "withdrawal")


def run_for(lake: Lake, reference: str) -> str | None:
    """The lake run already committed for ``reference`` (a settlement tried again after its
    database commit failed finds the lake write it made, and does not make a second)."""
    return next((run["run_id"] for run in reversed(lake.manifest()["runs"]) if run.get("reference") == reference), None)


def withdrawn_keys(lake: Lake) -> dict[str, np.ndarray]:
    """Per source, the key hashes of the records withdrawn from it (uint64, sorted)."""
    table = lake.read_arrow(WITHDRAWALS, ["source", KEY])
    if table is None:
        return {}
    frame = table.to_pandas()
    return {source: np.sort(group[KEY].to_numpy(dtype=np.uint64)) for source, group in frame.groupby("source")}


def withdrawals(lake: Lake, runs: list[str] | None = None) -> pd.DataFrame:
    """The withdrawals (source, key hash, enterprise, reference, day), of ``runs`` only when given."""
    table = lake.read_arrow(WITHDRAWALS)
    if table is None:
        return pd.DataFrame(columns=["source", KEY, "uscc", "reference", "withdrawn_at", "_run_id"])
    frame = table.to_pandas()
    return frame[frame["_run_id"].isin(runs)] if runs is not None else frame
