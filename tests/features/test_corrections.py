"""A disputed record found by its natural key, and what a settlement writes: a correction, a repair
or a withdrawal, each of which the ``--changed`` rebuild takes up as a full build would."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from features.corrections import (RecordError, correct, find, key_hash, remove, repair, run_for, withdrawals,
                                  withdrawn_keys)
from features.lake import Lake
from features.profile.build import build, changed_enterprises, compute_profile, rebuild_changed
from features.profile.pointintime import NEEDED
from features.profile.store import ProfileStore
from features.schemas import MONEY_UNITS, SOURCES
from tests.features.profile_fixtures import CODES, deliver, registered

AS_OF = dt.date(2026, 6, 30)


# ------------------------------------------------------------------------------ on a lake of a few records
# Three enterprises, a handful of records delivered over several runs, written by hand: each test
# knows every version of every record (ingestion takes a fraction of a second; no city is built).

A, B, C = CODES[:3]
P1, P2, P3 = "宜环罚〔2025〕1号", "宜环罚〔2025〕2号", "宜环罚〔2025〕3号"
CASE = "（2025）鄂0502执12号"


def _penalty_row(number: str, code: str, severity: str, reported: str, decided: str = "2025-03-01",
                 repaired: str | None = None) -> dict:
    return {"decision_no": number, "uscc": code, "department": "市生态环境局", "decision_date": decided,
            "severity": severity, "amount": "1.5", "published_date": "2025-03-05", "repair_date": repaired,
            "reported_date": reported}


@pytest.fixture
def small(tmp_path):
    """A lake of three enterprises and records with several versions, in five runs:

    * P1 (A): serious, reported 6 Mar; general, reported 1 Apr (run 3); minor, reported 20 Mar but
      ingested after both (run 4): the newest version is the general one, reported last;
    * P2 (A): serious, then severe (run 3), both reported 10 Mar: the tie goes to the one ingested last;
    * P3: A's, reported 6 Mar; moved to B by a version reported 1 Apr (run 3);
    * a court case of C, and A's tax return for January 2026."""
    folder = tmp_path / "in"
    folder.mkdir()
    home = tmp_path / "home"
    runs = deliver(home, [
        {"enterprise_registry": [registered(code) for code in (A, B, C)]},
        {"administrative_penalties": [_penalty_row(P1, A, "serious", "2025-03-06"),
                                      _penalty_row(P2, A, "serious", "2025-03-10"),
                                      _penalty_row(P3, A, "general", "2025-03-06")],
         "court_executions": [{"case_no": CASE, "uscc": C, "filing_date": "2025-02-01", "amount": "5000",
                               "reported_date": "2025-02-03"}],
         "tax_filings": [{"uscc": A, "period": "2026-01", "sales": "1000", "tax_payable": "10", "tax_paid": "10",
                          "arrears": "0", "filing_date": "2026-02-10", "late": "N", "reported_date": "2026-02-12"}]},
        {"administrative_penalties": [_penalty_row(P1, A, "general", "2025-04-01"),
                                      _penalty_row(P2, A, "severe", "2025-03-10"),
                                      _penalty_row(P3, B, "general", "2025-04-01")]},
        {"administrative_penalties": [_penalty_row(P1, A, "minor", "2025-03-20")]},
    ], folder)
    return home, Lake(home), runs


def test_a_record_named_by_several_versions_is_found_as_its_newest_version(small):
    """The version reported last, wherever it stands in the lake (not the one ingested last, not
    the first one read); between versions reported the same day, the one ingested last; a record
    moved to another enterprise is found as that enterprise's."""
    _, lake, _ = small
    p1 = find(lake, "administrative_penalties", {"decision_no": P1})
    assert p1.values["severity"] == "general" and p1.values["reported_date"] == dt.datetime(2025, 4, 1)
    assert p1.row.num_rows == 1 and p1.row.column("severity")[0].as_py() == "general"
    assert p1.row.column_names == list(SOURCES["administrative_penalties"].column_names)
    assert find(lake, "administrative_penalties", {"decision_no": P2}).values["severity"] == "severe"
    p3 = find(lake, "administrative_penalties", {"decision_no": P3})
    assert p3.uscc == B and p3.label() == f"administrative_penalties {P3}"


def test_a_record_is_found_by_its_key_written_any_way_ingestion_accepts_and_only_by_it(small):
    """Spaces around a key and a code in lower case find the record ingestion stored; another
    source's record, or a key no record has, finds nothing."""
    _, lake, _ = small
    case = find(lake, "court_executions", {"case_no": f"  {CASE} "})
    assert case is not None and case.uscc == C and case.key == {"case_no": CASE}
    # typed with half-width brackets, as a person often types the department's （2025）
    half = find(lake, "court_executions", {"case_no": CASE.replace("（", "(").replace("）", ")")})
    assert half is not None and half.key == {"case_no": CASE} and half.key_hash == case.key_hash
    filing = find(lake, "tax_filings", {"uscc": f" {A.lower()}", "period": "2026-01"})
    assert filing is not None and filing.uscc == A and filing.key == {"uscc": A, "period": "2026-01"}
    assert filing.label() == f"tax_filings {A} / 2026-01"
    assert find(lake, "tax_filings", {"uscc": A, "period": "2026-02"}) is None
    assert find(lake, "court_executions", {"case_no": P1}) is None
    assert find(lake, "credit_commitments", {"commitment_no": "C1"}) is None  # a source never delivered


@pytest.mark.parametrize("source, key, words", [
    ("administrative_penalties", {}, "named by decision_no; missing: decision_no"),
    ("administrative_penalties", {"decision_no": "  "}, "missing: decision_no"),
    ("administrative_penalties", {"decision_no": P1, "uscc": A}, "not part of the key: uscc"),
    ("tax_filings", {"uscc": A}, "named by uscc, period; missing: period"),
    ("tax_filings", {"uscc": A, "period": "2026-13"}, "breaks ingestion rule(s) bad_period:period"),
    ("tax_filings", {"uscc": A[:-1] + ("0" if A[-1] != "0" else "1"), "period": "2026-01"}, "uscc:"),
    ("loan_outcomes", {"loan_no": "L1"}, "unknown source 'loan_outcomes'"),
    ("penalties", {"decision_no": P1}, "an objection names one of enterprise_registry, tax_filings"),
])
def test_a_key_that_names_no_record_the_way_ingestion_would_is_refused_in_words(small, source, key, words):
    _, lake, _ = small
    with pytest.raises(RecordError) as refused:
        find(lake, source, key)
    assert words in str(refused.value)
    assert "loan_outcomes" not in str(refused.value).split("names one of")[-1]


def test_a_correction_is_a_new_version_reported_the_day_the_corrected_one_was_and_its_own_run(small):
    """The corrected version keeps the record's key (it is the same record), its reporting date
    and every column not corrected; it is committed alone, as a correction run naming the
    objection, and is the version found from then on."""
    _, lake, runs = small
    record = find(lake, "administrative_penalties", {"decision_no": P1})
    run = correct(lake, record, {"severity": "较重", "amount": "2"}, "objection:7")
    assert run.startswith("correction-") and run_for(lake, "objection:7") == run
    assert run_for(lake, "objection:none") is None
    [entry] = [r for r in lake.manifest()["runs"] if r["run_id"] == run]
    assert entry["kind"] == "correction" and entry["reference"] == "objection:7"
    assert entry["sources"] == {"administrative_penalties": {"accepted": 1}}
    rows = lake.read("administrative_penalties")
    new = rows[rows["_run_id"] == run]
    assert len(new) == 1
    new = new.iloc[0]
    assert new["_key_hash"] == record.key_hash and new["_file"] == "objection:7" and new["_line"] == 0
    assert new["severity"] == "serious" and new["amount"] == 2_000_000 and new["uscc"] == A
    assert new["reported_date"] == pd.Timestamp("2025-04-01") and new["decision_date"] == pd.Timestamp("2025-03-01")
    others = rows[rows["_run_id"] != run]
    assert new["_row_hash"] not in set(others["_row_hash"])
    found = find(lake, "administrative_penalties", {"decision_no": P1})
    assert found.values["severity"] == "serious" and found.values["amount"] == 2_000_000
    assert set(changed_enterprises(lake, dt.date(2025, 12, 31), runs)) == {A}


@pytest.mark.parametrize("changes, rule", [
    ({"severity": "very bad"}, "breaks ingestion rule(s) bad_enum:severity"),
    ({"severity": None}, "missing:severity"),
    ({"decision_date": "2099-01-01"}, "future"),
    ({"published_date": "2025-02-01"}, "date_order:decision_date>published_date"),
    ({"repair_date": "2025-03-01"}, "date_order:published_date>repair_date"),
    ({"uscc": "91420500MA4ABCDE1X"}, "breaks ingestion rule(s) uscc"),
    ({"decision_no": "X"}, "cannot change decision_no"),
    ({"reported_date": "2025-05-01"}, "cannot change reported_date"),
    ({"colour": "red", "shade": "dark"}, "has no column(s) colour, shade"),
    ({}, "at least one column"),
])
def test_a_correction_that_breaks_an_ingestion_rule_is_refused_and_writes_nothing(small, changes, rule):
    _, lake, _ = small
    before = lake.manifest()
    record = find(lake, "administrative_penalties", {"decision_no": P1})
    with pytest.raises(RecordError) as refused:
        correct(lake, record, changes, "objection:x")
    assert rule in str(refused.value)
    assert lake.manifest() == before


def test_a_correction_may_move_a_record_to_a_registered_enterprise_and_to_no_other(small):
    """A corrected code must be one the registry knows (checked only when the code changes); the
    record then counts for the enterprise it names from the day the wrong version was reported."""
    _, lake, _ = small
    record = find(lake, "administrative_penalties", {"decision_no": P2})
    from features.uscc import random_codes
    import numpy as np

    stranger = next(c for c in random_codes(np.random.default_rng(99), 5, entity_type="1") if c not in (A, B, C))
    with pytest.raises(RecordError, match="unknown_enterprise"):
        correct(lake, record, {"uscc": stranger}, "objection:stranger")
    correct(lake, record, {"uscc": C}, "objection:moved")
    assert find(lake, "administrative_penalties", {"decision_no": P2}).uscc == C
    profile = compute_profile(lake, dt.date(2025, 3, 10), usccs=[A, C]).set_index("uscc")
    # on 10 March A had P1, P2 and P3 (moved to B only on 1 April); P2 was never A's
    assert profile.loc[C, "penalty_count_12m"] == 1 and profile.loc[A, "penalty_count_12m"] == 2


def test_an_optional_column_may_be_cleared_and_an_unchanged_one_keeps_its_value(small):
    _, lake, _ = small
    record = find(lake, "administrative_penalties", {"decision_no": P2})
    correct(lake, record, {"repair_date": "2025-06-01"}, "objection:r")
    repaired = find(lake, "administrative_penalties", {"decision_no": P2})
    assert repaired.values["repair_date"] == dt.datetime(2025, 6, 1) and repaired.values["severity"] == "severe"
    correct(lake, repaired, {"repair_date": None}, "objection:r2")
    assert find(lake, "administrative_penalties", {"decision_no": P2}).values["repair_date"] is None


def test_a_repair_counts_the_record_before_its_date_and_never_from_it_and_only_sources_with_one_take_it(small):
    _, lake, runs = small
    record = find(lake, "administrative_penalties", {"decision_no": P1})
    run = repair(lake, record, dt.date(2025, 6, 1), "objection:repair")
    assert run.startswith("correction-") and run_for(lake, "objection:repair") == run
    assert find(lake, "administrative_penalties", {"decision_no": P1}).values["repair_date"] == dt.datetime(2025, 6, 1)
    counts = {day: compute_profile(lake, day, usccs=[A]).iloc[0]["penalty_count_12m"]
              for day in (dt.date(2025, 5, 31), dt.date(2025, 6, 1))}
    assert counts == {dt.date(2025, 5, 31): 2, dt.date(2025, 6, 1): 1}  # P1 and P2 (P3 moved to B), then P2
    # the repaired version stands in from the day the one it corrects was reported (1 April):
    # profiles from then on may change, none before
    assert changed_enterprises(lake, dt.date(2025, 6, 1), runs) == [A]
    assert changed_enterprises(lake, dt.date(2025, 4, 1), runs) == [A]
    assert changed_enterprises(lake, dt.date(2025, 3, 31), runs) == []
    before = lake.manifest()
    with pytest.raises(RecordError, match="court_executions records cannot be repaired "
                                          r"\(only dishonest_debtors, administrative_penalties carry a repair date\)"):
        repair(lake, find(lake, "court_executions", {"case_no": CASE}), dt.date(2025, 6, 1), "objection:no")
    assert lake.manifest() == before


def test_a_removed_record_is_found_no_more_and_is_listed_by_its_run(small):
    """A withdrawal names the record's source, key and enterprise and the objection; it hides that
    record only (the same key in another source, or another record, is still found)."""
    _, lake, runs = small
    assert withdrawn_keys(lake) == {}
    assert list(withdrawals(lake).columns) == ["source", "_key_hash", "uscc", "reference", "withdrawn_at", "_run_id"]
    assert len(withdrawals(lake)) == 0
    first = remove(lake, find(lake, "administrative_penalties", {"decision_no": P3}), "objection:gone")
    second = remove(lake, find(lake, "administrative_penalties", {"decision_no": P1}), "objection:gone-too")
    third = remove(lake, find(lake, "court_executions", {"case_no": CASE}), "objection:case")
    assert first.startswith("withdrawal-") and run_for(lake, "objection:gone") == first
    assert find(lake, "administrative_penalties", {"decision_no": P3}) is None
    assert find(lake, "administrative_penalties", {"decision_no": P2}) is not None
    keys = withdrawn_keys(lake)
    hashes = [key_hash(SOURCES["administrative_penalties"], {"decision_no": n})[0] for n in (P1, P3)]
    assert keys["administrative_penalties"].tolist() == sorted(hashes)
    assert keys["administrative_penalties"].dtype == np.uint64
    assert keys["court_executions"].tolist() == [key_hash(SOURCES["court_executions"], {"case_no": CASE})[0]]
    listed = withdrawals(lake, [first, third])
    assert listed[["source", "uscc", "reference"]].values.tolist() == [
        ["administrative_penalties", B, "objection:gone"], ["court_executions", C, "objection:case"]]
    assert len(withdrawals(lake)) == 3 and len(withdrawals(lake, [])) == 0
    assert sorted(changed_enterprises(lake, dt.date(2025, 12, 31), runs)) == [A, B, C]
    profile = compute_profile(lake, dt.date(2025, 12, 31)).set_index("uscc")
    assert profile.loc[A, "penalty_count_12m"] == 1 and profile.loc[B, "penalty_count_12m"] == 0
    assert second in [r["run_id"] for r in lake.manifest()["runs"]]


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
