"""Point-in-time views of lake records: what the platform knew about an enterprise on a date.

A **request** is an (enterprise, as_of) pair; a full build asks one per living enterprise on the
same date, a training snapshot one per loan on its grant date. A record of a source is **seen**
by a request when

* its event date and the date the platform learned of it (``known_date``) are both on or before
  ``as_of``; for sources that take corrections, only the newest version known by ``as_of`` is
  seen (ties: the one ingested last);
* it was not repaired or removed on or before ``as_of`` (``Source.repair_column``, the earliest
  date any version of the record gives): credit repair applies from its own date whenever the
  platform learned of it, so a record repaired on R counts in profiles with ``as_of < R`` and in
  none with ``as_of >= R`` (work plan item 16). This is the one way a notice that arrives after
  ``as_of`` changes a profile as of it; ``xyd features build --changed`` applies it.

Everything here works on one partition of enterprises at a time: every record of an enterprise
must be in the same frame as its requests (the Dask engine shuffles on ``_owner``, the code, for
that; a record whose versions name several enterprises goes to each of them, see
:func:`spread_to_owners`), and nothing depends on other enterprises, so any partitioning gives
the same rows.

Dates are whole days since 1970-01-01 (int64); a missing date is :data:`NEVER`, which is after
every ``as_of``. Monthly periods are month numbers (``year * 12 + month - 1``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.registry import DELIVERY_DAY
from features.schemas import SOURCES

NEVER = 10**9
"""The day number of a date that has not happened: later than any as_of."""

PERIOD = "_period_month"
SEQ = "_seq"
KEY = "_key_hash"
OWNER = "_owner"

NEEDED: dict[str, tuple[str, ...]] = {
    "enterprise_registry": ("entity_type", "industry_section", "district_code", "registered_capital",
                            "established_date", "deregistered_date"),
    "tax_filings": ("period", "sales", "tax_paid", "arrears", "filing_date", "late"),
    "tax_grades": ("year", "grade", "published_date"),
    "electricity": ("period", "usage", "billed", "arrears"),
    "water": ("period", "usage", "billed", "arrears"),
    "gas": ("period", "usage", "billed", "arrears"),
    "real_estate": ("appraised_value", "registration_date", "mortgage_date", "mortgage_release_date",
                    "seizure_date", "seizure_release_date"),
    "intellectual_property": ("ip_type", "application_date", "grant_date", "lapse_date", "pledge_date"),
    "court_executions": ("filing_date", "amount", "closing_date"),
    "dishonest_debtors": ("listing_date", "removal_date"),
    "administrative_penalties": ("decision_date", "severity", "amount", "repair_date"),
    "credit_commitments": ("commitment_date", "status", "verified_date"),
}
"""The columns of each source that profiles are computed from (besides uscc and the known date)."""


def lake_columns(source: str) -> list[str]:
    """Columns to read from the lake for ``source``."""
    s = SOURCES[source]
    return list(dict.fromkeys(["uscc", *NEEDED[source], s.event_date, s.known_date, KEY]))


def day_number(value: dt.date | str | np.datetime64) -> int:
    """Days since 1970-01-01 of a date."""
    return int(np.datetime64(value, "D").astype(np.int64))


def to_days(values) -> np.ndarray:
    """Dates (datetime64 of any unit, NaT for missing) as day numbers, missing as :data:`NEVER`."""
    days = np.asarray(values).astype("datetime64[D]")
    out = days.astype(np.int64)
    out[np.isnat(days)] = NEVER
    return out


def prepare(source: str, frame: pd.DataFrame, seq: np.ndarray) -> pd.DataFrame:
    """Lake rows of a source in the form the build works on: dates as day numbers, periods as
    month numbers, ``_seq`` (lake order, for ties between versions) attached."""
    s = SOURCES[source]
    codes = frame["uscc"].to_numpy()
    out = pd.DataFrame({"uscc": codes, OWNER: codes, KEY: frame[KEY].to_numpy(), SEQ: seq})
    for column in dict.fromkeys([*NEEDED[source], s.event_date, s.known_date]):
        kind = s.column(column).kind
        if kind == "date":
            out[column] = to_days(frame[column].to_numpy())
        elif kind == "period":
            months = np.asarray(frame[column].to_numpy()).astype("datetime64[M]")
            out[PERIOD] = months.astype(np.int64)  # months since 1970-01
            out[column] = to_days(frame[column].to_numpy())
        elif kind in ("money", "int", "year"):
            out[column] = frame[column].to_numpy(dtype=np.int64, na_value=0)
        elif kind == "number":
            out[column] = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[column] = frame[column].to_numpy(dtype=object, na_value=None)
    return out


def spread_to_owners(records: pd.DataFrame, shared: pd.DataFrame) -> pd.DataFrame:
    """Copies of every version of a record whose versions name more than one enterprise (a code
    corrected at the source, work plan item 12), one for each of them: ``_owner`` says whose
    requests may look at the copy, ``uscc`` still says whom that version names. ``shared`` holds
    the (``_key_hash``, ``_owner``) pairs of such records across the whole lake."""
    if not len(shared) or not len(records):
        return records
    moved = records[KEY].isin(shared[KEY].to_numpy())
    copies = records[moved].drop(columns=[OWNER]).merge(shared, on=KEY, how="inner")
    return pd.concat([records[~moved], copies[records.columns]], ignore_index=True)


def anchor_months(as_of_days: np.ndarray) -> np.ndarray:
    """Month numbers (months since 1970-01) of the anchor month for each as_of: the newest month
    every department has delivered by then (see :mod:`features.registry`, windows)."""
    days = np.asarray(as_of_days).astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    day_of_month = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    return months.astype(np.int64) - np.where(day_of_month >= DELIVERY_DAY, 1, 2)


class Deliveries(frozenset):
    """The sources the platform has ever received (a frozenset of names, as every build takes
    them) and, for each monthly source, its delivery calendar: when each month's records first
    became known (:func:`delivery_calendar`). A monthly source whose anchor month has not arrived
    by an as_of is *silent* then: its features are "not delivered" for every enterprise, an absence,
    never a behaviour (a department that stops delivering must not read as "no electricity used")."""

    def __new__(cls, sources=(), calendar: dict | None = None):
        self = super().__new__(cls, sources)
        self.calendar = dict(calendar or {})
        return self

    def __reduce__(self):  # Dask ships it to its workers
        return (Deliveries, (frozenset(self), self.calendar))

    def silent(self, source: str, as_of_days: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        """Per request: the source's newest month known by its as_of is older than its anchor month
        (a source none of whose months is known yet is silent)."""
        if source not in self.calendar:
            return np.zeros(len(as_of_days), dtype=bool)
        known_days, newest = self.calendar[source]
        if not len(known_days):  # records whose known dates are all missing: no month has arrived
            return np.ones(len(as_of_days), dtype=bool)
        at = np.searchsorted(known_days, np.asarray(as_of_days), side="right") - 1
        latest = np.where(at >= 0, newest[np.maximum(at, 0)], np.iinfo(np.int64).min)
        return latest < np.asarray(anchors)


def delivery_calendar(period_days: np.ndarray, known_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From a monthly source's records (their period and known dates, as day numbers): the days on
    which its newest known month changed, and that month (a month number) from each of them on."""
    months = np.asarray(period_days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    known = np.asarray(known_days, dtype=np.int64)
    usable = known < NEVER
    if not usable.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    frame = pd.DataFrame({"month": months[usable], "known": known[usable]}).groupby("month")["known"].min()
    by_day = frame.sort_values(kind="stable")
    return by_day.to_numpy(dtype=np.int64), np.maximum.accumulate(by_day.index.to_numpy(dtype=np.int64))


@dataclass
class Requests:
    """Requests sorted by (uscc, as_of): ``order`` maps them back to the order they were asked in."""

    uscc: np.ndarray
    as_of: np.ndarray
    anchor: np.ndarray
    order: np.ndarray
    codes: pd.Index
    first: np.ndarray
    count: np.ndarray

    @property
    def n(self) -> int:
        return len(self.uscc)

    @classmethod
    def make(cls, uscc, as_of_days) -> Requests:
        uscc = np.asarray(uscc, dtype=object)
        as_of_days = np.asarray(as_of_days, dtype=np.int64)
        order = np.lexsort((as_of_days, uscc.astype(str))) if len(uscc) else np.zeros(0, np.int64)
        sorted_uscc = uscc[order]
        group, uniques = pd.factorize(sorted_uscc)
        count = np.bincount(group, minlength=len(uniques)) if len(group) else np.zeros(0, np.int64)
        first = np.cumsum(count) - count
        sorted_days = as_of_days[order]
        return cls(sorted_uscc, sorted_days, anchor_months(sorted_days), order, pd.Index(uniques), first, count)


@dataclass
class Seen:
    """The records of one source that the requests see: ``q`` (request) and the record's columns."""

    q: np.ndarray
    rows: pd.DataFrame

    def __len__(self) -> int:
        return len(self.q)

    def col(self, name: str) -> np.ndarray:
        return self.rows[name].to_numpy()


def seen(requests: Requests, source: str, records: pd.DataFrame) -> Seen:
    """The records of ``source`` each request sees under the point-in-time and repair rules."""
    s = SOURCES[source]
    if not len(records) or not requests.n:
        return Seen(np.zeros(0, np.int64), records.drop(columns=["uscc", OWNER]).iloc[:0])
    repair = _repair_days(records, s.repair_column) if s.repair_column else None
    code = requests.codes.get_indexer(records[OWNER].to_numpy())
    kept = np.flatnonzero(code >= 0)
    code = code[kept]
    per_record = requests.count[code]
    rows = np.repeat(kept, per_record)
    starts = np.repeat(requests.first[code], per_record)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(per_record) - per_record, per_record)
    q = starts + within
    as_of = requests.as_of[q]
    known = records[s.known_date].to_numpy()[rows] <= as_of
    known &= records[s.event_date].to_numpy()[rows] <= as_of
    if repair is not None:
        known &= repair[rows] > as_of
    q, rows = q[known], rows[known]
    if s.accepts_corrections and len(rows):
        q, rows = _newest_versions(q, rows, records, s.known_date)
        # the newest version may name another enterprise: then the record is no longer this one's
        ours = records["uscc"].to_numpy()[rows] == requests.uscc[q]
        q, rows = q[ours], rows[ours]
    frame = records.drop(columns=["uscc", OWNER]).take(rows).reset_index(drop=True)
    return Seen(q, frame)


def _newest_versions(q: np.ndarray, rows: np.ndarray, records: pd.DataFrame, known_date: str):
    """Per (request, record key), only the version reported last (ties: ingested last)."""
    key = records[KEY].to_numpy()[rows]
    order = np.lexsort((records[SEQ].to_numpy()[rows], records[known_date].to_numpy()[rows], key, q))
    q, rows, key = q[order], rows[order], key[order]
    last = np.ones(len(q), dtype=bool)
    last[:-1] = (q[1:] != q[:-1]) | (key[1:] != key[:-1])
    return q[last], rows[last]


def _repair_days(records: pd.DataFrame, column: str) -> np.ndarray:
    """Per record: the earliest repair date any version of its key carries (NEVER when none).
    A repair is final: a later version that leaves the date out does not undo it. ``records`` holds
    at least one record (:func:`seen` answers no records before asking)."""
    key = records[KEY].to_numpy()
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    earliest = np.minimum.reduceat(records[column].to_numpy()[order], starts)
    group = np.cumsum(np.r_[True, sorted_key[1:] != sorted_key[:-1]]) - 1
    out = np.empty(len(order), dtype=np.int64)
    out[order] = earliest[group]
    return out
