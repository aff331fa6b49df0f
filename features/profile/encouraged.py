"""Encouraged behaviour at the record level: the lake records as they would stand after it.

:data:`features.registry.ENCOURAGED` declares each behaviour the city encourages as a change to
the records (a right granted, a commitment made, a grade raised). :func:`with_encouraged` makes
that change for a set of enterprises on prepared records (:func:`features.profile.build.load_records`),
so that the profile can be rebuilt from them by the one computation every profile goes through,
and the decision re-scored: the promise that an encouraged behaviour never raises the PD nor lowers
the limit is tested that way, never on features set by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.profile.pointintime import KEY, NEVER, OWNER, PERIOD, SEQ
from features.registry import ENCOURAGED_BY_CODE, Encouraged
from features.schemas import SOURCES


def with_encouraged(code: str, records: dict[str, pd.DataFrame], usccs, as_of_day: int) -> dict[str, pd.DataFrame]:
    """``records`` (prepared, per source) as they would stand on ``as_of_day`` had each enterprise
    of ``usccs`` done the encouraged behaviour ``code``; the other sources are the same frames."""
    action = ENCOURAGED_BY_CODE.get(code)
    if action is None:
        raise ValueError(f"unknown encouraged behaviour {code!r}; the registry declares {sorted(ENCOURAGED_BY_CODE)}")
    usccs = np.asarray(list(usccs), dtype=object)
    frame = records[action.source]
    changed = _regraded(action, frame, usccs, as_of_day) if action.regrade else _added(action, frame, usccs, as_of_day)
    return {**records, action.source: changed}


def _added(action: Encouraged, frame: pd.DataFrame, usccs: np.ndarray, as_of_day: int) -> pd.DataFrame:
    """One new record per enterprise, learned by the platform on the day itself."""
    source = SOURCES[action.source]
    n = len(usccs)
    first_seq = int(frame[SEQ].max()) + 1 if len(frame) else 0
    first_key = int(frame[KEY].max()) + 1 if len(frame) else 1
    new = {"uscc": usccs, OWNER: usccs, KEY: np.arange(first_key, first_key + n, dtype=np.uint64),
           SEQ: np.arange(first_seq, first_seq + n, dtype=np.int64)}
    for column, value in action.record:
        if value == "as_of":
            new[column] = np.full(n, as_of_day, dtype=np.int64)
        elif value == "never":
            new[column] = np.full(n, NEVER, dtype=np.int64)
        else:
            new[column] = np.full(n, value, dtype=object)
    new[source.known_date] = np.full(n, as_of_day, dtype=np.int64)
    missing = [c for c in frame.columns if c not in new and c != PERIOD]
    if missing:
        raise ValueError(f"encouraged behaviour {action.code} does not say the new record's {missing}")
    added = pd.DataFrame({c: new[c] for c in frame.columns})
    return pd.concat([frame, added.astype(frame.dtypes.to_dict())], ignore_index=True)


def _regraded(action: Encouraged, frame: pd.DataFrame, usccs: np.ndarray, as_of_day: int) -> pd.DataFrame:
    """The latest year the platform knew an evaluation of on the day (every version of it) graded
    ``regrade``, for each enterprise of ``usccs``."""
    source = SOURCES[action.source]
    known = (frame[source.event_date].to_numpy() <= as_of_day) & (frame[source.known_date].to_numpy() <= as_of_day)
    theirs = frame["uscc"].isin(usccs).to_numpy() & known
    latest = frame.loc[theirs].groupby("uscc")["year"].transform("max")
    rows = np.flatnonzero(theirs)[(frame.loc[theirs, "year"] == latest).to_numpy()]
    out = frame.copy()
    grade = out["grade"].to_numpy(dtype=object).copy()
    grade[rows] = action.regrade
    out["grade"] = grade
    return out
