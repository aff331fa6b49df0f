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
