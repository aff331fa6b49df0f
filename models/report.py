"""The validation report of a training run: one self-contained HTML page (plots inlined).

Out-of-time AUC, KS, Gini, Brier, calibration by decile and ECE; PSI of the score and of every
feature between the training and out-of-time populations; a fair-lending section
(:mod:`models.fairness`: approval, limit, calibration and AUC by district, entity type, industry
and firm age, judged against the policy's tolerances); the monotonicity check; the limit rule
against realised capacity; plots of ROC, KS, calibration and a SHAP summary (the ``shap`` package, on a sample). Only training imports
this module: the serving path never loads matplotlib or shap.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from features.typeface import with_typeface
from models.bundle import ModelBundle
from models.fairness import FairLending, PopulationFairness
from models.train import Evaluation

SHAP_SAMPLE = 2_000


@dataclass
class Report:
    """What the report shows, as data (the HTML is rendered from it)."""

    title: tuple[str, str]  # Chinese, English
    headline: dict[str, float]
    windows: dict
    calibration: pd.DataFrame
    psi: pd.DataFrame
    fairness: FairLending
    monotonicity: dict[str, bool]
    plots: dict[str, bytes]
    benchmark: pd.DataFrame | None = None
    stages: pd.DataFrame | None = None
    excluded: pd.DataFrame | None = None
    population: PopulationFairness | None = None


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def roc_plot(y: np.ndarray, p: np.ndarray) -> bytes:
    fpr, tpr, _ = roc_curve(y, p)
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.plot(fpr, tpr, label="model")
    axes.plot([0, 1], [0, 1], "--", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (out of time)")
    return _png(figure)


def ks_plot(y: np.ndarray, p: np.ndarray) -> bytes:
    order = np.argsort(-p)
    bads = np.cumsum(y[order]) / max(y.sum(), 1)
    goods = np.cumsum(1 - y[order]) / max((1 - y).sum(), 1)
    share = np.arange(1, len(y) + 1) / len(y)
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.plot(share, bads, label="defaulted")
    axes.plot(share, goods, label="repaid")
    gap = np.argmax(bads - goods)
    axes.vlines(share[gap], goods[gap], bads[gap], colors="red", label=f"KS {bads[gap] - goods[gap]:.3f}")
    axes.set(xlabel="share of loans, riskiest first", ylabel="cumulative share", title="KS (out of time)")
    axes.legend()
    return _png(figure)


def calibration_plot(table: pd.DataFrame) -> bytes:
    figure, axes = plt.subplots(figsize=(4.5, 4))
    top = float(max(table["predicted_pd"].max(), table["observed_rate"].max()) * 1.1)
    axes.plot([0, top], [0, top], "--", color="grey")
    axes.plot(table["predicted_pd"], table["observed_rate"], "o-")
    axes.set(xlabel="mean predicted PD", ylabel="observed default rate", title="Calibration by decile")
    return _png(figure)


def shap_summary_plot(bundle: ModelBundle, frame: pd.DataFrame) -> bytes:
    """The shap package's summary (beeswarm) plot of the PD model's log-odds contributions."""
    import shap

    sample = frame.sample(min(SHAP_SAMPLE, len(frame)), random_state=0)
    contributions = bundle.pd_model.explain(sample).drop(columns="base_value")
    values = pd.DataFrame(bundle.pd_model.matrix(sample), columns=bundle.features)
    shap.summary_plot(contributions.to_numpy(), values, max_display=20, show=False, rng=np.random.default_rng(0))
    return _png(plt.gcf())


def build(bundle: ModelBundle, evaluation: Evaluation, psi: pd.DataFrame, fairness: FairLending,
          monotonicity: dict[str, bool], title: str, benchmark=None, stages: pd.DataFrame | None = None,
          excluded: pd.DataFrame | None = None, population: PopulationFairness | None = None) -> Report:
    y = evaluation.frame["defaulted"].to_numpy()
    plots = {"ROC": roc_plot(y, evaluation.decisions.pd), "KS": ks_plot(y, evaluation.decisions.pd),
             "Calibration": calibration_plot(evaluation.calibration),
             "SHAP summary (log-odds of default)": shap_summary_plot(bundle, evaluation.frame)}
    return Report(title, evaluation.metrics, bundle.meta, evaluation.calibration, psi, fairness, monotonicity, plots,
                  None if benchmark is None else benchmark.table, stages, excluded, population)


def render(report: Report) -> str:
    """The report as a self-contained HTML page (``models/templates/model_report.html``)."""
    from markupsafe import Markup

    from features.pages import render_page

    def table(frame: pd.DataFrame) -> Markup:  # pandas escapes every cell it writes
        return Markup(frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, classes="t",
                                    na_rep="—"))

    split = report.windows.get("split", {})

    def months(v):
        if not isinstance(v, (list, tuple)):
            return v
        return " … ".join(v) if v[0] else "none: cross-validated on the training loans"

    windows = pd.DataFrame([{"window": k, "grant months": months(v),
                             "loans": report.windows.get("loans", {}).get(k, ""),
                             "defaults": report.windows.get("defaults", {}).get(k, "")} for k, v in split.items()
                            if k not in ("evidence", "thin", "min_defaults")])
    names = {"district_code": ("区县", "district"), "entity_type": ("主体类型", "entity type"),
             "industry_section": ("行业", "industry"), "firm_age_years": ("成立年限", "firm age")}

    def grouped(tables: dict) -> list[tuple[tuple[str, str], Markup]]:
        return [(names.get(by, (by, by)), table(frame)) for by, frame in tables.items()]

    stages = report.windows.get("stages") if report.stages is not None else None
    return with_typeface(render_page(
        "models", "model_report.html", title=report.title, windows=report.windows,
        headline=table(pd.DataFrame([{"measure": k, "value": v} for k, v in report.headline.items()])),
        window_table=table(windows),
        evidence=split.get("evidence", []), min_defaults=split.get("min_defaults", ""),
        benchmark=None if report.benchmark is None else table(report.benchmark),
        stages=stages, stages_table=None if stages is None else table(report.stages),
        excluded=None if report.excluded is None else (table(report.excluded) if len(report.excluded) else ""),
        broken=[name for name, holds in report.monotonicity.items() if not holds],
        constrained=len(report.monotonicity),
        plots=[(name, base64.b64encode(png).decode()) for name, png in report.plots.items()],
        calibration=table(report.calibration),
        psi=table(report.psi.sort_values("psi", ascending=False).head(25)),
        fair=report.fairness, tolerance=report.fairness.tolerances, fair_tables=grouped(report.fairness.tables),
        population=report.population,
        population_tables=[] if report.population is None else grouped(report.population.tables)))
