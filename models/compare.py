"""Challenger beside champion on the same loans: what an analyst reads
before promoting. Numbers as frames; plots as matplotlib figures (the notebooks show them)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from features.readable import percent_axis
from features.registry import BY_NAME
from models import metrics
from models.bundle import Decisions, ModelBundle
from models.fairness import fair_lending
from models.policy import DECISIONS, GRADES, Policy


SLICE_MIN_DEFAULTS = 10
"""A slice's AUC is shown only on at least this many defaults."""


@dataclass
class Comparison:
    """Two bundles' decisions on the same rows."""

    names: tuple[str, str]
    loans: pd.DataFrame
    first: Decisions
    second: Decisions
    policy: Policy  # the first model's: the fair-lending tolerances its slices are read against

    def measures(self) -> pd.DataFrame:
        """AUC (with its 95 % interval), Gini, KS, Brier, ECE, approvals and mean limit side by
        side, and the loans and defaults they rest on. Differences with their paired intervals
        are the gate's (:func:`models.gate.paired_differences`)."""
        y = self.loans["defaulted"].to_numpy()
        rows = {}
        for name, d in zip(self.names, (self.first, self.second)):
            summary = metrics.summary(y, d.pd)
            summary["defaults"] = float(y.sum())
            summary["approved"] = float(np.sum(d.decision == "approve"))
            summary["approval_rate"] = float(np.mean(d.decision == "approve"))
            summary["mean_limit_yuan"] = float(np.mean(d.limit))
            rows[name] = summary
        table = pd.DataFrame(rows)
        table["change"] = table[self.names[1]] - table[self.names[0]]
        return table.drop(index=["gini"])

    def grade_migration(self) -> pd.DataFrame:
        """Loans by grade under the first model (rows) and the second (columns), A (safest) to E."""
        table = pd.crosstab(pd.Categorical(self.first.grade, GRADES), pd.Categorical(self.second.grade, GRADES),
                            rownames=[self.names[0]], colnames=[self.names[1]], dropna=False)
        return table

    def decision_changes(self) -> pd.DataFrame:
        """How many loans move from one decision to another (approve, refer, decline in that
        order), their share, and the mean limit change in yuan."""
        frame = pd.DataFrame({"from": pd.Categorical(self.first.decision, DECISIONS),
                              "to": pd.Categorical(self.second.decision, DECISIONS),
                              "limit_change": self.second.limit - self.first.limit})
        table = frame.groupby(["from", "to"], observed=True).agg(
            loans=("limit_change", "size"), mean_limit_change_yuan=("limit_change", "mean")).reset_index()
        table.insert(3, "share", table["loans"] / len(frame))
        return table

    def grade_moves(self, top: int = 15, factors: int = 3) -> pd.DataFrame:
        """The loans whose grade moves most: loan number, grant date, both grades and PDs, and the
        features whose contribution to the log-odds changed most between the models, in Chinese
        and English (positive: the second model finds the feature riskier for this loan)."""
        rank = {g: i for i, g in enumerate(GRADES)}
        steps = np.array([rank[b] - rank[a] for a, b in zip(self.first.grade, self.second.grade)])
        moved = np.flatnonzero(steps != 0)
        moved = moved[np.argsort(-np.abs(steps[moved]), kind="stable")][:top]
        names = sorted(set(self.first.features) | set(self.second.features))
        change = _aligned(self.second, names)[moved] - _aligned(self.first, names)[moved]
        rows = []
        for k, i in enumerate(moved):
            strongest = np.argsort(-np.abs(change[k]), kind="stable")[:factors]
            words = [f"{_words(names[j])} {change[k, j]:+.2f}" for j in strongest if abs(change[k, j]) > 1e-9]
            rows.append({"loan_no": self.loans["loan_no"].iloc[i] if "loan_no" in self.loans else i,
                         "grant_date": pd.Timestamp(self.loans["grant_date"].iloc[i]).date()
                         if "grant_date" in self.loans else None,
                         "uscc": self.first.uscc[i], "grades": f"{self.first.grade[i]} → {self.second.grade[i]}",
                         f"pd_{self.names[0]}": self.first.pd[i], f"pd_{self.names[1]}": self.second.pd[i],
                         "contribution changes (log-odds)": "；".join(words)})
        columns = ["loan_no", "grant_date", "uscc", "grades", f"pd_{self.names[0]}", f"pd_{self.names[1]}",
                   "contribution changes (log-odds)"]
        return pd.DataFrame(rows, columns=columns)

    def slices(self, by: str) -> pd.DataFrame:
        """Per group of ``by`` (district_code, entity_type, industry_section, firm_age_years), by
        name: loans and defaults, the observed default rate with its interval, and each model's
        approval rate, mean PD and AUC (the fair-lending measures of :mod:`models.fairness`); the
        AUC only where the group holds :data:`SLICE_MIN_DEFAULTS` defaults (on fewer it is noise)."""
        found = [fair_lending(self.loans, d, self.policy).tables.get(by) for d in (self.first, self.second)]
        if found[0] is None:
            raise ValueError(f"no slices by {by!r}: the loans have no such column")
        out = found[0][["group", "loans", "default_rate", "default_low", "default_high"]].copy()
        out.insert(2, "defaults", np.round(out["default_rate"] * out["loans"]).astype(int))
        for name, table in zip(self.names, found):
            for column in ("approval_rate", "mean_pd", "auc"):
                out[f"{column} {name}"] = table[column].to_numpy()
            out[f"auc {name}"] = out[f"auc {name}"].where(out["defaults"] >= SLICE_MIN_DEFAULTS)
        return out.rename(columns={"group": by})

    def importance(self, top: int = 20) -> pd.DataFrame:
        """Each feature's mean absolute contribution to the log-odds under both models, side by
        side with its rank under each, strongest (under either) first, in Chinese and English."""
        names = sorted(set(self.first.features) | set(self.second.features))
        table = pd.DataFrame({"feature": names, "words": [_words(n) for n in names]})
        for name, d in zip(self.names, (self.first, self.second)):
            table[name] = np.abs(_aligned(d, names)).mean(axis=0)
        for name in self.names:
            table[f"rank {name}"] = table[name].rank(ascending=False, method="min").astype(int)
        strongest = np.maximum(table[self.names[0]], table[self.names[1]])
        return table.iloc[np.argsort(-strongest.to_numpy(), kind="stable")].head(top).reset_index(drop=True)

    def curves(self):
        """ROC, KS and calibration of both models in one figure, every axis labelled."""
        y = self.loans["defaulted"].to_numpy()
        figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        for name, d in zip(self.names, (self.first, self.second)):
            fpr, tpr, _ = roc_curve(y, d.pd)
            axes[0].plot(fpr, tpr, label=f"{name} AUC {metrics.auc(y, d.pd):.3f}")
            order = np.argsort(-d.pd)
            share = np.arange(1, len(y) + 1) / len(y)
            gap = np.cumsum(y[order]) / max(y.sum(), 1) - np.cumsum(1 - y[order]) / max((1 - y).sum(), 1)
            axes[1].plot(share, gap, label=f"{name} KS {gap.max():.3f}")
            table = metrics.calibration_table(y, d.pd)
            axes[2].plot(table["predicted_pd"], table["observed_rate"], "o-", label=name)
        axes[0].plot([0, 1], [0, 1], "--", color="grey")
        top = axes[2].get_xlim()[1]
        axes[2].plot([0, top], [0, top], "--", color="grey", label="predicted = observed")
        where = f"{len(y):,} loans, {int(y.sum()):,} defaults"
        labels = (("ROC", "repaid loans flagged (false positive rate)", "defaulted loans flagged (true positive rate)"),
                  ("KS: defaults − repaid captured", "loans, riskiest first", "cumulative share: defaults − repaid"),
                  ("calibration by decile of PD", "mean predicted PD", "observed default rate"))
        for ax, (title, xlabel, ylabel) in zip(axes, labels):
            ax.set(title=f"{title}\n{where}", xlabel=xlabel, ylabel=ylabel)
            percent_axis(ax, "x")
            percent_axis(ax, "y")
            ax.legend()
        figure.tight_layout()
        return figure


def _aligned(decisions: Decisions, names: list[str]) -> np.ndarray:
    """A decision batch's contributions in the columns ``names`` (zero where it has no such feature)."""
    out = np.zeros((len(decisions), len(names)))
    where = {n: j for j, n in enumerate(names)}
    for k, feature in enumerate(decisions.features):
        out[:, where[feature]] = decisions.contributions[:, k]
    return out


def _words(name: str) -> str:
    feature = BY_NAME.get(name)
    return f"{feature.zh} {feature.en}" if feature is not None else name


def compare(first: ModelBundle, second: ModelBundle, loans: pd.DataFrame,
            names: tuple[str, str] = ("champion", "challenger")) -> Comparison:
    """Both bundles' decisions on the same labelled loans."""
    return Comparison(names, loans.reset_index(drop=True), first.decide(loans), second.decide(loans), first.policy)


def shap_plots(bundle: ModelBundle, frame: pd.DataFrame, dependence: list[str] | None = None, sample: int = 1_000):
    """The shap package's summary plot and dependence plots for the named features (by default
    the two with the largest mean absolute contribution: which features a model uses depends on
    what the lake's history lets it use)."""
    import shap

    rows = frame.sample(min(sample, len(frame)), random_state=0)
    contributions = bundle.pd_model.explain(rows).drop(columns="base_value").to_numpy()
    values = pd.DataFrame(bundle.pd_model.matrix(rows), columns=bundle.features)
    if dependence is None:
        strongest = np.argsort(-np.abs(contributions).mean(axis=0), kind="stable")[:2]
        dependence = [bundle.features[j] for j in strongest]
    figures = []
    shap.summary_plot(contributions, values, max_display=15, show=False, rng=np.random.default_rng(0))
    plt.gca().set_xlabel("contribution to the log-odds of default (SHAP value)")
    plt.gca().set_title(f"{len(rows):,} loans")
    figures.append(plt.gcf())
    for feature in dependence:
        figure, ax = plt.subplots(figsize=(5, 4))
        shap.dependence_plot(feature, contributions, values, ax=ax, show=False, interaction_index=None)
        declared = BY_NAME.get(feature)
        ax.set_xlabel(f"{feature} ({declared.unit})" if declared else feature)
        ax.set_ylabel("contribution to the log-odds of default")
        figures.append(figure)
    return figures
