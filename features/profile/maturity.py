"""Feature maturity: whether the lake's history reaches back far enough for a feature's window.

The platform learned of each source from some day on (its **history start**): the first month a
monthly source (tax returns, utility bills) was delivered, the earliest event an event register
holds. A feature is **mature** at an as_of when its window lies wholly after its sources' history
start; before that it is *not yet available*, a different fact from *no record* (the enterprise
has nothing in a source whose history covers the window), although both are missing values in a
profile. Models must not learn the first as the second: a 24-month sales growth computed on the
lake's first year is missing for everyone then and present for everyone later, so a model fitted
early would learn "missing" where it should learn the value (:mod:`models.dataset` fits only on
features mature on every fitted row, and reports the rest).

Windows. A monthly feature over ``n`` months ends at the anchor month and needs the ``n`` months
before it; an event feature over ``n`` months needs the ``n`` months before as_of. A feature
without a window (states such as "on the list now", cumulative counts, registrations) is taken as
mature: registers of state carry their history with them (a property registered in 1998 is in the
real-estate register), and "ever" counts say so in their names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.profile.families import window_days
from features.profile.pointintime import NEVER, PERIOD, anchor_months
from features.registry import FEATURES, Feature
from features.schemas import SOURCES


def history_starts(records: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Per source held by ``records`` (prepared as the build prepares them): the day number from
    which the lake's history of it starts (the first month delivered for monthly sources, the
    earliest event otherwise). Sources with no records are left out."""
    out = {}
    for source, frame in records.items():
        if not len(frame):
            continue
        if PERIOD in frame.columns:
            first_month = int(frame[PERIOD].min())
            out[source] = int(np.datetime64(first_month, "M").astype("datetime64[D]").astype(np.int64))
        else:
            days = frame[SOURCES[source].event_date].to_numpy()
            days = days[days < NEVER]
            if len(days):
                out[source] = int(days.min())
    return out


def is_monthly(feature: Feature) -> bool:
    """Whether the feature is computed from monthly records (windows end at the anchor month)."""
    return any(SOURCES[s].natural_key == ("uscc", "period") for s in feature.sources)


def window_start_days(feature: Feature, as_of_days: np.ndarray) -> np.ndarray | None:
    """The first day each as_of's window of ``feature`` covers (None: the feature has no window)."""
    if not feature.window_months:
        return None
    as_of_days = np.asarray(as_of_days, dtype=np.int64)
    if is_monthly(feature):
        first_month = anchor_months(as_of_days) - feature.window_months + 1
        return first_month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return as_of_days - window_days(feature.window_months)


def mature(feature: Feature, as_of_days: np.ndarray, starts: dict[str, int]) -> np.ndarray:
    """Per as_of: is the feature's window wholly inside the history of every source it reads?
    A source the lake never received makes the feature immature everywhere."""
    as_of_days = np.asarray(as_of_days, dtype=np.int64)
    first = window_start_days(feature, as_of_days)
    if any(s not in starts for s in feature.sources):
        return np.zeros(len(as_of_days), dtype=bool)
    if first is None:
        return np.ones(len(as_of_days), dtype=bool)
    return first >= max(starts[s] for s in feature.sources)


def maturity_table(as_of_days: np.ndarray, starts: dict[str, int],
                   features: tuple[Feature, ...] = FEATURES) -> pd.DataFrame:
    """One row per feature: its window, the share of the given as_of dates at which it is mature,
    and the first of them at which it is (NaT when never)."""
    as_of_days = np.asarray(as_of_days, dtype=np.int64)
    rows = []
    for f in features:
        ok = mature(f, as_of_days, starts)
        first = as_of_days[ok].min() if ok.any() else None
        rows.append({"feature": f.name, "window_months": f.window_months, "sources": ", ".join(f.sources),
                     "mature_share": float(ok.mean()) if len(ok) else float("nan"),
                     "first_mature_as_of": None if first is None else str(np.datetime64(int(first), "D"))})
    return pd.DataFrame(rows)
