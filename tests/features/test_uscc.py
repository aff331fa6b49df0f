"""USCC rules: normalisation, every validation rule, generation, and the bulk checker."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import uscc

# A published code (Fujian) and codes built by hand from the rules, for known answers.
KNOWN_VALID = ["91350100M000100Y43"]


def _valid(authority="9", kind="1", division="420502", body="MA4ABCDE"):
    org = body + uscc.organisation_check_char(body)
    first17 = authority + kind + division + org
    return first17 + uscc.check_char(first17)


codes_strategy = st.builds(
    lambda authority_kind, division, body: _valid(authority_kind[0], authority_kind[1], division, body),
    st.sampled_from([(a, k) for a, kinds in uscc.ENTITY_TYPES.items() for k in kinds]),
    st.sampled_from(["420502", "420505", "420581", "420500", "420100", "110101", "440305", "500103"]),
    st.text(alphabet=uscc.CHARSET, min_size=8, max_size=8),
)


def test_published_code_is_valid():
    for code in KNOWN_VALID:
        result = uscc.check(code)
        assert result.valid, result.reason
        assert result.as_dict()["entity_type"] == {"zh": "企业", "en": "enterprise"}


def test_check_characters_match_the_standards_worked_example():
    # GB 11714: body 'M000100Y' has check '4'; GB 32100: the first 17 characters give '3'.
    assert uscc.organisation_check_char("M000100Y") == "4"
    assert uscc.check_char("91350100M000100Y4") == "3"


def test_organisation_check_value_ten_is_written_x_and_eleven_zero():
    bodies = {uscc.organisation_check_char("".join(np.random.default_rng(i).choice(list("0123456789"), 8)))
              for i in range(400)}
    assert "X" in bodies and "0" in bodies


@pytest.mark.parametrize("raw, expected", [
    (" ９１３５０１００Ｍ０００１００Ｙ４３ ", "91350100M000100Y43"),
    ("\u300091350100m000100y43\t", "91350100M000100Y43"),
    ("\ufeff91350100M000100Y43", "91350100M000100Y43"),
    ("91350100M000100Y43", "91350100M000100Y43"),
])
def test_normalise_folds_width_case_and_edges(raw, expected):
    assert uscc.normalise(raw) == expected
    assert uscc.check(raw).valid


@pytest.mark.parametrize("code, rule, words", [
    ("9135010M000100Y43", "length", "17 characters"),
    ("91350100M000100Y4Z", "charset", "Z"),
    ("91350100M00O100Y43", "charset", "O"),
    ("B1350100M000100Y43", "registration_authority", "'B'"),
    ("94350100M000100Y43", "entity_type", "'4'"),
    ("91990100M000100Y43", "division", "province code 99"),
    ("91420599M000100Y43", "division", "not a division of 宜昌市"),
    ("91429900M000100Y43", "division", "no prefecture of Hubei"),
    ("9135010AM000100Y43", "division", "6 digits"),
    ("91350100M000100Y53", "organisation_check", "should be '4'"),
    ("91350100M000100Y44", "check_character", "should be '3'"),
])
def test_each_rule_names_itself(code, rule, words):
    result = uscc.check(code)
    assert not result.valid
    assert result.rule == rule
    assert words in result.reason


def test_divisions_outside_the_table_pass_when_well_formed():
    assert uscc.check(_valid(division="110101")).valid  # Beijing Dongcheng
    assert uscc.check(_valid(division="420111")).valid  # a Wuhan district: Wuhan is not enumerated
    assert uscc.check(_valid(division="420528")).valid  # 长阳, listed
    assert uscc.check(_valid(division="429004")).valid  # 仙桃, a directly administered city of Hubei


def test_shipped_table_holds_every_yichang_district():
    table = uscc.divisions()
    for code in ("420502", "420503", "420504", "420505", "420506", "420525", "420526", "420527", "420528",
                 "420529", "420581", "420582", "420583"):
        assert code in table
    assert table["420505"].name == "猇亭区"


@given(codes_strategy)
def test_every_generated_code_validates(code):
    assert uscc.check(code).valid


@given(st.integers(0, 2**32 - 1), st.sampled_from(["1", "2", "3"]))
def test_bulk_generation_gives_valid_codes(seed, kind):
    codes = uscc.random_codes(np.random.default_rng(seed), 20, "9", kind, "420506")
    assert all(uscc.check(c).valid for c in codes)


@settings(max_examples=60)
@given(codes_strategy, st.integers(0, 17))
def test_every_single_substitution_is_caught(code, position):
    for replacement in uscc.CHARSET + "IOSVZ":
        if replacement == code[position]:
            continue
        mutated = code[:position] + replacement + code[position + 1:]
        assert not uscc.check(mutated).valid, (code, mutated)


@settings(max_examples=100)
@given(codes_strategy, st.integers(0, 16))
def test_every_adjacent_transposition_is_caught(code, position):
    a, b = code[position], code[position + 1]
    if a == b:
        return
    swapped = code[:position] + b + a + code[position + 2:]
    assert not uscc.check(swapped).valid, (code, swapped)


@settings(max_examples=50)
@given(st.lists(st.one_of(codes_strategy, st.text(max_size=20),
                          codes_strategy.map(lambda c: c[:-1] + ("0" if c[-1] != "0" else "1")),
                          codes_strategy.map(lambda c: "Y" + c[1:]),
                          codes_strategy.map(lambda c: c.lower())), min_size=1, max_size=30))
def test_bulk_checker_agrees_with_the_scalar_one(codes):
    # a batch read from the middle of a file is indexed by line number, not from zero
    series = uscc.normalise_series(pd.Series(codes, dtype="str", index=range(2, len(codes) + 2)))
    bulk = uscc.check_series(series)
    for raw, normalised, rule in zip(codes, series, bulk):
        assert normalised == uscc.normalise(raw)
        expected = uscc.check(raw).rule
        assert (None if pd.isna(rule) else rule) == expected, raw


def test_missing_code_is_a_length_failure_not_a_crash():
    assert uscc.check(None).rule == "length"


def test_bulk_checker_reports_missing_codes_as_length():
    rules = uscc.check_series(pd.Series([None, "91350100M000100Y43"], dtype="str"))
    assert rules.iloc[0] == "length" and pd.isna(rules.iloc[1])


def test_make_codes_gives_distinct_codes_for_distinct_bodies():
    bodies = np.array([[i // 31**k % 31 for k in range(8)] for i in range(500)])
    codes = uscc.make_codes("9", np.array(["1"] * 500), np.array(["420502"] * 500), bodies)
    assert len(set(codes)) == 500
