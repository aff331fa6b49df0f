"""The pre-credit list (预授信名单): every enterprise of a stored profile scored by one model.

Written under ``XYD_HOME/pre-credit/`` as Parquet and as CSV in UTF-8 with a BOM (so that Excel
opens the Chinese names), each row with the enterprise's code and name, PD, score, grade,
decision, limit, knock-outs and top reason codes, the advice (the fewest lawful actions that reach
the best decision within reach, and what it would then get: :mod:`models.advice`; where there is
none, why, in the advice's words), and the model and policy versions.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.profile.store import ProfileStore, registered_names
from models.advice import advise_all
from models.bundle import ModelBundle


class ScoringError(ValueError):
    """A scoring run that cannot be done as asked (nothing is written)."""


@dataclass
class PreCreditList:
    """The list, where it was written, and how fast it was made."""

    frame: pd.DataFrame
    parquet: Path
    csv: Path
    seconds: float
    decide_seconds: float


def score_profile(home: Path, as_of: dt.date, bundle: ModelBundle, out_dir: Path | None = None) -> PreCreditList:
    """Score every enterprise of the stored profile as of ``as_of`` and write the list."""
    store = ProfileStore(home)
    if not store.exists(as_of):
        raise ScoringError(f"no profile as of {as_of}; build it with `xyd features build --as-of {as_of}`")
    info = store.info(as_of)
    if info.feature_set_version != bundle.meta["feature_set_version"]:
        raise ScoringError(f"the profile as of {as_of} has feature set {info.feature_set_version} but model "
                           f"{bundle.version} was trained on {bundle.meta['feature_set_version']}; rebuild the "
                           "profile or train a model on the current features")
    if not bundle.reference:
        raise ScoringError(f"model {bundle.version} was trained before decisions were explained against a reference "
                           "profile; train a new one with `xyd train`")
    started = time.perf_counter()
    profile = store.read(as_of)
    tick = time.perf_counter()
    decisions = bundle.decide(profile)
    frame = decisions.frame()
    decide_seconds = time.perf_counter() - tick
    counsel = advise_all(bundle, profile, decided=decisions)
    advice = [c.advice for c in counsel]
    frame["advice_codes"] = [a.codes if a else "" for a in advice]
    frame["advice_zh"] = [c.advice.zh if c.advice else c.why_zh for c in counsel]
    frame["advice_en"] = [c.advice.en if c.advice else c.why_en for c in counsel]
    frame["advice_grade"] = [a.grade if a else "" for a in advice]
    frame["advice_limit_yuan"] = pd.array([a.limit_yuan if a else None for a in advice], dtype="Int64")
    # a thin file's bank and the enterprise read what its missing records would let the platform judge
    frame["data_zh"] = [c.data_zh or "" for c in counsel]
    frame["data_en"] = [c.data_en or "" for c in counsel]
    frame.insert(1, "name", frame["uscc"].map(registered_names(home, as_of)).astype("str"))
    frame.insert(0, "as_of", pd.Timestamp(as_of))
    frame["model_version"] = bundle.version
    frame["policy_version"] = bundle.policy.version
    frame["feature_set_version"] = info.feature_set_version
    out_dir = Path(out_dir or Path(home) / "pre-credit")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"pre_credit_list_{as_of.isoformat()}"
    parquet, csv = out_dir / f"{stem}.parquet", out_dir / f"{stem}.csv"
    for path, write in ((parquet, lambda p: frame.to_parquet(p, index=False)),
                        (csv, lambda p: frame.to_csv(p, index=False, encoding="utf-8-sig"))):
        temporary = path.with_name(f".{path.name}.tmp")
        write(temporary)
        temporary.replace(path)
    return PreCreditList(frame, parquet, csv, time.perf_counter() - started, decide_seconds)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Enterprises, approval and total limit by grade."""
    table = frame.groupby("grade").agg(enterprises=("uscc", "size"), mean_pd=("pd", "mean"),
                                       approved=("decision", lambda d: int((d == "approve").sum())),
                                       referred=("decision", lambda d: int((d == "refer").sum())),
                                       declined=("decision", lambda d: int((d == "decline").sum())),
                                       total_limit_yuan=("limit_yuan", "sum")).reset_index()
    return table
