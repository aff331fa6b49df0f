"""A disputed record found by its natural key, and what a settlement writes: a correction, a repair
or a withdrawal, each of which the ``--changed`` rebuild takes up as a full build would."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from features.corrections import RecordError, correct, find, remove, repair, withdrawn_keys
from features.lake import Lake
from features.profile.build import build, changed_enterprises, compute_profile, rebuild_changed
from features.profile.pointintime import NEEDED
from features.profile.store import ProfileStore
from features.schemas import MONEY_UNITS, SOURCES

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


# ------------------------------------------------------------------------------ the repair date, exactly

REPAIRABLE = [name for name, source in SOURCES.items() if source.repair_column and name in NEEDED]
"""Every source the profile reads whose records can be repaired or removed on a date."""


def _as_written(source: str, row: pd.Series) -> dict[str, str]:
    """A lake row as the department writes it (canonical headers, money in its unit)."""
    s = SOURCES[source]
    out = {}
    for column in s.columns:
        value = row[column.name]
        if pd.isna(value):
            out[column.name] = ""
        elif column.kind == "date":
            out[column.name] = pd.Timestamp(value).date().isoformat()
        elif column.kind == "period":
            out[column.name] = pd.Timestamp(value).strftime("%Y-%m")
        elif column.kind == "money":
            out[column.name] = str(Decimal(int(value)) / Decimal(MONEY_UNITS[column.unit]))
        else:
            out[column.name] = str(value)
    return out


def _repair_notices(home, folder, repaired_on: dt.date, counted_from: dt.date, alive: set[str]):
    """For each repairable source, a notice repairing one record on ``repaired_on`` that has
    counted since ``counted_from``, reported 45 days after the repair (so only its repair date,
    never its reporting date, reaches the profiles around it); each of another enterprise."""
    lake = Lake(home)
    files, records = [], []
    for source in REPAIRABLE:
        s = SOURCES[source]
        current = lake.current(source, s.natural_key, s.known_date)
        limit = pd.Timestamp(counted_from)
        candidates = current[current[s.repair_column].isna() & (current[s.event_date] < limit)
                             & (current[s.known_date] < limit) & current["uscc"].isin(alive)
                             & ~current["uscc"].isin([r["uscc"] for _, r in records])]
        for earlier, later in s.date_order:  # the repair must keep the source's date order
            if later == s.repair_column:
                candidates = candidates[candidates[earlier] <= pd.Timestamp(repaired_on)]
        assert len(candidates), f"the profile city has no {source} record to repair"
        row = candidates.iloc[0]
        notice = _as_written(source, row)
        notice[s.repair_column] = repaired_on.isoformat()
        notice[s.known_date] = (repaired_on + dt.timedelta(days=45)).isoformat()
        path = folder / f"{source}_repair.csv"
        pd.DataFrame([notice]).to_csv(path, index=False)
        files.append((source, path))
        records.append((source, row))
    return files, records


@pytest.mark.parametrize("repaired_on", [dt.date(2026, 6, 1), dt.date(2026, 5, 31)], ids=["first-of-month", "month-end"])
def test_a_changed_rebuild_after_a_repair_dated_r_equals_a_full_build_on_r_minus_1_r_and_r_plus_1(home, tmp_path,
                                                                                                   repaired_on):
    """A repair notice dated R that arrives after every stored profile's date: ``--changed``
    leaves the profiles as of R-1 (and the month end before R) exactly as they were, rebuilds
    the repaired enterprises in those as of R, R+1 and the month end after, and every stored
    profile is then what a full build gives: the record counts up to R-1 and, from R on, as if
    it had never been. For every source that takes repairs."""
    from features.ingest.run import ingest

    month_start = repaired_on.replace(day=1)
    next_month = (month_start + dt.timedelta(days=32)).replace(day=1)
    dates = sorted({repaired_on - dt.timedelta(days=1), repaired_on, repaired_on + dt.timedelta(days=1),
                    month_start - dt.timedelta(days=1), next_month - dt.timedelta(days=1)})
    before = {day: build(home, day).profile for day in dates}
    alive = set.intersection(*(set(profile["uscc"]) for profile in before.values()))
    files, records = _repair_notices(home, tmp_path, repaired_on, dates[0], alive)
    codes = sorted(row["uscc"] for _, row in records)
    report = ingest(home, files, today=repaired_on + dt.timedelta(days=50))
    assert report.totals()["accepted"] == len(files)

    results = {r.as_of: r for r in rebuild_changed(home)}
    lake, store = Lake(home), ProfileStore(home)
    for day in dates:
        stored = store.read(day)
        pd.testing.assert_frame_equal(stored, compute_profile(lake, day), obj=f"the profile as of {day}")
        if day < repaired_on:
            assert results[day].rebuilt == 0, f"as of {day}, before the repair, nothing is rebuilt"
            pd.testing.assert_frame_equal(stored, before[day], obj=f"the profile as of {day}")
        else:
            assert results[day].rebuilt == len(codes), f"as of {day}, the repaired enterprises are rebuilt"

    # from R on, each repaired record is as if it had never been; before R it still counts
    for source, row in records:
        s = SOURCES[source]
        remove(lake, find(lake, source, {c: str(row[c]) for c in s.natural_key}), "test:never-there")
    for day in dates:
        never_there = compute_profile(lake, day, usccs=codes)
        kept = store.read(day)
        kept = kept[kept["uscc"].isin(codes)].reset_index(drop=True)
        if day >= repaired_on:
            pd.testing.assert_frame_equal(kept, never_there, obj=f"the repaired enterprises as of {day}")
        else:
            for code in codes:
                assert not kept[kept["uscc"] == code].reset_index(drop=True).equals(
                    never_there[never_there["uscc"] == code].reset_index(drop=True)), \
                    f"as of {day} the record of {code} still counts"
