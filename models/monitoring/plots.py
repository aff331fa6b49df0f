"""Monitoring as a person reads it: the drift table in words and units, and the figures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.registry import BY_NAME
from models.monitoring.measures import PSI_ACT, PSI_WATCH


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
