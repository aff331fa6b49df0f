"""Building profiles from the lake: full, incremental (``--uscc``), after new data (``--changed``)
and training snapshots, on the pandas engine or on Dask.

Both engines run the same per-partition functions of :mod:`features.profile.compute`; the pandas
engine runs them once over the whole lake, Dask once per partition after shuffling every source
on ``uscc`` (:mod:`features.profile.distributed`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.corrections import withdrawals
from features.lake import Lake
from features.profile import compute
from features.profile.pointintime import KEY, NEEDED, OWNER, day_number, delivery_calendar, to_days
from features.profile.reading import LakeView, ProfileBuildError, lake_view, load_records
from features.profile.store import ProfileInfo, ProfileStore
from features.registry import feature_set_version
from features.schemas import SOURCES

ENGINES = ("pandas", "dask")


@dataclass
class BuildResult:
    """What a build did: the profile, where it went, and how long each stage took."""

    as_of: dt.date
    profile: pd.DataFrame
    path: Path | None
    mode: str
    engine: str
    rebuilt: int  # rows computed: every row of a full build, the listed enterprises alive on as_of otherwise
    dropped: int = 0  # rows an update removed: listed enterprises no longer alive on as_of
    seconds: dict[str, float] = field(default_factory=dict)


def _require_registry(lake: Lake) -> None:
    if not lake.parts(compute.REGISTRY):
        raise ProfileBuildError(f"the lake under {lake.root} holds no enterprise registry; "
                                "ingest the registry first (`xyd ingest enterprise_registry FILE`)")


def _lake_runs(lake: Lake) -> list[str]:
    return [run["run_id"] for run in lake.manifest()["runs"]]


def unseen_runs(lake: Lake, info) -> list[str]:
    """Ingestion runs committed to the lake after the stored profile ``info`` was built: what it
    has not seen (and what evidence read from the lake now would see)."""
    return [run for run in _lake_runs(lake) if run not in set(info.lake_runs)]


def build(home: Path, as_of: dt.date, engine: str = "pandas", usccs: list[str] | None = None,
          scheduler: str | None = None, workers: int = 2,
          progress: Callable[[str], None] | None = None) -> BuildResult:
    """Build the profile as of ``as_of`` and store it under ``home``.

    Without ``usccs``: every enterprise alive on that date. With ``usccs``: only those are
    rebuilt and replaced in the stored profile (the rest is kept), giving them exactly what a
    full build would; enterprises no longer alive leave it. Raises :class:`ProfileBuildError`
    when that cannot be done (no registry, no stored profile to update, another feature set).
    """
    if engine not in ENGINES:
        raise ProfileBuildError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    lake, store = Lake(home), ProfileStore(home)
    _require_registry(lake)
    version = feature_set_version()
    previous = None
    if usccs is not None:
        previous = _stored_for_update(store, as_of, version)
    runs = _lake_runs(lake)
    seconds: dict[str, float] = {}
    tick = time.perf_counter()
    profile = compute_profile(lake, as_of, engine, usccs, scheduler, workers, seconds, progress)
    rebuilt, dropped = len(profile), 0
    if previous is None:
        info = ProfileInfo(as_of.isoformat(), version, len(profile), _now(), engine, 0.0, runs)
    else:
        stored = store.read(as_of)
        asked = stored["uscc"].isin(set(usccs))
        dropped = int(asked.sum()) - int(stored["uscc"].isin(set(profile["uscc"])).sum())
        profile = (pd.concat([stored[~asked], profile], ignore_index=True)
                   .sort_values("uscc", kind="stable").reset_index(drop=True))
        info = previous
        info.rows = len(profile)
        info.rebuilt = [*previous.rebuilt, {"at": _now(), "enterprises": rebuilt, "reason": "uscc list"}]
    seconds["total"] = time.perf_counter() - tick
    if previous is None:
        info.seconds = round(seconds["total"], 3)
    path = store.write(profile, info)
    return BuildResult(as_of, profile, path, "full" if usccs is None else "incremental", engine,
                       rebuilt, dropped, seconds)


def compute_profile(lake: Lake, as_of: dt.date, engine: str = "pandas", usccs=None, scheduler: str | None = None,
                    workers: int = 2, seconds: dict | None = None,
                    progress: Callable[[str], None] | None = None, partitions: int | None = None) -> pd.DataFrame:
    """The profile as of ``as_of`` (of ``usccs`` only, when given), computed but not stored.
    ``partitions`` overrides how many partitions the Dask engine splits the lake into."""
    seconds = seconds if seconds is not None else {}
    day = day_number(as_of)
    if engine == "dask":
        from features.profile.distributed import dask_profile
        if progress:
            progress(f"dask: shuffling the lake on uscc across {'the cluster at ' + scheduler if scheduler else f'{workers} local workers'}")
        tick = time.perf_counter()
        out = dask_profile(lake, day, usccs, scheduler, workers, partitions)
        seconds["dask"] = time.perf_counter() - tick
        return out
    tick = time.perf_counter()
    if progress:
        progress("reading the lake")
    view = lake_view(lake)
    records = load_records(lake, usccs, view=view)
    seconds["read"] = time.perf_counter() - tick
    tick = time.perf_counter()
    if progress:
        progress("computing features")
    out = compute.build_partition(records, day, usccs, view.delivered)
    seconds["compute"] = time.perf_counter() - tick
    return out


def _stored_for_update(store: ProfileStore, as_of: dt.date, version: str) -> ProfileInfo:
    if not store.exists(as_of):
        raise ProfileBuildError(f"no stored profile as of {as_of} to update; run a full build first "
                                f"(`xyd features build --as-of {as_of}`)")
    info = store.info(as_of)
    if info.feature_set_version != version:
        raise ProfileBuildError(f"the profile as of {as_of} was built under feature set {info.feature_set_version}, "
                                f"the registry is now {version}; rebuild it in full")
    return info


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


# ------------------------------------------------------------------------------ after new data

def changed_enterprises(lake: Lake, as_of: dt.date, seen_runs: list[str], runs: list[str] | None = None,
                        view: LakeView | None = None) -> list[str]:
    """Enterprises whose profile as of ``as_of`` may differ from one built when the lake held only
    ``seen_runs`` (compared with ``runs``, the lake's runs now by default): they have a record
    from a later run that the profile would see, or a repair notice (penalty repaired, dishonest
    listing removed) dated on or before as_of, or a record withdrawn on objection; a record whose
    versions name several enterprises marks all of them. A source delivered for the first time
    marks every enterprise, and so does a monthly source whose newest month known by as_of the new
    runs change (a late month ends its silence for everyone, :class:`Deliveries`)."""
    day = day_number(as_of)
    seen = set(seen_runs)
    new_runs = [r for r in (runs if runs is not None else _lake_runs(lake)) if r not in seen]
    if not new_runs:
        return []
    view = view or lake_view(lake)
    wanted = pa.array(new_runs, pa.string())
    affected: set[str] = set(withdrawals(lake, new_runs)["uscc"].astype(str))
    for name in NEEDED:
        source = SOURCES[name]
        columns = list(dict.fromkeys(["uscc", KEY, source.event_date, source.known_date,
                                      *([source.repair_column] if source.repair_column else []), "_run_id"]))
        table = lake.read_arrow(name, columns)
        if table is None:
            continue
        is_new = pc.is_in(table.column("_run_id"), value_set=wanted)
        if pc.all(is_new).as_py():
            return sorted(set(lake.read(compute.REGISTRY, ["uscc"])["uscc"].tolist()))
        frame = table.filter(is_new).to_pandas()
        if not len(frame):
            continue
        if name in view.delivered.calendar and _newest_month_moves(lake, name, source.known_date, is_new, day):
            return sorted(set(lake.read(compute.REGISTRY, ["uscc"])["uscc"].tolist()))
        visible = (to_days(frame[source.known_date].to_numpy()) <= day) & (to_days(frame[source.event_date].to_numpy()) <= day)
        if source.repair_column:
            visible |= to_days(frame[source.repair_column].to_numpy()) <= day
        affected.update(frame["uscc"].to_numpy()[visible].tolist())
        if name in view.shared:
            shared = view.shared[name]
            affected.update(shared[shared[KEY].isin(frame[KEY].to_numpy()[visible])][OWNER].tolist())
    return sorted(affected)


def _newest_month_moves(lake: Lake, name: str, known_date: str, is_new, day: int) -> bool:
    """Does a monthly source's newest month known by ``day`` differ with the new runs' rows from
    without them? (Its silence on that day, and so every enterprise's profile, turns on it.)"""
    months = lake.read_arrow(name, ["period", known_date]).to_pandas()
    period, known = to_days(months["period"].to_numpy()), to_days(months[known_date].to_numpy())
    new = np.asarray(is_new.to_numpy(zero_copy_only=False), dtype=bool)

    def newest(rows: np.ndarray) -> int | None:
        days, month = delivery_calendar(period[rows], known[rows])
        at = int(np.searchsorted(days, day, side="right")) - 1
        return None if at < 0 else int(month[at])

    return newest(~new) != newest(np.ones(len(new), dtype=bool))


def rebuild_changed(home: Path, engine: str = "pandas", dates: list[dt.date] | None = None,
                    scheduler: str | None = None, workers: int = 2) -> list[BuildResult]:
    """Rebuild, in every stored profile (or those of ``dates``), the enterprises that data
    ingested since it was built can change, and record that it has seen those runs."""
    lake, store = Lake(home), ProfileStore(home)
    _require_registry(lake)
    # the runs examined are fixed first: a run committed meanwhile is left for the next time
    runs = _lake_runs(lake)
    view = lake_view(lake)
    results = []
    for as_of in dates or store.dates():
        info = _stored_for_update(store, as_of, feature_set_version())
        changed = changed_enterprises(lake, as_of, info.lake_runs, runs, view)
        if changed:
            result = build(home, as_of, engine, changed, scheduler, workers)
        else:
            result = BuildResult(as_of, store.read(as_of), store.path(as_of), "changed", engine, 0)
        # the profile has now seen those runs: record it, so the same runs are not replayed
        stored = store.info(as_of)
        stored.lake_runs = runs
        if changed:
            stored.rebuilt[-1]["reason"] = "data ingested since the build (--changed)"
        store.write(result.profile, stored)
        result.mode = "changed"
        results.append(result)
    return results


# ------------------------------------------------------------------------------ training snapshots

def loans(lake: Lake) -> pd.DataFrame:
    """The newest report of every loan outcome."""
    source = SOURCES[compute.LOANS]
    return lake.current(source.name, source.natural_key, source.known_date)


def training_snapshots(home: Path, engine: str = "pandas", scheduler: str | None = None,
                       workers: int = 2, partitions: int | None = None) -> pd.DataFrame:
    """For every loan outcome, the borrower's profile as of the loan's grant date, beside the
    outcome: one row per loan, built in one pass (each loan is a request; loans that share a
    grant date share the pass), never one build per loan."""
    lake = Lake(home)
    _require_registry(lake)
    outcomes = loans(lake)
    if not len(outcomes):
        raise ProfileBuildError("the lake holds no loan outcomes; ingest `loan_outcomes` first")
    if engine == "dask":
        from features.profile.distributed import dask_snapshots
        return dask_snapshots(lake, outcomes, scheduler, workers, partitions)
    view = lake_view(lake)
    records = load_records(lake, pd.unique(outcomes["uscc"].to_numpy()), view=view)
    return compute.snapshot_partition(records, outcomes, view.delivered)
