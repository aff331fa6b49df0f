"""The feature registry: complete, lawful, readable, and the single source of the profile's columns."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from hypothesis import given, strategies as st

from features import registry
from features.profile.compute import empty_profile
from features.profile.pointintime import anchor_months, day_number
from features.registry import FAMILIES, FEATURES, Feature, feature_set_version, monotone_constraints

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_at_least_sixty_features_across_every_family():
    assert len(FEATURES) >= 60
    assert {f.family for f in FEATURES} == set(FAMILIES)


def test_every_feature_reads_in_chinese_and_english_and_cites_a_legal_basis():
    for f in FEATURES:
        assert CJK.search(f.zh), f.name
        assert f.en and not CJK.search(f.en), f.name
        assert "《" in f.legal_basis or "〔" in f.legal_basis, f.name
        assert f.catalogue_categories, f.name


def test_names_and_reason_codes_are_unique_and_stable():
    assert len({f.name for f in FEATURES}) == len({f.code for f in FEATURES}) == len(FEATURES)
    assert FEATURES[0].code == "TX01" and registry.get_feature("penalty_count_12m").code == "PN01"


def test_the_profile_has_exactly_the_registered_columns():
    assert list(empty_profile().columns) == ["uscc", "as_of", *(f.name for f in FEATURES)]


def test_monotone_directions_follow_credit_sense():
    riskier = ("tax_months_late_12m", "court_open_cases", "dishonest_listed_now", "penalty_count_12m",
               "elec_arrears_latest", "commitment_broken_24m", "property_seized_share")
    safer = ("tax_sales_12m", "tax_grade_is_a", "firm_age_years", "ip_invention_patents", "commitment_kept_24m")
    assert all(registry.get_feature(n).monotone == 1 for n in riskier)
    assert all(registry.get_feature(n).monotone == -1 for n in safer)
    assert monotone_constraints(["tax_sales_12m", "entity_type"]) == [-1, 0]
    assert len(monotone_constraints()) == len(FEATURES)


def test_the_feature_set_version_is_a_hash_of_the_declarations(monkeypatch):
    version = feature_set_version()
    assert re.fullmatch(r"[0-9a-f]{12}", version) and feature_set_version() == version
    changed = list(FEATURES)
    changed[0] = dataclasses.replace(changed[0], window_months=4)
    monkeypatch.setattr(registry, "FEATURES", tuple(changed))
    assert feature_set_version() != version


@pytest.mark.parametrize("bad, message", [
    (dict(family="weather"), "family must be one of"),
    (dict(unit="furlongs"), "unit must be one of"),
    (dict(monotone=2), "monotone must be -1, 0 or 1"),
    (dict(sources=("horoscopes",)), "unknown sources"),
    (dict(unit="category", categories=("x",), monotone=1), "cannot be monotone"),
])
def test_a_bad_declaration_is_refused_in_words(bad, message):
    good = dict(name="x", family="tax", sources=("tax_filings",), window_months=12, zh="甲", en="x",
                unit="count", monotone=1)
    with pytest.raises(ValueError, match=message):
        Feature(**{**good, **bad})


def test_unknown_feature_names_are_refused():
    with pytest.raises(ValueError, match="unknown feature 'nope'"):
        registry.get_feature("nope")


@given(st.dates(dt.date(2000, 1, 1), dt.date(2100, 12, 31)))
def test_the_anchor_month_is_delivered_by_as_of_and_at_most_two_months_back(as_of):
    month = int(anchor_months([day_number(as_of)])[0])  # months since 1970-01
    anchor = dt.date(1970 + month // 12, month % 12 + 1, 1)
    months_back = (as_of.year - anchor.year) * 12 + as_of.month - anchor.month
    assert months_back in (1, 2)
    # the anchor's figures are due by DELIVERY_DAY of the month after it, on or before as_of
    due_year, due_month = (anchor.year + anchor.month // 12, anchor.month % 12 + 1)
    assert dt.date(due_year, due_month, registry.DELIVERY_DAY) <= as_of
    assert months_back == 1 or as_of.day < registry.DELIVERY_DAY
