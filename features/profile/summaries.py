"""Summaries of a built profile for analysts: coverage of each source by group, feature
distributions, outcome rates by a column. Plain frames, ready for a table or a plot."""

from __future__ import annotations

import pandas as pd

from features.registry import BY_NAME, COVERED_SOURCES, FEATURES, get_feature


def coverage_by(profile: pd.DataFrame, by: str) -> pd.DataFrame:
    """Share of enterprises each source covers, per value of ``by`` (district, enterprise type…),
    with the number of enterprises."""
    get_feature(by)
    flags = list(COVERED_SOURCES)
    table = profile.groupby(profile[by].astype("object").fillna("∅"), observed=True)[flags].mean()
    table.insert(0, "enterprises", profile.groupby(profile[by].astype("object").fillna("∅"), observed=True).size())
    return table.rename(columns={f: COVERED_SOURCES[f] for f in flags})


def feature_distributions(profile: pd.DataFrame, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95)) -> pd.DataFrame:
    """Per numeric feature: share missing, mean and quantiles, with its unit and meaning."""
    rows = []
    for f in FEATURES:
        if f.is_categorical:
            continue
        values = profile[f.name]
        row = {"feature": f.name, "code": f.code, "zh": f.zh, "unit": f.unit, "missing": float(values.isna().mean()),
               "mean": float(values.mean())}
        row.update({f"q{int(q * 100):02d}": float(values.quantile(q)) for q in quantiles})
        rows.append(row)
    return pd.DataFrame(rows)


def rate_by(frame: pd.DataFrame, by: str, outcome: str = "defaulted") -> pd.DataFrame:
    """Loans, defaults and the default rate per value of ``by`` (for example the tax credit grade
    the profile held at grant), in the registry's order of its categories (tax grades from A to D,
    the order of risk), missing last."""
    groups = frame[by].astype("object").fillna("∅")
    table = frame.groupby(groups)[outcome].agg(loans="size", defaults="sum", rate="mean")
    declared = [c for c in (get_feature(by).categories if by in BY_NAME else ()) if c in table.index]
    table = table.reindex(declared + [v for v in table.index if v not in declared])
    return table.reset_index().rename(columns={"index": by})
