"""Challenger beside champion on the same loans and the same enterprises: what an analyst reads
before promoting. Numbers as frames; plots as matplotlib figures (the notebooks show them)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from models import metrics
from models.bundle import Decisions, ModelBundle
from models.explain import top_factors
from models.policy import GRADES


@dataclass
class Comparison:
    """Two bundles' decisions on the same rows."""

    names: tuple[str, str]
    loans: pd.DataFrame
    first: Decisions
    second: Decisions

    def measures(self) -> pd.DataFrame:
        """AUC, Gini, KS, Brier, ECE, approval rate and mean limit, side by side."""
        y = self.loans["defaulted"].to_numpy()
        rows = {}
        for name, d in zip(self.names, (self.first, self.second)):
            summary = metrics.summary(y, d.pd)
            summary["approval_rate"] = float(np.mean(d.decision == "approve"))
            summary["mean_limit_yuan"] = float(np.mean(d.limit))
            rows[name] = summary
        table = pd.DataFrame(rows)
        table["change"] = table[self.names[1]] - table[self.names[0]]
        return table

    def grade_migration(self) -> pd.DataFrame:
        """Enterprises by grade under the first model (rows) and the second (columns)."""
        table = pd.crosstab(pd.Categorical(self.first.grade, GRADES), pd.Categorical(self.second.grade, GRADES),
                            rownames=[self.names[0]], colnames=[self.names[1]], dropna=False)
        return table

    def decision_changes(self) -> pd.DataFrame:
        """How many decisions move from one outcome to another, and the limit change."""
        frame = pd.DataFrame({"from": self.first.decision, "to": self.second.decision,
                              "limit_change": self.second.limit - self.first.limit})
        return frame.groupby(["from", "to"]).agg(enterprises=("limit_change", "size"),
                                                 mean_limit_change=("limit_change", "mean")).reset_index()

    def changed_grades(self, top: int = 20) -> pd.DataFrame:
        """The enterprises whose grade moves most, with each model's strongest adverse factor."""
        rank = {g: i for i, g in enumerate(GRADES)}
        steps = np.array([rank[b] - rank[a] for a, b in zip(self.first.grade, self.second.grade)])
        moved = np.flatnonzero(steps != 0)
        moved = moved[np.argsort(-np.abs(steps[moved]), kind="stable")][:top]
        worst_first, _ = top_factors(self.first.contributions[moved], adverse=1, positive=0)
        worst_second, _ = top_factors(self.second.contributions[moved], adverse=1, positive=0)

        def name(features, index):
            return features[index] if index >= 0 else "—"
        return pd.DataFrame({
            "uscc": self.first.uscc[moved], f"grade_{self.names[0]}": self.first.grade[moved],
            f"grade_{self.names[1]}": self.second.grade[moved],
            f"pd_{self.names[0]}": self.first.pd[moved], f"pd_{self.names[1]}": self.second.pd[moved],
            f"top_adverse_{self.names[0]}": [name(self.first.features, w[0]) for w in worst_first],
            f"top_adverse_{self.names[1]}": [name(self.second.features, w[0]) for w in worst_second],
        })

    def curves(self):
        """ROC, KS and calibration of both models in one figure."""
        y = self.loans["defaulted"].to_numpy()
        figure, axes = plt.subplots(1, 3, figsize=(14, 4))
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
        axes[2].plot([0, top], [0, top], "--", color="grey")
        for ax, title in zip(axes, ("ROC", "KS: bads − goods captured", "calibration by decile")):
            ax.set_title(title)
            ax.legend()
        return figure


def compare(first: ModelBundle, second: ModelBundle, loans: pd.DataFrame,
            names: tuple[str, str] = ("champion", "challenger")) -> Comparison:
    """Both bundles' decisions on the same labelled loans."""
    return Comparison(names, loans.reset_index(drop=True), first.decide(loans), second.decide(loans))


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
    shap.summary_plot(contributions, values, max_display=15, show=False)
    figures.append(plt.gcf())
    for feature in dependence:
        figure, ax = plt.subplots(figsize=(5, 4))
        shap.dependence_plot(feature, contributions, values, ax=ax, show=False, interaction_index=None)
        figures.append(figure)
    return figures
