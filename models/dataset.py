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

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.lake import Lake
from features.profile.build import ProfileBuildError, training_snapshots

WINDOWS = ("train", "valid", "calib", "oot")


@dataclass
class Split:
    """Which grant months went where (first and last grant month, inclusive, YYYY-MM)."""

    train: tuple[str, str]
    valid: tuple[str, str]
    calib: tuple[str, str]
    oot: tuple[str, str]
    matured_until: str
    warmup_until: str

    def as_dict(self) -> dict:
        return asdict(self)


def label_loans(snapshots: pd.DataFrame, lake: Lake) -> pd.DataFrame:
    """Matured loans with ``defaulted`` (0/1) and ``capacity_12m`` (yuan, NaN when unknown)."""
    outcomes = lake.read("loan_outcomes", ["reported_date"])
    data_end = pd.Timestamp(outcomes["reported_date"].max())
    frame = snapshots.copy()
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


def split_by_time(frame: pd.DataFrame, oot_months: int = 4, calib_months: int = 2, valid_months: int = 2,
                  warmup_months: int = 6) -> tuple[dict[str, pd.DataFrame], Split]:
    """Cut labelled loans into the four windows by grant month (see the module's docstring)."""
    if frame.empty:
        raise ProfileBuildError("no matured loans to learn from: loans need 12 months after grant")
    month = frame["grant_date"].dt.to_period("M")
    months = sorted(month.unique())
    first_history = months[0]
    usable = [m for m in months if m >= first_history + warmup_months]
    needed = oot_months + calib_months + valid_months + 3
    if len(usable) < needed:
        raise ProfileBuildError(f"{len(usable)} months of matured loans after the {warmup_months}-month warm-up; "
                                f"the split needs at least {needed} (3 to train, {valid_months} to validate, "
                                f"{calib_months} to calibrate, {oot_months} out of time)")
    oot = usable[-oot_months:]
    calib = usable[-(oot_months + calib_months):-oot_months]
    valid = usable[-(oot_months + calib_months + valid_months):-(oot_months + calib_months)]
    train = usable[:-(oot_months + calib_months + valid_months)]
    windows = {}
    for name, chosen in zip(WINDOWS, (train, valid, calib, oot)):
        windows[name] = frame[month.isin(chosen)].reset_index(drop=True)
    split = Split(*(tuple(str(w[i]) for i in (0, -1)) for w in (train, valid, calib, oot)),
                  matured_until=str(months[-1]), warmup_until=str(usable[0] - 1))
    return windows, split


def training_frame(home: Path, engine: str = "pandas") -> pd.DataFrame:
    """Every matured loan of the lake under ``home`` with its point-in-time profile and labels."""
    lake = Lake(home)
    return label_loans(training_snapshots(home, engine), lake)

