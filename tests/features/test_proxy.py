"""Distress events (the two-stage model's first-stage outcomes) and feature maturity, on tiny
hand-made lakes whose answers are worked out by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from features.profile.maturity import history_starts, maturity_table, mature
from features.proxy import (PROXY_EVENTS, ProxyEvent, distress_frame, enterprise_months, horizon_days,
                            label_end_day, month_ends)
from features.registry import BY_NAME, FEATURES
from tests.features.profile_fixtures import CODES, Lake, day, month_start, registry

A, B, C = CODES[:3]
AS_OF = "2025-06-30"


def _next_month(period: str, day_of_month: int) -> str:
    year, month = int(period[:4]), int(period[5:7]) + 1
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return f"{year:04d}-{month:02d}-{day_of_month:02d}"


def city() -> Lake:
    """A files every month from 2024-01 to 2026-05; from 2025-07 on it leaves tax unpaid in
    4 months, and a creditor has it enforced in 2025-10. B files cleanly and is deregistered in
    2026-02. C is clean all along."""
    lake = Lake()
    registry(lake, A, established="2015-01-01")
    registry(lake, B, established="2015-01-01")
    registry(lake, B, established="2015-01-01", deregistered="2026-02-01", reported="2026-02-03")
    registry(lake, C, established="2015-01-01")
    unpaid = {"2025-07-01", "2025-08-01", "2025-10-01", "2026-01-01"}
    for code in (A, B, C):
        for period in month_start("2024-01", 29):
            if code == B and period >= "2026-02-01":
                continue
            arrears = 10_000 if code == A and period in unpaid else 0
            lake.add("tax_filings", uscc=code, period=period, sales=1_000_000, tax_paid=10_000, late="N",
                     arrears=arrears, filing_date=_next_month(period, 10), reported_date=_next_month(period, 12))
    lake.add("court_executions", case_no="E1", uscc=A, filing_date="2025-10-15", amount=5_000_000,
             reported_date="2025-10-20")
    lake.add("court_executions", case_no="E0", uscc=C, filing_date="2024-03-01", amount=1_000_000,
             reported_date="2024-03-05")
    return lake


@pytest.fixture(scope="module")
def records():
    return city().records()


def test_events_in_the_next_twelve_months_are_read_from_the_profile_rules(records):
    delivered = frozenset({"enterprise_registry", "tax_filings", "court_executions"})
    frame = distress_frame(records, [A, B, C], np.full(3, day(AS_OF)), delivered).set_index("uscc")
    assert frame.loc[A, "event_tax_arrears"] == 1 and frame.loc[A, "event_court_case"] == 1
    assert frame.loc[A, "distress"] == 1
    assert frame.loc[B, "event_deregistered"] == 1 and frame.loc[B, "distress"] == 1
    # C's case is before as_of: no new case, nothing else happens
    assert frame.loc[C, "distress"] == 0 and frame.loc[C, "event_court_case"] == 0
    # events of sources never delivered are not invented
    assert "event_electricity_arrears" not in frame.columns and "event_dishonest_listing" not in frame.columns
    # the profile beside the label is the one as of as_of (the future does not leak into it)
    assert frame.loc[A, "court_cases_total"] == 0 and frame.loc[A, "tax_months_in_arrears_12m"] == 0


def test_three_months_of_arrears_are_not_enough_before_the_third(records):
    # as of 2025-03-31 the horizon's anchor month is 2026-01 or 2026-02: four unpaid months inside
    early = distress_frame(records, [A], [day("2025-03-31")])
    assert early["event_tax_arrears"].iloc[0] == 1
    # as of 2024-06-30 the horizon ends at anchor 2025-05: no unpaid month yet, no case yet
    earlier = distress_frame(records, [A], [day("2024-06-30")])
    assert earlier["distress"].iloc[0] == 0


def test_labels_need_the_whole_horizon_in_the_lake(records):
    end = label_end_day(records)
    assert end == day("2026-06-12")  # May 2026's returns, reported on 12 June
    days = month_ends(day("2024-12-01"), day("2026-06-30"))
    assert days[0] == day("2024-12-31") and days[-1] == day("2026-06-30") and len(days) == 19
    labelled = days[horizon_days(days) <= end]
    assert labelled[-1] == day("2025-05-31")


def test_enterprise_months_cover_the_living_and_sample_reproducibly(records):
    days = np.array([day("2025-06-30"), day("2026-03-31")])
    codes, as_of = enterprise_months(records, days)
    assert sorted(codes[as_of == days[0]]) == sorted([A, B, C])
    assert sorted(codes[as_of == days[1]]) == sorted([A, C])  # B is gone
    # stage 1 leaves the loan book's enterprises out: their outcomes are stage 2's
    codes, _ = enterprise_months(records, days, exclude={A})
    assert A not in set(codes) and sorted(set(codes)) == sorted([B, C])
    first = enterprise_months(records, days, max_rows=3, seed=4)
    again = enterprise_months(records, days, max_rows=3, seed=4)
    assert len(first[0]) == 3 and list(first[0]) == list(again[0])


def test_every_declared_event_reads_a_registered_feature_and_says_why():
    for event in PROXY_EVENTS:
        assert event.why and event.zh and event.en
        assert event.rule == "exits" or event.feature in BY_NAME
    with pytest.raises(ValueError, match="rule must be one of"):
        ProxyEvent("x", "court_cases_total", "sometimes", 0, "x", "x", "x")
    with pytest.raises(ValueError, match="12-month horizon"):
        ProxyEvent("x", "tax_months_late_24m", "at_least", 3, "x", "x", "x")


# ------------------------------------------------------------------------------ maturity

def test_history_starts_where_each_source_does(records):
    starts = history_starts(records)
    assert starts["tax_filings"] == day("2024-01-01")
    assert starts["court_executions"] == day("2024-03-01")
    assert "electricity" not in starts


def test_a_twelve_month_tax_window_is_mature_once_its_months_are_all_in_the_lake(records):
    starts = history_starts(records)
    sales_12m = BY_NAME["tax_sales_12m"]
    # as of 2025-01-23 the anchor month is 2024-11: the window 2023-12…2024-11 starts before 2024-01
    assert not mature(sales_12m, [day("2025-01-23")], starts)[0]
    # as of 2025-01-24 the anchor month is 2024-12: 2024-01…2024-12, all delivered
    assert mature(sales_12m, [day("2025-01-24")], starts)[0]
    # a feature with no window is a state, mature whenever its source was delivered
    assert mature(BY_NAME["court_open_cases"], [day("2024-03-02")], starts)[0]
    # a feature of a source never delivered is never mature
    assert not mature(BY_NAME["elec_usage_12m"], [day("2030-01-01")], starts)[0]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([f for f in FEATURES if f.window_months]), st.integers(0, 1500), st.integers(1, 400))
def test_maturity_never_ends_once_reached(feature, offset, step):
    starts = {source: day("2023-07-01") for source in feature.sources}
    first = day("2023-07-01") + offset
    early, late = mature(feature, [first, first + step], starts)
    assert late or not early


def test_the_maturity_table_names_the_first_mature_day(records):
    starts = history_starts(records)
    days = np.arange(day("2024-06-01"), day("2025-12-31"))
    table = maturity_table(days, starts, (BY_NAME["tax_sales_12m"], BY_NAME["tax_sales_24m"])).set_index("feature")
    assert table.loc["tax_sales_12m", "first_mature_as_of"] == "2025-01-24"
    assert table.loc["tax_sales_24m", "mature_share"] == 0 and pd.isna(table.loc["tax_sales_24m", "first_mature_as_of"])
    assert dt.date.fromisoformat(table.loc["tax_sales_12m", "first_mature_as_of"]) > dt.date(2024, 12, 31)
