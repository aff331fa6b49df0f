"""The model's validation report (models.report) as a page: a hand-built report, held to its golden
file (tests.golden), so a change to the page's words or layout is read as a diff."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from models.fairness import FairLending, PopulationFairness
from models.report import Report, render
from tests.golden import assert_golden, without_glyphs

GOLDEN_PAGE = Path(__file__).parent / "golden" / "model_report.html"
# a 1×1 PNG: the page embeds whatever the plots are, as they are
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8"
                      "cfc0f01f0005000201a1d3b10e0000000049454e44ae426082")


def hand_built(**changes) -> Report:
    """A small report of every section, with text that needs escaping where a person could type it."""
    tolerances = {"approval_ratio_floor": 0.8, "calibration_band": [0.5, 2.0], "min_group_loans": 30}
    groups = pd.DataFrame({"group": ["西陵区 <420502>", "伍家岗区"], "loans": [120, 12], "approval": [0.61, 0.5],
                           "approval_low": [0.52, 0.25], "default_high": [0.09, float("nan")]})
    report = Report(
        title=("信易贷预授信模型 tiny 验证报告", "Pre-credit model tiny: validation report"),
        headline={"auc": 0.7312, "ks": 0.3555, "brier": 0.041},
        windows={"feature_set_version": "fs-1 & co", "policy_version": "2026.12-4", "pd_trees": 120,
                 "capacity_trees": 80, "calibration": [-0.12, 1.01],
                 "split": {"train": ["2024-01", "2025-03"], "valid": ["2025-04", "2025-06"], "calib": ["", ""],
                           "evidence": ["valid holds 41 defaults <enough>"], "min_defaults": 30},
                 "loans": {"train": 3000, "valid": 600}, "defaults": {"train": 150, "valid": 41},
                 "stages": {"enterprise_months": 123456, "as_of": ["2024-01-31", "2025-06-30"], "distress_rate": 0.031,
                            "stage1_trees": 60, "link": [-1.2345, 0.9876], "events": {"court": 0.012, "tax": 0.02}}},
        calibration=pd.DataFrame({"decile": [1, 2], "mean_pd": [0.01, 0.2], "default_rate": [0.012, 0.19]}),
        psi=pd.DataFrame({"feature": ["a", "b", "c"], "psi": [0.01, 0.3, 0.1]}),
        fairness=FairLending({"district_code": groups, "firm_age_years": groups.head(1)},
                             ["district 伍家岗区: approval 0.50 × the best's <DISPARITY>"], tolerances),
        monotonicity={"tax_months_late_12m": True, "court_open_cases": False},
        plots={"ROC": PIXEL, "SHAP summary (log-odds of default)": PIXEL},
        benchmark=pd.DataFrame({"model": ["champion", "scorecard"], "approval": [0.7, 0.62]}),
        stages=pd.DataFrame({"stage": [1, 2], "auc": [0.7, 0.73]}),
        excluded=pd.DataFrame({"feature": ["tax_sales_24m"], "reason": ["before the lake's history"]}),
        population=PopulationFairness("2026-06-30", 12000, 0.4321, {"entity_type": groups}, []))
    for name, value in changes.items():
        setattr(report, name, value)
    return report


def test_the_report_of_a_hand_built_run_is_the_golden_page():
    assert_golden(without_glyphs(render(hand_built())), GOLDEN_PAGE)


def test_the_reports_optional_sections_say_what_is_missing():
    page = render(hand_built(benchmark=None, stages=None, population=None, excluded=pd.DataFrame(),
                             monotonicity={"tax_months_late_12m": True},
                             fairness=FairLending({}, [], hand_built().fairness.tolerances)))
    assert "Benchmark scorecard" not in page and "Two stages" not in page
    assert "none: every feature's window is covered" in page
    assert "holds for all 1 constrained features" in page and "BROKEN" not in page
    assert "<b>No finding</b>: every judged group is within tolerance." in page
    assert "No stored profile of this feature set" in page
    assert "<li>every window holds at least 30 defaults</li>" not in page  # the split's evidence is listed instead
    bare = hand_built()
    bare.windows = {**bare.windows, "split": {"train": ["2024-01", "2025-03"], "min_defaults": 30}}
    assert "<li>every window holds at least 30 defaults</li>" in render(bare)
