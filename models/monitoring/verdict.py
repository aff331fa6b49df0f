"""The verdict of monitoring: *stable*, *watch* or *retrain* from the measures, every rule that
fired named with its numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from models.fairness import outside_band
from models.monitoring.measures import (MIN_DEFAULTS, MIN_ROWS, MISSING_RETRAIN, MISSING_WATCH, PSI_ACT, PSI_WATCH,
                                        SIGNIFICANT, proportion_p_value)


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
        if not proportion_p_value(before, row.before_rows, after, row.after_rows) < SIGNIFICANT:
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
