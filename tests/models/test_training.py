"""Training, the registry, the gate and the pre-credit list, on a small 36-month city."""

from __future__ import annotations

import datetime as dt
import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.profile.build import build
from features.registry import BY_NAME, FEATURE_ABSENCE, SOURCE_ABSENCE, feature_names
from models import tracking
from models.batch import ScoringError, score_profile
from models.bundle import recompute
from models.explain import POSITIVE
from models.policy import PolicyError
from models.run import PromotionError, promote, train_challenger
from tests.conftest import MODEL_SPLIT
from tests.golden import page_text

AS_OF = dt.date(2026, 6, 30)


def test_a_young_platform_trains_two_stages_and_says_how_thin_its_evidence_is(trained):
    meta = trained.bundle.meta
    split = meta["split"]
    # 26 defaults after the warm-up: too few for three evidence windows, so the book is cut in two
    assert split["thin"] and tuple(split["valid"]) == ("", "") and tuple(split["calib"]) == ("", "")
    assert split["warmup_until"] == "2024-07" and split["train"][1] < split["oot"][0]
    assert "an evidence-sized split needs" in split["evidence"][0]
    assert tracking.version_for(tracking.CHALLENGER) == trained.version
    measures = tracking.run_metrics(trained.version)
    assert measures["oot_auc"] == pytest.approx(trained.evaluation.metrics["auc"])
    assert {"oot_ks", "oot_gini", "oot_brier", "oot_ece", "oot_auc_low", "oot_auc_high", "psi_score",
            "psi_max_feature", "benchmark_auc", "monotonicity_holds"} <= set(measures)
    m = trained.evaluation.metrics
    assert m["auc_low"] < m["auc"] < m["auc_high"] and m["auc_high"] - m["auc_low"] > 0.1  # a dozen defaults
    assert meta["monotonicity_holds"]
    # stage 1 learned from every enterprise's months, where the evidence is: it ranks distress well
    stages = meta["stages"]
    assert stages["enterprise_months"] > 5_000 and 0.05 < stages["distress_rate"] < 0.5
    assert stages["link"][1] > 0 and stages["as_of"][1] < split["oot"][0]
    assert "loan book" in stages["excluded"]
    assert trained.bundle.pd_model.stage1_.validation_auc_ > 0.75


def test_only_features_the_lake_can_fill_are_used(trained):
    meta = trained.bundle.meta
    excluded = {row["feature"]: row for row in meta["features_excluded"]}
    used = set(trained.bundle.features)
    # 24-month windows reach before the lake's history at the first fitted grant month; 12-month ones do not
    assert "tax_sales_growth_12m" in excluded and "tax_sales_24m" in excluded
    assert "before the lake's history of tax_filings" in excluded["tax_sales_24m"]["reason"]
    assert {"tax_sales_12m", "tax_months_late_12m", "court_open_cases"} <= used
    assert not used & set(excluded) and len(used) == meta["features_used"]
    assert meta["metrics"]["psi_max_feature"] < 0.25


def test_the_report_holds_every_section_and_plot(trained):
    page = trained.report_path.read_text("utf-8")
    read = page_text(page)
    for section in ("Out-of-time performance", "Windows (split by grant month)", "Evidence", "Monotonicity",
                    "Benchmark scorecard (WOE logistic, same windows)", "Two stages",
                    "Features not yet available (left out)", "Calibration by decile", "Population stability",
                    "Fair lending (out of time)", "区县 district", "主体类型 entity type", "行业 industry",
                    "成立年限 firm age", "Fair lending on the whole pre-credit list"):
        assert section in read, section
    # every group with its intervals and a verdict against the policy's tolerances
    assert "approval_low" in page and "default_high" in page and "auc_low" in page
    assert "within tolerance" in page or "DISPARITY" in page or "justified by risk" in page
    assert isinstance(trained.bundle.meta["fair_lending_findings"], list)
    for plot in ("ROC", "KS", "Calibration", "SHAP summary"):
        assert f'alt="{plot}' in page, plot
    assert page.count("data:image/png;base64,") == 4


def test_the_registered_model_loads_through_mlflow_and_decides_as_the_bundle(trained, model_home):
    profile = build(model_home, AS_OF).profile.head(40)
    via_mlflow = mlflow.pyfunc.load_model(f"models:/{tracking.MODEL_NAME}/{trained.version}")
    assert via_mlflow.metadata.signature is not None
    expected = trained.bundle.decide(profile).frame()
    got = via_mlflow.predict(tracking.as_text_categories(profile)).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)


def test_reason_codes_explain_the_margin_in_words(trained, model_home):
    profile = build(model_home, AS_OF).profile
    decisions = trained.bundle.decide(profile)
    raw = trained.bundle.pd_model.raw(profile)
    np.testing.assert_allclose(decisions.contributions.sum(axis=1) + decisions.base_value, raw, atol=1e-9)
    np.testing.assert_allclose(decisions.margin, raw, atol=1e-9)
    riskiest = int(np.argmax(decisions.pd))
    reasons = decisions.reasons(riskiest)
    assert len(reasons["adverse"]) >= 1 and len(reasons["positive"]) <= POSITIVE
    contributions = [r["contribution"] for r in reasons["adverse"]]
    assert contributions == sorted(contributions, reverse=True) and all(c > 0 for c in contributions)
    assert all(r["contribution"] < 0 for r in reasons["positive"])
    assert reasons["coverage"] >= trained.bundle.policy.reason_coverage
    behaviour = next(r for r in reasons["adverse"] if r["kind"] == "behaviour")
    declared = BY_NAME[behaviour["feature"]]
    assert (behaviour["code"], behaviour["zh"], behaviour["en"]) == (declared.code, declared.zh, declared.en)
    assert behaviour["value"] is not None


def test_fair_use_holds_over_every_enterprise_of_the_pre_credit_list(trained, model_home):
    """Work plan items 5, 12 and 15, as the policy declares them, on every enterprise: no missing
    value named as a behaviour (an absence is said as one, in the registry's words, and every
    feature it sums is missing); no never-named feature among the reasons; the named adverse
    reasons cover the policy's share of the adverse effect; no encouraged behaviour raises the PD."""
    profile = build(model_home, AS_OF).profile
    bundle = trained.bundle
    policy = bundle.policy
    decisions = bundle.decide(profile)
    absence_texts = {zh for zh, _ in SOURCE_ABSENCE.values()} | {zh for zh, _ in FEATURE_ABSENCE.values()}
    seen = {"absence": 0, "behaviour": 0}
    for i in range(len(profile)):
        reasons = decisions.reasons(i)
        for item in reasons["adverse"] + reasons["positive"]:
            seen[item["kind"]] += 1
            if item["kind"] == "behaviour":
                assert item["value"] is not None, (i, item)
                assert item["feature"] not in policy.not_named, (i, item)
            else:
                assert item["zh"] in absence_texts or item["zh"].startswith("无可计算"), item
                for feature in item["features"]:
                    value = profile[feature].iloc[i]
                    assert pd.isna(value) or (BY_NAME[feature].family == "coverage" and value == 0), (i, feature)
        assert reasons["coverage"] >= policy.reason_coverage - 1e-9, (i, reasons["coverage"])
        named = [r["contribution"] for r in reasons["adverse"]]
        total = decisions.stated.adverse_total[i]
        if named:  # the fewest: without the weakest named reason the share would fall short
            assert sum(named) - named[-1] < policy.reason_coverage * total + 1e-3, (i, named, total)
        assert 0 <= reasons["coverage_of_all"] <= reasons["coverage"] + 1e-9
        assert {w["feature"] for w in reasons["not_named"]} == set(policy.not_named) & set(bundle.features)
    assert seen["absence"] > 0 and seen["behaviour"] > 0  # the city has thin files and records alike
    # what a firm is and what the platform holds of it are never named, whichever way they weigh
    kinds = {BY_NAME[r["feature"]].kind for i in range(len(profile)) for r in
             decisions.reasons(i)["adverse"] + decisions.reasons(i)["positive"] if r["kind"] == "behaviour"}
    assert kinds == {"behaviour"}
    # the worst tax grade is never in an enterprise's favour, against any reference
    graded_d = np.flatnonzero(profile["tax_grade_latest"].astype("object").to_numpy() == "D")
    assert len(graded_d) > 0
    for i in graded_d:
        assert not any(r["feature"] == "tax_grade_latest" for r in decisions.reasons(int(i))["positive"]), i


def test_encouraged_behaviour_at_the_record_level_never_raises_the_pd_nor_lowers_the_limit(trained, model_home):
    """Each behaviour the policy encourages, done by every enterprise of the city as it is done in
    life (a new record, or a grade raised), the profile rebuilt from the changed records by the one
    profile computation and the decision re-scored: the PD never rises and the limit never falls.
    The registry's declaration of what each behaviour moves is held to what the rebuild moves."""
    from features.lake import Lake
    from features.profile.build import lake_view, load_records
    from features.profile.compute import build_partition
    from features.profile.encouraged import with_encouraged
    from features.profile.pointintime import day_number
    from features.registry import ENCOURAGED_BY_CODE, TAX_GRADES

    bundle = trained.bundle
    lake = Lake(model_home)
    view = lake_view(lake)
    records, day = load_records(lake, view=view), day_number(AS_OF)
    before = build_partition(records, day, None, view.delivered)
    now = bundle.decide(before, explain=False)
    rank = {g: k for k, g in enumerate(TAX_GRADES)}

    def numbers(frame, feature):
        column = frame[feature]
        if BY_NAME[feature].ordered:
            return column.astype("object").map(rank).to_numpy(dtype=float, na_value=np.nan)
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)

    assert set(bundle.policy.encouraged) == set(ENCOURAGED_BY_CODE)
    for code in bundle.policy.encouraged:
        action = ENCOURAGED_BY_CODE[code]
        after = build_partition(with_encouraged(code, records, before["uscc"], day), day, None, view.delivered)
        assert after["uscc"].tolist() == before["uscc"].tolist()
        moved = dict(action.moves)
        changed = set()
        for feature in bundle.features + list(bundle.reason_plan.flags):
            old, new = numbers(before, feature), numbers(after, feature)
            differs = ~((old == new) | (np.isnan(old) & np.isnan(new)))
            if not differs.any():
                continue
            changed.add(feature)
            assert feature in moved, (code, feature, int(differs.sum()))
            assert (np.isnan(old) == np.isnan(new)).all() or BY_NAME[feature].kind == "coverage", (code, feature)
            step = (new - old)[differs & ~np.isnan(old)]
            assert (moved[feature] * step > 0).all(), (code, feature)
        assert changed, code  # the behaviour reached the profile
        then = bundle.decide(after, explain=False)
        assert (then.pd <= now.pd + 1e-12).all(), (code, int((then.pd > now.pd + 1e-12).sum()))
        assert (then.limit >= now.limit).all(), (code, int((then.limit < now.limit).sum()))


def test_raising_a_constrained_feature_never_moves_the_pd_against_the_policy(trained, model_home):
    """For every feature the policy constrains (:func:`models.train.policy_directions`: the
    registry's direction, or against an encouraged behaviour) and the bundle reads: on real rows
    of the city's pre-credit list, raising that feature alone over its observed range never lowers
    the PD where the constraint is +1 and never raises it where it is -1. The PD is the bundle's
    as a whole: stage 1, the link into stage 2, stage 2 and the calibration within each entity
    type (the log-odds a decision's PD is computed from), swept by
    :func:`models.train.monotonicity` against the policy's directions, not the model's own
    record of them; and both stages are trained under exactly those constraints."""
    from models.train import monotonicity, policy_directions

    bundle = trained.bundle
    model, policy = bundle.pd_model, bundle.policy
    constrained = {name: policy.monotone(BY_NAME[name]) for name in bundle.features
                   if policy.monotone(BY_NAME[name])}
    assert len(constrained) > 40 and {"court_open_cases", "tax_grade_latest", "tax_sales_12m"} <= set(constrained)

    profile = build(model_home, AS_OF).profile
    rows = profile.sample(min(len(profile), 600), random_state=3)
    holds = monotonicity(model, rows, grid_points=25, directions=policy_directions(policy))
    assert set(holds) == set(constrained)
    broken = sorted(name for name, ok in holds.items() if not ok)
    assert not broken, f"the PD moves against the policy's constraint as these rise: {broken}"
    for stage in (model.stage1_, model.stage2_):
        assert {name: stage.monotone_.get(name) for name in constrained} == constrained


def test_no_adverse_reason_lies_on_the_favourable_side_of_the_reference(trained, model_home):
    """Over every enterprise of the city's pre-credit list and every feature (not only the four
    named): a monotone feature raises the PD against the reference only from its unfavourable
    side, and the reference's margin plus the contributions is the decision's margin."""
    profile = build(model_home, AS_OF).profile
    bundle = trained.bundle
    decisions = bundle.decide(profile)
    np.testing.assert_allclose(decisions.contributions.sum(axis=1) + decisions.base_value,
                               bundle.pd_model.raw(profile), rtol=0, atol=1e-6)
    matrix = bundle.pd_model.matrix(profile)
    violations = 0
    for key in dict.fromkeys(decisions.reference_keys.tolist()):
        rows = np.array([k == key for k in decisions.reference_keys])
        values = bundle.reference_summary(key)["values"]
        encoded = bundle.pd_model.matrix(pd.DataFrame([{f: values.get(f) for f in bundle.features}]).astype(object))[0]
        for j, feature in enumerate(bundle.features):
            direction = bundle.pd_model.monotone_[feature]
            if not direction or np.isnan(encoded[j]):
                continue
            adverse = decisions.contributions[rows, j] > 1e-12
            violations += int((adverse & (direction * (matrix[rows, j] - encoded[j]) <= 0)).sum())
    assert violations == 0
    # each kind of entity is explained against its own kind's reference
    kinds = profile["entity_type"].astype("object").to_numpy()
    for i in (int(np.flatnonzero(kinds == kind)[0]) for kind in set(kinds) if kind in bundle.reference["groups"]):
        stated = decisions.reasons(i)["reference"]
        assert stated["group"] == {"feature": "entity_type", "value": kinds[i]}
        assert bundle.reference["groups"][kinds[i]]["values"]["entity_type"] == kinds[i]
    named = decisions.reasons(int(np.argmax(decisions.pd)))
    assert "B" in named["reference"]["en"] and "中位画像" in named["reference"]["zh"]
    assert named["reference"]["margin"] == pytest.approx(named["base_value"])
    assert all("reference_value" in r for r in named["adverse"] + named["positive"])


def test_a_policy_can_keep_features_out_of_every_model(model_home, tmp_path):
    from models.policy import DEFAULT_POLICY, Policy

    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY.read_text("utf-8").replace(
        'not_in_model = ["district_code", "industry_section", "tax_paid_12m", "registered_capital"]',
        'not_in_model = ["district_code", "industry_section", "tax_paid_12m", "registered_capital", "firm_age_years"]'),
        "utf-8")
    policy = Policy.load(path)
    assert policy.not_in_model == ("district_code", "industry_section", "tax_paid_12m", "registered_capital",
                                   "firm_age_years")
    result = train_challenger(model_home, policy=policy, register=False, split_months=MODEL_SPLIT)
    left_out = {"district_code", "industry_section", "tax_paid_12m", "registered_capital", "firm_age_years"}
    assert not left_out & set(result.bundle.features)
    assert not left_out & set(result.bundle.capacity_model.feature_names_in_)
    reasons = result.bundle.decide(build(model_home, AS_OF).profile.head(50)).reasons(0)
    assert {w["feature"] for w in reasons["not_named"]} == {"entity_type"} & set(result.bundle.features)
    path.write_text(DEFAULT_POLICY.read_text("utf-8").replace(
        'not_in_model = ["district_code", "industry_section", "tax_paid_12m", "registered_capital"]',
        'not_in_model = ["nonsense"]'), "utf-8")
    with pytest.raises(PolicyError, match="nonsense"):
        Policy.load(path)


def test_no_rows_no_decisions(trained, model_home):
    empty = trained.bundle.decide(build(model_home, AS_OF).profile.head(0))
    assert len(empty) == 0 and len(empty.frame()) == 0


def test_every_decision_can_be_redone_from_its_stated_numbers(trained, model_home):
    profile = build(model_home, AS_OF).profile
    requested = np.where(np.arange(len(profile)) % 3 == 0, 200_000.0, np.nan)
    decisions = trained.bundle.decide(profile, requested)
    for i in range(len(profile)):
        reasons = json.loads(json.dumps(decisions.reasons(i)))  # as stored: through JSON
        # calibrated within its entity type: the intercept stated is its type's, the pooled one plus the shift
        calibration = reasons["computation"]["calibration"]
        assert calibration["within"]["value"] == profile["entity_type"].iloc[i]
        assert calibration["a"] == calibration["within"]["pooled_a"] + calibration["within"]["shift"]
        assert calibration["within"]["shift"] == trained.bundle.pd_model.calibration_shifts_[profile["entity_type"].iloc[i]]
        redone = recompute(reasons["computation"])
        assert redone["pd"] == pytest.approx(decisions.pd[i], rel=1e-12)
        assert (redone["score"], redone["grade"], redone["decision"], redone["limit_yuan"]) == (
            decisions.score[i], decisions.grade[i], decisions.decision[i], decisions.limit[i])


def test_declined_enterprises_get_no_limit_and_knockouts_name_their_basis(trained, model_home):
    profile = build(model_home, AS_OF).profile
    decisions = trained.bundle.decide(profile)
    assert (decisions.limit[decisions.decision == "decline"] == 0).all()
    assert (decisions.limit <= trained.bundle.policy.unsecured_cap_yuan).all()
    listed = np.flatnonzero(profile["dishonest_listed_now"].to_numpy() == 1)
    if len(listed):
        reasons = decisions.reasons(int(listed[0]))
        assert reasons["knockouts"][0]["code"] == "KO01" and "《" in reasons["knockouts"][0]["legal_basis"]
        assert decisions.decision[listed[0]] == "decline"


def test_promotion_through_the_gate_and_by_force(trained, model_home, tracking_store):
    first = promote(model_home)
    assert first.champion_version is None and first.promoted == all(c.holds for c in first.checks)
    if not first.promoted:  # a small city's out-of-time ECE is noisy: the gate may refuse it
        with pytest.raises(tracking.ModelNotFound):
            tracking.version_for(tracking.CHAMPION)
        assert promote(model_home, force=True, reason="first model of the test city").forced
    assert tracking.version_for(tracking.CHAMPION) == trained.version
    with pytest.raises(PromotionError, match="already the champion"):
        promote(model_home)
    weaker = train_challenger(model_home, split_months=MODEL_SPLIT, params={"num_leaves": 2, "max_depth": 1,
                                                                            "learning_rate": 0.3})
    with pytest.raises(PromotionError, match="--force needs --reason"):
        promote(model_home, force=True)
    second = promote(model_home)
    assert second.champion_version == trained.version and second.loans > 0
    assert second.champion["auc"] == pytest.approx(trained.evaluation.metrics["auc"])
    if not second.promoted:
        assert tracking.version_for(tracking.CHAMPION) == trained.version
        forced = promote(model_home, force=True, reason="the bank asked for the simpler model")
        assert forced.promoted and forced.forced
    assert tracking.version_for(tracking.CHAMPION) == weaker.version
    log = [json.loads(line) for line in (model_home / "reports" / "promotions.jsonl").read_text("utf-8").splitlines()]
    assert log[-1]["challenger"] == weaker.version and log[-1]["promoted"]


def test_the_pre_credit_list_is_written_for_excel_and_machines(trained, model_home, tmp_path):
    build(model_home, AS_OF)
    result = score_profile(model_home, AS_OF, trained.bundle, tmp_path)
    assert result.csv.read_bytes().startswith(b"\xef\xbb\xbf")
    written = pd.read_csv(result.csv, encoding="utf-8-sig", dtype={"uscc": str})
    assert list(written.columns[:8]) == ["as_of", "uscc", "name", "pd", "score", "grade", "decision", "limit_yuan"]
    assert written["name"].str.contains("有限公司|店|合作社|经营部|商行").mean() > 0.9
    assert len(written) == len(pd.read_parquet(result.parquet)) > 1000
    plan = trained.bundle.reason_plan
    known = {plan.item_code(k) for k in range(len(plan.features) + len(plan.groups))}
    assert written["adverse_reasons"].dropna().str.split(";").explode().isin(known).all()
    assert (written["reason_coverage"] >= trained.bundle.policy.reason_coverage - 1e-9).all()
    assert set(written["grade"]) <= set("ABCDE") and (written["model_version"].astype(str) == trained.bundle.version).all()
    advised = written[written["advice_codes"].notna()]
    assert len(advised) and advised["advice_zh"].str.contains("额度 ¥").all()
    assert (advised["advice_grade"] <= advised["grade"]).all()  # never a worse grade
    assert written.loc[(written["grade"] == "A") & (written["decision"] == "approve"), "advice_codes"].isna().all()


def test_scoring_refuses_a_missing_profile_or_another_feature_set(trained, model_home):
    with pytest.raises(ScoringError, match="no profile as of 2020-01-31"):
        score_profile(model_home, dt.date(2020, 1, 31), trained.bundle)
    build(model_home, AS_OF)
    stale = type(trained.bundle)(trained.bundle.pd_model, trained.bundle.capacity_model, trained.bundle.policy,
                                 {**trained.bundle.meta, "feature_set_version": "000000000000"})
    with pytest.raises(ScoringError, match="feature set"):
        score_profile(model_home, AS_OF, stale)
    unexplained = type(trained.bundle)(trained.bundle.pd_model, trained.bundle.capacity_model, trained.bundle.policy,
                                       trained.bundle.meta)  # a bundle from before reference.json
    with pytest.raises(ScoringError, match="reference"):
        score_profile(model_home, AS_OF, unexplained)


def test_rows_as_the_service_keeps_them_decide_as_the_frame(trained, model_home):
    profile = build(model_home, AS_OF).profile.head(80)
    order = feature_names()
    # as published: a list per enterprise in registry order, categories as text, None for missing
    rows = [[None if pd.isna(v) else v if isinstance(v, str) else float(v) for v in record]
            for record in profile[order].astype(object).itertuples(index=False)]
    requested = np.where(np.arange(len(rows)) % 2 == 0, np.nan, 400_000.0)
    by_rows = trained.bundle.decide_rows(rows, order, list(profile["uscc"]), requested)
    by_frame = trained.bundle.decide(profile, requested)
    for name in ("pd", "score", "limit", "margin", "contributions"):
        np.testing.assert_allclose(getattr(by_rows, name), getattr(by_frame, name), rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(by_rows.grade, by_frame.grade)
    np.testing.assert_array_equal(by_rows.decision, by_frame.decision)
    for i in range(len(rows)):
        a, b = by_rows.reasons(i), by_frame.reasons(i)
        # the list's compiled walk and the service's NumPy walk add the same terms in another order
        assert a["computation"].pop("margin") == pytest.approx(b["computation"].pop("margin"), abs=1e-12)
        assert a == b


def test_the_bundle_id_covers_both_stages(trained, tmp_path):
    import shutil

    from models.bundle import ModelBundle, bundle_id
    from models.stages import TwoStageModel

    copy = tmp_path / "bundle"
    shutil.copytree(trained.bundle_dir, copy)
    assert TwoStageModel.saved_in(copy) and bundle_id(copy) == trained.bundle.meta["bundle_id"]
    assert isinstance(ModelBundle.load(copy).pd_model, TwoStageModel)
    first_stage = copy / "stage1_model.lgb.txt"
    first_stage.write_text(first_stage.read_text("utf-8") + "\n", "utf-8")
    assert bundle_id(copy) != trained.bundle.meta["bundle_id"]


def test_a_bundle_is_written_whole_or_not_at_all(trained, tmp_path, monkeypatch):
    """Saving over a bundle replaces it only once the new one is complete: nothing of the old one
    lingers, a save that fails half-way leaves the old bundle as it was, and no staging folder is
    left behind either way."""
    from models.bundle import ModelBundle, bundle_id

    bundle = ModelBundle.load(trained.bundle_dir)
    folder = tmp_path / "models" / "bundle"
    bundle.save(folder)
    (folder / "left-from-before.txt").write_text("old", "utf-8")
    bundle.save(folder)
    assert not (folder / "left-from-before.txt").exists()
    saved_id = bundle_id(folder)

    def broken(_folder):
        raise OSError("disk full")

    monkeypatch.setattr(bundle.capacity_model, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        bundle.save(folder)
    assert bundle_id(folder) == saved_id and ModelBundle.load(folder).meta["bundle_id"] == saved_id
    assert sorted(p.name for p in folder.parent.iterdir()) == ["bundle"]


def test_a_bundle_reads_its_reason_codes_with_the_words_it_was_saved_with(trained, tmp_path, monkeypatch):
    """A bundle keeps the declarations of the features it reads: after a description is edited in
    the registry, the reasons of the decisions it made are still listed in the words they were
    made with."""
    import dataclasses

    from features import registry
    from models.bundle import ModelBundle
    from models.monitoring import reason_frequencies

    bundle = ModelBundle.load(trained.bundle_dir)
    assert set(bundle.declared()) >= set(bundle.features)
    feature = bundle.features[0]
    then = registry.BY_NAME[feature]
    edited = dataclasses.replace(then, zh="改过的说明", en="an edited description")
    monkeypatch.setitem(registry.BY_NAME, feature, edited)
    monkeypatch.setattr(registry, "FEATURES", tuple(edited if f.name == feature else f for f in registry.FEATURES))
    listing = pd.DataFrame({"adverse_reasons": [then.code, f"{then.code};NAX", ""]})
    table = reason_frequencies(listing, ModelBundle.load(trained.bundle_dir))
    row = table.set_index("code").loc[then.code]
    assert (row["decisions"], row["feature or source"], row["zh"], row["en"]) == (2, feature, then.zh, then.en)
