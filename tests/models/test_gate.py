"""The promotion gate as an analyst relies on it: each refusal triggered by a crafted challenger
(an overlapping window, an identical bundle, a business change the AUC does not see, an AUC drop
beyond its interval), noise not deciding, and a dry run that changes nothing."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import tracking
from models.bundle import ModelBundle
from models.gate import auc_check, judge, overlap, paired_differences
from models.policy import Policy
from models.run import SameAsChampion, comparison_loans, promote, train_challenger
from tests.conftest import MODEL_SPLIT
from tests.models.test_monitoring import EARLIER, lake_as_of, reported_monthly


def _scores(defaults: int, goods: int, separation: float, seed: int):
    """Labels and a score that ranks them with roughly the given separation."""
    generator = np.random.default_rng(seed)
    y = np.r_[np.ones(defaults), np.zeros(goods)]
    return y, generator.normal(size=len(y)) + separation * y, generator


def test_noise_on_a_thin_window_does_not_refuse_a_challenger():
    # 60 defaults, as in the window that refused a challenger on AUC -0.006 while everything else improved
    y, champion, generator = _scores(60, 3_000, 1.2, seed=1)
    challenger = champion + generator.normal(scale=0.25, size=len(y))
    differences = paired_differences(y, 1 / (1 + np.exp(-champion)), 1 / (1 + np.exp(-challenger)), rounds=200)
    auc = differences.set_index("measure").loc["AUC"]
    assert -0.02 < auc["change"] < 0 and auc["low"] < -0.005 < auc["high"]
    check = auc_check(differences)
    assert check.holds and "cannot rule out a larger drop" in check.evidence and "60 defaults" in check.evidence
    assert set(differences["measure"]) == {"AUC", "KS", "Brier"}
    assert (differences["low"] <= differences["change"]).all() and (differences["change"] <= differences["high"]).all()


def test_a_real_drop_on_a_thick_window_is_refused():
    y, champion, generator = _scores(2_000, 20_000, 1.2, seed=2)
    worse = champion + generator.normal(scale=0.9, size=len(y))  # much noisier ranking: AUC about 0.05 lower
    check = auc_check(paired_differences(y, champion, worse, rounds=100))
    assert not check.holds and check.value > 0.02


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 80), st.floats(0.0, 2.0), st.integers(0, 10_000))
def test_the_paired_auc_interval_holds_the_point_and_shrinks_to_nothing_for_the_same_model(defaults, separation, seed):
    y, champion, generator = _scores(defaults, 400, separation, seed)
    other = champion + generator.normal(scale=0.5, size=len(y))
    differences = paired_differences(y, champion, other, rounds=50).set_index("measure")
    assert differences.loc["AUC", "low"] <= differences.loc["AUC", "change"] <= differences.loc["AUC", "high"]
    same = paired_differences(y, champion, champion, rounds=50).set_index("measure")
    assert same.loc["AUC", "change"] == 0 and same.loc["AUC", "low"] == same.loc["AUC", "high"] == 0
    assert auc_check(paired_differences(y, champion, champion, rounds=50)).holds


def test_overlap_names_the_months_the_champion_learned_from():
    split = {"train": ["2024-01", "2024-12"], "valid": ["2025-01", "2025-02"], "calib": ["2025-03", "2025-04"],
             "oot": ["2025-05", "2025-06"]}
    assert overlap(("2025-05", "2025-06"), split) == {}
    assert overlap(("2025-02", "2025-06"), split) == {"valid": ["2025-02"], "calib": ["2025-03", "2025-04"]}
    thin = {"train": ["2024-01", "2024-12"], "valid": ["", ""], "calib": ["", ""], "oot": ["2025-01", "2025-02"]}
    assert overlap(("2024-12", "2025-01"), thin) == {"train": ["2024-12"]}


@pytest.fixture(scope="module")
def stricter(trained, tmp_path_factory):
    """The trained model under a policy that refers grade B instead of approving it: the same
    ranking, so the same AUC, and a large business change (a real bundle, saved and reloaded)."""
    folder = tmp_path_factory.mktemp("stricter")
    text = open(trained.bundle.policy.source, encoding="utf-8").read()
    text = text.replace('B = "approve"', 'B = "refer"').replace('version = "', 'version = "stricter-', 1)
    (folder / "policy.toml").write_text(text, "utf-8")
    bundle = ModelBundle(trained.bundle.pd_model, trained.bundle.capacity_model, Policy.load(folder / "policy.toml"),
                         json.loads(json.dumps(trained.bundle.meta, default=str)), trained.bundle.reference)
    saved = ModelBundle.load(bundle.save(folder / "bundle"))
    saved.folder = folder / "bundle"
    return saved


def test_a_business_change_the_auc_cannot_see_is_refused(trained, stricter, model_home):
    window = tuple(trained.bundle.meta["split"]["oot"])
    loans = comparison_loans(model_home, window)
    verdict = judge(stricter, trained.bundle, loans, window, trained.bundle.policy.gate, bootstrap_rounds=100)
    by_rule = {c.rule: c for c in verdict.checks}
    assert by_rule["AUC drop against the champion, 95% paired interval (DeLong)"].holds  # the same ranking
    approval = by_rule["approval-rate change"]
    assert not approval.holds and approval.kind == "business" and approval.value < -0.05
    assert "→" in approval.evidence and "(" in approval.evidence  # rates with their counts
    assert not verdict.holds and "approval-rate change" in verdict.summary()
    business = verdict.business.set_index("measure")
    assert business.loc["approved", "challenger_count"] < business.loc["approved", "champion_count"]
    assert business.loc[[f"grade {g}" for g in "ABCDE"], "change"].abs().sum() == pytest.approx(0, abs=1e-12)


def test_a_window_inside_the_champions_fitted_months_is_refused(trained, stricter, model_home):
    first, last = trained.bundle.meta["split"]["train"]
    loans = comparison_loans(model_home, (first, last))
    verdict = judge(stricter, trained.bundle, loans, (first, last), bootstrap_rounds=50)
    check = verdict.checks[0]
    assert check.kind == "comparison" and not check.holds and first in check.evidence and "train" in check.evidence


def test_an_identical_challenger_is_not_judged(trained, model_home):
    window = tuple(trained.bundle.meta["split"]["oot"])
    verdict = judge(trained.bundle, trained.bundle, comparison_loans(model_home, window), window)
    assert verdict.identical and not verdict.holds and len(verdict.checks) == 1
    assert "identical to the champion" in verdict.checks[0].evidence
    assert "challenger differs from the champion" in verdict.summary()


def test_exploring_changes_nothing_in_the_registry_and_never_overwrites_a_report(trained, model_home, tracking_store):
    client = tracking.client()
    before = _registry(client)
    explored = train_challenger(model_home, split_months=MODEL_SPLIT, register=False, experiment=tracking.EXPLORATION,
                                tags={"notebook": "02_retrain", "oot_months": "None"})
    assert explored.version is None and _registry(client) == before
    run = mlflow.get_run(explored.run_id)
    assert client.get_experiment(run.info.experiment_id).name == tracking.EXPLORATION
    assert run.data.tags["notebook"] == "02_retrain"
    # the same data and settings retrain the same bundle: its report is a new file, the first one stays
    assert explored.bundle.meta["bundle_id"] == trained.bundle.meta["bundle_id"]
    assert explored.report_path != trained.report_path and trained.report_path.exists()
    with pytest.raises(ValueError, match="not registered"):
        tracking.log_training(explored.bundle, explored.bundle_dir, explored.evaluation.frame, {}, {}, {},
                              register=True, experiment=tracking.EXPLORATION)


def _registry(client) -> list:
    """Every registered version with its aliases and tags: what a dry run must leave as it was."""
    return sorted((v.version, tuple(sorted(v.aliases)), tuple(sorted(v.tags.items())))
                  for v in client.search_model_versions(f"name='{tracking.MODEL_NAME}'"))


@pytest.fixture
def private_store(tmp_path, monkeypatch):
    """An MLflow store of this test's own: registry versions and aliases it alone moves."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return tmp_path


def _register(bundle: ModelBundle, folder, frame) -> str:
    return tracking.log_training(bundle, folder, frame, {}, {}, {})[1]


def test_identical_refused_dry_run_changes_nothing_and_force_is_logged(trained, stricter, model_home, private_store):
    cache = private_store / "cache"
    frame = trained.evaluation.frame
    first = _register(trained.bundle, trained.bundle_dir, frame)
    tracking.set_alias(tracking.CHAMPION, first, {"promotion_reason": "test: the first model"})
    # the same bundle again, as a retrain on the same data would give: no second version, and nothing to promote
    assert _register(trained.bundle, trained.bundle_dir, frame) == first
    with pytest.raises(SameAsChampion, match="already the champion"):
        promote(model_home, cache=cache)

    _register(stricter, stricter.folder, frame)
    client = tracking.client()
    log = model_home / "reports" / "promotions.jsonl"
    log_before = log.read_text("utf-8") if log.exists() else ""
    before = _registry(client)
    dry = promote(model_home, dry_run=True, cache=cache)
    assert dry.dry_run and not dry.promoted and not dry.verdict.holds
    assert "approval-rate change" in [c.rule for c in dry.verdict.failed]
    assert _registry(client) == before and (log.read_text("utf-8") if log.exists() else "") == log_before

    refused = promote(model_home, cache=cache)
    assert not refused.promoted and tracking.version_for(tracking.CHAMPION) == first
    forced = promote(model_home, force=True, reason="test: the bank asked for stricter approvals", cache=cache)
    assert forced.promoted and forced.forced and tracking.version_for(tracking.CHAMPION) == forced.challenger_version
    logged = json.loads(log.read_text("utf-8").splitlines()[-1])
    assert logged["forced"] and logged["defaults"] == forced.verdict.defaults
    assert any(c["kind"] == "business" and not c["holds"] for c in logged["checks"])


@pytest.fixture(scope="module")
def lakes_on_an_earlier_day(model_home, model_city, tmp_path_factory):
    """The model city's lake with the banks' report of :data:`EARLIER`, and that lake cut to that day."""
    whole = reported_monthly(model_home, model_city, EARLIER, tmp_path_factory.mktemp("whole-lake"))
    return whole, lake_as_of(whole, EARLIER, tmp_path_factory.mktemp("lake-as-of"))


def test_the_gate_on_the_lake_of_an_earlier_day_judges_only_loans_matured_and_known_by_then(
        trained, stricter, lakes_on_an_earlier_day):
    """Promise: the gate run on the lake as it stood on an earlier day sees only what was known that
    day. Its comparison loans are the out-of-time loans matured (12 months old) by then, with their
    profiles at grant and their outcomes as reported then: the same loans and values as today's lake
    holds for them; and so its decision, every check with its value and evidence, the paired
    differences and the business impact are what the same gate says on those loans from today's lake.
    A loan still young on that day, a default reported early on it, or a record reported later,
    must not move a figure."""
    whole, cut = lakes_on_an_earlier_day
    window = tuple(trained.bundle.meta["split"]["oot"])
    then = comparison_loans(cut, window)
    now = comparison_loans(whole, window)
    known = now[now["grant_date"] + pd.DateOffset(months=12) <= pd.Timestamp(EARLIER)].reset_index(drop=True)
    assert 0 < len(known) < len(now) and known["defaulted"].nunique() == 2  # the day cuts the window
    columns = ["loan_no", "grant_date", "defaulted", *trained.bundle.features]
    pd.testing.assert_frame_equal(then[columns], known[columns])
    on_that_day, from_today = (judge(stricter, trained.bundle, loans, window, trained.bundle.policy.gate,
                                     bootstrap_rounds=50) for loans in (then, known))
    assert (on_that_day.holds, on_that_day.loans, on_that_day.defaults, on_that_day.summary()) == \
        (from_today.holds, from_today.loans, from_today.defaults, from_today.summary())
    pd.testing.assert_frame_equal(on_that_day.table(), from_today.table())
    pd.testing.assert_frame_equal(on_that_day.differences, from_today.differences)
    pd.testing.assert_frame_equal(on_that_day.business, from_today.business)


# ---------------------------------------------------------------- the gate's rules on hand-built inputs
# Fast: no trained model. A stand-in bundle answers ``decide`` with fixed arrays, so that each rule can
# be driven exactly to its limit.

from types import SimpleNamespace  # noqa: E402

from models.gate import (GateCheck, Verdict, _business, _business_checks, fitted_months,  # noqa: E402
                         own_checks)
from models.metrics import auc_difference as metrics_auc_difference  # noqa: E402
from models.metrics import brier, ks  # noqa: E402
from models.policy import GATE_DEFAULTS, GRADES  # noqa: E402

EXACT = {"max_auc_drop": 0.25, "max_psi": 0.25, "max_feature_psi": 0.5, "max_ece": 0.125,
         "max_approval_rate_change": 0.25, "max_mean_limit_change": 0.5, "max_grade_mix_shift": 0.25,
         "confidence": 0.95}
"""Tolerances that are exact binary fractions, so that a value can sit exactly on its limit."""


class _Unconstrained:
    """A PD model with no constrained feature: the monotone sweep has nothing to move."""

    feature_names_in_: list = []
    monotone_: dict = {}

    def matrix(self, sample):
        return np.empty((len(sample), 0))


class _NoDirections:
    def monotone(self, feature):
        return 0


class _Stand:
    """A bundle that decides ``loans`` with fixed arrays (one value per loan, in order)."""

    def __init__(self, pd_, grade="B", decision="approve", limit=100_000.0, bundle_id="b", metrics=None,
                 split=None, version="1"):
        n = len(pd_)
        self.pd_ = np.asarray(pd_, dtype=float)
        self.grade = np.asarray(grade if not isinstance(grade, str) else [grade] * n, dtype=object)
        self.decision = np.asarray(decision if not isinstance(decision, str) else [decision] * n, dtype=object)
        self.limit = np.asarray(limit if np.ndim(limit) else [limit] * n, dtype=float)
        self.meta = {"bundle_id": bundle_id, "metrics": metrics or {}, "split": split or {}}
        self.version = version
        self.pd_model = _Unconstrained()
        self.policy = _NoDirections()
        self.decided = 0

    def decide(self, loans, explain=True):
        assert len(loans) == len(self.pd_) and explain is False
        self.decided += 1
        return SimpleNamespace(pd=self.pd_, score=600 - 50 * np.log(self.pd_), grade=self.grade,
                               decision=self.decision, limit=self.limit)


def _window_loans(defaults: int = 40, goods: int = 360, seed: int = 3):
    """Labelled loans and a PD that ranks them well and is calibrated on the whole."""
    generator = np.random.default_rng(seed)
    y = np.r_[np.ones(defaults, dtype=int), np.zeros(goods, dtype=int)]
    margin = generator.normal(size=len(y)) + 1.5 * y - 2.6
    return pd.DataFrame({"defaulted": y, "x": generator.normal(size=len(y))}), 1 / (1 + np.exp(-margin))


SPLIT = {"train": ["2024-01", "2024-12"], "valid": ["2025-01", "2025-02"], "calib": ["", ""],
         "oot": ["2025-05", "2025-06"]}


def test_a_challenger_with_the_champions_bundle_id_is_refused_without_being_judged():
    loans, p = _window_loans()
    champion = _Stand(p, bundle_id="same", version="7")
    challenger = _Stand(p, bundle_id="same")
    verdict = judge(challenger, champion, loans, ("2025-05", "2025-06"), {"max_ece": 0.5})
    assert verdict.identical and not verdict.holds and challenger.decided == champion.decided == 0
    assert [(c.rule, c.value, c.limit, c.kind, c.holds) for c in verdict.checks] == \
        [("challenger differs from the champion", 0.0, "another bundle", "comparison", False)]
    assert "bundle same" in verdict.checks[0].evidence and "version 7" in verdict.checks[0].evidence
    assert (verdict.loans, verdict.defaults, verdict.window) == (400, 40, ("2025-05", "2025-06"))
    assert verdict.tolerances == {**GATE_DEFAULTS, "max_ece": 0.5}
    assert verdict.differences.empty and verdict.business.empty
    # any other bundle is judged, whichever way the two ids sort
    for champion_id, challenger_id in (("a1", "b2"), ("b2", "a1")):
        judged = judge(_Stand(p, bundle_id=challenger_id), _Stand(p, bundle_id=champion_id), loans,
                       ("2025-05", "2025-06"), {"max_ece": 0.5}, bootstrap_rounds=20)
        assert not judged.identical and "challenger differs from the champion" not in [c.rule for c in judged.checks]


def test_the_first_model_is_judged_on_its_own_rules_alone():
    loans, p = _window_loans()
    first = _Stand(p, metrics={"psi_score": 0.01, "benchmark_auc": 0.5})
    verdict = judge(first, None, loans, ("2025-05", "2025-06"), {"max_ece": 0.5}, bootstrap_rounds=20)
    assert not verdict.identical and verdict.holds, verdict.table()
    assert {c.kind for c in verdict.checks} == {"quality"}
    assert [c.rule for c in verdict.checks] == ["monotone constraints hold", "score PSI, training → out of time",
                                                "ECE out of time", "AUC above the benchmark scorecard's (same loans)"]
    assert verdict.differences.empty and verdict.business.empty
    assert (verdict.loans, verdict.defaults) == (400, 40)
    assert verdict.summary() == "gate holds on 400 loans granted 2025-05…2025-06, 40 defaults"


def test_a_challenger_that_ranks_as_well_and_changes_no_decision_passes_every_check_in_order():
    loans, p = _window_loans()
    champion = _Stand(p, bundle_id="old", split=SPLIT)
    challenger = _Stand(p * 0.999, bundle_id="new", metrics={"psi_score": 0.02, "psi_max_feature": 0.1,
                                                             "benchmark_auc": 0.55})
    verdict = judge(challenger, champion, loans, ("2025-05", "2025-06"), {"max_ece": 0.5})
    assert verdict.holds and verdict.failed == [], verdict.table()
    assert list(verdict.differences["method"])[1:] == ["bootstrap, paired, 500 rounds"] * 2  # by default
    kinds = [c.kind for c in verdict.checks]
    assert kinds == ["comparison"] + ["quality"] * 6 + ["business"] * 3
    comparison = verdict.checks[0]
    assert comparison.value == 0.0 and comparison.evidence == \
        "champion learned from train 2024-01…2024-12, valid 2025-01…2025-02"
    assert list(verdict.differences["measure"]) == ["AUC", "KS", "Brier"]
    assert verdict.business.set_index("measure").loc["approved", "change"] == 0
    assert champion.decided == 1 and challenger.decided == 1
    table = verdict.table()
    assert list(table.columns) == ["kind", "rule", "value", "limit", "holds", "evidence"]
    assert set(table["holds"]) == {"yes"}


def test_a_comparison_window_inside_the_champions_fitted_months_is_refused_and_the_months_named():
    loans, p = _window_loans()
    champion = _Stand(p, bundle_id="old", split=SPLIT)
    challenger = _Stand(p, bundle_id="new")
    verdict = judge(challenger, champion, loans, ("2025-02", "2025-04"), {"max_ece": 0.5}, bootstrap_rounds=20)
    comparison = verdict.checks[0]
    assert comparison.rule == "comparison window outside every month the champion learned from"
    assert not comparison.holds and comparison.value == 1.0 and comparison.kind == "comparison"
    assert comparison.evidence == "inside the champion's valid window: 2025-02"
    assert verdict.failed == [comparison] and not verdict.holds
    assert verdict.summary() == ("gate refuses on 400 loans granted 2025-02…2025-04, 40 defaults: "
                                 "comparison window outside every month the champion learned from")
    two = judge(challenger, champion, loans, ("2024-12", "2025-01"), {"max_ece": 0.5}, bootstrap_rounds=20)
    assert two.checks[0].value == 2.0 and two.checks[0].evidence == \
        "inside the champion's train window: 2024-12; inside the champion's valid window: 2025-01"


def test_the_challenger_is_held_to_the_policys_directions_not_to_its_own():
    class Rising:
        """PD rises with ``x``; the model says it was constrained to nothing."""

        feature_names_in_ = ["x"]
        monotone_ = {}

        def matrix(self, sample):
            return sample[self.feature_names_in_].to_numpy(dtype=float)

        def raw(self, matrix):
            return matrix[:, 0]

        def calibrated_log_odds(self, raw, matrix):
            return raw

    class Falling:
        def monotone(self, feature):
            return -1 if feature.name == "tax_sales_12m" else 0

    loans, p = _window_loans()
    loans = loans.rename(columns={"x": "tax_sales_12m"})
    challenger = _Stand(p)
    challenger.pd_model = Rising()
    challenger.pd_model.feature_names_in_ = ["tax_sales_12m"]
    challenger.policy = Falling()
    monotone = next(c for c in judge(challenger, None, loans, ("2025-05", "2025-06"), {"max_ece": 0.5}).checks
                    if c.rule == "monotone constraints hold")
    assert not monotone.holds and monotone.value == 0.0 and monotone.evidence == "tax_sales_12m"


def test_the_verdict_holds_only_when_every_check_holds_and_says_which_failed():
    good = GateCheck("a", 0.0, "= 0", True)
    bad = GateCheck("b", 1.0, "= 0", False, "business", "why")
    worse = GateCheck("c", 2.0, "= 0", False)
    verdict = Verdict(("2025-01", "2025-03"), 1_234, 56, [good, bad, worse], pd.DataFrame(), pd.DataFrame())
    assert not verdict.holds and verdict.failed == [bad, worse]
    assert verdict.summary() == "gate refuses on 1,234 loans granted 2025-01…2025-03, 56 defaults: b; c"
    assert Verdict(("2025-01", "2025-03"), 10, 1, [good], pd.DataFrame(), pd.DataFrame()).holds
    table = verdict.table()
    assert list(table["holds"]) == ["yes", "NO", "NO"] and list(table["kind"]) == ["quality", "business", "quality"]
    assert table.loc[1, "evidence"] == "why"


def test_business_impact_counts_the_same_applicants_under_both_models():
    old = SimpleNamespace(pd=np.zeros(4), decision=np.array(["approve", "approve", "refer", "decline"]),
                          limit=np.array([100_000.0, 200_000.0, 0.0, 0.0]), grade=np.array(["A", "B", "C", "E"]))
    new = SimpleNamespace(pd=np.zeros(4), decision=np.array(["approve", "refer", "refer", "decline"]),
                          limit=np.array([100_000.0, 0.0, 0.0, 0.0]), grade=np.array(["A", "C", "C", "E"]))
    table = _business(old, new).set_index("measure")
    assert list(table.index) == ["approved", "mean limit (yuan)", *(f"grade {g}" for g in GRADES)]
    assert table.loc["approved", ["champion", "challenger", "change"]].tolist() == [0.5, 0.25, -0.25]
    assert table.loc["approved", ["champion_count", "challenger_count"]].tolist() == [2, 1]
    mostly = SimpleNamespace(**{**vars(old), "decision": np.array(["approve", "approve", "approve", "refer"])})
    assert _business(mostly, new).set_index("measure").loc["approved", "champion_count"] == 3
    assert table.loc["mean limit (yuan)", ["champion", "challenger", "change"]].tolist() == [75_000, 25_000, -50_000]
    assert table.loc["mean limit (yuan)", ["champion_count", "challenger_count"]].tolist() == [4, 4]
    assert table.loc["grade B", ["champion", "challenger", "champion_count", "challenger_count"]].tolist() == \
        [0.25, 0, 1, 0]
    assert table.loc["grade C", ["champion", "challenger", "champion_count", "challenger_count"]].tolist() == \
        [0.25, 0.5, 1, 2]
    assert table.loc["grade D", "change"] == 0
    verdict = Verdict(("a", "b"), 4, 0, [], pd.DataFrame(), _business(old, new))
    text = verdict.business_text().set_index("measure")
    assert text.loc["approved"].tolist() == ["50.0% (2)", "25.0% (1)", "-25.0 points"]
    assert text.loc["mean limit (yuan)"].tolist() == ["¥75,000", "¥25,000", "¥-50,000"]
    assert text.loc["grade C"].tolist() == ["25.0% (1)", "50.0% (2)", "+25.0 points"]


def _impact(approved=(0.5, 0.5), limit=(1_000.0, 1_000.0), grades=None):
    """A business table as :func:`_business` writes it, with the changes given exactly."""
    grades = grades or {g: (0.2, 0.2) for g in GRADES}
    rows = [("approved", *approved), ("mean limit (yuan)", *limit),
            *((f"grade {g}", *grades[g]) for g in GRADES)]
    table = pd.DataFrame(rows, columns=["measure", "champion", "challenger"])
    table["champion_count"] = table["challenger_count"] = 10
    table["change"] = table["challenger"] - table["champion"]
    return table


def _business_holds(table, limits=EXACT):
    return {c.rule.split(" (")[0]: (c.holds, c.value) for c in _business_checks(table, limits)}


def test_an_approval_rate_change_exactly_at_its_tolerance_passes_and_beyond_it_is_refused_either_way():
    rule = "approval-rate change"
    assert _business_holds(_impact(approved=(0.5, 0.75)))[rule] == (True, 0.25)
    assert _business_holds(_impact(approved=(0.5, 0.25)))[rule] == (True, -0.25)
    assert _business_holds(_impact(approved=(0.5, 0.875)))[rule] == (False, 0.375)
    assert _business_holds(_impact(approved=(0.5, 0.125)))[rule] == (False, -0.375)
    checks = {c.rule: c for c in _business_checks(_impact(approved=(0.5, 0.125)), EXACT)}
    assert checks[rule].kind == "business" and checks[rule].limit == "within ±25%"
    assert checks[rule].evidence == "50.0% (10) → 12.5% (10)"


def test_a_mean_limit_change_is_judged_relative_to_the_champions_limit():
    rule = "mean-limit change over the champion's"
    assert _business_holds(_impact(limit=(1_000.0, 1_500.0)))[rule] == (True, 0.5)
    assert _business_holds(_impact(limit=(1_000.0, 500.0)))[rule] == (True, -0.5)
    assert _business_holds(_impact(limit=(1_000.0, 1_625.0)))[rule] == (False, 0.625)
    assert _business_holds(_impact(limit=(1_000.0, 375.0)))[rule] == (False, -0.625)
    # a champion that lent nothing: no change is no change, any limit at all is an unbounded change
    assert _business_holds(_impact(limit=(0.0, 0.0)))[rule] == (True, 0.0)
    assert _business_holds(_impact(limit=(0.0, 10.0)))[rule] == (False, np.inf)
    check = {c.rule: c for c in _business_checks(_impact(limit=(1_000.0, 1_500.0)), EXACT)}[rule]
    assert check.evidence == "¥1,000 → ¥1,500" and check.limit == "within ±50%"


def test_the_grade_mix_shift_is_the_share_of_applicants_that_would_change_grade():
    rule = "grade-mix shift"
    moved = {**{g: (0.2, 0.2) for g in GRADES}, "A": (0.2, 0.45), "E": (0.2, -0.05)}
    assert _business_holds(_impact(grades=moved))[rule] == (True, 0.25)
    further = {**moved, "A": (0.2, 0.575), "E": (0.2, -0.175)}
    assert _business_holds(_impact(grades=further))[rule] == (False, 0.375)
    check = {c.rule.split(" (")[0]: c for c in _business_checks(_impact(grades=moved), EXACT)}[rule]
    assert check.limit == "≤ 25%" and check.evidence.startswith("A 20%→45% · B 20%→20%")
    unmoved = _business_holds(_impact(), GATE_DEFAULTS)
    assert all(holds for holds, _ in unmoved.values()) and unmoved[rule] == (True, 0.0)


def _measured(**change):
    return {"auc": 0.75, "ece": 0.0625, "loans": 1_234, **change}


def _trained(**change):
    return {"psi_score": 0.125, "psi_max_feature": 0.125, "psi_worst_feature": "tax_sales_12m",
            "benchmark_auc": 0.625, **change}


def _own(measured, trained, monotone=None, limits=EXACT):
    return {c.rule.split(",")[0].split(" (")[0]: c for c in own_checks(measured, trained, monotone or {}, limits)}


def test_a_challenger_within_every_own_limit_passes_each_own_check():
    checks = _own(_measured(), _trained(), {"tax_sales_12m": True, "debt_ratio": True})
    assert list(checks) == ["monotone constraints hold", "score PSI", "largest feature PSI", "ECE out of time",
                            "AUC above the benchmark scorecard's"]
    assert all(c.holds for c in checks.values())
    assert checks["monotone constraints hold"].value == 1.0
    assert checks["monotone constraints hold"].evidence == "2 constrained features"
    assert checks["ECE out of time"].evidence == "1,234 loans in deciles"
    assert checks["AUC above the benchmark scorecard's"].value == 0.125
    assert checks["AUC above the benchmark scorecard's"].evidence == "challenger 0.7500, scorecard 0.6250"
    assert checks["largest feature PSI"].rule.endswith("(tax_sales_12m)")


def test_a_psi_exactly_at_its_limit_is_refused_but_an_ece_exactly_at_its_limit_passes():
    assert not _own(_measured(), _trained(psi_score=0.25))["score PSI"].holds  # < max_psi
    assert not _own(_measured(), _trained(psi_score=0.4))["score PSI"].holds  # well above it, too
    assert _own(_measured(), _trained(psi_score=0.2499))["score PSI"].holds
    assert not _own(_measured(), _trained(psi_max_feature=0.5))["largest feature PSI"].holds  # < max_feature_psi
    assert _own(_measured(), _trained(psi_max_feature=0.4999))["largest feature PSI"].holds
    assert _own(_measured(ece=0.125), _trained())["ECE out of time"].holds  # ≤ max_ece
    assert not _own(_measured(ece=0.1251), _trained())["ECE out of time"].holds
    checks = _own(_measured(), _trained())
    assert (checks["score PSI"].limit, checks["largest feature PSI"].limit, checks["ECE out of time"].limit) == \
        ("< 0.25", "< 0.5", "≤ 0.125")


def test_a_challenger_no_better_than_the_scorecard_is_refused():
    assert not _own(_measured(auc=0.625), _trained())["AUC above the benchmark scorecard's"].holds
    assert not _own(_measured(auc=0.6), _trained())["AUC above the benchmark scorecard's"].holds
    assert _own(_measured(auc=0.626), _trained())["AUC above the benchmark scorecard's"].holds


def test_a_broken_constraint_is_refused_and_named():
    checks = _own(_measured(), _trained(), {"tax_sales_12m": True, "debt_ratio": False, "court_open_cases": False})
    monotone = checks["monotone constraints hold"]
    assert not monotone.holds and monotone.value == 0.0 and monotone.evidence == "debt_ratio, court_open_cases"
    assert [c.holds for name, c in checks.items() if name != "monotone constraints hold"] == [True] * 4


def test_what_training_did_not_measure_is_not_judged_and_a_nameless_worst_feature_is_any_feature():
    checks = own_checks(_measured(), {}, {}, EXACT)
    assert [c.rule for c in checks] == ["monotone constraints hold", "ECE out of time"]
    assert [c.rule for c in own_checks(_measured(), {"benchmark_auc": None}, {})] == [c.rule for c in checks]
    nameless = _own(_measured(), _trained(psi_worst_feature=None))["largest feature PSI"]
    assert nameless.rule == "largest feature PSI, training → out of time (any feature)"
    assert own_checks(_measured(ece=0.03), {}, {})[-1].holds is False  # GATE_DEFAULTS when no tolerances given
    assert own_checks(_measured(ece=0.02), {}, {})[-1].holds is True


def _auc_row(change, low, high, p_value=0.2, defaults=60):
    return pd.DataFrame([{"measure": "KS", "change": 0.5, "low": 0.4, "high": 0.6, "p_value": 0.01, "defaults": 1},
                         {"measure": "AUC", "change": change, "low": low, "high": high, "p_value": p_value,
                          "defaults": defaults}])


def test_the_auc_drop_is_refused_only_when_its_whole_interval_lies_beyond_the_tolerance():
    # drop = -change; the drop's interval is (-high, -low)
    at_limit = auc_check(_auc_row(-0.375, -0.5, -0.25), EXACT)
    assert at_limit.holds and at_limit.value == 0.375  # the interval starts exactly at the tolerance
    beyond = auc_check(_auc_row(-0.375, -0.5, -0.2500001), EXACT)
    assert not beyond.holds
    assert beyond.kind == "quality" and beyond.limit == "interval not wholly above 0.25"
    assert beyond.rule == "AUC drop against the champion, 95% paired interval (DeLong)"
    thin = auc_check(_auc_row(-0.125, -0.375, 0.125, p_value=0.25, defaults=60), EXACT)
    assert thin.holds and thin.value == 0.125
    assert thin.evidence == ("drop +0.1250 (-0.1250…+0.3750), p = 0.250, 60 defaults"
                             " — the window cannot rule out a larger drop")
    assert auc_check(_auc_row(0.125, 0.0, 0.25), {**EXACT, "confidence": 0.9}).rule == \
        "AUC drop against the champion, 90% paired interval (DeLong)"


def test_a_drop_whose_interval_ends_at_the_tolerance_does_not_warn_of_a_larger_one():
    exact = auc_check(_auc_row(-0.125, -0.25, -0.0625, defaults=7), EXACT)
    assert exact.holds and exact.evidence == "drop +0.1250 (+0.0625…+0.2500), p = 0.200, 7 defaults"
    assert "cannot rule out" in auc_check(_auc_row(-0.125, -0.2500001, -0.0625), EXACT).evidence
    assert "cannot rule out" not in auc_check(_auc_row(-0.125, -0.2, -0.0625), EXACT).evidence  # well inside it
    assert auc_check(_auc_row(-0.001, -0.004, 0.002)).holds  # GATE_DEFAULTS: 0.005
    assert not auc_check(_auc_row(-0.01, -0.02, -0.006)).holds


def test_paired_differences_report_both_models_the_loans_and_a_bootstrap_p_value_no_smaller_than_its_rounds():
    y, champion, generator = _scores(30, 170, 3.0, seed=5)
    # the champion all but knows the outcome, the challenger ranks at random: far worse on every measure
    p_old, p_new = 0.05 + 0.9 * y - 0.01 * generator.random(len(y)), generator.random(len(y))
    table = paired_differences(y, p_old, p_new, rounds=40).set_index("measure")
    assert table.loc["KS", "champion"] == ks(y, p_old) and table.loc["KS", "challenger"] == ks(y, p_new)
    assert table.loc["Brier", "champion"] == brier(y, p_old) and table.loc["Brier", "challenger"] == brier(y, p_new)
    assert table.loc["KS", "p_value"] == table.loc["Brier", "p_value"] == 1 / 40  # never seen: at least 1/rounds
    assert (table["loans"] == 200).all() and (table["defaults"] == 30).all()
    assert list(table["method"]) == ["DeLong, paired", "bootstrap, paired, 40 rounds", "bootstrap, paired, 40 rounds"]
    assert table.loc["AUC", "change"] < -0.3 and table.loc["AUC", "p_value"] < 0.001


def test_fitted_months_are_the_windows_a_bundle_learned_from_and_nothing_else():
    assert fitted_months(SPLIT) == {"train": ("2024-01", "2024-12"), "valid": ("2025-01", "2025-02")}
    assert fitted_months({"train": ["2024-01", "2024-12"]}) == {"train": ("2024-01", "2024-12")}
    assert overlap(("2024-01", "2024-01"), SPLIT) == {"train": ["2024-01"]}  # the first month is inside
    assert overlap(("2025-03", "2025-04"), SPLIT) == {}  # the empty calibration window holds no month


def test_the_monotone_sweep_reads_a_fixed_sample_of_at_most_300_comparison_loans():
    """A dry run and the promotion after it must see the same verdict: the sweep's loans are drawn
    the same way every time (300 of them, or all when fewer)."""
    class Recording(_Unconstrained):
        def __init__(self):
            self.seen = []

        def matrix(self, sample):
            self.seen.append(sample.index.tolist())
            return super().matrix(sample)

    loans, p = _window_loans()
    challenger = _Stand(p)
    challenger.pd_model = Recording()
    for _ in range(2):
        judge(challenger, None, loans, ("2025-05", "2025-06"), {"max_ece": 0.5})
    assert challenger.pd_model.seen[0] == challenger.pd_model.seen[1] == loans.sample(300, random_state=0).index.tolist()
    few, p_few = _window_loans(10, 90)
    small = _Stand(p_few)
    small.pd_model = Recording()
    judge(small, None, few, ("2025-05", "2025-06"), {"max_ece": 0.5})
    assert sorted(small.pd_model.seen[0]) == list(range(100))


def test_by_default_the_paired_differences_are_95_percent_intervals_on_500_rounds():
    y, champion, generator = _scores(20, 180, 1.0, seed=9)
    other = champion + generator.normal(scale=0.5, size=len(y))
    table = paired_differences(y, champion, other).set_index("measure")
    delong = metrics_auc_difference(y, champion, other, 0.95)
    assert (table.loc["AUC", "low"], table.loc["AUC", "high"]) == (delong["low"], delong["high"])
    assert table.loc["KS", "method"] == "bootstrap, paired, 500 rounds"
    assert table.loc["KS", "p_value"] >= 1 / 500


def test_an_ece_without_its_loan_count_says_zero_loans():
    assert own_checks({"auc": 0.7, "ece": 0.01}, {}, {})[-1].evidence == "0 loans in deciles"
