"""Monitoring a model in service: has the population moved away from what it was trained on,
where, is the model still right about who defaults, and what should the analyst do?

Drift is only measured between like populations, each figure beside the rows it rests on:

- **applicants**: the champion's training borrowers (their profiles at grant) against the loans
  granted in the latest months (profiles at grant, matured or not). Borrowers are mostly
  enterprises with utility accounts; the living population is mostly individual businesses, and
  comparing one with the other measures the difference between two populations, not a change;
- **population**: every living entity now against every living entity a year before.

Per comparison the score comes first, then the features, worst first. A feature whose training rows
are mostly zero or missing (``SPARSE_SHARE``) has no deciles to move between, so it is judged by its
non-zero share instead of by PSI. Per source, the share of its model features that are missing:
a department that stops delivering shows here first. On loans matured since the champion's
fitted windows: realised against predicted default, per grade, with intervals.

:func:`verdict` turns these into *stable*, *watch* or *retrain* and names every rule that fired.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.registry import BY_NAME, category_name
from models import metrics
from models.bundle import ModelBundle
from models.dataset import label_loans
from models.fairness import outside_band, wilson
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


def band(value: float) -> str:
    """The PSI band of ``value``."""
    return "stable" if value < PSI_WATCH else "watch" if value < PSI_ACT else "act"


def _proportion_p(a: int, n: int, b: int, m: int) -> float:
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
    shares). Each row with the rows it rests on and its band."""
    old, new = bundle.decide(before, explain=False).score, bundle.decide(after, explain=False).score
    rows = [{"variable": "score", "measure": "PSI", "before": float(np.median(old)), "after": float(np.median(new)),
             "value": metrics.psi(old, new), "before_rows": len(before), "after_rows": len(after)}]
    for name in bundle.features:
        a, b = before[name], after[name]
        numeric = pd.api.types.is_numeric_dtype(a) and not isinstance(a.dtype, pd.CategoricalDtype)
        if numeric and len(a) and float(((a.fillna(0) == 0)).mean()) >= SPARSE_SHARE:
            hits_a, hits_b = int((a.fillna(0) != 0).sum()), int((b.fillna(0) != 0).sum())
            share_a, share_b = hits_a / max(len(a), 1), hits_b / max(len(b), 1)
            p_value = _proportion_p(hits_a, len(a), hits_b, len(b))
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


def realised_by_grade(bundle: ModelBundle, loans: pd.DataFrame) -> pd.DataFrame:
    """Matured loans per grade (and all together, last): loans, defaults, mean predicted PD, the
    realised default rate with its 95 % Wilson interval, and realised over predicted."""
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


@dataclass
class Monitoring:
    """Everything :func:`monitor` measured, and the verdict it drew."""

    verdict: str
    rules: list[str]
    applicants: pd.DataFrame
    population: pd.DataFrame
    missing: pd.DataFrame
    realised: pd.DataFrame
    silent: pd.DataFrame
    populations: dict[str, str] = field(default_factory=dict)
    population_then: pd.DataFrame = field(default=None, repr=False)
    population_now: pd.DataFrame = field(default=None, repr=False)
    """The living population's rows compared (samples of at most ``sample`` rows)."""


def verdict(applicants: pd.DataFrame, population: pd.DataFrame, missing: pd.DataFrame, realised: pd.DataFrame,
            band_of_calibration: tuple[float, float], silent: pd.DataFrame | None = None) -> tuple[str, list[str]]:
    """*retrain*, *watch* or *stable*, and the rules that fired (in words, with their numbers):

    retrain: the applicants' score PSI at or above 0.25; a source the model reads has gone silent
    (:func:`silent_sources`); a feature's missing share among applicants moved by 20 points or
    more; realised default on all matured loans since training, with its 95 % interval, wholly
    outside ``band_of_calibration`` × predicted (on ≥ 10 defaults).
    watch: the applicants' score PSI at or above 0.10; any model feature in the act band among
    applicants; the whole population's score PSI at or above 0.25; a feature's missing share moved
    by 10 points; one grade's realised interval wholly outside the band. A missing share counts
    only when its move is beyond chance (p < :data:`SIGNIFICANT`).
    """
    retrain, watch = [], []
    score = applicants.iloc[0]
    if score["band"] == "act":
        retrain.append(f"applicants' score PSI {score['value']:.3f} ≥ {PSI_ACT} "
                       f"({score['before_rows']:,} training borrowers → {score['after_rows']:,} recent applicants)")
    elif score["band"] == "watch":
        watch.append(f"applicants' score PSI {score['value']:.3f} ≥ {PSI_WATCH}")
    for row in (silent if silent is not None else pd.DataFrame(columns=["silent"])).itertuples(index=False):
        if row.silent:
            retrain.append(f"{row.source}: no delivery since {row.last_delivery} ({row.silent_days} days; its longest "
                           f"gap in the two years before was {row.longest_gap_days:.0f} days) — the department "
                           "stopped delivering")
    for row in missing.itertuples(index=False):
        if row.before_rows < MIN_ROWS or row.after_rows < MIN_ROWS:
            continue
        before, after = round(row.worst_before * row.before_rows), round(row.worst_after * row.after_rows)
        if not _proportion_p(before, row.before_rows, after, row.after_rows) < SIGNIFICANT:
            continue
        words = (f"{row.source}: {row.worst_feature} missing among applicants {row.worst_before:.0%} → "
                 f"{row.worst_after:.0%} ({row.change * 100:+.0f} points)")
        if abs(row.change) >= MISSING_RETRAIN:
            retrain.append(words + " — the department's deliveries changed")
        elif abs(row.change) >= MISSING_WATCH:
            watch.append(words)
    acting = applicants.iloc[1:][applicants.iloc[1:]["band"] == "act"]
    if len(acting):
        watch.append(f"{len(acting)} model features drift beyond the act band among applicants: "
                     + ", ".join(acting["variable"].head(5)))
    if len(population) and population.iloc[0]["band"] == "act":
        watch.append(f"the whole population's score PSI {population.iloc[0]['value']:.3f} ≥ {PSI_ACT} (a year apart)")
    for row in realised.itertuples(index=False):
        if row.defaults < MIN_DEFAULTS or not outside_band(row.low, row.high, row.predicted_pd, band_of_calibration):
            continue
        words = (f"realised default {row.realised_rate:.2%} ({row.low:.2%}…{row.high:.2%}, {row.defaults} of "
                 f"{row.loans:,} loans) against predicted {row.predicted_pd:.2%}")
        (retrain if row.grade == "all" else watch).append(
            ("all matured loans since training: " if row.grade == "all" else f"grade {row.grade}: ") + words)
    if retrain:
        return "retrain", retrain + watch
    return ("watch", watch) if watch else ("stable", ["no rule fired: score, sources, features and realised default "
                                                      "all within their bands"])


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


def drift_by(bundle: ModelBundle, before: pd.DataFrame, after: pd.DataFrame, by: str) -> pd.DataFrame:
    """Score PSI and mean PD, ``before`` against ``after``, per value of ``by`` (district…), named
    in words, with the rows each side rests on."""
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
    words = {d["code"]: (name, d["zh"], d["en"]) for name, d in bundle.declared().items()}
    words.update({g["code"]: (g.get("feature") or g["source"], g["zh"], g["en"]) for g in bundle.reason_plan.groups})
    codes = listing[column].fillna("").str.split(";").explode()
    counts = codes[codes != ""].value_counts().head(top)
    said = [words.get(c, (c, c, c)) for c in counts.index]
    return pd.DataFrame({"code": counts.index, "decisions": counts.to_numpy(),
                         "share": counts.to_numpy() / max(len(listing), 1),
                         "feature or source": [w[0] for w in said], "zh": [w[1] for w in said],
                         "en": [w[2] for w in said]})


def drift_text(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`drift` table as a person reads it: a PSI row's before and after are medians (the
    score in points, a feature in its registry unit), a sparse row's are non-zero shares in
    percent; counts with separators; what was measured in words."""
    rows = []
    for row in table.itertuples(index=False):
        if row.measure == "non-zero share":
            before, after = f"{row.before:.1%} non-zero", f"{row.after:.1%} non-zero"
            value = f"×{row.value:.2f} (p {row.p_value:.3f})"
        else:
            unit = "points" if row.variable == "score" else (BY_NAME[row.variable].unit if row.variable in BY_NAME else "")
            before, after = (_median_text(v, unit) for v in (row.before, row.after))
            value = f"PSI {row.value:.3f}"
        rows.append({"variable": row.variable, "before (median or share)": before, "after": after, "drift": value,
                     "band": row.band, "rows": f"{row.before_rows:,} → {row.after_rows:,}"})
    return pd.DataFrame(rows)


def _median_text(value, unit: str) -> str:
    if isinstance(value, str) or value is None:
        return "—" if value is None else value
    if value != value:
        return "— (mostly missing)"
    if unit == "yuan":
        return f"¥{value:,.0f}"
    if unit == "share":
        return f"{value:.1%}"
    if unit == "flag":
        return "yes" if value >= 0.5 else "no"
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:.4g} {unit}".strip()


def sample_rows(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """At most ``n`` rows, the same ones every time."""
    return frame if len(frame) <= n else frame.sample(n, random_state=seed)


BAND_COLOURS = {"stable": "#1e8449", "watch": "#d4ac0d", "act": "#c0392b", "too few rows": "#aab7b8"}


def plot_drift(table: pd.DataFrame, title: str, top: int = 15):
    """Two panels of a :func:`drift` table: the score and the PSI-measured features, bars coloured
    by band against the 0.10 and 0.25 lines; and the sparse features' non-zero shares, before
    beside after. Returns the figure."""
    import matplotlib.pyplot as plt

    from features.readable import percent_axis

    psi = table[table["measure"] == "PSI"].head(top).iloc[::-1]
    sparse = table[table["measure"] == "non-zero share"].head(top // 2 or 1).iloc[::-1]
    figure, (left, right) = plt.subplots(1, 2, figsize=(15, max(4, 0.35 * top)),
                                         gridspec_kw={"width_ratios": [3, 2]})
    left.barh(psi["variable"], psi["value"], color=[BAND_COLOURS[b] for b in psi["band"]])
    left.axvline(PSI_WATCH, ls="--", c="grey")
    left.axvline(PSI_ACT, ls="--", c="grey")
    rows = f"{int(table['before_rows'].iloc[0]):,} → {int(table['after_rows'].iloc[0]):,} rows"
    left.set(title=f"{title}: PSI, score first ({rows})", xlabel="population stability index (PSI)",
             ylabel="model input")
    at = np.arange(len(sparse))
    right.barh(at - 0.2, sparse["before"], height=0.4, label="before", color="#7f8c8d")
    right.barh(at + 0.2, sparse["after"], height=0.4, label="after",
               color=[BAND_COLOURS[b] for b in sparse["band"]])
    right.set_yticks(at, sparse["variable"])
    right.set(title=f"{title}: sparse features", xlabel="share of rows with a non-zero value")
    percent_axis(right, "x", 1)
    right.legend()
    figure.tight_layout()
    return figure


def plot_realised(table: pd.DataFrame):
    """Realised default (with its 95 % interval) beside mean predicted PD, per grade, each grade
    labelled with its loans and defaults. Returns the figure."""
    import matplotlib.pyplot as plt

    from features.readable import percent_axis

    figure, ax = plt.subplots(figsize=(8, 4))
    at = np.arange(len(table))
    ax.bar(at - 0.2, table["predicted_pd"], width=0.4, label="mean predicted PD", color="#5d6d7e")
    realised = table["realised_rate"].to_numpy(dtype=float)
    errors = np.vstack([realised - table["low"].to_numpy(dtype=float), table["high"].to_numpy(dtype=float) - realised])
    ax.bar(at + 0.2, realised, width=0.4, label="realised default rate", color="#c0392b",
           yerr=np.nan_to_num(errors), capsize=3)
    ax.set_xticks(at, [f"{g}\n{n:,} loans\n{d:,} default{'' if d == 1 else 's'}" for g, n, d in
                       zip(table["grade"], table["loans"], table["defaults"])])
    ax.set(xlabel="grade (A safest), loans matured since training", ylabel="default rate within 12 months",
           title="realised against predicted default, 95 % intervals")
    percent_axis(ax, "y", 1)
    ax.legend()
    figure.tight_layout()
    return figure
