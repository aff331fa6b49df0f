"""Fair lending: how a model treats groups of enterprises that the policy never names as reasons
(district, entity type, industry, firm age), measured out of time for every validation report.

Per group: loans, approval rate, mean limit, observed default rate against the mean predicted PD
(calibration, the measure that says whether a difference in approval is a difference in risk) and
AUC, each rate with its 95 % interval. Two disparities are judged against the policy's tolerances
(``[fair_lending]``), and only for groups large enough to judge (``min_group_loans``; thinner groups
are shown, with their intervals, and marked "too few to judge"):

- **approval ratio**: a group's approval rate over the highest group's (the four-fifths rule of
  adverse-impact analysis); a low ratio is a finding to explain, not by itself a wrong: it is
  justified when the group's observed default rate is as high as its PDs say;
- **calibration**: observed default rate over mean PD. A group whose interval lies wholly outside
  the tolerated band is over- or under-charged by the model, which no difference in risk justifies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.registry import category_name
from models import metrics

FIRM_AGE_BANDS = (0, 1, 3, 5, 10, math.inf)
"""Upper edges (years) of the firm-age bands: under 1, 1–3, 3–5, 5–10, 10 and over."""
DIMENSIONS = ("district_code", "entity_type", "industry_section", "firm_age_years")


def wilson(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default); (nan, nan) for no trials."""
    if total <= 0:
        return math.nan, math.nan
    share = successes / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    # the interval always holds the share; at 0 and at 1 rounding could leave it a hair outside
    return max(0.0, min(centre - half, share)), min(1.0, max(centre + half, share))


def outside_band(low: float, high: float, predicted: float, band: tuple[float, float]) -> bool:
    """Whether an observed rate's interval (``low``, ``high``) lies wholly outside ``band`` ×
    ``predicted``: a group (or a grade) the model over- or under-charges, which no difference in
    risk justifies. Never for a prediction of 0."""
    return predicted > 0 and (low > band[1] * predicted or high < band[0] * predicted)


def firm_age_band(years: pd.Series) -> pd.Series:
    """Firm age in years → its band's label (missing ages: "∅")."""
    labels = [f"{lo:g}–{hi:g} 年 years" if hi != math.inf else f"≥{lo:g} 年 years"
              for lo, hi in zip(FIRM_AGE_BANDS, FIRM_AGE_BANDS[1:])]
    banded = pd.cut(pd.to_numeric(years, errors="coerce"), list(FIRM_AGE_BANDS), right=False, labels=labels)
    return banded.astype("object").where(banded.notna(), "∅")


@dataclass
class FairLending:
    """Per dimension, a table of groups; and the findings against the tolerances, in words."""

    tables: dict[str, pd.DataFrame]
    findings: list[str]
    tolerances: dict


def fair_lending(frame: pd.DataFrame, decisions, policy) -> FairLending:
    """The fair-lending tables of out-of-time loans ``frame`` (with ``defaulted`` and the profile's
    columns) decided as ``decisions`` under ``policy``."""
    tolerance = policy.fair_lending
    y = frame["defaulted"].to_numpy().astype(bool)
    approved = np.asarray(decisions.decision) == "approve"
    tables, findings = {}, []
    for dimension in DIMENSIONS:
        if dimension not in frame:
            continue
        groups = firm_age_band(frame[dimension]) if dimension == "firm_age_years" else \
            frame[dimension].astype("object").fillna("∅")
        rows = []
        for value, index in pd.Series(np.arange(len(frame))).groupby(groups.to_numpy(), sort=True):
            i = index.to_numpy()
            n, defaults, approvals = len(i), int(y[i].sum()), int(approved[i].sum())
            mean_pd = float(decisions.pd[i].mean())
            observed_low, observed_high = wilson(defaults, n)
            approval_low, approval_high = wilson(approvals, n)
            auc = metrics.auc_interval(y[i], decisions.pd[i]) if 0 < defaults < n else \
                {"value": math.nan, "low": math.nan, "high": math.nan}
            rows.append({
                "group": category_name(dimension, value) if dimension != "firm_age_years" else value,
                "loans": n, "approval_rate": approvals / n, "approval_low": approval_low, "approval_high": approval_high,
                "mean_limit_yuan": float(np.asarray(decisions.limit)[i].mean()),
                "default_rate": defaults / n, "default_low": observed_low, "default_high": observed_high,
                "mean_pd": mean_pd, "observed_over_predicted": defaults / n / mean_pd if mean_pd > 0 else math.nan,
                "auc": auc["value"], "auc_low": auc["low"], "auc_high": auc["high"]})
        if not rows:
            continue
        table = pd.DataFrame(rows)
        judged = table["loans"] >= tolerance["min_group_loans"]
        best_row = table[judged].sort_values("approval_rate", ascending=False).head(1)
        best = float(best_row["approval_rate"].iloc[0]) if len(best_row) else math.nan
        table["approval_ratio"] = table["approval_rate"] / best if best > 0 else math.nan
        low, high = tolerance["calibration_band"]
        verdicts = []
        for row, judge in zip(table.itertuples(index=False), judged):
            if not judge:
                verdicts.append(f"too few to judge (< {tolerance['min_group_loans']} loans)")
                continue
            miscalibrated = outside_band(row.default_low, row.default_high, row.mean_pd, (low, high))
            if not best > 0:  # no judged group is approved at all: there is no ratio to judge
                unequal, riskier = False, False
            else:
                unequal = row.approval_ratio < tolerance["approval_ratio_floor"]
                # a lower approval is justified only by a higher risk: predicted above the best-approved
                # group's, and observed (the interval's low end) above that group's predicted risk too
                best_pd = float(best_row["mean_pd"].iloc[0])
                riskier = row.mean_pd > best_pd and row.default_low > best_pd
            if miscalibrated:
                side = "under-predicted" if row.default_low > high * row.mean_pd else "over-predicted"
                verdicts.append(f"DISPARITY: risk {side} (observed {row.default_rate:.2%} "
                                f"[{row.default_low:.2%}, {row.default_high:.2%}] against PD {row.mean_pd:.2%})")
            elif unequal and riskier:
                verdicts.append(f"approval ratio {row.approval_ratio:.2f} below {tolerance['approval_ratio_floor']:.2f}, "
                                f"justified by risk: calibrated, and riskier than the best-approved group "
                                f"(PD {row.mean_pd:.2%}, observed {row.default_rate:.2%}, against its PD {best_pd:.2%})")
            elif unequal:
                verdicts.append(f"DISPARITY: approval ratio {row.approval_ratio:.2f} below "
                                f"{tolerance['approval_ratio_floor']:.2f}, not explained by a higher risk")
            elif not best > 0:
                verdicts.append("no judged group is approved: no approval ratio")
            else:
                verdicts.append("within tolerance")
            if verdicts[-1] != "within tolerance":
                findings.append(f"{dimension} {row.group}: {verdicts[-1]}")
        table["verdict"] = verdicts
        tables[dimension] = table
    return FairLending(tables, findings, dict(tolerance))


# ---------------------------------------------------------------------- the whole pre-credit list
#
# Borrowers are a selected few; fair lending is measured on everyone the platform decides. On the
# whole pre-credit list (a stored profile, every enterprise scored): approval rate and mean limit
# per district, industry and entity type with counts and Wilson intervals; each group's gap to the
# whole list decomposed, on the log-odds scale against the whole book's reference, into what the
# firms do (behaviour, absences included) and what they are (the registry's firmographic
# features); beside it, realised against predicted default within the group on the out-of-time
# loans (:func:`fair_lending`). A group approved below the policy's ratio whose loans are not
# calibrated is a finding: no difference in risk can be shown to justify its gap.

POPULATION_DIMENSIONS = ("district_code", "industry_section", "entity_type")
MIN_GROUP_ENTERPRISES = 200
"""A group of the whole list is judged from this many enterprises."""


@dataclass
class PopulationFairness:
    """Per dimension, a table of the whole list's groups; the findings in words."""

    as_of: str
    enterprises: int
    approval_rate: float
    tables: dict[str, pd.DataFrame]
    findings: list[str]

    def as_json(self) -> dict:
        """The whole measure as JSON holds it (saved with the model, shown on the regulator's page)."""
        def plain(v):
            return None if isinstance(v, float) and math.isnan(v) else (v.item() if hasattr(v, "item") else v)
        return {"as_of": self.as_of, "enterprises": self.enterprises, "approval_rate": self.approval_rate,
                "findings": self.findings,
                "tables": {dimension: [{k: plain(v) for k, v in row.items()} for row in table.to_dict("records")]
                           for dimension, table in self.tables.items()}}


def population_fairness(bundle, profile: pd.DataFrame, as_of: str, loans: FairLending | None = None,
                        min_group: int = MIN_GROUP_ENTERPRISES) -> PopulationFairness:
    """Fair lending on every enterprise of ``profile`` decided by ``bundle`` (see above); ``loans``:
    the out-of-time loans' fair-lending tables, whose calibration each group is shown with."""
    from features.registry import BY_NAME

    decisions = bundle.decide(profile, explain=False)
    matrix = bundle.pd_model.matrix(profile)
    contributions = bundle.explainer_for(None).contributions(matrix)  # one reference for every group: gaps add
    firmographic = np.array([BY_NAME[f].kind == "firmographic" if f in BY_NAME else False for f in bundle.features])
    firm_part = contributions[:, firmographic].sum(axis=1)
    behaviour_part = contributions[:, ~firmographic].sum(axis=1)
    approved = np.asarray(decisions.decision) == "approve"
    limit = np.asarray(decisions.limit, dtype=float)
    floor = bundle.policy.fair_lending["approval_ratio_floor"]
    tables, findings = {}, []
    for dimension in POPULATION_DIMENSIONS:
        if dimension not in profile:
            continue
        groups = profile[dimension].astype("object").fillna("∅").to_numpy()
        calibration = {}
        if loans is not None and dimension in loans.tables:
            calibration = {row["group"]: row for row in loans.tables[dimension].to_dict("records")}
        rows = []
        for value, index in pd.Series(np.arange(len(profile))).groupby(groups, sort=True):
            i = index.to_numpy()
            n, k = len(i), int(approved[i].sum())
            low, high = wilson(k, n)
            label = category_name(dimension, value)
            on_loans = calibration.get(label, {})
            rows.append({
                "group": label, "value": str(value), "enterprises": n, "approval_rate": k / n, "approval_low": low,
                "approval_high": high,
                "mean_limit_yuan": float(limit[i][approved[i]].mean()) if k else 0.0,
                "log_odds_gap": float(behaviour_part[i].mean() + firm_part[i].mean()
                                      - behaviour_part.mean() - firm_part.mean()),
                "of_which_behaviour": float(behaviour_part[i].mean() - behaviour_part.mean()),
                "of_which_firmographic": float(firm_part[i].mean() - firm_part.mean()),
                "loans": on_loans.get("loans", 0), "loan_default_rate": on_loans.get("default_rate", math.nan),
                "loan_default_low": on_loans.get("default_low", math.nan),
                "loan_default_high": on_loans.get("default_high", math.nan),
                "loan_mean_pd": on_loans.get("mean_pd", math.nan),
                "loan_verdict": on_loans.get("verdict", "no loans out of time")})
        table = pd.DataFrame(rows)
        judged = table["enterprises"] >= min_group
        best = float(table.loc[judged, "approval_rate"].max()) if judged.any() else math.nan
        table["approval_ratio"] = table["approval_rate"] / best if best > 0 else math.nan
        verdicts = []
        for row, judge in zip(table.itertuples(index=False), judged):
            if not judge:
                verdicts.append(f"too few to judge (< {min_group} enterprises)")
            elif row.approval_ratio < floor and str(row.loan_verdict).startswith("DISPARITY: risk"):
                verdicts.append(f"FINDING: approved at {row.approval_ratio:.2f} of the best group and its loans are "
                                f"not calibrated ({row.loan_verdict})")
            elif row.approval_ratio < floor:
                verdicts.append(f"approval ratio {row.approval_ratio:.2f} below {floor:.2f}: its gap is "
                                f"{row.of_which_behaviour:+.2f} behaviour, {row.of_which_firmographic:+.2f} firmographic "
                                f"(log-odds); loans: {row.loan_verdict}")
            else:
                verdicts.append("within tolerance")
            if verdicts[-1].startswith("FINDING"):
                findings.append(f"{dimension} {row.group}: {verdicts[-1]}")
        table["verdict"] = verdicts
        tables[dimension] = table
    return PopulationFairness(as_of, len(profile), float(approved.mean()) if len(profile) else math.nan, tables,
                              findings)
