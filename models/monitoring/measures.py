"""The measures of monitoring, pure functions over frames: drift (PSI, or a sparse feature's
non-zero share), missing shares per source, realised default per grade, drift per district or
industry, reason frequencies. Each checks its arguments and names, in the domain's words, what a
frame lacks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.registry import BY_NAME, category_name
from models import metrics
from models.bundle import ModelBundle
from models.fairness import wilson
from models.policy import GRADES

PSI_WATCH, PSI_ACT = 0.10, 0.25
"""Conventional PSI bands: below 0.10 stable, up to 0.25 watch, above 0.25 act."""


SPARSE_SHARE = 0.8
"""A feature whose training rows are at least this share zero or missing is judged by its non-zero share."""


SHARE_WATCH, SHARE_ACT = 1.25, 2.0
"""Bands of a sparse feature's non-zero share: moved by more than ×1.25 (or ÷1.25) watch, by ×2 act,
each only when the move is also beyond chance (two-proportion test, p < :data:`SIGNIFICANT`)."""


SIGNIFICANT = 0.01


MISSING_WATCH, MISSING_RETRAIN = 0.10, 0.20
"""A feature's missing share among applicants moving by 10 points (beyond chance) is watched; by 20
points the model is deciding on a different lake (a department stopped or started delivering)."""


SILENT_DAYS, SILENT_GAPS = 62, 1.5
"""A source that has delivered nothing for more than two months and for half as long again as its
longest silence in the two years before has gone silent (a monthly source's longest gap is about a
month, an annual one's most of a year): the profile then reads stale records as the present."""


MIN_ROWS = 200
"""Fewer rows than this on either side and a comparison is shown but not judged."""


MIN_DEFAULTS = 10
"""Realised default is judged against predicted only on at least this many defaults."""


class MonitoringInputError(ValueError):
    """A frame handed to a measure cannot be measured: what it lacks, in the domain's words."""


def _holds(frame: pd.DataFrame, columns, measure: str, side: str) -> None:
    """Refuse ``frame`` (the ``side`` of ``measure``) unless it is a frame holding every column."""
    if not isinstance(frame, pd.DataFrame):
        raise MonitoringInputError(f"{measure}: {side} must be a table of profiles (a DataFrame), not "
                                   f"{type(frame).__name__}")
    lacking = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if lacking:
        shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
        raise MonitoringInputError(f"{measure}: {side} lacks {len(lacking)} of the columns it is measured on: {shown}")


def band(value: float) -> str:
    """The PSI band of ``value``."""
    return "stable" if value < PSI_WATCH else "watch" if value < PSI_ACT else "act"


def proportion_p_value(a: int, n: int, b: int, m: int) -> float:
    """Two-sided p-value of the two-proportion z-test a/n against b/m."""
    from statistics import NormalDist

    if not n or not m:
        return math.nan
    pooled = (a + b) / (n + m)
    error = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    if error == 0:  # the pooled share is 0 or 1: both shares are that share, nothing moved
        return 1.0
    return 2 * (1 - NormalDist().cdf(abs(a / n - b / m) / error))


def _share_band(before: float, after: float, p_value: float) -> str:
    if not p_value < SIGNIFICANT:
        return "stable"
    ratio = (after + 1e-4) / (before + 1e-4)
    moved = max(ratio, 1 / ratio)
    return "act" if moved >= SHARE_ACT else "watch" if moved >= SHARE_WATCH else "stable"


def drift(bundle: ModelBundle, before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The score's PSI first, then every model input's drift from ``before`` to ``after``, worst
    first: PSI, or for a sparse feature its non-zero share (``value`` is then the ratio of the
    shares). Each row with the rows it rests on and its band. Both frames must hold the model's
    features (:class:`MonitoringInputError` names those missing)."""
    _holds(before, bundle.features, "drift", "the population before")
    _holds(after, bundle.features, "drift", "the population after")
    old, new = bundle.decide(before, explain=False).score, bundle.decide(after, explain=False).score
    rows = [{"variable": "score", "measure": "PSI", "before": float(np.median(old)), "after": float(np.median(new)),
             "value": metrics.psi(old, new), "before_rows": len(before), "after_rows": len(after)}]
    for name in bundle.features:
        a, b = before[name], after[name]
        numeric = pd.api.types.is_numeric_dtype(a) and not isinstance(a.dtype, pd.CategoricalDtype)
        if numeric and len(a) and float(((a.fillna(0) == 0)).mean()) >= SPARSE_SHARE:
            hits_a, hits_b = int((a.fillna(0) != 0).sum()), int((b.fillna(0) != 0).sum())
            share_a, share_b = hits_a / max(len(a), 1), hits_b / max(len(b), 1)
            p_value = proportion_p_value(hits_a, len(a), hits_b, len(b))
            rows.append({"variable": name, "measure": "non-zero share", "before": share_a, "after": share_b,
                         "value": (share_b + 1e-4) / (share_a + 1e-4), "p_value": p_value,
                         "band": _share_band(share_a, share_b, p_value), "before_rows": len(a), "after_rows": len(b)})
        else:
            rows.append({"variable": name, "measure": "PSI", "before": _centre(a), "after": _centre(b),
                         "value": metrics.psi(a, b), "before_rows": len(a), "after_rows": len(b)})
    table = pd.DataFrame(rows)
    is_psi = table["measure"] == "PSI"
    table.loc[is_psi, "band"] = table.loc[is_psi, "value"].map(band)
    thin = (table["before_rows"] < MIN_ROWS) | (table["after_rows"] < MIN_ROWS)
    table.loc[thin, "band"] = "too few rows"
    severity = table["band"].map({"act": 0, "watch": 1, "stable": 2, "too few rows": 3})
    strength = np.where(is_psi, table["value"], np.abs(np.log(table["value"].clip(1e-9))))
    features = table.iloc[1:].assign(_s=severity.iloc[1:], _v=-strength[1:]).sort_values(["_s", "_v"], kind="stable")
    return pd.concat([table.iloc[:1], features.drop(columns=["_s", "_v"])], ignore_index=True)


def _centre(column: pd.Series):
    """The median of a number, the commonest value of a category: what a person reads beside a PSI."""
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(column):
        counts = column.astype("object").value_counts()
        return str(counts.index[0]) if len(counts) else None
    return float(column.median()) if column.notna().any() else math.nan


def missing_by_source(bundle: ModelBundle, before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per source the model reads, the share of its features' values that are missing, before and
    after, and the feature whose missing share moved most (``change``, in shares: 0.20 is 20
    points). A department that stops delivering empties its windowed features first."""
    _holds(before, bundle.features, "missing shares by source", "the population before")
    _holds(after, bundle.features, "missing shares by source", "the population after")
    by_source: dict[str, list[str]] = {}
    for name in bundle.features:
        feature = BY_NAME.get(name)
        if feature is not None and len(feature.sources) == 1:
            by_source.setdefault(feature.sources[0], []).append(name)
    rows = []
    for source, names in by_source.items():
        a = before[names].isna().mean() if len(before) else pd.Series(math.nan, index=names)
        b = after[names].isna().mean() if len(after) else pd.Series(math.nan, index=names)
        moved = (b - a).abs().fillna(0)
        worst = moved.idxmax()
        rows.append({"source": source, "features": len(names), "missing_before": float(a.mean()),
                     "missing_after": float(b.mean()), "worst_feature": worst, "worst_before": float(a[worst]),
                     "worst_after": float(b[worst]), "change": float(b[worst] - a[worst]),
                     "before_rows": len(before), "after_rows": len(after)})
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values("change", key=np.abs, ascending=False, kind="stable").reset_index(drop=True)
    return table


def realised_by_grade(bundle: ModelBundle, loans: pd.DataFrame) -> pd.DataFrame:
    """Matured loans per grade (and all together, last): loans, defaults, mean predicted PD, the
    realised default rate with its 95 % Wilson interval, and realised over predicted. Every loan
    must have matured: ``defaulted`` 0 or 1, never missing."""
    _holds(loans, [*bundle.features, "defaulted"], "realised default by grade", "the matured loans")
    outcome = pd.to_numeric(loans["defaulted"], errors="coerce")
    unknown = int((~outcome.isin([0, 1])).sum())
    if unknown:
        raise MonitoringInputError(f"realised default by grade: {unknown} of {len(loans):,} loans have no outcome "
                                   "of 0 or 1 in 'defaulted' (only loans that have matured are judged)")
    decisions = bundle.decide(loans, explain=False)
    y = loans["defaulted"].to_numpy()
    rows = []
    for grade in (*GRADES, "all"):
        rows_of = np.ones(len(y), dtype=bool) if grade == "all" else decisions.grade == grade
        n, bad = int(rows_of.sum()), int(y[rows_of].sum())
        predicted = float(decisions.pd[rows_of].mean()) if n else math.nan
        low, high = wilson(bad, n)
        rows.append({"grade": grade, "loans": n, "defaults": bad, "predicted_pd": predicted,
                     "realised_rate": bad / n if n else math.nan, "low": low, "high": high,
                     "realised_over_predicted": (bad / n) / predicted if n and predicted else math.nan})
    return pd.DataFrame(rows)


def drift_by(bundle: ModelBundle, before: pd.DataFrame, after: pd.DataFrame, by: str) -> pd.DataFrame:
    """Score PSI and mean PD, ``before`` against ``after``, per value of ``by`` (district…), named
    in words, with the rows each side rests on."""
    _holds(before, [*bundle.features, by], f"drift by {by}", "the population before")
    _holds(after, [*bundle.features, by], f"drift by {by}", "the population after")
    old, new = bundle.decide(before, explain=False), bundle.decide(after, explain=False)
    rows = []
    for value in sorted(set(after[by].dropna().astype(str))):
        a = before[by].astype("object").astype(str).to_numpy() == value
        b = after[by].astype("object").astype(str).to_numpy() == value
        psi = metrics.psi(old.score[a], new.score[b]) if a.sum() and b.sum() else math.nan
        thin = a.sum() < MIN_ROWS or b.sum() < MIN_ROWS
        rows.append({by: category_name(by, value), "before_rows": int(a.sum()), "after_rows": int(b.sum()),
                     "mean_pd_before": old.pd[a].mean() if a.any() else math.nan,
                     "mean_pd_after": new.pd[b].mean() if b.any() else math.nan,
                     "score_psi": psi, "band": "too few rows" if thin else band(psi)})
    return pd.DataFrame(rows)


def reason_frequencies(listing: pd.DataFrame, bundle: ModelBundle, column: str = "adverse_reasons",
                       top: int = 15) -> pd.DataFrame:
    """How often each reason code appears among the listed decisions (a pre-credit list or the
    service's decisions) of ``bundle``, with its words: for a behaviour, its declaration as the
    bundle kept it when it was saved (a code means what it meant when the decision was made), the
    absence's (which source or figure has no record) for an NA code."""
    _holds(listing, [column], "reason frequencies", "the list of decisions")
    words = {d["code"]: (name, d["zh"], d["en"]) for name, d in bundle.declared().items()}
    words.update({g["code"]: (g.get("feature") or g["source"], g["zh"], g["en"]) for g in bundle.reason_plan.groups})
    codes = listing[column].fillna("").str.split(";").explode()
    counts = codes[codes != ""].value_counts().head(top)
    said = [words.get(c, (c, c, c)) for c in counts.index]
    return pd.DataFrame({"code": counts.index, "decisions": counts.to_numpy(),
                         "share": counts.to_numpy() / max(len(listing), 1),
                         "feature or source": [w[0] for w in said], "zh": [w[1] for w in said],
                         "en": [w[2] for w in said]})


def sample_rows(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """At most ``n`` rows, the same ones every time."""
    return frame if len(frame) <= n else frame.sample(n, random_state=seed)
