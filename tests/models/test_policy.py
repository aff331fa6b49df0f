"""The policy file: lawful knock-outs, score scaling, grades, decisions and limits."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.profile.compute import profiles_for
from models.policy import DEFAULT_POLICY, Policy, PolicyError
from tests.features.profile_fixtures import CODES, Lake, day, registry

POLICY = Policy.load()


def test_the_default_policy_is_versioned_and_every_knockout_cites_its_basis():
    assert POLICY.version and POLICY.knockouts
    for rule in POLICY.knockouts:
        assert "《" in rule.legal_basis and rule.zh and rule.en and rule.code.startswith("KO")


def test_points_follow_base_and_pdo():
    base_pd = 1 / (1 + POLICY.base_odds)  # good:bad odds of base_odds
    doubled_pd = 1 / (1 + 2 * POLICY.base_odds)
    assert POLICY.points([base_pd])[0] == pytest.approx(POLICY.base_points, abs=0.1)
    assert POLICY.points([doubled_pd])[0] - POLICY.points([base_pd])[0] == pytest.approx(POLICY.pdo, abs=0.2)
    assert np.all(np.diff(POLICY.points(np.linspace(0.001, 0.9, 50))) < 0)


def test_grades_cut_at_the_declared_bounds():
    a, b, c, d = POLICY.grade_bounds
    assert list(POLICY.grades([a / 2, a, b, c, d, 0.5])) == ["A", "B", "C", "D", "E", "E"]


def test_a_knockout_makes_the_decision_stricter_and_is_named():
    profile = pd.DataFrame({"dishonest_listed_now": [1.0, 0.0, np.nan], "penalty_serious_36m": [0.0, 2.0, np.nan]})
    decision, hits = POLICY.decide(np.array(["A", "A", "A"]), profile)
    assert list(decision) == ["decline", "refer", "approve"]
    assert [[k.code for k in h] for h in hits] == [["KO01"], ["KO02"], []]


def test_a_knockout_resting_only_on_disputed_records_refers_citing_the_basis_for_it(tmp_path):
    profile = pd.DataFrame({"dishonest_listed_now": [1.0, 1.0, 0.0], "penalty_serious_36m": [0.0, 2.0, 2.0]})
    grades = np.array(["A", "A", "A"])
    decision, hits = POLICY.decide(grades, profile, [{"dishonest_listed_now"}, set(), {"penalty_serious_36m"}])
    assert list(decision) == ["refer", "decline", "refer"]
    relieved, undisputed = hits[0][0], hits[1][0]
    assert relieved.under_objection and relieved.decision == "refer" and "征信业管理条例" in relieved.legal_basis
    assert not undisputed.under_objection and undisputed.decision == "decline"
    assert hits[2][0].under_objection and hits[2][0].legal_basis == POLICY.knockouts[1].legal_basis  # refers anyway
    assert list(POLICY.decide(grades, profile)[0]) == ["decline", "decline", "refer"]  # no disputes: as before
    # a policy that declares no relief decides as written, and says the record is disputed
    text = DEFAULT_POLICY.read_text("utf-8")
    start = text.index("[objections]")
    older = Policy.load(_write(tmp_path, text[:start] + text[text.index("[freshness]"):]))
    decision, hits = older.decide(grades, profile, [{"dishonest_listed_now"}, set(), set()])
    assert decision[0] == "decline" and hits[0][0].under_objection
    for broken, message in (('knockout_while_disputed = "refer"', "must be refer or decline"),
                            ('legal_basis = "《征信业管理条例》', "legal_basis is missing")):
        replaced = text.replace(broken, 'knockout_while_disputed = "approve"' if "knockout" in broken else
                                'legal_basis = " " # 《征信业管理条例》', 1)
        with pytest.raises(PolicyError, match=message):
            Policy.load(_write(tmp_path, replaced))


def test_limits_are_capped_rounded_and_zero_when_declined():
    capacity = np.array([100_000_000.0, 1_234_567.0, 1_000_000.0, 15_000.0, np.nan])
    grades = np.array(["A", "B", "A", "A", "A"])
    decisions = np.array(["approve", "approve", "decline", "approve", "approve"])
    limits = POLICY.limits(capacity, grades, decisions)
    assert limits[0] == POLICY.unsecured_cap_yuan
    assert limits[1] == math.floor(1_234_567 * POLICY.multipliers["B"] / POLICY.round_to_yuan) * POLICY.round_to_yuan
    assert limits[2] == 0 and limits[3] == 0 and limits[4] == 0  # declined; below the minimum; no capacity
    assert POLICY.limits(capacity[:2], grades[:2], decisions[:2], np.array([200_000.0, np.nan]))[0] == 200_000


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.parametrize("change, message", [
    (("pdo = 40", "pdo = -3"), "pdo must be a positive number of points; got -3"),
    (('legal_basis = "《最高人民法院', 'legal_basis = " "  # 《最高人民法院'), "cites no legal basis"),
    (('feature = "dishonest_listed_now"', 'feature = "horoscope"'), "unknown feature 'horoscope'"),
    (("B = 0.015", "B = 0.001"), "grade bounds must rise strictly"),
    (('E = "decline"', 'E = "maybe"'), "decision for grade E must be one of"),
    (("capacity_quantile = 0.2", "capacity_quantile = 1.5"), "capacity_quantile must be between 0 and 1"),
    (('code = "KO02"', 'code = "KO01"'), "knock-out code KO01 is used twice"),
    (("threshold = 1\ndecision = \"decline\"", "threshold = \"one\"\ndecision = \"decline\""), "threshold must be a number"),
])
def test_a_bad_policy_file_is_refused_in_words(tmp_path, change, message):
    text = DEFAULT_POLICY.read_text("utf-8")
    assert change[0] in text
    with pytest.raises(PolicyError, match=message):
        Policy.load(_write(tmp_path, text.replace(change[0], change[1], 1)))


def test_an_unreadable_policy_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(PolicyError, match="policy.toml: cannot read"):
        Policy.load(_write(tmp_path, "version = [unclosed"))


def test_a_repaired_record_changes_nothing_in_a_decision():
    """A serious penalty repaired before as_of: the profile, the knock-outs and the decision are
    exactly those of an enterprise that never had it (work plan item 16)."""
    def lake(with_repaired_penalty: bool) -> Lake:
        built = registry(Lake(), CODES[0])
        if with_repaired_penalty:
            for reported, repair in (("2025-09-05", None), ("2026-03-03", "2026-03-01")):
                built.add("administrative_penalties", decision_no="X2", uscc=CODES[0], decision_date="2025-09-01",
                          severity="serious", amount=5_000_000, repair_date=repair, reported_date=reported)
        return built

    as_of = day("2026-06-30")
    repaired = profiles_for([CODES[0]], [as_of], lake(True).records())
    clean = profiles_for([CODES[0]], [as_of], lake(False).records())
    pd.testing.assert_frame_equal(repaired, clean)
    for profile in (repaired, clean):
        decision, hits = POLICY.decide(np.array(["A"]), profile)
        assert list(decision) == ["approve"] and hits == [[]]
    before = profiles_for([CODES[0]], [day("2026-02-28")], lake(True).records())
    assert [k.code for k in POLICY.decide(np.array(["A"]), before)[1][0]] == ["KO02"]  # before the repair it counted


def test_encouraged_behaviours_are_record_changes_and_an_older_policy_still_loads(tmp_path):
    """The policy names encouraged behaviours by their registry codes and the PD must fall along
    every feature each moves; a bundle's own policy written when features were named directly still
    loads (each named feature encouraged to grow); a name that is neither is refused in words."""
    from features.registry import BY_NAME, ENCOURAGED_BY_CODE
    from models.policy import DEFAULT_POLICY, Policy, PolicyError

    policy = Policy.load()
    for code in policy.encouraged:
        for name, direction in ENCOURAGED_BY_CODE[code].moves:
            assert policy.monotone(BY_NAME[name]) == -direction, (code, name)
    assert policy.monotone(BY_NAME["tax_grade_latest"]) == 1  # A is the safe end of the grade's order
    text = DEFAULT_POLICY.read_text("utf-8")
    current = text[text.index("encouraged = ["):text.index("\n", text.index("encouraged = ["))]
    older = tmp_path / "older.toml"
    older.write_text(text.replace(current, 'encouraged = ["commitment_count_24m", "ip_trademarks"]'), "utf-8")
    loaded = Policy.load(older)
    assert loaded.monotone(BY_NAME["commitment_count_24m"]) == -1 and loaded.monotone(BY_NAME["ip_trademarks"]) == -1
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(text.replace(current, 'encouraged = ["EN99"]'), "utf-8")
    with pytest.raises(PolicyError, match="EN99"):
        Policy.load(wrong)
    riskier = tmp_path / "riskier.toml"
    riskier.write_text(text.replace(current, 'encouraged = ["court_open_cases"]'), "utf-8")
    with pytest.raises(PolicyError, match="riskier"):
        Policy.load(riskier)
    unordered = tmp_path / "unordered.toml"
    unordered.write_text(text.replace(current, 'encouraged = ["district_code"]'), "utf-8")
    with pytest.raises(PolicyError, match="unordered category"):
        Policy.load(unordered)


# ---------------------------------------------------------------- the policy file, read as written
#
# A policy is edited by people: every setting they can get wrong is refused before any decision is
# made, with a message that names the setting; every setting they get right is read as written.

import copy  # noqa: E402
import json  # noqa: E402
import tomllib  # noqa: E402

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from features.registry import BY_NAME, features_of_kind  # noqa: E402
from models.policy import FAIR_LENDING_DEFAULTS, GATE_DEFAULTS, stated_rights  # noqa: E402

RAW = tomllib.loads(DEFAULT_POLICY.read_text("utf-8"))
FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _toml(data: dict, prefix: str = "") -> str:
    """A policy dict written back as TOML (what a person would write in the file)."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict) or (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in tables:
        for item in ([value] if isinstance(value, dict) else value):
            lines.append(f"[{prefix}{key}]" if isinstance(value, dict) else f"[[{prefix}{key}]]")
            lines.append(_toml(item, f"{prefix}{key}."))
    return "\n".join(lines) + "\n"


def _policy(tmp_path: Path, change=None) -> Policy:
    """The shipped policy with ``change`` (a function of its parsed dict) applied, loaded from a file."""
    raw = copy.deepcopy(RAW)
    if change is not None:
        change(raw)
    return Policy.load(_write(tmp_path, _toml(raw)))


def _setting(path: str, value):
    """A change that sets one dotted setting (``knockouts.0.threshold``); ``...`` removes it."""
    def change(raw):
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is ...:
            del node[int(last) if isinstance(node, list) else last]
        else:
            node[int(last) if isinstance(node, list) else last] = value
    return change


def test_the_shipped_policy_written_back_reads_the_same():
    """The helper these tests edit policies with changes nothing by itself."""
    assert _toml(RAW) and tomllib.loads(_toml(RAW)) == RAW


def test_a_policy_file_is_read_as_written(tmp_path):
    def change(raw):
        raw["version"] = 7
        del raw["description"]
        raw["score"] = {"base_points": 500, "base_odds": 20, "pdo": 30}
        raw["grades"] = {"A": 0.01, "B": 0.02, "C": 0.04, "D": 0.1}
        raw["decisions"] = {"A": "approve", "B": "refer", "C": "refer", "D": "decline", "E": "decline"}
        raw["limits"] = {"capacity_quantile": 0.3, "round_to_yuan": 5000, "unsecured_cap_yuan": 2000000,
                         "minimum_yuan": 20000, "multipliers": {"A": 0.6, "B": 0.5, "C": 0.2, "D": 0.1, "E": 0}}
        raw["fair_use"]["reason_coverage"] = 0.9
        raw["fair_use"]["not_in_model"] = ["district_code"]
        raw["freshness"]["max_profile_age_days"] = 61
        raw["fair_lending"] = {"approval_ratio_floor": 0.75, "calibration_band": [0.5, 2], "min_group_loans": 150}
        raw["gate"] = {"max_psi": 0.3, "confidence": 0.9}
        raw["knockouts"][1]["threshold"] = 2.5

    policy = _policy(tmp_path, change)
    assert policy.version == "7" and policy.description == "" and policy.source == str(tmp_path / "policy.toml")
    assert (policy.base_points, policy.base_odds, policy.pdo) == (500.0, 20.0, 30.0)
    assert policy.grade_bounds == (0.01, 0.02, 0.04, 0.1)
    assert policy.decisions == {"A": "approve", "B": "refer", "C": "refer", "D": "decline", "E": "decline"}
    assert (policy.capacity_quantile, policy.round_to_yuan, policy.unsecured_cap_yuan, policy.minimum_yuan) == \
        (0.3, 5000.0, 2_000_000.0, 20_000.0)
    assert policy.multipliers == {"A": 0.6, "B": 0.5, "C": 0.2, "D": 0.1, "E": 0.0}
    assert policy.reason_coverage == 0.9 and policy.not_in_model == ("district_code",)
    assert policy.encouraged == tuple(RAW["fair_use"]["encouraged"])
    assert policy.max_profile_age_days == 61
    assert policy.fair_lending == {"approval_ratio_floor": 0.75, "calibration_band": (0.5, 2.0), "min_group_loans": 150}
    assert policy.gate == {**GATE_DEFAULTS, "max_psi": 0.3, "confidence": 0.9}
    assert [(k.code, k.feature, k.operator, k.threshold, k.decision) for k in policy.knockouts] == \
        [("KO01", "dishonest_listed_now", ">=", 1, "decline"), ("KO02", "penalty_serious_36m", ">=", 2.5, "refer")]
    assert all(not k.under_objection and k.legal_basis for k in policy.knockouts)
    assert policy.rights == {k: str(v) for k, v in RAW["rights"].items()}
    assert policy.objections == RAW["objections"]
    # and the decisions follow the file: grade B refers, a D declines
    assert list(policy.decide(np.array(["A", "B", "D"]), pd.DataFrame({"dishonest_listed_now": [0, 0, 0],
                                                                        "penalty_serious_36m": [2, 0, 0]}))[0]) == \
        ["approve", "refer", "decline"]


def test_a_policy_written_before_a_section_existed_takes_todays_defaults(tmp_path):
    """An older policy (a bundle's own copy) without [gate], [fair_lending], [fair_use], [freshness],
    [rights] or [objections] loads; the gate and the fair-lending report then hold it to the same
    tolerances the shipped policy declares, and it states no rights and grants no relief."""
    def strip(raw):
        for section in ("gate", "fair_lending", "fair_use", "freshness", "rights", "objections", "knockouts"):
            del raw[section]

    shipped, older = POLICY, _policy(tmp_path, strip)
    assert older.gate == shipped.gate == GATE_DEFAULTS
    assert older.fair_lending == shipped.fair_lending == {**FAIR_LENDING_DEFAULTS}
    assert older.encouraged == older.not_in_model == older.knockouts == ()
    assert older.reason_coverage == shipped.reason_coverage == 0.8
    assert older.max_profile_age_days is None and older.rights == {} and older.objections == {}
    assert older.rights_for("decline", ["dishonest_listed_now"], ["administrative_penalties"]) == []
    assert set(older.not_named) == set(features_of_kind("firmographic")) | set(features_of_kind("coverage"))


def test_what_a_firm_is_or_what_the_platform_holds_is_never_a_reason_whatever_the_policy_lists(tmp_path):
    policy = _policy(tmp_path, _setting("fair_use.not_named", ["court_open_cases", "entity_type"]))
    assert set(policy.not_named) == {*features_of_kind("firmographic"), *features_of_kind("coverage"), "court_open_cases"}
    assert len(policy.not_named) == len(set(policy.not_named))  # each once


BROKEN = [  # (setting, value, words the refusal must contain: the setting named)
    ("score.pdo", 0, "pdo must be a positive number of points; got 0"),
    ("score.base_odds", 0, "base_odds must be positive; got 0"),
    ("score.base_odds", -2, "base_odds must be positive; got -2"),
    ("grades.A", 0.0, "grade bounds must rise strictly between 0 and 1"),
    ("grades.D", 1.0, "grade bounds must rise strictly between 0 and 1"),
    ("grades.C", 0.015, "grade bounds must rise strictly between 0 and 1"),
    ("decisions.A", "yes", "decision for grade A must be one of"),
    ("knockouts.0.legal_basis", 12, "knock-out KO01 cites no legal basis"),
    ("knockouts.0.legal_basis", ..., "missing setting 'legal_basis'"),
    ("knockouts.1.operator", "=>", "knock-out KO02: operator must be one of"),
    ("knockouts.1.decision", "approve", "knock-out KO02: decision must be refer or decline; got 'approve'"),
    ("knockouts.1.threshold", True, "knock-out KO02: threshold must be a number; got True"),
    ("limits.multipliers.C", -0.5, "limit multipliers must not be negative"),
    ("limits.capacity_quantile", 0, "capacity_quantile must be between 0 and 1; got 0"),
    ("limits.capacity_quantile", 1, "capacity_quantile must be between 0 and 1; got 1"),
    ("limits.unsecured_cap_yuan", 0, "unsecured_cap_yuan and round_to_yuan must be positive"),
    ("limits.round_to_yuan", 0, "unsecured_cap_yuan and round_to_yuan must be positive"),
    ("limits", ..., "missing setting 'limits'"),
    ("fair_use.not_named", ["horoscope"], "fair_use names unknown feature 'horoscope'"),
    ("fair_use.not_in_model", ["zodiac"], "fair_use names unknown feature 'zodiac'"),
    ("fair_use.encouraged", ["EN07", "tax_grade_is_c_or_d"], "move tax_grade_is_c_or_d both up and down"),
    ("fair_use.not_named", ["ip_trademarks"], "['ip_trademarks'] are both moved by an encouraged behaviour and never named"),
    ("fair_use.reason_coverage", 0, "fair_use.reason_coverage must be in (0, 1]; got 0"),
    ("fair_use.reason_coverage", 1.01, "fair_use.reason_coverage must be in (0, 1]; got 1.01"),
    ("freshness.max_profile_age_days", 0, "freshness.max_profile_age_days must be a whole number of days, at least 1; got 0"),
    ("freshness.max_profile_age_days", True, "freshness.max_profile_age_days must be a whole number"),
    ("freshness.max_profile_age_days", 30.5, "freshness.max_profile_age_days must be a whole number"),
    ("objections.knockout_while_disputed", "approve", "objections.knockout_while_disputed must be refer or decline"),
    ("objections.legal_basis", ..., "objections.legal_basis is missing"),
    ("fair_lending.calibration_band", [1.5, 0.67], "fair_lending.calibration_band must be [low, high]"),
    ("fair_lending.calibration_band", [0.67], "fair_lending.calibration_band must be [low, high]"),
    ("fair_lending.calibration_band", [0.67, 1.5, 2.0], "fair_lending.calibration_band must be [low, high]"),
    ("fair_lending.calibration_band", [0, 1.5], "fair_lending.calibration_band must be [low, high]"),
    ("fair_lending.calibration_band", [0.67, 1], "fair_lending.calibration_band must be [low, high]"),
    ("fair_lending.calibration_band", [1, 1.5], "fair_lending.calibration_band must be [low, high]"),
    ("fair_lending.calibration_band", [1.5, 2.0], "fair_lending.calibration_band must be [low, high]"),
    ("fair_lending.calibration_band", 1.5, "fair_lending.calibration_band must be [low, high]"),
    ("fair_lending.approval_ratio_floor", 0, "fair_lending.approval_ratio_floor must be in (0, 1]; got 0"),
    ("fair_lending.approval_ratio_floor", 1.2, "fair_lending.approval_ratio_floor must be in (0, 1]; got 1.2"),
    ("fair_lending.min_group_loans", 0, "fair_lending.min_group_loans must be a whole number of loans; got 0"),
    ("fair_lending.min_group_loans", True, "fair_lending.min_group_loans must be a whole number of loans; got True"),
    ("fair_lending.min_group_loans", 12.5, "fair_lending.min_group_loans must be a whole number of loans; got 12.5"),
    ("gate.max_auc", 0.01, "gate.max_auc is not a setting of the gate"),
    ("gate.max_psi", 0, "gate.max_psi must be a positive number; got 0"),
    ("gate.max_ece", True, "gate.max_ece must be a positive number; got True"),
    ("gate.max_ece", "0.02", "gate.max_ece must be a positive number; got '0.02'"),
    ("gate.confidence", 1.0, "gate.confidence must be below 1"),
    ("gate.confidence", 1.5, "gate.confidence must be below 1"),
    ("grades.A", 0.0, "grade bounds must rise strictly between 0 and 1"),
    ("grades.A", -0.01, "grade bounds must rise strictly between 0 and 1"),
    ("grades.D", 1.0, "grade bounds must rise strictly between 0 and 1"),
    ("fair_lending.calibration_band", [-0.5, 2.0], "fair_lending.calibration_band must be [low, high]"),
    ("fair_lending.calibration_band", [0.5, 0.9], "fair_lending.calibration_band must be [low, high]"),
    ("limits.unsecured_cap_yuan", -1, "unsecured_cap_yuan and round_to_yuan must be positive"),
    ("limits.minimum_yuan", -1, "minimum_yuan must not be negative; got -1"),
]


@pytest.mark.parametrize("setting, value, message", BROKEN, ids=[f"{s}={v!r}" for s, v, _ in BROKEN])
def test_every_setting_a_person_can_get_wrong_is_refused_naming_it(tmp_path, setting, value, message):
    with pytest.raises(PolicyError) as refused:
        _policy(tmp_path, _setting(setting, value))
    assert message in str(refused.value) and str(tmp_path / "policy.toml") in str(refused.value)


def test_a_missing_policy_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(PolicyError, match="nowhere.toml: cannot read the policy"):
        Policy.load(tmp_path / "nowhere.toml")


EDGES = [  # the extreme values a policy may lawfully use
    ("score.pdo", 0.5), ("score.base_odds", 0.5), ("grades.A", 1e-6), ("grades.D", 0.999),
    ("limits.multipliers.A", 0), ("limits.capacity_quantile", 0.001), ("limits.capacity_quantile", 0.999),
    ("limits.round_to_yuan", 0.5), ("limits.unsecured_cap_yuan", 0.5), ("fair_use.reason_coverage", 1),
    ("fair_use.reason_coverage", 0.01), ("freshness.max_profile_age_days", 1), ("freshness", {}),
    ("fair_lending.approval_ratio_floor", 1), ("fair_lending.approval_ratio_floor", 0.01),
    ("fair_lending.min_group_loans", 1), ("fair_lending.calibration_band", [0.01, 1.01]),
    ("gate.confidence", 0.999), ("gate.max_auc_drop", 0.0001), ("gate.max_psi", 3),
    ("knockouts.1.threshold", 0), ("knockouts.1.threshold", -1.5), ("objections.knockout_while_disputed", "decline"),
    ("knockouts", []), ("fair_use.encouraged", []), ("fair_use.encouraged", ["EN07", "tax_grade_is_a"]),
]


@pytest.mark.parametrize("setting, value", EDGES, ids=[f"{s}={v!r}" for s, v in EDGES])
def test_the_edge_values_a_policy_may_use_are_accepted(tmp_path, setting, value):
    _policy(tmp_path, _setting(setting, value))


@FAST
@given(st.lists(st.sampled_from([-0.1, 0.0, 1e-4, 0.004, 0.005, 0.02, 0.3, 0.5, 0.999, 1.0, 1.2]), min_size=4, max_size=4))
def test_grade_bounds_are_accepted_exactly_when_they_rise_strictly_inside_zero_and_one(tmp_path, bounds):
    def change(raw):
        raw["grades"] = dict(zip("ABCD", bounds))
    lawful = all(a < b for a, b in zip([0.0, *bounds], [*bounds, 1.0]))  # 0 < A < B < C < D < 1
    if lawful:
        assert _policy(tmp_path, change).grade_bounds == tuple(bounds)
    else:
        with pytest.raises(PolicyError, match="grade bounds must rise strictly"):
            _policy(tmp_path, change)


@FAST
@given(st.sampled_from(["score.pdo", "score.base_odds", "limits.unsecured_cap_yuan", "limits.round_to_yuan",
                        "limits.capacity_quantile", "fair_use.reason_coverage", "gate.max_ece", "gate.confidence",
                        "fair_lending.approval_ratio_floor"]),
       st.sampled_from([-1.0, -1e-9, 0.0, 1e-9, 0.3, 0.999, 1.0, 1.5, 2.0]))
def test_a_numeric_setting_is_accepted_exactly_inside_its_declared_range(tmp_path, setting, value):
    ranges = {"score.pdo": (0, math.inf, False), "score.base_odds": (0, math.inf, False),
              "limits.unsecured_cap_yuan": (0, math.inf, False), "limits.round_to_yuan": (0, math.inf, False),
              "limits.capacity_quantile": (0, 1, False), "fair_use.reason_coverage": (0, 1, True),
              "gate.max_ece": (0, math.inf, False), "gate.confidence": (0, 1, False),
              "fair_lending.approval_ratio_floor": (0, 1, True)}
    low, high, closed = ranges[setting]
    lawful = low < value and (value <= high if closed else value < high)
    if lawful:
        policy = _policy(tmp_path, _setting(setting, value))
        section, name = setting.split(".")
        read = {"score": lambda: getattr(policy, name), "limits": lambda: getattr(policy, name),
                "fair_use": lambda: policy.reason_coverage, "gate": lambda: policy.gate[name],
                "fair_lending": lambda: policy.fair_lending[name]}[section]()
        assert read == value
    else:
        with pytest.raises(PolicyError, match=setting.split(".")[-1]):
            _policy(tmp_path, _setting(setting, value))


# ---------------------------------------------------------------- the rules

def test_a_score_is_given_to_a_tenth_of_a_point_and_is_finite_even_at_certainty():
    pd_ = np.array([0.0, 1e-12, 0.0123, 0.5, 1.0])
    points = POLICY.points(pd_)
    assert np.all(np.isfinite(points))
    expected = POLICY.base_points + POLICY.pdo / math.log(2) * (math.log(0.9877 / 0.0123) - math.log(POLICY.base_odds))
    assert points[2] == round(expected, 1) and points[2] != round(expected)
    assert np.allclose(points * 10, np.round(points * 10))
    assert points[0] == points[1] > points[2] > points[3] > points[4]  # certainty is clipped, not infinite


@FAST
@given(st.lists(st.floats(0, 1), min_size=2, max_size=20))
def test_a_higher_probability_of_default_never_gets_a_better_grade_or_more_points(pds):
    ordered = np.sort(np.array(pds))
    ranks = [GRADE_ORDER.index(g) for g in POLICY.grades(ordered)]
    assert ranks == sorted(ranks)
    assert np.all(np.diff(POLICY.points(ordered)) <= 0)


GRADE_ORDER = ("A", "B", "C", "D", "E")


@FAST
@given(st.lists(st.tuples(st.sampled_from(GRADE_ORDER), st.sampled_from([None, 0.0, 1.0, 3.0]),
                          st.sampled_from([None, 0.0, 1.0, 2.0])), min_size=1, max_size=8))
def test_a_knock_out_is_never_milder_than_the_grade_and_decides_at_least_its_own_way(rows):
    grades = np.array([g for g, _, _ in rows])
    listed = [d for _, d, _ in rows]
    serious = [s for _, _, s in rows]
    frame = pd.DataFrame({"dishonest_listed_now": pd.array(listed, dtype="Float64"),
                          "penalty_serious_36m": [np.nan if s is None else s for s in serious]})
    decision, hits = POLICY.decide(grades, frame)
    # the service decides from rows of numbers or None, without pandas: the same decisions
    as_rows, row_hits = POLICY.decide(grades, {"dishonest_listed_now": listed, "penalty_serious_36m": serious})
    assert list(as_rows) == list(decision) and [[k.code for k in h] for h in row_hits] == [[k.code for k in h] for h in hits]
    severity = {"approve": 0, "refer": 1, "decline": 2}
    for i, (grade, d, s) in enumerate(rows):
        expected = {"KO01"} if d is not None and d >= 1 else set()
        expected |= {"KO02"} if s is not None and s >= 1 else set()
        assert {k.code for k in hits[i]} == expected  # a missing record hits nothing
        assert severity[decision[i]] == max([severity[POLICY.decisions[grade]], *(severity[k.decision] for k in hits[i])])
        assert all(not k.under_objection for k in hits[i])


def test_a_knock_out_declines_whatever_the_score():
    profile = pd.DataFrame({"dishonest_listed_now": [1.0] * 5, "penalty_serious_36m": [0.0] * 5})
    decision, hits = POLICY.decide(np.array(list(GRADE_ORDER)), profile)
    assert list(decision) == ["decline"] * 5 and all([k.code for k in h] == ["KO01"] for h in hits)


def test_a_disputed_knock_out_is_relieved_only_when_the_policy_declares_a_milder_relief(tmp_path):
    """A policy whose relief is "decline" grants none: the disputed listing still declines, on its
    own basis alone, but the hit says the record is disputed; the undisputed rows are untouched."""
    strict = _policy(tmp_path, _setting("objections.knockout_while_disputed", "decline"))
    profile = pd.DataFrame({"dishonest_listed_now": [1.0, 1.0], "penalty_serious_36m": [1.0, 1.0]})
    decision, hits = strict.decide(np.array(["A", "A"]), profile, [{"dishonest_listed_now", "penalty_serious_36m"}, set()])
    assert list(decision) == ["decline", "decline"]
    assert [(k.code, k.decision, k.under_objection) for k in hits[0]] == [("KO01", "decline", True), ("KO02", "refer", True)]
    assert [k.legal_basis for k in hits[0]] == [k.legal_basis for k in strict.knockouts]
    assert [(k.code, k.under_objection) for k in hits[1]] == [("KO01", False), ("KO02", False)]
    # the shipped policy relieves only the disputed row, only the listing, and cites both bases
    decision, hits = POLICY.decide(np.array(["A", "A"]), profile, [{"dishonest_listed_now"}, set()])
    assert list(decision) == ["refer", "decline"]
    relieved = hits[0][0]
    assert relieved.legal_basis == f"{POLICY.knockouts[0].legal_basis}；{POLICY.objections['legal_basis']}"
    assert not hits[0][1].under_objection


@FAST
@given(st.lists(st.tuples(st.sampled_from([np.nan, -5.0, 0.0, 9_999.0, 24_999.0, 25_000.0, 1e6, 3e7]),
                          st.sampled_from(GRADE_ORDER), st.sampled_from(["approve", "refer", "decline"]),
                          st.sampled_from([np.nan, 0.0, 15_000.0, 50_000.0])), min_size=1, max_size=8))
def test_a_limit_is_a_whole_step_within_every_cap_and_zero_when_declined(rows):
    capacity = np.array([r[0] for r in rows])
    grades = np.array([r[1] for r in rows])
    decisions = np.array([r[2] for r in rows])
    requested = np.array([r[3] for r in rows])
    limits = POLICY.limits(capacity, grades, decisions, requested)
    assert limits.dtype == np.int64
    for limit, (cap, grade, decision, asked) in zip(limits, rows):
        assert limit % POLICY.round_to_yuan == 0 and 0 <= limit <= POLICY.unsecured_cap_yuan
        # the most the enterprise can carry: its grade's share of its capacity (none when unknown),
        # capped, and never more than it asked for (NaN: asked for nothing in particular)
        bound = min(max(0.0, np.nan_to_num(cap)) * POLICY.multipliers[grade], POLICY.unsecured_cap_yuan,
                    math.inf if np.isnan(asked) else asked)
        if decision == "decline" or bound < POLICY.minimum_yuan:
            assert limit == 0
        else:  # rounded down to a whole step, never up
            assert POLICY.minimum_yuan <= limit <= bound < limit + POLICY.round_to_yuan
    # more capacity, a better grade or a milder decision never lowers a limit
    more = POLICY.limits(np.nan_to_num(capacity).clip(0) * 2 + 1, grades, decisions, requested)
    assert np.all(more >= limits)


def test_a_limit_at_exactly_the_minimum_is_granted_and_one_step_below_is_not():
    step = POLICY.round_to_yuan
    capacity = np.array([POLICY.minimum_yuan, POLICY.minimum_yuan - step, -1.0]) / POLICY.multipliers["A"]
    assert list(POLICY.limits(capacity, np.array(["A"] * 3), np.array(["approve"] * 3))) == [POLICY.minimum_yuan, 0, 0]
    better = POLICY.limits(np.full(5, 2_000_000.0), np.array(list(GRADE_ORDER)), np.array(["approve"] * 5))
    assert list(better) == sorted(better, reverse=True) and better[0] > better[-1]


def test_the_rights_stated_are_objection_always_repair_where_repairable_and_review_of_a_refusal():
    rights = POLICY.rights

    def stated(decision, knockouts=(), sources=()):
        return [r["right"] for r in POLICY.rights_for(decision, list(knockouts), list(sources))]

    assert stated("approve") == ["objection"]
    assert stated("refer") == stated("decline") == ["objection", "review"]
    assert stated("approve", ["dishonest_listed_now"]) == ["objection", "repair"]  # a listing can be removed
    assert stated("refer", ["penalty_serious_36m"]) == ["objection", "repair", "review"]
    assert stated("decline", [], ["administrative_penalties"]) == ["objection", "repair", "review"]
    assert stated("refer", ["court_open_cases", "horoscope"], ["tax_filings"]) == ["objection", "review"]  # not repairable
    # a repairable source behind both a knock-out and a reason is one reason to offer repair, not two that cancel
    assert stated("decline", ["dishonest_listed_now"], ["dishonest_debtors"]) == ["objection", "repair", "review"]
    told = POLICY.rights_for("decline", ["dishonest_listed_now"], [])
    assert [(r["zh"], r["en"], r["legal_basis"]) for r in told] == \
        [(rights[f"{r}_zh"], rights[f"{r}_en"], rights[f"{r}_basis"]) for r in ("objection", "repair", "review")]
    # a right stated in one language only is still stated; one with no basis says none
    partial = stated_rights({"objection_en": "object here", "review_zh": "复核"}, "decline", [], [])
    assert partial == [{"right": "objection", "zh": "", "en": "object here", "legal_basis": None},
                       {"right": "review", "zh": "复核", "en": "", "legal_basis": None}]
    assert stated_rights({}, "decline", ["dishonest_listed_now"], []) == []


def test_a_loaded_policy_cannot_be_changed_in_place(tmp_path):
    """Decisions cite the policy version they were made under: a policy edited in memory after
    loading would decide by rules its version does not name."""
    import dataclasses

    policy = _policy(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.version = "edited"
    with pytest.raises(dataclasses.FrozenInstanceError):  # nor one of its knock-out rules
        policy.knockouts[0].threshold = 99
    assert policy.version == RAW["version"] and policy.knockouts[0].threshold == RAW["knockouts"][0]["threshold"]


@pytest.mark.parametrize("behaviours, message", [
    (["EN06", "EN99_fewer_commitments"], "move commitment_count_24m both up and down"),
    (["EN99_fewer_trademarks"], "EN99_fewer_trademarks moves ip_trademarks the way the registry declares riskier"),
    (["EN99_younger"], "EN99_younger moves {firmographic} the way the registry declares riskier"),
])
def test_an_encouraged_behaviour_that_moves_a_feature_towards_risk_or_both_ways_is_refused(tmp_path, monkeypatch,
                                                                                           behaviours, message):
    """The rule is general, so it is held with behaviours the shipped registry does not declare: one
    that lowers what another raises, one that lowers a feature whose growth lowers risk, and one
    that lowers such a feature of what a firm is (refused for its direction before anything else)."""
    import models.policy as policy_module
    from features.registry import Encouraged

    firmographic = next(f.name for f in BY_NAME.values() if f.kind == "firmographic" and f.monotone == -1)
    made_up = {"EN99_fewer_commitments": (("commitment_count_24m", -1),), "EN99_fewer_trademarks": (("ip_trademarks", -1),),
               "EN99_younger": ((firmographic, -1),)}
    actions = dict(policy_module.ENCOURAGED_BY_CODE)
    for code, moves in made_up.items():
        actions[code] = Encouraged(code=code, zh=code, en=code, source="credit_commitments", moves=moves)
    monkeypatch.setattr(policy_module, "ENCOURAGED_BY_CODE", actions)
    with pytest.raises(PolicyError, match=re.escape(message.format(firmographic=firmographic))):
        _policy(tmp_path, _setting("fair_use.encouraged", behaviours))


def test_an_unknown_capacity_or_a_decline_gets_no_limit_however_fine_the_steps(tmp_path):
    """With steps of one yuan, no minimum and three times the capacity, a limit is whatever the
    capacity gives, so only the rules themselves make it zero: an unknown or negative capacity, and
    a decline; and a decline below the minimum is zero too, not two wrongs making a right."""
    def fine(minimum):
        def change(raw):
            raw["limits"].update(round_to_yuan=1, minimum_yuan=minimum)
            raw["limits"]["multipliers"]["A"] = 3
        return change

    lenient = _policy(tmp_path, fine(0))
    capacity = np.array([np.nan, -5.0, 0.0, 10.0, 10.0])
    limits = lenient.limits(capacity, np.array(["A"] * 5), np.array(["approve"] * 4 + ["decline"]))
    assert list(limits) == [0, 0, 0, 30, 0]
    floor = _policy(tmp_path, fine(100))
    assert list(floor.limits(np.array([10.0, 10.0, 40.0]), np.array(["A"] * 3),
                             np.array(["decline", "approve", "approve"]))) == [0, 0, 120]
