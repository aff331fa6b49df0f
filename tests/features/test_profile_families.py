"""Every feature family against values worked out by hand on a tiny lake.

Enterprise A is followed as of 2026-06-30, whose anchor month is 2026-05 (May's returns and
bills are delivered by 24 June). Windows: 12 months of events = 365 days, 24 = 730, 36 = 1095.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from features.profile.compute import alive_on, build_partition, profiles_for
from features.registry import FEATURES
from tests.features.profile_fixtures import CODES, Lake, day, month_start, registry

A, B, C, D = CODES[:4]
AS_OF = "2026-06-30"


def _add_month(period: str, months: int, day_of_month: int) -> str:
    year, month = int(period[:4]), int(period[5:7]) + months
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return f"{year:04d}-{month:02d}-{day_of_month:02d}"


def city() -> Lake:
    lake = Lake()
    registry(lake, A, established="2016-06-30", capital_fen=100_000_000)
    registry(lake, B, established="2020-01-15", kind="individual_business", section="F", district="420581")
    registry(lake, C, established="2018-01-01")
    registry(lake, C, established="2018-01-01", deregistered="2026-03-01", reported="2026-03-03")
    registry(lake, D, established="2026-07-01")

    # A's returns: 5,000 yuan a month from 2024-06 to 2025-05, 10,000 from 2025-06 to 2026-05;
    # May 2026 filed late, 500 yuan of arrears in April 2026; June 2026 is filed after as_of.
    for i, period in enumerate(month_start("2024-06", 25)):
        sales = 5_000 if i < 12 else 10_000
        late = period == "2026-05-01"
        filed = _add_month(period, 1, 20 if late else 10)
        lake.add("tax_filings", uscc=A, period=period, sales=sales * 100, tax_paid=sales, late="Y" if late else "N",
                 arrears=50_000 if period == "2026-04-01" else 0, filing_date=filed,
                 reported_date=_add_month(period, 1, 23 if late else 13))
    lake.add("tax_grades", uscc=A, year=2024, grade="A", published_date="2025-04-20", reported_date="2025-04-25")
    lake.add("tax_grades", uscc=A, year=2025, grade="B", published_date="2026-04-20", reported_date="2026-04-25")

    # electricity: 1,000 kWh a month for 24 months, none in March 2026, no bill in April 2026,
    # 200 yuan unpaid on the May bill
    for period in month_start("2024-06", 24):
        if period == "2026-04-01":
            continue
        lake.add("electricity", uscc=A, period=period, usage=0.0 if period == "2026-03-01" else 1_000.0,
                 arrears=20_000 if period == "2026-05-01" else 0, reported_date=_add_month(period, 1, 10))

    # property: 1,000,000 yuan mortgaged since 2025-01-01; 3,000,000 seized Jan-Mar 2026 (lifted)
    lake.add("real_estate", certificate_no="P1", uscc=A, appraised_value=100_000_000, registration_date="2020-05-01",
             reported_date="2020-05-10")
    lake.add("real_estate", certificate_no="P1", uscc=A, appraised_value=100_000_000, registration_date="2020-05-01",
             mortgage_date="2025-01-01", reported_date="2025-01-10")
    lake.add("real_estate", certificate_no="P2", uscc=A, appraised_value=300_000_000, registration_date="2021-05-01",
             seizure_date="2026-01-01", seizure_release_date="2026-03-01", reported_date="2026-03-05")

    # IP: an invention patent in force; a utility model that lapsed; a pledged trademark;
    # a software copyright granted only after as_of
    lake.add("intellectual_property", ip_no="I1", uscc=A, ip_type="invention_patent", application_date="2022-01-01",
             grant_date="2024-03-01", reported_date="2024-03-20")
    lake.add("intellectual_property", ip_no="U1", uscc=A, ip_type="utility_model", application_date="2024-06-01",
             grant_date="2025-01-01", lapse_date="2026-02-01", reported_date="2026-02-20")
    lake.add("intellectual_property", ip_no="T1", uscc=A, ip_type="trademark", application_date="2022-06-01",
             grant_date="2023-05-01", pledge_date="2025-05-01", reported_date="2025-05-20")
    lake.add("intellectual_property", ip_no="S1", uscc=A, ip_type="software_copyright", application_date="2026-06-01",
             reported_date="2026-06-10")
    lake.add("intellectual_property", ip_no="S1", uscc=A, ip_type="software_copyright", application_date="2026-06-01",
             grant_date="2026-07-15", reported_date="2026-07-25")

    # court: an open case (its closing is reported after as_of) and an old closed one
    lake.add("court_executions", case_no="E1", uscc=A, filing_date="2025-03-01", amount=5_000_000,
             reported_date="2025-03-05")
    lake.add("court_executions", case_no="E1", uscc=A, filing_date="2025-03-01", amount=5_000_000,
             closing_date="2026-07-15", reported_date="2026-07-20")
    lake.add("court_executions", case_no="E0", uscc=A, filing_date="2023-01-01", amount=1_000_000,
             reported_date="2023-01-05")
    lake.add("court_executions", case_no="E0", uscc=A, filing_date="2023-01-01", amount=1_000_000,
             closing_date="2023-06-01", reported_date="2023-06-05")
    # a case filed before as_of that the court reported only after it
    lake.add("court_executions", case_no="E2", uscc=A, filing_date="2026-06-25", amount=9_000_000,
             reported_date="2026-07-01")
    # dishonest list: one removed on 2026-05-01 (the platform hears of it only in August), one current
    lake.add("dishonest_debtors", case_no="L1", uscc=A, listing_date="2025-07-01", reported_date="2025-07-03")
    lake.add("dishonest_debtors", case_no="L1", uscc=A, listing_date="2025-07-01", removal_date="2026-05-01",
             reported_date="2026-08-01")
    lake.add("dishonest_debtors", case_no="L2", uscc=A, listing_date="2026-02-01", reported_date="2026-02-03")

    # penalties: a general one that counts, a serious one repaired on 2026-03-01, an old minor one
    lake.add("administrative_penalties", decision_no="X1", uscc=A, decision_date="2026-01-10", severity="general",
             amount=2_000_000, reported_date="2026-01-15")
    lake.add("administrative_penalties", decision_no="X2", uscc=A, decision_date="2025-09-01", severity="serious",
             amount=5_000_000, reported_date="2025-09-05")
    lake.add("administrative_penalties", decision_no="X2", uscc=A, decision_date="2025-09-01", severity="serious",
             amount=5_000_000, repair_date="2026-03-01", reported_date="2026-03-03")
    lake.add("administrative_penalties", decision_no="X3", uscc=A, decision_date="2023-02-01", severity="minor",
             amount=1_000_000, reported_date="2023-02-05")

    # commitments: kept (verified), pending (verdict reported after as_of), an old broken one
    lake.add("credit_commitments", commitment_no="C1", uscc=A, commitment_date="2025-10-01", status="pending",
             reported_date="2025-10-02")
    lake.add("credit_commitments", commitment_no="C1", uscc=A, commitment_date="2025-10-01", status="kept",
             verified_date="2025-12-01", reported_date="2025-12-03")
    lake.add("credit_commitments", commitment_no="C2", uscc=A, commitment_date="2026-03-01", status="pending",
             reported_date="2026-03-02")
    lake.add("credit_commitments", commitment_no="C2", uscc=A, commitment_date="2026-03-01", status="broken",
             verified_date="2026-07-10", reported_date="2026-07-12")
    # C3 was verified as kept before as_of, but the department reported it only after
    lake.add("credit_commitments", commitment_no="C3", uscc=A, commitment_date="2026-04-01", status="pending",
             reported_date="2026-04-02")
    lake.add("credit_commitments", commitment_no="C3", uscc=A, commitment_date="2026-04-01", status="kept",
             verified_date="2026-06-20", reported_date="2026-07-02")
    lake.add("credit_commitments", commitment_no="C0", uscc=A, commitment_date="2024-01-01", status="broken",
             verified_date="2024-03-01", reported_date="2024-03-02")

    # B: sales 1,000..12,000 yuan over the 12 months to May 2026, electricity exactly twice that
    for i, period in enumerate(month_start("2025-06", 12)):
        lake.add("tax_filings", uscc=B, period=period, sales=(i + 1) * 100_000, tax_paid=0, arrears=0, late="N",
                 filing_date=_add_month(period, 1, 5), reported_date=_add_month(period, 1, 8))
        lake.add("electricity", uscc=B, period=period, usage=2.0 * (i + 1) * 1_000, arrears=0,
                 reported_date=_add_month(period, 1, 10))
    return lake


@pytest.fixture(scope="module")
def records():
    return city().records()


@pytest.fixture(scope="module")
def a(records):
    return profiles_for([A], [day(AS_OF)], records).iloc[0]


def test_tax_returns_by_window(a):
    assert a["tax_sales_3m"] == 30_000 and a["tax_sales_6m"] == 60_000
    assert a["tax_sales_12m"] == 120_000 and a["tax_sales_24m"] == 180_000
    assert a["tax_sales_growth_12m"] == pytest.approx(math.log1p(120_000) - math.log1p(60_000))
    assert a["tax_sales_growth_3m_yoy"] == pytest.approx(math.log1p(30_000) - math.log1p(15_000))
    assert a["tax_sales_volatility_12m"] == 0
    assert a["tax_months_filed_12m"] == 12 and a["tax_months_late_12m"] == 1
    assert a["tax_late_share_12m"] == pytest.approx(1 / 12)
    assert a["tax_months_in_arrears_12m"] == 1 and a["tax_arrears_12m"] == 500
    assert a["tax_arrears_latest"] == 0  # May's return has none
    assert a["tax_paid_12m"] == 1_200  # 100 yuan a month
    assert a["tax_months_since_last_filing"] == 0  # June's return is not known yet


def test_tax_grade(a):
    assert a["tax_grade_latest"] == "B"
    assert a["tax_grade_is_a"] == 0 and a["tax_grade_is_c_or_d"] == 0
    assert a["tax_grade_change"] == -1  # A → B
    assert a["tax_grade_a_years_3y"] == 1


def test_utilities(a):
    assert a["elec_usage_12m"] == 10_000  # ten months of 1,000: March 2026 idle, April 2026 unbilled
    assert a["elec_usage_trend_yoy"] == pytest.approx(math.log1p(1_000) - math.log1p(3_000))
    assert a["elec_continuity_12m"] == pytest.approx(10 / 12)
    assert a["elec_months_without_use_12m"] == 2
    assert a["elec_arrears_latest"] == 200 and a["elec_months_in_arrears_12m"] == 1
    for absent in ("water_usage_12m", "water_usage_trend_yoy", "water_continuity_12m", "water_arrears_latest",
                   "gas_months_without_use_12m"):
        assert np.isnan(a[absent]), absent  # no account: absence, not zero
    assert a["has_electricity"] == 1 and a["has_water"] == 0 and a["has_gas"] == 0


def test_consistency(records, a):
    assert np.isnan(a["sales_electricity_corr_12m"])  # A's sales never vary
    assert a["sources_in_arrears"] == 1  # electricity only: May's return has no arrears
    b = profiles_for([B], [day(AS_OF)], records).iloc[0]
    assert b["sales_electricity_corr_12m"] == pytest.approx(1.0)
    assert np.isnan(b["sales_electricity_trend_gap"])  # no year-earlier months to compare


def test_real_estate(a):
    assert a["property_count"] == 2 and a["property_appraised_value"] == 4_000_000
    assert a["property_mortgaged_share"] == pytest.approx(0.25)
    assert a["property_seized_share"] == 0  # lifted before as_of
    assert a["property_mortgages_12m"] == 0  # registered 2025-01-01, more than 365 days before


def test_intellectual_property(a):
    assert (a["ip_invention_patents"], a["ip_utility_models"], a["ip_design_patents"]) == (1, 0, 0)
    assert a["ip_patents_granted_24m"] == 1  # the utility model (the invention was granted before 2024-06-30)
    assert a["ip_trademarks"] == 1 and a["ip_pledged"] == 1
    assert a["ip_software_copyrights"] == 0  # granted after as_of
    assert a["ip_lapsed_24m"] == 1


def test_court_and_dishonest_list(a):
    assert a["court_open_cases"] == 1 and a["court_open_amount"] == 50_000
    assert a["court_cases_24m"] == 1 and a["court_amount_24m"] == 50_000
    assert a["court_cases_total"] == 2  # E2 was reported after as_of
    assert a["court_days_since_last_case"] == day(AS_OF) - day("2025-03-01")
    # L1 was removed on 2026-05-01: though the platform learned of it only in August, it is gone
    assert a["dishonest_listed_now"] == 1 and a["dishonest_listings_24m"] == 1


def test_penalties_without_the_repaired_one(a):
    assert a["penalty_count_12m"] == 1 and a["penalty_count_36m"] == 1
    assert a["penalty_serious_36m"] == 0 and a["penalty_minor_36m"] == 1
    assert a["penalty_amount_36m"] == 20_000
    assert a["penalty_days_since_last"] == 171


def test_commitments(a):
    assert a["commitment_count_24m"] == 3 and a["commitment_kept_24m"] == 1 and a["commitment_broken_24m"] == 0
    assert a["commitment_kept_share_24m"] == 1 and a["commitment_pending"] == 2  # C2 and C3, as far as anyone knew


def test_firmographics_and_coverage(a):
    assert a["firm_age_years"] == pytest.approx((day(AS_OF) - day("2016-06-30")) / 365.25)
    assert a["registered_capital"] == 1_000_000
    assert (a["entity_type"], a["industry_section"], a["district_code"]) == ("enterprise", "C", "420502")
    covered = ("has_tax_filings", "has_tax_grade", "has_electricity", "has_real_estate", "has_intellectual_property",
               "has_court_record", "has_commitments")
    assert all(a[name] == 1 for name in covered)
    assert a["sources_covered"] == len(covered)


def test_before_a_repair_the_record_counts(records):
    """As of 2026-02-28 the serious penalty (repaired 2026-03-01) and the dishonest listing
    (removed 2026-05-01) both still count."""
    early = profiles_for([A], [day("2026-02-28")], records).iloc[0]
    assert early["penalty_count_36m"] == 2 and early["penalty_serious_36m"] == 1
    assert early["penalty_amount_36m"] == 70_000
    assert early["dishonest_listings_24m"] == 2 and early["dishonest_listed_now"] == 1


def test_versions_known_by_as_of_decide(records):
    """At the end of 2024 the mortgage of P1 (2025) and case E1 (2025) had not happened."""
    early = profiles_for([A], [day("2024-12-31")], records).iloc[0]
    assert early["property_mortgaged_share"] == 0  # the mortgage came in 2025
    assert early["court_open_cases"] == 0 and early["court_cases_total"] == 1


def test_who_is_alive(records):
    assert list(alive_on(day(AS_OF), records)) == sorted([A, B])
    assert list(alive_on(day("2026-02-28"), records)) == sorted([A, B, C])
    assert list(alive_on(day(AS_OF), records, usccs=[A, C])) == [A]
    profile = build_partition(records, day(AS_OF))
    assert list(profile["uscc"]) == sorted([A, B])


def test_columns_types_and_order_follow_the_registry(a, records):
    profile = profiles_for([B, A], [day(AS_OF), day("2026-01-31")], records)
    assert list(profile.columns) == ["uscc", "as_of", *(f.name for f in FEATURES)]
    assert list(profile["uscc"]) == [B, A]  # the order asked
    for f in FEATURES:
        if f.is_categorical:
            assert list(profile[f.name].cat.categories) == list(f.categories)
        else:
            assert profile[f.name].dtype == np.float64, f.name


def test_an_unknown_enterprise_gets_an_all_absent_row(records):
    row = profiles_for([CODES[5]], [day(AS_OF)], records).iloc[0]
    assert np.isnan(row["firm_age_years"]) and np.isnan(row["tax_sales_12m"])
    assert row["sources_covered"] == 0 and row["court_cases_total"] == 0


def test_months_before_an_enterprise_existed_are_not_months_it_failed_to_file():
    """Established 15 November 2025 and filing every month since: as of 2026-06-30 (anchor May) the
    five months of the window before it existed count as filed, so it has filed 12 of 12; a firm
    that skipped two of its own months has 10."""
    lake = Lake()
    young, skipper = CODES[4], CODES[5]
    for code in (young, skipper):
        registry(lake, code, established="2025-11-15", kind="individual_business", section="F")
    for period in month_start("2025-11", 7):
        for code in (young, skipper):
            if code == skipper and period in ("2026-01-01", "2026-02-01"):
                continue
            lake.add("tax_filings", uscc=code, period=period, sales=1_000_000, tax_paid=0, arrears=0, late="N",
                     filing_date=_add_month(period, 1, 5), reported_date=_add_month(period, 1, 8))
    profile = profiles_for([young, skipper], [day(AS_OF)] * 2, lake.records())
    assert profile["tax_months_filed_12m"].tolist() == [12.0, 10.0]


def test_a_department_silent_past_its_delivery_day_is_not_delivered_not_behaviour(records):
    """Electricity and tax returns for A stop after May and June 2026. As of 2026-08-31 (anchor
    July) both departments are past their delivery day: their features and coverage flags are
    missing ("not delivered"), never "no electricity used" or "no return filed"; as of 2026-06-30
    they were on time and read as before. The registers (court cases, penalties) are untouched."""
    from features.profile.pointintime import Deliveries, delivery_calendar

    calendar = {source: delivery_calendar(records[source]["period"].to_numpy(), records[source]["reported_date"].to_numpy())
                for source in ("tax_filings", "electricity")}
    delivered = Deliveries(records.keys(), calendar)
    on_time = profiles_for([A], [day(AS_OF)], records, delivered).iloc[0]
    assert on_time["elec_months_without_use_12m"] == profiles_for([A], [day(AS_OF)], records).iloc[0]["elec_months_without_use_12m"]
    assert on_time["has_electricity"] == 1 and on_time["tax_months_filed_12m"] == 12
    late = profiles_for([A], [day("2026-08-31")], records, delivered).iloc[0]
    blind = profiles_for([A], [day("2026-08-31")], records).iloc[0]
    assert blind["elec_months_without_use_12m"] > 0  # without the calendar the silence read as idle months
    for feature in ("elec_months_without_use_12m", "elec_usage_12m", "has_electricity", "tax_months_filed_12m",
                    "tax_sales_12m", "has_tax_filings"):
        assert math.isnan(late[feature]), feature
    assert late["court_cases_total"] == blind["court_cases_total"] and late["sources_covered"] < blind["sources_covered"]


def _window_edge(feature: str, inside: bool) -> str:
    """The first day of ``feature``'s declared window before AS_OF, or the day before it."""
    from features.profile.families import declared_months, window_days

    first = day(AS_OF) - window_days(declared_months(feature)) + 1
    return str(np.datetime64(int(first - (0 if inside else 1)), "D"))


def _event(source: str, date_column: str, **fields):
    """A recipe: one record of ``source`` for an enterprise whose ``date_column`` (and report) falls on the day."""
    def write(lake: Lake, code: str, on: str) -> None:
        lake.add(source, uscc=code, **{date_column: on, "reported_date": on, **fields})
    return write


EVENT_WINDOW_RECIPES = {
    "property_mortgages_12m": _event("real_estate", "mortgage_date", certificate_no="P", appraised_value=100,
                                     registration_date="2010-01-01"),
    "ip_patents_granted_24m": _event("intellectual_property", "grant_date", ip_no="I", ip_type="invention_patent",
                                     application_date="2010-01-01"),
    "ip_lapsed_24m": _event("intellectual_property", "lapse_date", ip_no="U", ip_type="utility_model",
                            application_date="2010-01-01", grant_date="2010-06-01"),
    "court_cases_24m": _event("court_executions", "filing_date", case_no="E", amount=100),
    "court_amount_24m": _event("court_executions", "filing_date", case_no="E", amount=100),
    "dishonest_listings_24m": _event("dishonest_debtors", "listing_date", case_no="L"),
    **{name: _event("administrative_penalties", "decision_date", decision_no="X", amount=100, severity=severity)
       for name, severity in (("penalty_count_12m", "general"), ("penalty_count_36m", "general"),
                              ("penalty_serious_36m", "serious"), ("penalty_minor_36m", "minor"),
                              ("penalty_amount_36m", "general"))},
    **{name: _event("credit_commitments", "commitment_date", commitment_no="C", status=status,
                    verified_date=None if status == "pending" else "2026-06-01")
       for name, status in (("commitment_count_24m", "pending"), ("commitment_kept_24m", "kept"),
                            ("commitment_broken_24m", "broken"), ("commitment_kept_share_24m", "kept"))},
}
MONTHLY_SOURCES = ("tax_filings", "electricity", "water", "gas")
EVENT_WINDOWED = [f.name for f in FEATURES if f.window_months and f.name != "tax_grade_a_years_3y"
                  and not set(f.sources) & set(MONTHLY_SOURCES)]


@pytest.fixture(scope="module")
def window_edges():
    """Per event feature, the profile of an enterprise with one event on its declared window's first
    day and of one with the event a day earlier: one enterprise each, all in one build."""
    from features.uscc import random_codes

    codes = iter(random_codes(np.random.default_rng(29), 2 * len(EVENT_WINDOW_RECIPES), entity_type="1"))
    lake, who = Lake(), {}
    for feature, write in EVENT_WINDOW_RECIPES.items():
        for inside in (True, False):
            code = who[feature, inside] = next(codes)
            registry(lake, code, established="2000-01-01")
            write(lake, code, _window_edge(feature, inside))
    profiles = profiles_for(list(who.values()), [day(AS_OF)] * len(who), lake.records()).set_index("uscc")
    return {key: profiles.loc[code] for key, code in who.items()}


@pytest.mark.parametrize("feature", EVENT_WINDOWED)
def test_an_event_counts_on_the_first_day_of_its_declared_window_and_not_the_day_before(feature, window_edges):
    """The registry declares each event feature's window (maturity and the feature list read it):
    an event on the window's first day counts, one a day earlier does not, whatever the window."""
    assert feature in EVENT_WINDOW_RECIPES, f"give {feature} a recipe: its declared window must be tested"
    inside, outside = window_edges[feature, True][feature], window_edges[feature, False][feature]
    assert inside > 0, (inside, outside)
    assert outside == 0 or math.isnan(outside), (inside, outside)


@pytest.mark.parametrize("years_back, counts", [(2, True), (3, False)])
def test_a_grades_window_holds_as_many_grade_years_as_it_declares(years_back, counts):
    """tax_grade_a_years_3y declares 36 months: the latest grade year and the two before it."""
    lake = Lake()
    registry(lake, A, established="2000-01-01")
    for year, grade in ((2025, "B"), (2025 - years_back, "A")):
        lake.add("tax_grades", uscc=A, year=year, grade=grade, published_date=f"{year + 1}-04-20",
                 reported_date=f"{year + 1}-04-25")
    value = profiles_for([A], [day(AS_OF)], lake.records()).iloc[0]["tax_grade_a_years_3y"]
    assert value == (1.0 if counts else 0.0)
