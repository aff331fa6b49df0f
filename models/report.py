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
import html
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

    title: str
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


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, classes="t", na_rep="—")


def render(report: Report) -> str:
    """The report as a self-contained HTML page."""
    headline = pd.DataFrame([{"measure": k, "value": v} for k, v in report.headline.items()])
    split = report.windows.get("split", {})
    def months(v):
        if not isinstance(v, (list, tuple)):
            return v
        return " … ".join(v) if v[0] else "none: cross-validated on the training loans"
    windows = pd.DataFrame([{"window": k, "grant months": months(v),
                             "loans": report.windows.get("loans", {}).get(k, ""),
                             "defaults": report.windows.get("defaults", {}).get(k, "")} for k, v in split.items()
                            if k not in ("evidence", "thin", "min_defaults")])
    broken = [name for name, holds in report.monotonicity.items() if not holds]
    monotone = ("holds for all " + str(len(report.monotonicity)) + " constrained features" if not broken
                else "BROKEN for " + ", ".join(broken))
    worst_psi = report.psi.sort_values("psi", ascending=False).head(25)
    images = "".join(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,"
                     f"{base64.b64encode(png).decode()}'><figcaption>{html.escape(name)}</figcaption></figure>"
                     for name, png in report.plots.items())
    fair = report.fairness
    names = {"district_code": "区县 district", "entity_type": "主体类型 entity type",
             "industry_section": "行业 industry", "firm_age_years": "成立年限 firm age"}
    tolerance = fair.tolerances
    fair_html = (
        f"<p>Out of time, per group of the features the policy never names as reasons. Tolerances (policy): approval "
        f"rate at least {tolerance['approval_ratio_floor']:.2f} × the best group's (a lower ratio must be justified "
        f"by risk); observed default rate within {tolerance['calibration_band'][0]:.2f}–"
        f"{tolerance['calibration_band'][1]:.2f} × the mean PD (judged on the 95 % interval); groups under "
        f"{tolerance['min_group_loans']} loans are shown but not judged.</p>"
        + ("<p><b>Findings</b></p><ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in fair.findings) + "</ul>"
           if fair.findings else "<p><b>No finding</b>: every judged group is within tolerance.</p>")
        + "".join(f"<h3>{html.escape(names.get(by, by))}</h3>{_table(frame)}" for by, frame in fair.tables.items()))
    population = report.population
    if population is None:
        population_html = ("<p>No stored profile of this feature set: build one (<code>xyd features build</code>) and "
                           "retrain to measure the whole pre-credit list.</p>")
    else:
        population_html = (
            f"<p>Every enterprise of the stored profile as of {html.escape(population.as_of)} "
            f"({population.enterprises:,}; {population.approval_rate:.1%} approved), per group of the features the policy "
            f"never names: approval with its 95 % interval, mean approved limit, the group's gap to the whole list in "
            f"log-odds against the whole book's reference split into what its firms do (behaviour) and what they are "
            f"(firmographic), and beside it realised against predicted default on the group's out-of-time loans. A group "
            f"approved below {tolerance['approval_ratio_floor']:.2f} × the best whose loans are not calibrated is a "
            f"finding.</p>"
            + ("<p><b>Findings</b></p><ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in population.findings)
               + "</ul>" if population.findings else "<p><b>No finding</b> on the whole list.</p>")
            + "".join(f"<h3>{html.escape(names.get(by, by))}</h3>{_table(frame)}" for by, frame in population.tables.items()))
    split_meta = report.windows.get("split", {})
    evidence = "".join(f"<li>{html.escape(note)}</li>" for note in split_meta.get("evidence", [])) or \
        f"<li>every window holds at least {split_meta.get('min_defaults', '')} defaults</li>"
    benchmark = "" if report.benchmark is None else (
        "<h2>Benchmark scorecard (WOE logistic, same windows)</h2><p>Approval at the same bad rate: the share of "
        "out-of-time loans each model approves, safest first, while the approved loans default no more often than "
        "the champion's approved loans do.</p>" + _table(report.benchmark))
    stages_meta = report.windows.get("stages")
    stages = "" if report.stages is None or not stages_meta else (
        f"<h2>Two stages</h2><p>Stage 1 learned distress in the next 12 months from "
        f"{stages_meta['enterprise_months']:,} enterprise-months ({html.escape(' … '.join(stages_meta['as_of']))}; "
        f"{stages_meta['distress_rate']:.1%} distressed; {stages_meta['stage1_trees']} trees); stage 2 boosts from "
        f"a + b · stage-1 margin with (a, b) = ({stages_meta['link'][0]:.3f}, {stages_meta['link'][1]:.3f}). Events: "
        + html.escape("; ".join(f"{name} {rate:.1%}" for name, rate in stages_meta["events"].items()))
        + "</p>" + _table(report.stages))
    excluded = "" if report.excluded is None else (
        "<h2>Features not yet available (left out)</h2>"
        + ("<p>none: every feature's window is covered by the lake's history from the first fitted month</p>"
           if not len(report.excluded) else _table(report.excluded)))
    from markupsafe import Markup

    from features.pages import render_page

    # every part above is built from escaped text and pandas' escaped tables
    body = Markup(f"""<p>Model inputs: feature set {html.escape(str(report.windows.get('feature_set_version')))}; policy
{html.escape(str(report.windows.get('policy_version')))}; {report.windows.get('pd_trees')} PD trees,
{report.windows.get('capacity_trees')} capacity trees; calibration (a, b) = {report.windows.get('calibration')}.</p>
<h2>Out-of-time performance</h2>{_table(headline)}
<h2>Windows (split by grant month)</h2>{_table(windows)}
<h2>Evidence</h2><ul>{evidence}</ul>
{benchmark}
{stages}
{excluded}
<h2>Monotonicity</h2><p>{html.escape(monotone)}</p>
<h2>Plots</h2>{images}
<h2>Calibration by decile (out of time)</h2>{_table(report.calibration)}
<h2>Population stability (training → out of time), highest 25</h2>{_table(worst_psi)}
<h2>公平信贷 · Fair lending (out of time)</h2>{fair_html}
<h2>公平信贷 · 全部预授信名单 Fair lending on the whole pre-credit list</h2>{population_html}
""")
    return with_typeface(render_page("models", "model_report.html", title=report.title, body=body))
