"""A disputed record found by its natural key, and what a settlement writes: a correction, a repair
or a withdrawal, each of which the ``--changed`` rebuild takes up as a full build would."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from features.corrections import RecordError, correct, find, remove, repair, withdrawn_keys
from features.lake import Lake
from features.profile.build import build, changed_enterprises, compute_profile, rebuild_changed
from features.profile.store import ProfileStore

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture
def home(profile_home, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(profile_home, copy)
    return copy


def _penalty(lake: Lake) -> pd.Series:
    penalties = lake.current("administrative_penalties", ("decision_no",), "reported_date")
    counted = penalties[penalties["repair_date"].isna() & (penalties["decision_date"] < "2026-01-01")]
    return counted.iloc[0]


def test_a_record_is_found_by_its_key_as_a_department_writes_it(profile_home):
    lake = Lake(profile_home)
    row = _penalty(lake)
    found = find(lake, "administrative_penalties", {"decision_no": f"  {row['decision_no']} "})
    assert found is not None and found.uscc == row["uscc"] and found.key == {"decision_no": row["decision_no"]}
    assert found.values["severity"] == row["severity"]
    assert find(lake, "administrative_penalties", {"decision_no": row["decision_no"] + "X"}) is None
    filings = lake.read("tax_filings", ["uscc", "period"]).iloc[0]
    month = filings["period"].strftime("%Y-%m")
    assert find(lake, "tax_filings", {"uscc": filings["uscc"].lower(), "period": month}).uscc == filings["uscc"]


@settings(max_examples=25, deadline=None)
@given(key=st.dictionaries(st.sampled_from(["decision_no", "case_no", "period", "uscc", "x"]),
                           st.text(max_size=30), max_size=3))
def test_any_key_is_found_or_refused_in_words(profile_home, key):
    try:
        found = find(Lake(profile_home), "administrative_penalties", key)
    except RecordError as error:
        assert "administrative_penalties" in str(error)
    else:
        assert found is None or found.key == {"decision_no": found.values["decision_no"]}


def test_a_correction_is_checked_by_the_ingestion_rules(profile_home):
    lake = Lake(profile_home)
    record = find(lake, "administrative_penalties", {"decision_no": _penalty(lake)["decision_no"]})
    for changes, rule in (({"severity": "very bad"}, "bad_enum:severity"), ({"decision_date": "2030-01-01"}, "future"),
                          ({"published_date": "1990-01-01"}, "date_order"), ({"decision_no": "X"}, "natural key"),
                          ({"colour": "red"}, "no column"), ({}, "at least one")):
        with pytest.raises(RecordError, match=rule):
            correct(lake, record, changes, "objection:test")
    with pytest.raises(RecordError, match="cannot be repaired"):
        repair(lake, find(lake, "court_executions", {"case_no": lake.read("court_executions")["case_no"].iloc[0]}),
               dt.date(2026, 1, 1), "objection:test")
    assert all(run.get("kind") != "correction" for run in lake.manifest()["runs"]), "a refused correction writes nothing"


def test_correction_repair_and_removal_reach_the_profile_as_a_full_build_would(home):
    first = build(home, AS_OF).profile.set_index("uscc")
    lake = Lake(home)
    penalties = lake.current("administrative_penalties", ("decision_no",), "reported_date")
    counted = penalties[penalties["repair_date"].isna() & (penalties["decision_date"] < "2026-01-01")
                        & penalties["severity"].isin(["serious", "severe"])]
    if len(counted) < 3:
        pytest.skip("the profile city has too few serious penalties")
    rows = counted.drop_duplicates("uscc").iloc[:3]
    codes = list(rows["uscc"])
    seen = ProfileStore(home).info(AS_OF).lake_runs

    correct(lake, find(lake, "administrative_penalties", {"decision_no": rows.iloc[0]["decision_no"]}),
            {"severity": "轻微"}, "objection:a")
    repair(lake, find(lake, "administrative_penalties", {"decision_no": rows.iloc[1]["decision_no"]}),
           dt.date(2026, 3, 1), "objection:b")
    withdrawn = find(lake, "administrative_penalties", {"decision_no": rows.iloc[2]["decision_no"]})
    remove(lake, withdrawn, "objection:c")
    assert int(withdrawn.key_hash) in withdrawn_keys(lake)["administrative_penalties"].tolist()
    assert find(lake, "administrative_penalties", {"decision_no": rows.iloc[2]["decision_no"]}) is None
    assert sorted(changed_enterprises(lake, AS_OF, seen)) == sorted(codes)

    [result] = rebuild_changed(home, dates=[AS_OF])
    assert result.rebuilt == 3
    after = ProfileStore(home).read(AS_OF)
    pd.testing.assert_frame_equal(after, compute_profile(Lake(home), AS_OF))
    after = after.set_index("uscc")
    for code in codes:
        assert after.loc[code, "penalty_serious_36m"] == first.loc[code, "penalty_serious_36m"] - 1
    # the removed penalty counts in no profile at any date; the corrected one is minor from its first report
    before_repair = compute_profile(Lake(home), dt.date(2026, 2, 1)).set_index("uscc")
    assert before_repair.loc[codes[1], "penalty_serious_36m"] >= 1  # repaired from 1 March only
