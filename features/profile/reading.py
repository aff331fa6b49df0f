"""Reading the lake for a build, on either engine: one scan of what every partition must know
about the whole lake (:class:`LakeView`) and each lake part prepared and spread to the enterprises
its records name. :mod:`features.profile.build` (pandas) and :mod:`features.profile.distributed`
(Dask) both read through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.corrections import withdrawn_keys
from features.lake import Lake
from features.profile.pointintime import (KEY, NEEDED, OWNER, Deliveries, delivery_calendar, lake_columns, prepare,
                                          spread_to_owners, to_days)
from features.schemas import SOURCES


class ProfileBuildError(ValueError):
    """A build the user asked for that cannot be done as asked (nothing is written)."""


def seq_numbers(part_index: int, rows: int) -> np.ndarray:
    """Lake order of a part's rows: the part's place in the manifest, then the row."""
    return (np.int64(part_index) << np.int64(32)) + np.arange(rows, dtype=np.int64)


@dataclass
class LakeView:
    """What every partition must know about the whole lake: which sources were ever delivered,
    and which records' versions name more than one enterprise (``(_key_hash, _owner)`` pairs per
    source; see :func:`features.profile.pointintime.spread_to_owners`)."""

    delivered: Deliveries  # the sources ever delivered, with the monthly ones' delivery calendars
    shared: dict[str, pd.DataFrame]
    withdrawn: dict[str, np.ndarray] = field(default_factory=dict)  # per source: key hashes removed on objection


def lake_view(lake: Lake) -> LakeView:
    """Scan the lake once for what :class:`LakeView` holds."""
    sources = [s for s in NEEDED if lake.parts(s)]
    calendar = {}
    for source in sources:  # when each month of a monthly source became known, over every enterprise
        if SOURCES[source].cadence == "monthly":
            known = SOURCES[source].known_date  # each month's first known day, grouped in Arrow: one row a month
            months = lake.read_arrow(source, ["period", known]).group_by("period").aggregate([(known, "min")]).to_pandas()
            calendar[source] = delivery_calendar(to_days(months["period"].to_numpy()),
                                                 to_days(months[f"{known}_min"].to_numpy()))
    delivered = Deliveries(sources, calendar)
    shared = {}
    for source in delivered:
        if not SOURCES[source].accepts_corrections or SOURCES[source].natural_key == ("uscc",):
            continue
        pairs = lake.read_arrow(source, [KEY, "uscc"]).to_pandas().drop_duplicates()
        several = pairs[KEY].duplicated(keep=False)
        if several.any():
            shared[source] = pairs[several].rename(columns={"uscc": OWNER}).reset_index(drop=True)
    return LakeView(delivered, shared, withdrawn_keys(lake))


def read_part(source: str, part_index: int, path: Path, view: LakeView, usccs=None) -> pd.DataFrame:
    """One lake part of a source, prepared for the build and spread to every enterprise its
    records ever named (only what ``usccs``' profiles need, when given)."""
    table = pq.read_table(path, columns=lake_columns(source))
    seq = seq_numbers(part_index, table.num_rows)
    withdrawn = view.withdrawn.get(source)
    if withdrawn is not None and len(withdrawn):  # records removed on objection count nowhere
        keep = pc.invert(pc.is_in(table.column(KEY), value_set=pa.array(withdrawn, pa.uint64())))
        table, seq = table.filter(keep), seq[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
    shared = view.shared.get(source, pd.DataFrame({KEY: pd.Series(dtype="uint64"), OWNER: pd.Series(dtype=object)}))
    if usccs is not None:
        wanted = pa.array(list(usccs), pa.string())
        keep = pc.is_in(table.column("uscc"), value_set=wanted)
        theirs = shared[shared[OWNER].isin(list(usccs))][KEY].to_numpy()
        if len(theirs):
            keep = pc.or_(keep, pc.is_in(table.column(KEY), value_set=pa.array(theirs, pa.uint64())))
        table, seq = table.filter(keep), seq[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
    frame = spread_to_owners(prepare(source, table.to_pandas(), seq), shared)
    if usccs is not None and len(shared):
        frame = frame[frame[OWNER].isin(list(usccs))].reset_index(drop=True)
    return frame


def load_records(lake: Lake, usccs=None, sources=None, view: LakeView | None = None) -> dict[str, pd.DataFrame]:
    """Every source the profile needs, prepared, from the committed lake (only what ``usccs``'
    profiles need, when given)."""
    view = view or lake_view(lake)
    out = {}
    for source in sources or NEEDED:
        parts = [read_part(source, i, p, view, usccs) for i, p in enumerate(lake.parts(source))]
        out[source] = pd.concat(parts, ignore_index=True) if parts else empty_records(source)
    return out


def empty_records(source: str) -> pd.DataFrame:
    """A source's prepared frame with no rows and every column typed."""
    s = SOURCES[source]
    kinds = {"date": "datetime64[ms]", "period": "datetime64[ms]", "money": "int64", "int": "int64",
             "year": "int64", "number": "float64"}
    columns = {c: pd.Series(dtype=kinds.get(s.column(c).kind, "object")) for c in lake_columns(source) if c != "_key_hash"}
    lake_frame = pd.DataFrame({**columns, "_key_hash": pd.Series(dtype="uint64")})
    return prepare(source, lake_frame, np.zeros(0, np.int64))
