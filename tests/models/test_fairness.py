"""The fair-lending section: groups judged against the policy's tolerances, with intervals."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from models.fairness import fair_lending, firm_age_band, wilson
from models.policy import Policy


@given(st.integers(0, 5_000), st.integers(1, 5_000))
def test_the_wilson_interval_holds_the_share_and_stays_in_0_1(successes, total):
    successes = min(successes, total)
    low, high = wilson(successes, total)
    assert 0.0 <= low <= successes / total <= high <= 1.0


def _city(groups: dict[str, tuple[int, float, float, float]], seed: int = 0):
    """Loans of districts: name → (loans, true default rate, the model's PD, approval share)."""
    rng = np.random.default_rng(seed)
    frames, pds, decisions = [], [], []
    for district, (n, rate, pd_, approve) in groups.items():
        frames.append(pd.DataFrame({"district_code": district, "defaulted": rng.random(n) < rate,
                                    "firm_age_years": rng.uniform(0, 20, n)}))
        pds.append(np.full(n, pd_) * rng.uniform(0.9, 1.1, n))
        decisions.append(np.where(rng.random(n) < approve, "approve", "refer"))
    pd_ = np.concatenate(pds)
    return pd.concat(frames, ignore_index=True), SimpleNamespace(pd=pd_, decision=np.concatenate(decisions),
                                                                 limit=np.where(np.concatenate(decisions) == "approve", 100_000, 0))


def test_a_group_approved_less_at_the_same_risk_is_a_disparity_and_nothing_breaks_on_empty_groups():
    policy = Policy.load()
    frame, decisions = _city({"420502": (4_000, 0.02, 0.02, 0.7), "420503": (4_000, 0.02, 0.02, 0.3)}, seed=1)
    table = fair_lending(frame, decisions, policy).tables["district_code"]
    unequal = table.loc[table["group"].str.contains("420503"), "verdict"].iloc[0]
    assert unequal.startswith("DISPARITY: approval ratio") and "not explained by a higher risk" in unequal
    nobody, declined = _city({"420502": (400, 0.02, 0.02, 0.0), "420503": (400, 0.02, 0.02, 0.0)})
    assert set(fair_lending(nobody, declined, policy).tables["district_code"]["verdict"]) == {
        "no judged group is approved: no approval ratio"}
    empty = fair_lending(frame.iloc[:0], SimpleNamespace(pd=np.zeros(0), decision=np.zeros(0, dtype=object),
                                                         limit=np.zeros(0)), policy)
    assert empty.tables == {} and empty.findings == []


def test_a_group_the_model_under_charges_is_a_disparity_and_a_riskier_group_approved_less_is_justified():
    policy = Policy.load()
    frame, decisions = _city({"420502": (4_000, 0.02, 0.02, 0.7),    # calibrated, the best approval
                              "420503": (4_000, 0.08, 0.02, 0.7),    # four times riskier than its PDs say
                              "420504": (4_000, 0.06, 0.06, 0.3),    # riskier, approved less, calibrated
                              "420505": (50, 0.5, 0.01, 0.1)})       # too few loans to judge
    result = fair_lending(frame, decisions, policy)
    table = result.tables["district_code"].set_index("group")
    verdict = {code: next(v for g, v in table["verdict"].items() if code in g) for code in ("420502", "420503", "420504", "420505")}
    assert verdict["420502"] == "within tolerance"
    assert verdict["420503"].startswith("DISPARITY: risk under-predicted")
    assert verdict["420504"].startswith("approval ratio") and "justified by risk" in verdict["420504"]
    assert verdict["420505"].startswith("too few to judge")
    assert len(result.findings) == 2 and not any("420502" in f for f in result.findings)
    assert (table["default_low"] <= table["default_rate"]).all() and (table["default_rate"] <= table["default_high"]).all()
    assert "firm_age_years" in result.tables and set(result.tables["firm_age_years"]["group"]) <= set(
        firm_age_band(pd.Series([0.5, 2, 4, 7, 15])))


def test_fair_lending_on_the_whole_list_decomposes_each_gap_and_finds_an_uncalibrated_disparity(trained, model_home):
    """Every enterprise of the list, not only borrowers: per group the approval rate holds its
    interval, and each group's gap to the whole list is exactly its behaviour part plus its
    firmographic part; a group approved below the ratio whose loans are not calibrated is a finding."""
    import datetime as dt

    from features.profile.build import build
    from models.fairness import population_fairness

    bundle = trained.bundle
    profile = build(model_home, dt.date(2026, 6, 30)).profile
    result = population_fairness(bundle, profile, "2026-06-30")
    assert result.enterprises == len(profile)
    assert set(result.tables) == {"district_code", "industry_section", "entity_type"}
    for table in result.tables.values():
        assert table["enterprises"].sum() == len(profile)
        assert (table["approval_low"] <= table["approval_rate"]).all() and (table["approval_rate"] <= table["approval_high"]).all()
        np.testing.assert_allclose(table["log_odds_gap"], table["of_which_behaviour"] + table["of_which_firmographic"])
    kinds = result.tables["entity_type"]
    assert "个体工商户" in " ".join(kinds["group"])  # groups by name
    # a group's loans reported as not calibrated, with a low approval, is a finding
    worst = kinds.sort_values("approval_rate").iloc[0]["group"]
    loans = SimpleNamespace(tables={"entity_type": pd.DataFrame([{
        "group": worst, "loans": 400, "default_rate": 0.10, "default_low": 0.08, "default_high": 0.13, "mean_pd": 0.02,
        "verdict": "DISPARITY: risk under-predicted (observed 10.00% [8.00%, 13.00%] against PD 2.00%)"}])})
    judged = population_fairness(bundle, profile, "2026-06-30", loans, min_group=1)
    ratio = judged.tables["entity_type"].set_index("group").loc[worst, "approval_ratio"]
    assert ratio < bundle.policy.fair_lending["approval_ratio_floor"], "the test city approves its kinds unequally"
    assert any(worst in f and "not calibrated" in f for f in judged.findings)
