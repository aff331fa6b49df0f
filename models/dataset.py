"""The training frame: each matured loan's profile at its grant date, its outcome and the
borrower's capacity after it, split by time.

Labels. A loan is *matured* once 12 months have passed since its grant by the banks' latest
report; only matured loans are labelled (a younger loan's default may be known, its repayment
not yet, and keeping only its defaults would bias the model). ``defaulted`` is 1 for 90+ days
past due within 12 months. ``capacity_12m`` is the borrower's taxable sales over the 12 calendar
months after the grant month, from the lake's tax returns, for filers whose 12 months are all
delivered (missing otherwise).

Split. Grant months are cut, oldest to newest, into ``train``, ``valid`` (early stopping),
``calib`` (the calibration map) and ``oot`` (out-of-time evaluation); loans granted in the lake's
first ``warmup_months`` are left out, since the platform had little history on anyone then.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.lake import Lake
from features.profile.build import ProfileBuildError, training_snapshots

WINDOWS = ("train", "valid", "calib", "oot")
MIN_DEFAULTS = 30
"""Defaults a validation, calibration or out-of-time window needs to be read as evidence: below
about 30, an AUC's 95 % interval is wider than ±0.05 and a calibration map is mostly noise."""
WINDOW_SHARE = 0.1
"""On a big book each of those windows takes a tenth of its defaults when that is more than
:data:`MIN_DEFAULTS`: 30 defaults out of 2,000 would stop early and calibrate on one noisy month."""
WARMUP_MONTHS = 13
"""The lake's first months, in which nothing is fitted, and so the history every fitted profile
has: a year of months plus the month a profile waits for its anchor month's returns (a loan
granted on the 1st sees the month before last), so that 12-month windows are mature; features
whose windows reach back further are not used (:func:`mature_features`)."""


@dataclass
class Split:
    """Which grant months went where (first and last grant month, inclusive, YYYY-MM; an empty
    window is ``("", "")``), and what the evidence allowed."""

    train: tuple[str, str]
    valid: tuple[str, str]
    calib: tuple[str, str]
    oot: tuple[str, str]
    matured_until: str
    warmup_until: str
    min_defaults: int = MIN_DEFAULTS
    thin: bool = False
    evidence: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def label_loans(snapshots: pd.DataFrame, lake: Lake, as_of: dt.date | None = None) -> pd.DataFrame:
    """Matured loans with ``defaulted`` (0/1) and ``capacity_12m`` (yuan, NaN when unknown).

    With ``as_of``, as the banks' reports stood that day: matured by the newest report known then,
    each loan with the outcome of its newest report known then (a loan first reported later is not
    there), so that realised default as of a past day never counts what was learnt after it."""
    outcomes = lake.read("loan_outcomes", ["loan_no", "reported_date", "default_12m"])
    reported = pd.to_datetime(outcomes["reported_date"])
    frame = snapshots.copy()
    if as_of is not None:
        known = outcomes[reported <= pd.Timestamp(as_of)].assign(reported_date=reported)
        # the newest report of each loan known that day (ties: ingested last, as Lake.current)
        newest = known.sort_values("reported_date", kind="stable").drop_duplicates("loan_no", keep="last")
        outcome = newest.set_index("loan_no")["default_12m"]
        frame = frame[frame["loan_no"].isin(outcome.index)].copy()
        frame["default_12m"] = frame["loan_no"].map(outcome).to_numpy()
        reported = newest["reported_date"]
    data_end = pd.Timestamp(reported.max())  # NaT when nothing is reported: nothing matured
    matured = frame["grant_date"] + pd.DateOffset(months=12) <= data_end
    frame = frame[matured & frame["default_12m"].isin(["Y", "N"])].reset_index(drop=True)
    frame["defaulted"] = (frame["default_12m"] == "Y").astype(np.int64)
    frame["capacity_12m"] = next_12_month_sales(lake, frame["uscc"].to_numpy(), frame["grant_date"].to_numpy())
    return frame


def next_12_month_sales(lake: Lake, uscc: np.ndarray, grant_dates: np.ndarray) -> np.ndarray:
    """Taxable sales in the 12 calendar months after each grant month, in yuan; NaN unless the
    borrower files and every one of those months has been delivered to the lake."""
    filings = lake.read("tax_filings", ["uscc", "period", "sales"])
    if not len(filings):
        return np.full(len(uscc), np.nan)
    period = np.asarray(filings["period"].to_numpy()).astype("datetime64[M]").astype(np.int64)
    last_period = period.max()
    loans = pd.DataFrame({"uscc": uscc, "grant": np.asarray(grant_dates).astype("datetime64[M]").astype(np.int64),
                          "row": np.arange(len(uscc))})
    joined = loans.merge(pd.DataFrame({"uscc": filings["uscc"].to_numpy(), "period": period,
                                       "sales": filings["sales"].to_numpy(dtype=np.float64)}), on="uscc")
    ahead = joined["period"] - joined["grant"]
    inside = joined[(ahead >= 1) & (ahead <= 12)]
    sums = inside.groupby("row")["sales"].sum() / 100.0
    out = np.full(len(uscc), np.nan)
    out[sums.index.to_numpy()] = sums.to_numpy()
    complete = loans["grant"].to_numpy() + 12 <= last_period
    filer = np.zeros(len(uscc), dtype=bool)
    filer[np.unique(joined["row"].to_numpy())] = True
    return np.where(complete & filer, np.nan_to_num(out), np.nan)


def split_by_time(frame: pd.DataFrame, oot_months: int | None = None, calib_months: int | None = None,
                  valid_months: int | None = None, warmup_months: int = WARMUP_MONTHS,
                  min_defaults: int = MIN_DEFAULTS) -> tuple[dict[str, pd.DataFrame], Split]:
    """Cut labelled loans into the four windows by grant month, newest first: out of time, then
    calibration, then validation, each the fewest newest months that hold ``min_defaults``
    defaults, or a tenth of the book's when that is more (or the months given), the rest to
    train; loans of the lake's first ``warmup_months`` are left out.

    A book too thin for that (fewer than 5 × ``min_defaults`` defaults) is cut in two: out of
    time, the newest months holding a third of the defaults; the rest to train, where the model
    chooses its trees and its calibration by cross-validation. ``Split.evidence`` says what the
    book lacked. Refused (:class:`ProfileBuildError`, in words): fewer than 3 defaults after the
    warm-up, fewer than 2 left to train on, and months asked for that the book cannot hold or
    that leave a window without a default."""
    if frame.empty:
        raise ProfileBuildError("no matured loans to learn from: loans need 12 months after grant")
    month = frame["grant_date"].dt.to_period("M")
    months = sorted(month.unique())
    usable = [m for m in months if m >= months[0] + warmup_months]
    if len(usable) < 2:
        raise ProfileBuildError(f"{len(usable)} months of matured loans after the {warmup_months}-month warm-up; "
                                "at least 2 are needed (one to train, one out of time)")
    asked = sum(m or 0 for m in (oot_months, calib_months, valid_months))
    if asked >= len(usable):
        raise ProfileBuildError(f"the windows asked for take {asked} grant months, but {len(usable)} months of matured "
                                f"loans remain after the {warmup_months}-month warm-up and at least one must be left "
                                "to train on")
    defaults = frame.groupby(month)["defaulted"].sum().reindex(usable, fill_value=0).to_numpy()
    total = int(defaults.sum())
    evidence: list[str] = []
    given = {"oot": oot_months, "calib": calib_months, "valid": valid_months}
    if total < 3:
        raise ProfileBuildError(f"{total} defaults among the matured loans after the {warmup_months}-month warm-up: "
                                "a model needs at least 3 (2 to learn from, 1 to test out of time)")
    cuts = _cut_newest(usable, defaults, given, max(min_defaults, int(WINDOW_SHARE * total)))
    if cuts is None and any(given.values()):
        asked = ", ".join(f"{name} {months}" for name, months in given.items() if months)
        raise ProfileBuildError(f"the windows asked for in months ({asked}) leave a window without a default or "
                                f"nothing to train on ({total} defaults after the warm-up); ask for other months, "
                                "or leave the windows to be sized by defaults")
    thin = cuts is None
    if thin:
        share = max(1, -(-total // 3))
        oot = _newest_holding(usable, defaults, len(usable) - 1, share, None)
        cuts = {"oot": oot, "calib": [], "valid": []}
        evidence.append(f"{total} defaults after the warm-up: an evidence-sized split needs {5 * min_defaults} "
                        f"({min_defaults} each to validate, calibrate and test out of time, twice that to train); "
                        f"trees and calibration are chosen by cross-validation on the training loans, and "
                        f"{int(defaults[-len(oot):].sum())} defaults are kept out of time")
    taken = {m for window in cuts.values() for m in window}
    train = [m for m in usable if m not in taken]
    if not train or defaults[[usable.index(m) for m in train]].sum() < 2:
        raise ProfileBuildError(f"fewer than 2 defaults are left to train on after the out-of-time, calibration "
                                f"and validation windows ({len(usable)} usable months, {total} defaults)")
    windows, bounds = {}, {}
    for name, chosen in zip(WINDOWS, (train, cuts["valid"], cuts["calib"], cuts["oot"])):
        windows[name] = frame[month.isin(chosen)].reset_index(drop=True)
        bounds[name] = (str(chosen[0]), str(chosen[-1])) if chosen else ("", "")
        held = int(windows[name]["defaulted"].sum())
        if chosen and name != "train" and held < min_defaults:
            evidence.append(f"the {name} window holds {held} defaults, fewer than the {min_defaults} that make it "
                            "evidence: read its figures with their intervals")
    split = Split(bounds["train"], bounds["valid"], bounds["calib"], bounds["oot"], matured_until=str(months[-1]),
                  warmup_until=str(usable[0] - 1), min_defaults=min_defaults, thin=thin, evidence=evidence)
    return windows, split


def _newest_holding(months: list, defaults, last: int, needed: int, count: int | None) -> list:
    """The months ending at index ``last``: ``count`` of them, or the fewest holding ``needed``
    defaults; [] when they cannot be had."""
    if count is not None:
        return list(months[last - count + 1: last + 1]) if last - count + 1 >= 0 else []
    held = 0
    for first in range(last, -1, -1):
        held += defaults[first]
        if held >= needed:
            return list(months[first: last + 1])
    return []


def _cut_newest(months: list, defaults, given: dict, needed: int) -> dict | None:
    """Out-of-time, calibration and validation months, newest first, each holding ``needed``
    defaults unless its months are given (None: too thin)."""
    if defaults.sum() < 5 * needed and not all(given.values()):
        return None
    cuts, last = {}, len(months) - 1
    for name in ("oot", "calib", "valid"):
        chosen = _newest_holding(months, defaults, last, needed, given[name])
        held = defaults[last - len(chosen) + 1: last + 1].sum() if chosen else 0
        if not chosen or held == 0:
            return None
        cuts[name] = chosen
        last -= len(chosen)
    return cuts if last >= 0 and defaults[: last + 1].sum() > 0 else None


def training_frame(home: Path, engine: str = "pandas") -> pd.DataFrame:
    """Every matured loan of the lake under ``home`` with its point-in-time profile and labels."""
    lake = Lake(home)
    return label_loans(training_snapshots(home, engine), lake)



@dataclass
class LakeHistory:
    """What the two-stage training reads from the whole lake besides the loans: every prepared
    record, the sources ever delivered, and where each source's history starts."""

    records: dict[str, pd.DataFrame]
    delivered: frozenset[str]
    starts: dict[str, int]

    @classmethod
    def read(cls, home: Path) -> LakeHistory:
        from features.profile.build import lake_view, load_records
        from features.profile.maturity import history_starts

        lake = Lake(home)
        view = lake_view(lake)
        records = load_records(lake, view=view)
        return cls(records, view.delivered, history_starts(records))

    @property
    def end(self) -> dt.date:
        """The newest day the lake knows of."""
        from features.proxy import label_end_day
        return (pd.Timestamp(0) + pd.Timedelta(days=label_end_day(self.records))).date()


def mature_features(starts: dict[str, int], first_as_of: dt.date, columns: list[str]) -> tuple[list[str], pd.DataFrame]:
    """The columns whose windows the lake's history covers from ``first_as_of`` on (the first
    day anything is fitted on), and a table of the others with why they are left out."""
    from features.profile.maturity import maturity_table
    from features.registry import BY_NAME

    day = np.array([(pd.Timestamp(first_as_of) - pd.Timestamp(0)).days], dtype=np.int64)
    table = maturity_table(day, starts, tuple(BY_NAME[c] for c in columns if c in BY_NAME))
    immature = set(table.loc[table["mature_share"] < 1, "feature"])
    used = [c for c in columns if c not in immature]
    excluded = table[table["feature"].isin(immature)].drop(columns=["mature_share"]).assign(
        reason=lambda t: [f"the lake holds no {s}" if any(name not in starts for name in s.split(", ")) else
                          f"its {w}-month window reaches before the lake's history of {s} at the first fitted "
                          f"as_of ({first_as_of})" for w, s in zip(t["window_months"], t["sources"])])
    excluded["window_months"] = excluded["window_months"].astype("Int64")
    return used, excluded.reset_index(drop=True)


DISTRESS_ROWS = 200_000
"""Enterprise-months stage 1 learns from at most (a uniform sample beyond that): past about this
many, the 100,000-entity city's out-of-time AUC stopped moving and the fit kept growing."""


def distress_training_frame(history: LakeHistory, first_day: dt.date, last_day: dt.date,
                            max_rows: int = DISTRESS_ROWS, seed: int = 0, exclude=None) -> pd.DataFrame:
    """Enterprise-months for stage 1: every enterprise alive at each month's end between
    ``first_day`` and ``last_day`` (but those in ``exclude``; a sample of ``max_rows`` at most),
    its profile then and its distress events over the next 12 months (:mod:`features.proxy`).
    The last day is moved back so that every horizon lies inside the lake; empty when no month
    is left."""
    from features.proxy import distress_frame, enterprise_months, horizon_days, label_end_day, month_ends

    end = label_end_day(history.records)
    first = (pd.Timestamp(first_day) - pd.Timestamp(0)).days
    last = (pd.Timestamp(last_day) - pd.Timestamp(0)).days
    days = month_ends(first, last)
    days = days[horizon_days(days) <= end]
    uscc, as_of = enterprise_months(history.records, days, max_rows, seed, exclude)
    return distress_frame(history.records, uscc, as_of, history.delivered)
