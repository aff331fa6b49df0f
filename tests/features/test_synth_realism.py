"""The synthetic city looks like Yichang: mix, thin files, grades, defaults, correlated signals.

Tolerances are wide enough for sampling noise on 40,000 entities and tight enough that a broken
calibration (a parameter off by a factor of two) fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.synth import params as P
from features.synth import records
from features.synth.population import Calendar, build_population

CALENDAR = Calendar(np.datetime64("2026-06", "M"), 24)


@pytest.fixture(scope="module")
def city():
    """Two chunks of 20,000 entities with the records the tests look at."""
    parts = []
    for chunk in range(2):
        pop = build_population(chunk, np.arange(chunk * 20_000, (chunk + 1) * 20_000), CALENDAR, seed=5)
        rng = np.random.default_rng([5, chunk, 1])
        cases = records.court_executions(pop, rng, chunk)
        _, loans = records.loan_outcomes(pop, rng, chunk)
        parts.append({
            "pop": pop, "loans": loans, "grades": records.tax_grades(pop, rng),
            "tax": records.tax_filings(pop, rng), "electricity": records.utility("electricity", pop, rng),
            "dishonest": records.dishonest_debtors(cases, pop, rng), "property": records.real_estate(pop, rng, cases, chunk),
            "penalties": records.administrative_penalties(pop, rng, chunk),
            "ip": records.intellectual_property(pop, rng, chunk), "registry": records.enterprise_registry(pop, rng),
            "cases": cases.drop(columns=["_entity", "_health"]), "truth": records.entity_truth(pop),
        })
    kinds = np.concatenate([p["pop"].kind for p in parts])
    codes = np.concatenate([p["pop"].codes for p in parts])
    out = {key: pd.concat([p[key] for p in parts], ignore_index=True) for key in parts[0] if key != "pop"}
    out["entities"] = pd.DataFrame({"uscc": codes, "kind": kinds,
                                    "district": np.concatenate([p["pop"].district for p in parts]),
                                    "section": np.concatenate([p["pop"].section for p in parts]),
                                    "alive_end": np.concatenate([p["pop"].alive[:, 23] for p in parts])})
    return out


def test_entity_mix_and_districts_follow_the_city_facts(city):
    entities = city["entities"]
    shares = entities["kind"].value_counts(normalize=True)
    for kind, share in P.ENTITY_MIX.items():
        assert shares[kind] == pytest.approx(share, abs=0.01)
    district = entities["district"].value_counts(normalize=True)
    total = sum(P.DISTRICT_SHARES.values())
    for code, share in P.DISTRICT_SHARES.items():
        assert district[code] == pytest.approx(share / total, abs=0.01)


def test_industry_mix_tilts_by_district(city):
    entities = city["entities"]
    enterprises = entities[entities["kind"] == "enterprise"]
    assert (enterprises["section"] == "F").mean() == pytest.approx(0.26, abs=0.03)
    manufacturing = enterprises.groupby("district")["section"].apply(lambda s: (s == "C").mean())
    assert manufacturing["420505"] > 1.8 * manufacturing["420502"]  # 猇亭 chemicals vs 西陵 services
    individuals = entities[entities["kind"] == "individual_business"]
    mountain = individuals[individuals["district"].isin(["420526", "420529"])]
    assert (mountain["section"] == "A").mean() > 2 * (individuals["section"] == "A").mean()


def test_individual_businesses_have_thin_files(city):
    entities, tax, prop = city["entities"], city["tax"], city["property"]
    filed = entities["uscc"].isin(tax["uscc"])
    individual = entities["kind"] == "individual_business"
    assert filed[individual].mean() < 0.4  # fixed quota and dormant ones do not file
    assert filed[entities["kind"] == "enterprise"].mean() > 0.9
    owners = entities["uscc"].isin(prop["uscc"])
    assert owners[individual].mean() < owners[entities["kind"] == "enterprise"].mean() / 2


def test_tax_grades_follow_the_published_shares(city):
    shares = city["grades"]["grade"].value_counts(normalize=True)
    for grade, share in P.TAX_GRADE_SHARES.items():
        assert shares[grade] == pytest.approx(share, abs=0.035), grade


def test_default_rate_and_its_order_by_grade(city):
    loans = city["loans"]
    assert 0.015 <= loans["defaulted_12m"].mean() <= 0.045
    latest = city["grades"].sort_values("year").drop_duplicates("uscc", keep="last")[["uscc", "grade"]]
    by_grade = loans.merge(latest, on="uscc").groupby("grade")["defaulted_12m"].mean()
    assert by_grade["A"] < by_grade["B"] < by_grade["C"] < by_grade["D"]
    assert by_grade["D"] > 0.08 and by_grade["A"] < 0.015


def test_loans_cover_enough_entities_and_amounts_centre_on_250k(city):
    loans, entities = city["loans"], city["entities"]
    borrowers_per_year = loans["uscc"].nunique() / 2 / entities["alive_end"].sum()
    assert borrowers_per_year > 0.04  # work plan item 17: >4 % of entities get a loan
    assert 180_000 <= loans["amount"].median() / 100 <= 330_000
    assert loans["amount"].max() <= P.LOAN_MAX * 100


def test_oracle_separates_defaults_well_but_not_perfectly(city):
    loans = city["loans"]
    ranks = loans["true_pd"].rank()
    positives = loans["defaulted_12m"]
    n_pos, n_neg = positives.sum(), (~positives).sum()
    auc = (ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    assert 0.78 <= auc <= 0.95


def test_sales_and_electricity_move_together(city):
    tax, electricity = city["tax"], city["electricity"]
    both = tax.merge(electricity, on=["uscc", "period"])
    both = both[(both["sales"] > 0) & (both["usage"] > 0)]
    correlation = np.corrcoef(np.log(both["sales"]), np.log(both["usage"]))[0, 1]
    assert correlation > 0.7


def test_dishonest_list_and_penalties_touch_a_few_percent(city):
    entities = city["entities"]
    enterprises = entities[(entities["kind"] == "enterprise") & entities["alive_end"]]
    listings = city["dishonest"].sort_values("reported_date").drop_duplicates("case_no", keep="last")
    on_list_now = listings.loc[listings["removal_date"].isna(), "uscc"]
    assert 0.005 <= enterprises["uscc"].isin(on_list_now).mean() <= 0.03
    penalised = enterprises["uscc"].isin(city["penalties"]["uscc"]).mean()
    assert 0.015 <= penalised <= 0.06  # 3-6 % in three years; this window is two


def test_penalties_are_mostly_published_within_seven_working_days(city):
    first = city["penalties"].sort_values("reported_date").drop_duplicates("decision_no")
    working_days = np.busday_count(first["decision_date"].to_numpy().astype("datetime64[D]"),
                                   first["published_date"].to_numpy().astype("datetime64[D]"))
    on_time = (working_days <= 7).mean()
    assert 0.8 <= on_time < 1.0


def test_nothing_happens_to_an_entity_after_it_is_deregistered(city):
    registry = city["registry"].sort_values("reported_date").drop_duplicates("uscc", keep="last")
    deregistered = registry.set_index("uscc")["deregistered_date"].dropna()
    assert len(deregistered) > 100
    for frame, column in ((city["tax"], "filing_date"), (city["property"], "registration_date"),
                          (city["property"], "mortgage_date"), (city["ip"], "application_date"),
                          (city["ip"], "grant_date"), (city["dishonest"], "listing_date"),
                          (city["cases"], "filing_date")):
        dated = frame[frame["uscc"].isin(deregistered.index)].dropna(subset=[column])
        assert (dated[column].to_numpy() < deregistered[dated["uscc"]].to_numpy()).all(), column


def test_newest_version_of_a_record_is_the_fullest(city):
    for frame, key, stages in ((city["property"], "certificate_no", ["registration_date", "mortgage_date",
                                "mortgage_release_date", "seizure_date", "seizure_release_date"]),
                               (city["ip"], "ip_no", ["application_date", "grant_date", "lapse_date", "pledge_date"]),
                               (city["dishonest"], "case_no", ["listing_date", "removal_date"])):
        ordered = frame.sort_values([key, "reported_date"])
        assert not ordered.duplicated([key, "reported_date"]).any()
        filled = ordered[stages].notna().sum(axis=1)
        assert (filled.groupby(ordered[key]).diff().dropna() > 0).all()


def test_seizures_are_lifted_after_they_start(city):
    seized = city["property"].dropna(subset=["seizure_date", "seizure_release_date"])
    assert (seized["seizure_release_date"] > seized["seizure_date"]).all()


def test_defaults_fall_within_twelve_months_of_grant(city):
    loans = city["loans"]
    defaulted = loans[loans["defaulted_12m"]]
    months = (defaulted["default_date"].dt.year - defaulted["grant_date"].dt.year) * 12 + \
        (defaulted["default_date"].dt.month - defaulted["grant_date"].dt.month)
    assert (months <= 11).all() and (defaulted["default_date"] > defaulted["grant_date"]).all()


def test_entities_registered_in_the_last_month_are_alive_at_its_end(city):
    registry = city["registry"].drop_duplicates("uscc")
    newest = registry[registry["established_date"] >= pd.Timestamp("2026-06-01")]["uscc"]
    truth = city["truth"].set_index("uscc")
    assert len(newest) > 0 and truth.loc[newest, "alive_at_end"].all()
