"""The Dask engine: the same per-partition functions, on a cluster, for cities that outgrow one
machine.

Every lake part of every source becomes a Dask partition (read where the worker runs, so the lake
must be on storage the workers share). Each row gets a bucket, a stable hash of the code of the
enterprise it belongs to (``_owner``), and every source is shuffled on that bucket into the same
number of partitions: partition *i* of every source then holds every record of the same
enterprises.
Each partition is handed to :func:`features.profile.compute.build_partition` (or
``snapshot_partition``), exactly what the pandas engine runs on the whole lake; nothing about a
feature is written twice.
"""

from __future__ import annotations

import contextlib
import logging

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.lake import Lake
from features.profile import compute
from features.profile.reading import LakeView, ProfileBuildError, empty_records, lake_view, read_part
from features.profile.pointintime import NEEDED, OWNER

BUCKET = "_bucket"
BUCKETS = 1 << 16
"""Enterprises are hashed into this many buckets; the shuffle spreads buckets over partitions."""
ROWS_PER_PARTITION = 400_000
"""Aim for about this many lake rows per partition of the largest source."""


def bucket_of(codes: np.ndarray) -> np.ndarray:
    """The bucket of each code: a hash that is the same on every machine and for every source.
    Many more buckets than partitions, so the shuffle's own hash of the bucket spreads them evenly."""
    return (pd.util.hash_array(np.asarray(codes, dtype=object)) % np.uint64(BUCKETS)).astype(np.int64)


def _read_bucketed(spec: tuple) -> pd.DataFrame:
    source, index, path, view, usccs = spec
    frame = read_part(source, index, path, view, usccs)
    frame[BUCKET] = bucket_of(frame[OWNER].to_numpy())
    return frame


def _partition_count(lake: Lake) -> int:
    largest = max((sum(_rows(p) for p in lake.parts(s)) for s in NEEDED), default=0)
    return max(2, int(np.ceil(largest / ROWS_PER_PARTITION)))


def _rows(path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def _shuffled(lake: Lake, view: LakeView, partitions: int, usccs) -> dict[str, list]:
    """Per source, its records as ``partitions`` delayed pandas frames, aligned on the enterprise."""
    codes = list(usccs) if usccs is not None else None
    out = {}
    for source in NEEDED:
        parts = lake.parts(source)
        if not parts:
            out[source] = [dask.delayed(_meta)(source)] * partitions
            continue
        specs = [(source, i, str(p), view, codes) for i, p in enumerate(parts)]
        frame = dd.from_map(_read_bucketed, specs, meta=_meta(source), enforce_metadata=False)
        out[source] = frame.shuffle(on=BUCKET, npartitions=partitions).to_delayed()
    return out


def partition_sizes(lake: Lake, source: str, partitions: int, workers: int = 2) -> list[int]:
    """Rows of ``source`` in each partition after the shuffle (to see that the work is spread)."""
    with _client(None, workers) as client:
        parts = _shuffled(lake, lake_view(lake), partitions, None)[source]
        return client.gather(client.compute([dask.delayed(len)(p) for p in parts]))


def _meta(source: str) -> pd.DataFrame:
    return empty_records(source).assign(**{BUCKET: np.zeros(0, np.int64)})


def _strip(records: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {s: f.drop(columns=[BUCKET], errors="ignore").reset_index(drop=True) for s, f in records.items()}


def _build_one(records: dict[str, pd.DataFrame], as_of_day: int, usccs, delivered) -> pd.DataFrame:
    return compute.build_partition(_strip(records), as_of_day, usccs, delivered)


def _snapshot_one(records: dict[str, pd.DataFrame], loans: pd.DataFrame, delivered) -> pd.DataFrame:
    return compute.snapshot_partition(_strip(records), loans.drop(columns=[BUCKET]).reset_index(drop=True), delivered)


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int):
    from distributed import Client, LocalCluster
    # the P2P shuffle logs every shuffle's start and end as a warning; they are not warnings here
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    if scheduler:
        try:
            client = Client(scheduler, timeout="5s")
        except (OSError, TimeoutError, ValueError) as error:
            raise ProfileBuildError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="auto") as cluster, Client(cluster) as client:
        yield client


def dask_profile(lake: Lake, as_of_day: int, usccs=None, scheduler: str | None = None, workers: int = 2,
                 partitions: int | None = None) -> pd.DataFrame:
    """The profile as of one day, computed partition by partition on a Dask cluster (a
    LocalCluster of ``workers`` processes when no scheduler address is given)."""
    partitions = partitions or _partition_count(lake)
    view = lake_view(lake)
    with _client(scheduler, workers) as client:
        shuffled = _shuffled(lake, view, partitions, usccs)
        tasks = [dask.delayed(_build_one)({s: shuffled[s][i] for s in shuffled}, as_of_day, usccs, view.delivered)
                 for i in range(partitions)]
        pieces = client.gather(client.compute(tasks))
    return _combine(pieces, ["uscc"])


def dask_snapshots(lake: Lake, loans: pd.DataFrame, scheduler: str | None = None, workers: int = 2,
                   partitions: int | None = None) -> pd.DataFrame:
    """Training snapshots (see :func:`features.profile.build.training_snapshots`) on Dask."""
    partitions = partitions or _partition_count(lake)
    view = lake_view(lake)
    loans = loans.assign(**{BUCKET: bucket_of(loans["uscc"].to_numpy())})
    usccs = pd.unique(loans["uscc"].to_numpy())
    with _client(scheduler, workers) as client:
        shuffled = _shuffled(lake, view, partitions, usccs)
        # loans are shuffled the same way, so partition i holds the loans of partition i's enterprises
        loan_parts = dd.from_pandas(loans, npartitions=1).shuffle(on=BUCKET, npartitions=partitions).to_delayed()
        tasks = [dask.delayed(_snapshot_one)({s: shuffled[s][i] for s in shuffled}, loan_parts[i], view.delivered)
                 for i in range(partitions)]
        pieces = client.gather(client.compute(tasks))
    out = _combine(pieces, ["loan_no"])
    return out.set_index("loan_no").loc[loans["loan_no"].to_numpy()].reset_index()


def _combine(pieces: list[pd.DataFrame], order: list[str]) -> pd.DataFrame:
    pieces = [p for p in pieces if len(p)] or pieces[:1]
    return pd.concat(pieces, ignore_index=True).sort_values(order, kind="stable").reset_index(drop=True)
