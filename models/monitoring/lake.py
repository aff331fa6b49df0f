"""Monitoring read from the lake: the champion's training borrowers against recent applicants, the
living population a year apart, silent sources, and loans matured since training; then the
measures and the verdict."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd

from features.registry import BY_NAME
from models.bundle import ModelBundle
from models.dataset import label_loans
from models.monitoring.measures import (SILENT_DAYS, SILENT_GAPS, drift, missing_by_source, realised_by_grade,
                                        sample_rows)
from models.monitoring.verdict import Monitoring, verdict


def silent_sources(home: Path, as_of: dt.date, sources) -> pd.DataFrame:
    """Per source, its newest delivery on or before ``as_of``, its longest gap between deliveries in
    the two years before that, and how long it has been silent; ``silent`` by the rule of
    :data:`SILENT_DAYS` and :data:`SILENT_GAPS`."""
    import pyarrow.compute as pc

    from features.lake import Lake
    from features.schemas import SOURCES

    lake, day = Lake(home), pd.Timestamp(as_of)
    rows = []
    for source in sources:
        if source not in SOURCES:
            continue
        table = lake.read_arrow(source, [SOURCES[source].known_date])
        if table is None:
            continue
        known = pd.to_datetime(pd.Series(pc.unique(table.column(0)).to_pandas())).dropna().sort_values()
        known = known[known <= day]
        if not len(known):
            continue
        recent = known[known > known.iloc[-1] - pd.Timedelta(days=730)]
        gaps = recent.diff().dt.days.dropna()
        longest = float(gaps.max()) if len(gaps) else math.nan
        quiet = int((day - known.iloc[-1]).days)
        rows.append({"source": source, "last_delivery": known.iloc[-1].date().isoformat(), "longest_gap_days": longest,
                     "silent_days": quiet,
                     "silent": bool(quiet > SILENT_DAYS and (longest != longest or quiet > SILENT_GAPS * longest))})
    return pd.DataFrame(rows)


def monitor(bundle: ModelBundle, home: Path, as_of: dt.date, recent_months: int = 6, sample: int = 20_000,
            snapshots: pd.DataFrame | None = None) -> Monitoring:
    """Monitor ``bundle`` on the lake under ``home`` as of ``as_of``: applicants (its training
    borrowers against the loans granted in the ``recent_months`` months to ``as_of``), the living
    population (``as_of`` against a year before), sources' missing shares among applicants, and
    realised default on loans matured since its fitted windows. At most ``sample`` rows a side."""
    from features.lake import Lake
    from features.profile.build import training_snapshots

    snapshots = snapshots if snapshots is not None else training_snapshots(home)
    month = snapshots["grant_date"].dt.to_period("M")
    split = bundle.meta["split"]
    train_first, train_last = pd.Period(split["train"][0], "M"), pd.Period(split["train"][1], "M")
    training = _sample(snapshots[(month >= train_first) & (month <= train_last)], sample)
    newest = pd.Period(as_of, "M")
    recent = _sample(snapshots[(month > newest - recent_months) & (month <= newest)
                               & (snapshots["grant_date"] <= pd.Timestamp(as_of))], sample)
    year_before = (pd.Timestamp(as_of) - pd.DateOffset(years=1)).date()
    now, then = _sample(_living(home, as_of), sample), _sample(_living(home, year_before), sample)
    fitted_until = max(w[1] for w in (split["train"], split["valid"], split["calib"]) if w and w[0])
    labelled = label_loans(snapshots, Lake(home), as_of)  # outcomes as the banks had reported them by then
    since = labelled[labelled["grant_date"].dt.to_period("M") > pd.Period(fitted_until, "M")].reset_index(drop=True)
    applicants = drift(bundle, training, recent)
    population = drift(bundle, then, now) if len(then) and len(now) else pd.DataFrame()
    missing = missing_by_source(bundle, training, recent)
    realised = realised_by_grade(bundle, since)
    read = sorted({source for name in bundle.features if name in BY_NAME for source in BY_NAME[name].sources})
    silent = silent_sources(home, as_of, read)
    said, rules = verdict(applicants, population, missing, realised, bundle.policy.fair_lending["calibration_band"],
                          silent)
    granted = (f"{recent['grant_date'].min():%Y-%m}…{recent['grant_date'].max():%Y-%m}" if len(recent) else "none")
    populations = {
        "training applicants": f"{len(training):,} loans granted {split['train'][0]}…{split['train'][1]} "
                               "(profiles at grant)",
        "recent applicants": f"{len(recent):,} loans granted {granted} (profiles at grant)",
        "population then": f"{len(then):,} living entities on {year_before}",
        "population now": f"{len(now):,} living entities on {as_of}",
        "matured since training": f"{len(since):,} loans granted after {fitted_until}, "
                                  f"{int(since['defaulted'].sum()) if len(since) else 0} defaults"}
    return Monitoring(said, rules, applicants, population, missing, realised, silent, populations, then, now)


def _sample(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    return sample_rows(frame, n).reset_index(drop=True)


def _living(home: Path, day: dt.date) -> pd.DataFrame:
    """The stored profile of ``day``, or one built for it (empty when the lake does not reach it)."""
    from features.profile.build import ProfileBuildError, build
    from features.profile.store import ProfileStore

    store = ProfileStore(home)
    if store.exists(day):
        return store.read(day)
    try:
        return build(home, day).profile
    except ProfileBuildError:
        return pd.DataFrame()
