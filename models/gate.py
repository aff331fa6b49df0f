"""The promotion gate: may a challenger replace the champion? Judged on the same out-of-time loans,
with the tolerances of the policy in force (``[gate]``; :data:`models.policy.GATE_DEFAULTS`).

Three kinds of rule, each a :class:`GateCheck` with its value, limit and evidence:

- **a fair comparison**: the window the two are compared on may not overlap any month the champion
  was fitted, stopped early or calibrated on (it would be judged on loans it learned from);
- **model quality**: the AUC drop against the champion judged on its paired DeLong interval (refused
  only when the whole interval lies beyond the tolerance: on a window of 60 defaults a point
  estimate moves by ±0.03 on noise alone); monotone constraints; the challenger's score and feature
  PSI from training to out of time; its ECE; its AUC above the benchmark scorecard's;
- **business impact**, champion → challenger on the same applicants: approval-rate change, mean-limit
  change and grade-mix shift. A bank sees these at once whatever the AUC says.

A challenger identical to the champion (the same bundle id) is not judged at all: there is nothing
to promote. :func:`judge` is pure: it changes nothing, so ``xyd promote --dry-run`` and the notebooks
show the whole verdict before anyone moves an alias.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models import metrics
from models.bundle import ModelBundle
from models.policy import GATE_DEFAULTS, GRADES
from models.train import monotonicity, policy_directions


@dataclass
class GateCheck:
    """One line of the promotion gate."""

    rule: str
    value: float
    limit: str
    holds: bool
    kind: str = "quality"  # "comparison", "quality" or "business"
    evidence: str = ""


@dataclass
class Verdict:
    """The gate's whole answer for one challenger against one champion on one window."""

    window: tuple[str, str]
    loans: int
    defaults: int
    checks: list[GateCheck]
    differences: pd.DataFrame = field(repr=False)
    business: pd.DataFrame = field(repr=False)
    tolerances: dict = field(default_factory=dict)
    identical: bool = False
    """The challenger is the champion's bundle: nothing else was judged, and nothing can be promoted."""

    @property
    def holds(self) -> bool:
        return all(c.holds for c in self.checks)

    @property
    def failed(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.holds]

    def table(self) -> pd.DataFrame:
        """The checks as a frame: what the notebooks and ``xyd promote`` show."""
        return pd.DataFrame([{"kind": c.kind, "rule": c.rule, "value": c.value, "limit": c.limit,
                              "holds": "yes" if c.holds else "NO", "evidence": c.evidence} for c in self.checks])

    def business_text(self) -> pd.DataFrame:
        """The business-impact table as a person reads it: shares in percent beside their counts,
        the limit in yuan, changes in points."""
        rows = []
        for row in self.business.itertuples(index=False):
            if row.measure == "mean limit (yuan)":
                rows.append((row.measure, f"¥{row.champion:,.0f}", f"¥{row.challenger:,.0f}", f"¥{row.change:+,.0f}"))
            else:
                rows.append((row.measure, f"{row.champion:.1%} ({row.champion_count:,})",
                             f"{row.challenger:.1%} ({row.challenger_count:,})", f"{row.change * 100:+.1f} points"))
        return pd.DataFrame(rows, columns=["measure", "champion", "challenger", "change"])

    def summary(self) -> str:
        """One sentence: what the gate says and why."""
        where = f"{self.loans:,} loans granted {self.window[0]}…{self.window[1]}, {self.defaults:,} defaults"
        if self.holds:
            return f"gate holds on {where}"
        return f"gate refuses on {where}: " + "; ".join(c.rule for c in self.failed)


def fitted_months(split: dict) -> dict[str, tuple[str, str]]:
    """The windows a bundle learned from (fitted, stopped early, calibrated), by name: a thin
    book's trees and calibration come from cross-validation on its training window alone."""
    return {name: tuple(split[name]) for name in ("train", "valid", "calib") if split.get(name) and split[name][0]}


def overlap(window: tuple[str, str], split: dict) -> dict[str, list[str]]:
    """Months of ``window`` (first and last YYYY-MM, inclusive) inside each window the bundle
    with ``split`` learned from; empty when the comparison is clean."""
    months = pd.period_range(window[0], window[1], freq="M")
    out = {}
    for name, (first, last) in fitted_months(split).items():
        inside = [str(m) for m in months if first <= str(m) <= last]
        if inside:
            out[name] = inside
    return out


def judge(challenger: ModelBundle, champion: ModelBundle | None, loans: pd.DataFrame, window: tuple[str, str],
          tolerances: dict | None = None, bootstrap_rounds: int = 500) -> Verdict:
    """The gate's verdict for ``challenger`` against ``champion`` (None: the first model, judged on
    its own) on labelled ``loans`` granted in ``window``. A challenger that is the champion's
    bundle is refused on that alone (:attr:`Verdict.identical`). Changes nothing."""
    limits = {**GATE_DEFAULTS, **(tolerances or {})}
    y = loans["defaulted"].to_numpy()
    if champion is not None and champion.meta.get("bundle_id") == challenger.meta.get("bundle_id"):
        same = GateCheck("challenger differs from the champion", 0.0, "another bundle", False, "comparison",
                         f"the challenger is identical to the champion (bundle {challenger.meta['bundle_id']}, "
                         f"version {champion.version}): the same data and settings retrain the same model; "
                         "nothing to promote")
        return Verdict(window, len(loans), int(y.sum()), [same], pd.DataFrame(), pd.DataFrame(), limits, identical=True)
    new = challenger.decide(loans, explain=False)
    own = challenger.meta.get("metrics", {})
    measured = metrics.summary(y, new.pd)
    checks: list[GateCheck] = []
    level = limits["confidence"]
    differences, business = pd.DataFrame(), pd.DataFrame()
    if champion is not None:
        old = champion.decide(loans, explain=False)
        found = overlap(window, champion.meta.get("split", {}))
        months = sorted({m for ms in found.values() for m in ms})
        learned = ", ".join(f"{name} {a}…{b}" for name, (a, b) in fitted_months(champion.meta.get("split", {})).items())
        checks.append(GateCheck(
            "comparison window outside every month the champion learned from", float(len(months)), "= 0 months",
            not months, "comparison",
            "; ".join(f"inside the champion's {name} window: {', '.join(ms)}" for name, ms in found.items())
            if found else f"champion learned from {learned}"))
        differences = paired_differences(y, old.pd, new.pd, level, bootstrap_rounds)
        checks.append(auc_check(differences, limits))
        business = _business(old, new)
        checks += _business_checks(business, limits)
    # held to the policy's directions, not to the constraints the challenger says it was given
    monotone = monotonicity(challenger.pd_model, loans.sample(min(300, len(loans)), random_state=0),
                            directions=policy_directions(challenger.policy))
    checks += own_checks(measured, own, monotone, limits)
    order = {"comparison": 0, "quality": 1, "business": 2}
    checks.sort(key=lambda c: order[c.kind])
    return Verdict(window, len(loans), int(y.sum()), checks, differences, business, limits)


def own_checks(measured: dict, trained: dict, monotone: dict[str, bool], tolerances: dict | None = None) -> list[GateCheck]:
    """The rules a challenger answers alone: every monotone constraint holding (``monotone``:
    feature → holds), the score's and the worst feature's PSI from training to out of time
    (``trained``: what training measured, ``psi_score``, ``psi_max_feature``, ``psi_worst_feature``,
    ``benchmark_auc``), the ECE and AUC on the comparison loans (``measured``) and that AUC above the
    benchmark scorecard's."""
    limits = {**GATE_DEFAULTS, **(tolerances or {})}
    broken = [name for name, holds in monotone.items() if not holds]
    checks = [GateCheck("monotone constraints hold", float(not broken), "= 1", not broken, "quality",
                        ", ".join(broken) if broken else f"{len(monotone)} constrained features")]
    if "psi_score" in trained:
        checks.append(GateCheck("score PSI, training → out of time", trained["psi_score"], f"< {limits['max_psi']}",
                                trained["psi_score"] < limits["max_psi"]))
    if "psi_max_feature" in trained:
        worst = trained.get("psi_worst_feature") or "any feature"
        checks.append(GateCheck(f"largest feature PSI, training → out of time ({worst})", trained["psi_max_feature"],
                                f"< {limits['max_feature_psi']}",
                                trained["psi_max_feature"] < limits["max_feature_psi"]))
    checks.append(GateCheck("ECE out of time", measured["ece"], f"≤ {limits['max_ece']}",
                            bool(measured["ece"] <= limits["max_ece"]), "quality",
                            f"{int(measured.get('loans', 0)):,} loans in deciles"))
    if trained.get("benchmark_auc") is not None:
        margin = measured["auc"] - trained["benchmark_auc"]
        checks.append(GateCheck("AUC above the benchmark scorecard's (same loans)", margin, "> 0", bool(margin > 0),
                                "quality", f"challenger {measured['auc']:.4f}, scorecard {trained['benchmark_auc']:.4f}"))
    return checks


def paired_differences(y, old_pd, new_pd, level: float = 0.95, rounds: int = 500) -> pd.DataFrame:
    """Challenger (``new_pd``) minus champion (``old_pd``) on the same loans: AUC by DeLong's paired
    test, KS and Brier by a paired bootstrap; each with its interval, p-value, loans and defaults.
    A bootstrap p-value is at least 1/``rounds``: it cannot show less."""
    rows = []
    auc = metrics.auc_difference(y, old_pd, new_pd, level)
    rows.append(("AUC", metrics.auc(y, old_pd), metrics.auc(y, new_pd), auc, "DeLong, paired"))
    for name, statistic in (("KS", metrics.ks), ("Brier", metrics.brier)):
        found = metrics.paired_bootstrap(y, old_pd, new_pd, statistic, rounds=rounds, level=level)
        found["p_value"] = max(found["p_value"], 1 / rounds)
        rows.append((name, statistic(y, old_pd), statistic(y, new_pd), found, f"bootstrap, paired, {rounds} rounds"))
    return pd.DataFrame([{"measure": name, "champion": a, "challenger": b, "change": d["value"], "low": d["low"],
                          "high": d["high"], "p_value": d["p_value"], "loans": int(d["loans"]),
                          "defaults": int(d["defaults"]), "method": method} for name, a, b, d, method in rows])


def auc_check(differences: pd.DataFrame, tolerances: dict | None = None) -> GateCheck:
    """The AUC rule on the paired interval of :func:`paired_differences`: refused only when the
    whole interval of the drop lies beyond ``max_auc_drop``; the evidence says when the window
    is too thin to rule a larger drop out."""
    limits = {**GATE_DEFAULTS, **(tolerances or {})}
    auc = differences.set_index("measure").loc["AUC"]
    drop, drop_low, drop_high = -auc["change"], -auc["high"], -auc["low"]
    return GateCheck(
        f"AUC drop against the champion, {limits['confidence']:.0%} paired interval (DeLong)", float(drop),
        f"interval not wholly above {limits['max_auc_drop']}", bool(drop_low <= limits["max_auc_drop"]), "quality",
        f"drop {drop:+.4f} ({drop_low:+.4f}…{drop_high:+.4f}), p = {auc['p_value']:.3f}, {int(auc['defaults'])} defaults"
        + (" — the window cannot rule out a larger drop" if drop_high > limits["max_auc_drop"] else ""))


def _business(old, new) -> pd.DataFrame:
    """Champion and challenger on the same applicants: approvals, mean limit, and each grade's share."""
    n = len(old.pd)
    rows = [{"measure": "approved", "champion": float(np.mean(old.decision == "approve")),
             "challenger": float(np.mean(new.decision == "approve")),
             "champion_count": int(np.sum(old.decision == "approve")),
             "challenger_count": int(np.sum(new.decision == "approve"))},
            {"measure": "mean limit (yuan)", "champion": float(np.mean(old.limit)), "challenger": float(np.mean(new.limit)),
             "champion_count": n, "challenger_count": n}]
    for grade in GRADES:
        rows.append({"measure": f"grade {grade}", "champion": float(np.mean(old.grade == grade)),
                     "challenger": float(np.mean(new.grade == grade)),
                     "champion_count": int(np.sum(old.grade == grade)), "challenger_count": int(np.sum(new.grade == grade))})
    table = pd.DataFrame(rows)
    table["change"] = table["challenger"] - table["champion"]
    return table


def _business_checks(table: pd.DataFrame, limits: dict) -> list[GateCheck]:
    rows = table.set_index("measure")
    approved = rows.loc["approved"]
    limit = rows.loc["mean limit (yuan)"]
    grades = rows.loc[[f"grade {g}" for g in GRADES]]
    relative = limit["change"] / limit["champion"] if limit["champion"] else (0.0 if not limit["change"] else np.inf)
    shift = float(grades["change"].abs().sum() / 2)  # total variation: the share that would have to move
    return [
        GateCheck("approval-rate change", float(approved["change"]), f"within ±{limits['max_approval_rate_change']:.0%}",
                  bool(abs(approved["change"]) <= limits["max_approval_rate_change"]), "business",
                  f"{approved['champion']:.1%} ({int(approved['champion_count']):,}) → "
                  f"{approved['challenger']:.1%} ({int(approved['challenger_count']):,})"),
        GateCheck("mean-limit change over the champion's", float(relative), f"within ±{limits['max_mean_limit_change']:.0%}",
                  bool(abs(relative) <= limits["max_mean_limit_change"]), "business",
                  f"¥{limit['champion']:,.0f} → ¥{limit['challenger']:,.0f}"),
        GateCheck("grade-mix shift (share of applicants that would change grade)", shift,
                  f"≤ {limits['max_grade_mix_shift']:.0%}", bool(shift <= limits["max_grade_mix_shift"]), "business",
                  " · ".join(f"{m.removeprefix('grade ')} {r['champion']:.0%}→{r['challenger']:.0%}"
                             for m, r in grades.iterrows())),
    ]
