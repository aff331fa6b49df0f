"""Profiles for a partition of enterprises: the one function every engine runs.

:func:`profiles_for` turns requests (enterprise, as_of) and the lake records of those
enterprises into one row per request, with the registry's columns in the registry's order and
types. :func:`alive_on` finds the enterprises a full build covers; :func:`build_partition` and
:func:`snapshot_partition` are what the pandas engine runs once and the Dask engine runs per
partition after shuffling the records on the enterprise's code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.profile import families
from features.profile.pointintime import NEEDED, Requests, seen
from features.registry import FEATURES, KEY_COLUMNS, UTILITY_KINDS

REGISTRY = "enterprise_registry"
LOANS = "loan_outcomes"
LOAN_COLUMNS = {"loan_no": "str", "bank": "str", "grant_date": "datetime64[ms]", "amount": "int64",
                "term_months": "int64", "worst_dpd": "int64", "default_12m": "str"}
"""Columns of a loan outcome kept beside its profile in a training snapshot, and their types
(amount in fen; default_12m Y, N or missing while the loan is younger than 12 months)."""


def empty_profile() -> pd.DataFrame:
    """A profile with no rows and every column typed."""
    return _assemble(Requests.make([], []), {f.name: np.zeros(0) for f in FEATURES})


def profiles_for(uscc, as_of_days, records: dict[str, pd.DataFrame],
                 delivered: frozenset[str] | None = None) -> pd.DataFrame:
    """One profile row per request (``uscc[i]`` as of day number ``as_of_days[i]``), in the order
    asked. ``records`` holds, per source, at least every record of the requested enterprises
    (as :func:`features.profile.pointintime.prepare` makes them). ``delivered`` names the
    sources the platform has ever received (all, when not given): a feature of a source never
    delivered is missing for everyone, not zero; when it is a :class:`~features.profile.pointintime.Deliveries`,
    a monthly source silent past its delivery day at a request's as_of is missing for that request,
    its coverage flag too ("not delivered")."""
    requests = Requests.make(uscc, as_of_days)
    if not requests.n:
        return empty_profile()
    views = {source: seen(requests, source, records[source]) for source in NEEDED}
    out, returns = families.tax(requests, views["tax_filings"], views["tax_grades"])
    utility, bills = families.utilities(requests, {s: views[s] for s in UTILITY_KINDS})
    out.update(utility)
    out.update(families.consistency(out, returns, bills["electricity"]))
    out.update(families.real_estate(requests, views["real_estate"]))
    out.update(families.intellectual_property(requests, views["intellectual_property"]))
    out.update(families.court(requests, views["court_executions"], views["dishonest_debtors"]))
    out.update(families.penalties(requests, views["administrative_penalties"]))
    out.update(families.commitments(requests, views["credit_commitments"]))
    out.update(families.firmographics(requests, views[REGISTRY]))
    # months before the enterprise existed are no months it failed to file
    before = families.months_before_existence(requests, views[REGISTRY], 12)
    out["tax_months_filed_12m"] = np.minimum(out["tax_months_filed_12m"] + before, 12.0)
    for source in getattr(delivered, "calendar", {}):
        silent = delivered.silent(source, requests.as_of, requests.anchor)
        if silent.any():  # a department past its delivery day: not delivered, not the enterprise's behaviour
            for f in FEATURES:
                if source in f.sources and f.name in out:
                    out[f.name] = np.where(silent, None if f.is_categorical else np.nan, out[f.name])
    out["sources_covered"] = families.coverage_count(out)
    if delivered is not None:
        for f in FEATURES:
            if not set(f.sources) <= delivered:
                out[f.name] = np.full(requests.n, None if f.is_categorical else np.nan, dtype=object if
                                      f.is_categorical else np.float64)
    return _assemble(requests, out)


def _assemble(requests: Requests, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """The registry's columns, typed, back in the order the requests were asked."""
    missing = [f.name for f in FEATURES if f.name not in values]
    if missing:
        raise RuntimeError(f"the profile computation does not produce registered features {missing}")
    back = np.argsort(requests.order, kind="stable")
    columns = {
        "uscc": pd.array(requests.uscc[back], dtype="str"),
        "as_of": requests.as_of[back].astype("datetime64[D]").astype("datetime64[ms]"),
    }
    for f in FEATURES:
        column = np.asarray(values[f.name])[back]
        if f.is_categorical:
            columns[f.name] = pd.Categorical(column, categories=list(f.categories))
        else:
            columns[f.name] = column.astype(np.float64)
    frame = pd.DataFrame(columns)
    assert list(frame.columns) == [*KEY_COLUMNS, *(f.name for f in FEATURES)]
    return frame


def alive_on(as_of_day: int, records: dict[str, pd.DataFrame], usccs=None) -> np.ndarray:
    """The codes of the enterprises that exist on ``as_of`` by the registry version known then
    (restricted to ``usccs`` when given), sorted."""
    registry = records[REGISTRY]
    codes = pd.unique(registry["uscc"].to_numpy())
    if usccs is not None:
        codes = codes[pd.Index(usccs).get_indexer(codes) >= 0] if len(codes) else codes
    requests = Requests.make(codes, np.full(len(codes), as_of_day))
    living = families.alive(requests, seen(requests, REGISTRY, registry))
    return np.sort(requests.uscc[living].astype(str))


def build_partition(records: dict[str, pd.DataFrame], as_of_day: int, usccs=None,
                    delivered: frozenset[str] | None = None) -> pd.DataFrame:
    """The profile as of one day of every living enterprise the records hold, sorted by uscc."""
    alive = alive_on(as_of_day, records, usccs)
    return profiles_for(alive, np.full(len(alive), as_of_day), records, delivered)


def snapshot_partition(records: dict[str, pd.DataFrame], loans: pd.DataFrame,
                       delivered: frozenset[str] | None = None) -> pd.DataFrame:
    """Each loan's outcome beside the profile of its borrower as of its grant date: the rows of
    a training frame. Loans sharing a grant date are built in the same pass as any other."""
    outcome = loans.loc[:, list(LOAN_COLUMNS)].astype(LOAN_COLUMNS).reset_index(drop=True)
    if not len(loans):
        return pd.concat([outcome, empty_profile()], axis=1)
    grant = np.asarray(loans["grant_date"].to_numpy()).astype("datetime64[D]").astype(np.int64)
    profile = profiles_for(loans["uscc"].to_numpy(), grant, records, delivered)
    return pd.concat([outcome, profile], axis=1)
