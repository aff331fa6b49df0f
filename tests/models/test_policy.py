"""The policy file: lawful knock-outs, score scaling, grades, decisions and limits."""

from __future__ import annotations

import math
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
