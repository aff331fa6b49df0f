"""The feature registry: complete, lawful, readable, and the single source of the profile's columns."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

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


ISSUED_CODES = Path(__file__).parent / "golden" / "reason_codes.json"


def test_every_reason_code_ever_issued_keeps_its_feature_or_stays_retired():
    """Stored decisions keep codes, not names: a code issued once (the golden file lists them all)
    names the same feature for ever, or is retired and never given again. A new feature's code is
    added to the golden file in the same change, as a deliberate act."""
    issued = json.loads(ISSUED_CODES.read_text("utf-8"))
    assert len({f.name for f in FEATURES}) == len({f.code for f in FEATURES}) == len(FEATURES)
    for code, name in issued.items():
        if code in registry.RETIRED_CODES:
            assert registry.RETIRED_CODES[code] == name and all(f.code != code for f in FEATURES), code
        else:
            assert registry.get_feature(name).code == code, f"{code} was issued for {name}"
    assert {f.code for f in FEATURES} <= set(issued), "add the new feature's code to tests/features/golden/reason_codes.json"


def _declared_without_codes() -> list[Feature]:
    return [dataclasses.replace(f, code="") for f in FEATURES]


def test_a_feature_inserted_in_the_middle_renumbers_nothing():
    features = _declared_without_codes()
    middle = next(i for i, f in enumerate(features) if f.family == "utilities")
    inserted = dataclasses.replace(features[0], name="tax_sales_9m", window_months=9, zh="近9个月申报销售额合计",
                                   en="taxable sales over the last 9 months")
    features.insert(middle - 3, inserted)
    coded = registry._with_codes(features, {**registry.REASON_CODES, "tax_sales_9m": "TX26"})
    by_name = {f.name: f.code for f in coded}
    assert all(by_name[f.name] == f.code for f in FEATURES)
    assert by_name["tax_sales_9m"] == "TX26"


@pytest.mark.parametrize("codes, retired, message", [
    (lambda c: {k: v for k, v in c.items() if k != "court_open_cases"}, {},
     "feature court_open_cases has no reason code: declare it in REASON_CODES \\(the next free code of family court is CT09\\)"),
    (lambda c: {**c, "court_open_cases": "PN07"}, {}, "reason code 'PN07' must be CT and a number"),
    (lambda c: {**c, "court_open_cases": "CT02"}, {}, "feature court_open_amount: reason code CT02 is already court_open_cases's"),
    (lambda c: {**c, "court_open_cases": "CT09"}, {"CT09": "court_cases_36m"},
     "reason code CT09 is retired \\(it named court_cases_36m\\) and is never reused"),
    (lambda c: {**c, "weather_days": "TX26"}, {}, "REASON_CODES names features the registry does not declare: \\['weather_days'\\]"),
])
def test_a_reason_code_missing_misplaced_taken_or_retired_is_refused_in_words(codes, retired, message):
    with pytest.raises(ValueError, match=message):
        registry._with_codes(_declared_without_codes(), codes(registry.REASON_CODES), retired)


def test_the_next_free_code_counts_retired_codes_as_taken():
    codes = {k: v for k, v in registry.REASON_CODES.items() if k != "court_open_cases"}
    with pytest.raises(ValueError, match="the next free code of family court is CT12"):
        registry._with_codes(_declared_without_codes(), codes, {"CT11": "court_cases_36m"})


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


@pytest.mark.parametrize("field, value, changes", [
    ("zh", "近三个月申报的销售额", False), ("en", "sales declared over three months", False), ("code", "TX99", False),
    ("monotone", 0, False), ("window_months", 4, True), ("sources", ("tax_grades",), True), ("unit", "count", True),
    ("name", "tax_sales_q", True), ("kind", "coverage", True),
])
def test_a_description_edit_keeps_the_feature_set_version_and_an_input_edit_changes_it(field, value, changes):
    """The version guards every decision (a mismatch refuses it until a retrain): only what changes
    the profile a model reads may move it, never a typo fixed in a description."""
    edited = (dataclasses.replace(FEATURES[0], **{field: value}), *FEATURES[1:])
    assert (feature_set_version(edited) != feature_set_version()) is changes


def test_a_category_list_edit_changes_the_feature_set_version():
    at = next(i for i, f in enumerate(FEATURES) if f.name == "industry_section")
    edited = list(FEATURES)
    edited[at] = dataclasses.replace(FEATURES[at], categories=FEATURES[at].categories[:-1])
    assert feature_set_version(tuple(edited)) != feature_set_version()


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


# ---------------------------------------------------------------------- which way each feature moves risk
#
# The direction of every feature, derived from what its declaration says it measures, in each of
# its two languages, never from its name: a flipped sign anywhere in the registry is caught, not
# only on the handful a hand list would name. The words are the registry's own (its ``zh`` and
# ``en`` meanings); the unit and the categories are its declared fields.

ADVERSE = {  # a finding against the enterprise on the record: more of it is riskier
    "en": r"arrears|unpaid|\blate\b|\bwithout\b|enforcement|dishonest|penalt|\bfines\b|seized|broken|lapsed",
    "zh": r"欠税|欠费|逾期|无(?:用|账单)|被执行|失信|处罚|罚款|查封|违诺|失效",
}
FAVOURABLE = {  # evidence of trade, of tax paid, of assets, of promises kept, of standing: more is safer
    "en": r"sales|tax paid|\bus(?:e|ed|ing)\b|\breturn|\belectricity\b|\bwater\b|\bgas\b|patent|trademark|copyright"
          r"|propert|\bkept\b|establishment|capital",
    "zh": r"销售额|已缴税|用[电水气]|申报|专利|商标|著作权|不动产|践诺|成立|注册资本",
}
ENCUMBERED = {"en": r"mortgage|pledged", "zh": r"抵押|质押"}  # assets standing as security for debt
PROMISE = {"en": (r"commitment", r"\bkept\b|broken"), "zh": (r"承诺", r"践诺|违诺")}  # (a promise, its verdict)
TIME_SINCE = {"en": r"(?:since|from) the latest", "zh": r"距最近"}
DISPERSION = {"en": r"coefficient of variation|gap between", "zh": r"变异系数|之差"}
AGREEMENT = {"en": r"correlation", "zh": r"相关系数"}
GRADE_STEP = {"en": (r"\bup is positive", r"\bdown is positive"), "zh": (r"升为正", r"降为正")}
GRADE_LEVEL = {"en": r"\b([ABMCD])\b", "zh": r"([ABMCD])级"}


def direction_from_meaning(feature: Feature, language: str) -> tuple[int, str]:
    """The way default risk must move as ``feature`` grows, read from its declared meaning in
    ``language`` ("zh" or "en"), and why. The rule, first match wins:

    1. What the platform holds of a source (``kind`` coverage) says nothing of the enterprise: 0.
    2. A category has no "more" unless declared ordered; an ordered one lists its levels from the
       safest to the riskiest (the registry's contract, and the tax grades' A < B < M < C < D):
       its rank grows riskier, +1. Unordered: 0.
    3. A change of the tax grade "up is positive" (升为正) grows as the grade rises towards A,
       the safest level: −1 (+1 were down positive).
    4. A flag or count of named grade levels: safer than the middle of the tax grade scale (A, B)
       is −1, riskier (C, D) is +1.
    5. Dispersion of a figure or disagreement between sources (coefficient of variation, a gap
       between trends) is riskier whatever the figure: +1. Agreement between sources (a
       correlation of sales with electricity) is safer: −1.
    6. Time since the latest event of a kind runs against the event: longer since an adverse one
       (a case, a penalty) is safer, longer since a favourable one (a tax return) is riskier.
    7. What is counted, summed, shared or trended:
       a. a promise not yet verified (commitments made, awaiting verification) settles nothing
          until it is found kept or broken: 0;
       b. encumbrance (mortgage, pledge): as a share of the value owned it measures leverage
          alone, +1; as a count it grows with what is owned as much as with what is owed: 0;
       c. an adverse finding (arrears, unpaid, late, months without use, enforcement, dishonest
          listing, penalties, fines, seizure, broken promise, lapsed right) is riskier, +1, even
          where it qualifies a favourable record (the *late* returns, the *unpaid* tax due);
       d. evidence of trade, tax paid, utility use, tax returns filed, assets, rights, promises
          kept, years in business or capital is safer, −1 (its growth and its continuity too);
       e. anything else: its meaning settles no direction, and it must be declared unconstrained.
    """
    zh_or_en = feature.en if language == "en" else feature.zh
    text = zh_or_en.lower() if language == "en" else zh_or_en
    en = language == "en"

    def found(pattern: str, where: str = text) -> bool:
        return re.search(pattern, where, flags=re.I if en else 0) is not None

    if feature.kind == "coverage":
        return 0, "coverage: what the platform holds, not what the enterprise does"
    if feature.is_categorical:
        if feature.ordered:
            return 1, "ordered category, levels declared from the safest to the riskiest"
        return 0, "unordered category: no more or less of it"
    up, down = GRADE_STEP[language]
    if found(up) or found(down):
        return (-1 if found(up) else 1), "a step up the grade scale is a step towards A, the safest level"
    levels = re.findall(GRADE_LEVEL[language], zh_or_en) if (not en or "grade" in text) else []
    if levels:
        middle = (len(registry.TAX_GRADES) - 1) / 2
        ranks = [registry.TAX_GRADES.index(level) for level in levels]
        if all(rank < middle for rank in ranks):
            return -1, f"grade levels {levels} on the safe side of the scale"
        if all(rank > middle for rank in ranks):
            return 1, f"grade levels {levels} on the risky side of the scale"
        return 0, f"grade levels {levels} on both sides of the scale"
    if found(DISPERSION[language]):
        return 1, "dispersion of a figure, or disagreement between sources"
    if found(AGREEMENT[language]):
        return -1, "agreement between sources"
    since = re.search(TIME_SINCE[language], text)
    if since:
        event, why = _what_is_counted(feature, text[since.end():], language)
        return -event, f"time since the latest event, which is {why}"
    return _what_is_counted(feature, text, language)


def _what_is_counted(feature: Feature, text: str, language: str) -> tuple[int, str]:
    flags = re.I if language == "en" else 0
    promise, verdict = PROMISE[language]
    if re.search(promise, text, flags) and not re.search(verdict, text, flags):
        return 0, "a promise not yet verified kept or broken settles nothing"
    if re.search(ENCUMBERED[language], text, flags):
        if feature.unit == "share":
            return 1, "the share of what it owns standing as security: leverage"
        return 0, "a count of encumbrances grows with what is owned as much as with what is owed"
    if re.search(ADVERSE[language], text, flags):
        return 1, "an adverse finding on the record"
    if re.search(FAVOURABLE[language], text, flags):
        return -1, "evidence of trade, assets, promises kept or standing"
    return 0, "its meaning settles no direction"


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_every_feature_moves_risk_the_way_its_declared_meaning_says(feature):
    """Every feature's declared direction (its ``monotone``, which the PD model is constrained to)
    is the one its meaning settles, read in Chinese and in English alike by
    :func:`direction_from_meaning`: more arrears, late or missing returns, court cases, dishonest
    listings, penalties, seizures, broken promises is riskier; more sales, tax paid, use, assets,
    rights, promises kept, years in business is safer; time since an event runs against it; the
    tax grades rank A < B < M < C < D. A feature whose meaning settles no direction is declared
    unconstrained (0)."""
    by_language = {language: direction_from_meaning(feature, language) for language in ("zh", "en")}
    (zh, why_zh), (en, why_en) = by_language["zh"], by_language["en"]
    assert zh == en, (f"{feature.name}: its Chinese meaning ({feature.zh}: {why_zh}) settles {zh:+d}, its English "
                      f"meaning ({feature.en}: {why_en}) {en:+d}")
    if en == 0:
        assert feature.monotone == 0, (f"{feature.name} ({feature.en}): {why_en}, so it must be declared unconstrained "
                                       f"(monotone 0); it is declared {feature.monotone:+d}")
    assert feature.monotone == en, (f"{feature.name} ({feature.en}) is declared {feature.monotone:+d}, but its meaning "
                                    f"says {en:+d}: {why_en}")


def test_the_features_whose_meaning_settles_no_direction_are_declared_unconstrained():
    """The features left unconstrained are exactly those whose meaning settles no direction: the
    coverage flags, the unordered categories, encumbrances counted (mortgages registered, rights
    pledged) and promises not yet verified (commitments made or awaiting verification). None of
    them is constrained, and no feature whose meaning does settle a direction is left free."""
    unsettled = {f.name for f in FEATURES if direction_from_meaning(f, "en")[0] == 0}
    assert unsettled == {f.name for f in FEATURES if f.monotone == 0}
    behaviour = unsettled - set(registry.features_of_kind("coverage")) - {f.name for f in FEATURES if f.is_categorical}
    assert behaviour == {"property_mortgages_12m", "ip_pledged", "commitment_count_24m", "commitment_pending"}
    # and the rule is no rubber stamp: a feature whose words it does not know is held unconstrained
    unknown = Feature("lucky_numbers", "tax", ("tax_filings",), 12, "名称中的吉利数字个数", "lucky numbers in its name",
                      "count", 1)
    assert direction_from_meaning(unknown, "zh") == direction_from_meaning(unknown, "en") == (
        0, "its meaning settles no direction")


def test_the_tax_grades_are_ordered_from_the_safest_to_the_riskiest():
    """The tax credit levels rank A < B < M < C < D (M, a new taxpayer, between B and C: less
    evidence than a B, no finding against it as a C has), and the ordered grade feature lists them
    in that order, so that its +1 constraint makes each step towards D riskier."""
    assert registry.TAX_GRADES == ("A", "B", "M", "C", "D")
    ordered = [f for f in FEATURES if f.ordered]
    assert [f.name for f in ordered] == ["tax_grade_latest"]
    assert ordered[0].categories == registry.TAX_GRADES and ordered[0].monotone == 1
    graded = [registry.GRADE_POINTS[g] for g in registry.TAX_GRADES if g in registry.GRADE_POINTS]
    assert graded == sorted(graded, reverse=True)  # the points fall as the grades grow riskier


def test_the_policy_constrains_the_model_the_way_the_meaning_says_or_against_an_encouraged_behaviour():
    """The policy's constraint for every feature a model may read (:meth:`Policy.monotone`, what
    LightGBM is given) is the meaning's direction, except where an encouraged behaviour moves a
    feature the meaning leaves free: the PD must then fall as the behaviour moves it. An encouraged
    behaviour never moves a feature the way its meaning calls riskier."""
    from models.policy import Policy

    policy = Policy.load()
    moves = policy.encouraged_moves
    for name in registry.model_features():
        feature = registry.get_feature(name)
        meaning, why = direction_from_meaning(feature, "en")
        constraint = policy.monotone(feature)
        if name in moves:
            assert constraint == -moves[name], name
            assert meaning in (0, constraint), (f"{name}: encouraged, moved {moves[name]:+d}, but its meaning says "
                                                f"{meaning:+d} ({why})")
        else:
            assert constraint == meaning, f"{name}: the policy constrains {constraint:+d}, its meaning says {meaning:+d} ({why})"
    assert any(direction_from_meaning(registry.get_feature(n), "en")[0] == 0 for n in moves if n in registry.model_features())
