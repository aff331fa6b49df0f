"""The point-in-time rules as properties over a generated city, and the builds a user runs:
full, incremental, after new data, training snapshots, Dask beside pandas."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from features.lake import Lake
from features.profile.distributed import partition_sizes
from features.profile.build import (ProfileBuildError, build, changed_enterprises, compute_profile, lake_view, load_records,
                                    rebuild_changed, training_snapshots)
from features.profile.compute import LOAN_COLUMNS, build_partition, profiles_for
from features.profile.pointintime import KEY, NEEDED, NEVER, PERIOD, SEQ, day_number
from features.profile.store import ProfileStore
from features.schemas import SOURCES
from tests.features.profile_fixtures import codes_of, records  # noqa: F401 (the fixture, by name)

FIRST_DAY, LAST_DAY = day_number("2025-01-01"), day_number("2026-06-30")
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _dates(source: str, frame: pd.DataFrame) -> list[str]:
    """The prepared frame's date columns (day numbers)."""
    s = SOURCES[source]
    named = dict.fromkeys([s.event_date, s.known_date, *(c.name for c in s.columns if c.kind in ("date", "period"))])
    return [c for c in named if c in frame]


def _later(frame: pd.DataFrame, source: str, as_of: int, rng: np.random.Generator, count: int) -> pd.DataFrame:
    """Records the platform could only have after as_of: new records that happen after it, and
    new versions of held records reported after it (any content; a repair after as_of)."""
    if not len(frame):
        return frame
    s = SOURCES[source]
    picked = frame.iloc[rng.integers(0, len(frame), count)].reset_index(drop=True)
    new = picked.copy()
    new[KEY] = rng.integers(1, 2**63, len(new), dtype=np.int64).astype(np.uint64)
    shift = as_of + 1 - new[s.event_date].to_numpy() + rng.integers(0, 400, len(new))
    for column in _dates(source, frame):
        values = new[column].to_numpy()
        new[column] = np.where(values == NEVER, NEVER, values + shift)
    if PERIOD in new:
        new[PERIOD] = new[PERIOD] + shift // 28 + 1
    out = [new]
    if s.accepts_corrections:
        version = picked.copy()
        version[s.known_date] = as_of + 1 + rng.integers(0, 400, len(version))
        for column in _dates(source, frame):
            if column not in (s.event_date, s.known_date):
                version[column] = np.where(rng.random(len(version)) < 0.5, NEVER,
                                           as_of - 200 + rng.integers(0, 400, len(version)))
        if s.repair_column:
            version[s.repair_column] = np.where(rng.random(len(version)) < 0.5, NEVER,
                                                as_of + 1 + rng.integers(0, 100, len(version)))
        out.append(version)
    later = pd.concat(out, ignore_index=True)
    later[SEQ] = frame[SEQ].max() + 1 + np.arange(len(later))
    return later


@SETTINGS
@given(as_of=st.integers(FIRST_DAY, LAST_DAY), seed=st.integers(0, 2**32 - 1))
def test_records_dated_after_as_of_never_change_a_profile(records, as_of, seed):
    held = records
    rng = np.random.default_rng(seed)
    grown = {s: pd.concat([f, _later(f, s, as_of, rng, 30)], ignore_index=True) for s, f in held.items()}
    before = build_partition(held, as_of)
    after = build_partition(grown, as_of)
    pd.testing.assert_frame_equal(before, after)
    assert len(before) > 100


def _repairable(held: dict[str, pd.DataFrame]) -> list[tuple[str, int]]:
    return [(s, i) for s in ("administrative_penalties", "dishonest_debtors") for i in range(len(held[s]))]


@SETTINGS
@given(pick=st.integers(0, 10**9), repair_offset=st.integers(0, 500), as_of_offset=st.integers(-300, 300),
       reported_offset=st.integers(-30, 400))
def test_a_repaired_record_counts_before_its_repair_date_and_never_from_it(records, pick, repair_offset,
                                                                         as_of_offset, reported_offset):
    """Whenever the notice arrives, a record repaired on R is absent from every profile with
    as_of >= R, exactly as if it had never been, and the notice changes nothing before R."""
    held = records
    source, index = _repairable(held)[pick % len(_repairable(held))]
    s = SOURCES[source]
    frame = held[source]
    key = frame[KEY].iloc[index]
    # start from the record never repaired, then a notice repairs it on repair_day
    unrepaired = frame.assign(**{s.repair_column: np.where(frame[KEY] == key, NEVER, frame[s.repair_column])})
    record = unrepaired.iloc[[index]]
    code = record["uscc"].iloc[0]
    repair_day = int(record[s.event_date].iloc[0]) + repair_offset
    as_of = repair_day + as_of_offset
    notice = record.assign(**{s.repair_column: repair_day, s.known_date: repair_day + reported_offset,
                              SEQ: frame[SEQ].max() + 1})
    repaired = {**held, source: pd.concat([unrepaired, notice], ignore_index=True)}
    with_notice = profiles_for([code], [as_of], repaired)
    if as_of >= repair_day:
        never_there = {**held, source: frame[frame[KEY] != key]}
        pd.testing.assert_frame_equal(with_notice, profiles_for([code], [as_of], never_there))
    else:
        pd.testing.assert_frame_equal(with_notice, profiles_for([code], [as_of], {**held, source: unrepaired}))
        if record[s.event_date].iloc[0] <= as_of and record[s.known_date].iloc[0] <= as_of:
            never_there = {**held, source: frame[frame[KEY] != key]}
            assert not with_notice.equals(profiles_for([code], [as_of], never_there)), "the record should count"


@SETTINGS
@given(as_of=st.integers(FIRST_DAY, LAST_DAY), share=st.floats(0.01, 1.0), seed=st.integers(0, 2**32 - 1))
def test_an_incremental_build_gives_what_the_full_build_gives(records, as_of, share, seed):
    held, codes = records, codes_of(records)
    chosen = list(np.random.default_rng(seed).choice(codes, max(1, int(share * len(codes))), replace=False))
    part = build_partition(held, as_of, chosen)
    full = build_partition(held, as_of)
    expected = full[full["uscc"].isin(chosen)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected)


def test_an_incremental_build_reads_only_what_it_needs_and_still_agrees(profile_home):
    """The real --uscc path loads only the listed enterprises' records from the lake."""
    lake = Lake(profile_home)
    full = compute_profile(lake, dt.date(2026, 3, 31))
    chosen = list(full["uscc"].sample(40, random_state=3))
    part = compute_profile(lake, dt.date(2026, 3, 31), usccs=chosen)
    pd.testing.assert_frame_equal(part, full[full["uscc"].isin(chosen)].reset_index(drop=True))


def test_training_snapshots_are_each_loans_profile_as_of_its_grant_date(profile_home):
    snapshots = training_snapshots(profile_home)
    loans = Lake(profile_home).current("loan_outcomes", ("loan_no",), "reported_date")
    assert len(snapshots) == len(loans) > 200
    assert snapshots["loan_no"].tolist() == loans["loan_no"].tolist()
    assert (snapshots["as_of"] == snapshots["grant_date"].astype("datetime64[ms]").dt.normalize()).all()
    records, delivered = load_records(Lake(profile_home)), lake_view(Lake(profile_home)).delivered
    for row in snapshots.sample(12, random_state=1).itertuples():
        day = day_number(row.as_of.date())
        full = build_partition(records, day, None, delivered)
        expected = full[full["uscc"] == row.uscc].reset_index(drop=True)
        got = snapshots[snapshots["loan_no"] == row.loan_no].drop(columns=list(LOAN_COLUMNS)).reset_index(drop=True)
        assert len(expected) == 1, "every borrower is alive on its grant date"
        pd.testing.assert_frame_equal(got, expected)


def test_dask_on_a_local_cluster_gives_what_pandas_gives(profile_home):
    as_of = dt.date(2026, 5, 31)
    lake = Lake(profile_home)
    # five partitions, each holding part of every source: the same function on each piece
    assert all(size > 0 for size in partition_sizes(lake, "electricity", 5))
    pandas_profile = compute_profile(lake, as_of)
    dask_profile = compute_profile(lake, as_of, engine="dask", workers=2, partitions=5)
    pd.testing.assert_frame_equal(pandas_profile, dask_profile, check_exact=True)
    codes = list(pandas_profile["uscc"].iloc[::7])
    pd.testing.assert_frame_equal(compute_profile(lake, as_of, "dask", codes, partitions=3),
                                  pandas_profile[pandas_profile["uscc"].isin(codes)].reset_index(drop=True))
    pd.testing.assert_frame_equal(training_snapshots(profile_home, "dask", partitions=4),
                                  training_snapshots(profile_home))


@pytest.fixture
def home(profile_home, tmp_path):
    """A copy of the city's home that a test may change."""
    copy = tmp_path / "home"
    shutil.copytree(profile_home, copy)
    return copy


AS_OF = dt.date(2026, 6, 30)


def _repair_notice(home, folder) -> tuple[str, str, Path]:
    """A department's correction repairing one unrepaired penalty on 2026-06-01 (reported in
    July), written as a CSV with English headers; returns (uscc, decision_no, file)."""
    lake = Lake(home)
    penalties = lake.current("administrative_penalties", ("decision_no",), "reported_date")
    open_ones = penalties[penalties["repair_date"].isna() & (penalties["decision_date"] < "2026-05-01")]
    row = open_ones.iloc[0]
    notice = pd.DataFrame([{
        "decision_no": row["decision_no"], "uscc": row["uscc"], "department": row["department"],
        "decision_date": row["decision_date"].date().isoformat(), "severity": row["severity"],
        "amount": f"{row['amount'] / 1_000_000:.2f}", "published_date": row["published_date"].date().isoformat(),
        "repair_date": "2026-06-01", "reported_date": "2026-07-15"}])
    path = folder / "penalty_repairs.csv"
    notice.to_csv(path, index=False)
    return row["uscc"], row["decision_no"], path


def test_a_repair_notice_marks_its_enterprise_and_changed_rebuilds_it_as_a_full_build_would(home, tmp_path):
    from features.ingest.run import ingest

    first = build(home, AS_OF)
    code, _, notice = _repair_notice(home, tmp_path)
    before = first.profile.set_index("uscc").loc[code]
    assert before["penalty_count_36m"] >= 1
    report = ingest(home, [("administrative_penalties", notice)], today=dt.date(2026, 7, 20))
    assert report.totals()["accepted"] == 1
    store = ProfileStore(home)
    assert changed_enterprises(Lake(home), AS_OF, store.info(AS_OF).lake_runs) == [code]
    # a profile before the repair date is not touched by it
    assert changed_enterprises(Lake(home), dt.date(2026, 5, 31), store.info(AS_OF).lake_runs) == []

    results = rebuild_changed(home)
    assert [r.rebuilt for r in results] == [1]
    stored = store.read(AS_OF)
    pd.testing.assert_frame_equal(stored, compute_profile(Lake(home), AS_OF))
    after = stored.set_index("uscc").loc[code]
    assert after["penalty_count_36m"] == before["penalty_count_36m"] - 1
    # nothing new since: a second run rebuilds nothing
    assert [r.rebuilt for r in rebuild_changed(home)] == [0]


def test_an_update_by_uscc_list_replaces_only_those_rows(home):
    full = build(home, AS_OF).profile
    chosen = list(full["uscc"].iloc[[3, 50, 400]])
    stored_before = ProfileStore(home).read(AS_OF)
    result = build(home, AS_OF, usccs=chosen + ["91420500MA00000000"])
    assert result.mode == "incremental" and result.rebuilt == 3
    pd.testing.assert_frame_equal(ProfileStore(home).read(AS_OF), stored_before)
    info = ProfileStore(home).info(AS_OF)
    assert info.rebuilt[-1]["enterprises"] == 3 and info.rows == len(full)


def test_builds_refuse_what_they_cannot_do(home, tmp_path):
    with pytest.raises(ProfileBuildError, match="no stored profile as of 2026-01-31"):
        build(home, dt.date(2026, 1, 31), usccs=["91420500MA00000000"])
    with pytest.raises(ProfileBuildError, match="holds no enterprise registry"):
        build(tmp_path / "empty-home", AS_OF)
    with pytest.raises(ProfileBuildError, match="engine must be one of"):
        build(home, AS_OF, engine="spark")


def test_a_stored_profile_carries_its_date_version_and_lake_runs(home):
    from features.registry import feature_set_version

    build(home, AS_OF)
    info = ProfileStore(home).info(AS_OF)
    assert info.as_of == "2026-06-30" and info.feature_set_version == feature_set_version()
    assert info.lake_runs == [run["run_id"] for run in Lake(home).manifest()["runs"]]
    assert ProfileStore(home).dates() == [AS_OF]


def _moved_penalty(home, folder) -> tuple[str, str, Path]:
    """A department's correction that moves one penalty to another enterprise (the code was
    wrong at the source), reported in July 2026; returns (old code, new code, file)."""
    lake = Lake(home)
    penalties = lake.current("administrative_penalties", ("decision_no",), "reported_date")
    row = penalties[penalties["repair_date"].isna() & (penalties["decision_date"] < "2026-05-01")].iloc[0]
    registry = lake.current("enterprise_registry", ("uscc",), "reported_date")
    target = registry[registry["deregistered_date"].isna() & (registry["uscc"] != row["uscc"])]["uscc"].iloc[0]
    notice = pd.DataFrame([{
        "decision_no": row["decision_no"], "uscc": target, "department": row["department"],
        "decision_date": row["decision_date"].date().isoformat(), "severity": row["severity"],
        "amount": f"{row['amount'] / 1_000_000:.2f}", "published_date": row["published_date"].date().isoformat(),
        "reported_date": "2026-07-10"}])
    path = folder / "penalty_moved.csv"
    notice.to_csv(path, index=False)
    return row["uscc"], target, path


LATER = dt.date(2026, 7, 31)


def test_a_record_moved_to_another_enterprise_counts_once_for_the_right_one_everywhere(home, tmp_path):
    from features.ingest.run import ingest

    before = build(home, LATER).profile.set_index("uscc")
    old, new, path = _moved_penalty(home, tmp_path)
    assert ingest(home, [("administrative_penalties", path)], today=dt.date(2026, 7, 20)).totals()["accepted"] == 1
    lake = Lake(home)
    assert set(changed_enterprises(lake, LATER, ProfileStore(home).info(LATER).lake_runs)) == {old, new}
    full = compute_profile(lake, LATER).set_index("uscc")
    assert full.loc[old, "penalty_count_36m"] == before.loc[old, "penalty_count_36m"] - 1
    assert full.loc[new, "penalty_count_36m"] == before.loc[new, "penalty_count_36m"] + 1
    # as of a day before the correction was reported, the penalty was still the old one's
    early = compute_profile(lake, dt.date(2026, 7, 9), usccs=[old, new]).set_index("uscc")
    assert early.loc[old, "penalty_count_36m"] == before.loc[old, "penalty_count_36m"]
    for engine in ("pandas", "dask"):
        part = compute_profile(lake, LATER, engine, [old, new], partitions=3).set_index("uscc")
        pd.testing.assert_frame_equal(part, full.loc[sorted([old, new])])
    rebuild_changed(home)
    pd.testing.assert_frame_equal(ProfileStore(home).read(LATER), full.reset_index())


def test_a_lake_with_only_the_registry_gives_missing_features_not_zeros(profile_city, tmp_path):
    from features.ingest.run import ingest

    registry_files = sorted((profile_city / "enterprise_registry").iterdir())
    home = tmp_path / "registry-only"
    ingest(home, [("enterprise_registry", f) for f in registry_files])
    profile = build(home, AS_OF).profile
    assert len(profile) > 900
    assert profile["court_cases_total"].isna().all() and profile["penalty_count_12m"].isna().all()
    assert profile["has_tax_filings"].isna().all() and profile["sources_covered"].isna().all()
    assert profile["firm_age_years"].notna().all()
    assert (build(home, dt.date(1990, 1, 1)).profile["firm_age_years"] >= 0).all()


def test_a_late_monthly_delivery_reported_before_as_of_reaches_every_profile_through_changed(home, tmp_path):
    """A department past its delivery day on D (its features 'not delivered' for everyone) whose
    month arrives after the profile as of D was built, reported on or before D: ``--changed``
    gives what a full build gives, for the enterprises it billed and for every other one."""
    from features.ingest.run import ingest

    as_of = dt.date(2026, 7, 25)  # from the 24th the anchor is June, which the city never delivered
    assert build(home, as_of).profile["has_electricity"].isna().all()
    bills = Lake(home).read("electricity")
    june = bills[bills["period"] == bills["period"].max()].sample(frac=0.5, random_state=0)
    path = tmp_path / "electricity_2026-06.csv"
    pd.DataFrame({"uscc": june["uscc"], "account_no": june["account_no"], "period": "2026-06",
                  "usage": june["usage"], "billed": june["billed"] / 100, "paid": june["paid"] / 100,
                  "arrears": june["arrears"] / 100, "reported_date": "2026-07-20"}).to_csv(path, index=False)
    assert ingest(home, [("electricity", path)], today=dt.date(2026, 7, 28)).totals()["accepted"] == len(june)
    rebuild_changed(home)
    pd.testing.assert_frame_equal(ProfileStore(home).read(as_of), compute_profile(Lake(home), as_of))


# ------------------------------------------------------------------------------ --changed on a lake of a few records
# Six enterprises and a handful of records written by hand, ingested run by run: which
# enterprises a new run marks, and what --changed rebuilds, at the exact days the rules turn on.

from features.corrections import correct, find, remove  # noqa: E402
from features.profile.build import unseen_runs  # noqa: E402
from tests.features.profile_fixtures import CODES, deliver, registered  # noqa: E402

A, B, C, D, E, F = CODES[:6]
DAY = dt.date(2025, 6, 30)
"""The as_of the small lake's profiles are built on."""


def _penalty(number: str, code: str, decided: str, reported: str, repaired: str | None = None) -> dict:
    return {"decision_no": number, "uscc": code, "department": "市市场监管局", "decision_date": decided,
            "severity": "general", "amount": "1", "published_date": decided, "repair_date": repaired,
            "reported_date": reported}


def _bill(code: str, month: str, known: str) -> dict:
    return {"uscc": code, "account_no": f"E-{code[-6:]}", "period": month, "usage": "100", "billed": "80",
            "paid": "80", "arrears": "0", "reported_date": known}


@pytest.fixture
def small(tmp_path):
    """Six enterprises; each of C, D, E and F has an open penalty from January 2025."""
    folder = tmp_path / "in"
    folder.mkdir()
    home = tmp_path / "home"
    runs = deliver(home, [{"enterprise_registry": [registered(code) for code in CODES[:6]],
                           "administrative_penalties": [_penalty(f"P-{code[-4:]}", code, "2025-01-10", "2025-01-15")
                                                        for code in (C, D, E, F)]}], folder)
    return home, folder, runs


def test_the_runs_a_stored_profile_has_not_seen_are_those_committed_after_it_in_order(small):
    home, folder, _ = small
    build(home, DAY)
    info = ProfileStore(home).info(DAY)
    assert unseen_runs(Lake(home), info) == []
    later = deliver(home, [{"administrative_penalties": [_penalty("N1", A, "2025-06-01", "2025-06-02")]},
                           {"administrative_penalties": [_penalty("N2", B, "2025-06-01", "2025-06-02")]}], folder)
    assert unseen_runs(Lake(home), info) == later


def test_a_new_run_marks_exactly_the_enterprises_whose_profile_as_of_d_it_can_change(small):
    """Marked as of D: a record that has happened and is known by D (reported on D itself), one
    that happened on D itself, a repair dated D (reported long after), a record moved between two
    enterprises (both), a record withdrawn on objection. Not marked: a record reported on D+1, a
    repair dated D+1."""
    home, folder, seen = small
    lake = Lake(home)
    moved = find(lake, "administrative_penalties", {"decision_no": f"P-{D[-4:]}"})
    runs = deliver(home, [{"administrative_penalties": [
        _penalty("N-A", A, "2025-06-01", "2025-06-30"),                        # known on D
        _penalty("N-B", B, "2025-06-01", "2025-07-01"),                        # known on D+1
        _penalty(f"P-{C[-4:]}", C, "2025-01-10", "2025-08-01", "2025-06-30"),  # repaired on D
        _penalty(f"P-{E[-4:]}", E, "2025-01-10", "2025-08-01", "2025-07-01"),  # repaired on D+1
        _penalty("N-E", E, "2025-06-30", "2025-06-30"),                        # happened and known on D
    ]}], folder)
    correct(lake, moved, {"uscc": B}, "objection:moved")                   # reported (as the first) in January
    remove(lake, find(lake, "administrative_penalties", {"decision_no": f"P-{F[-4:]}"}), "objection:gone")
    assert changed_enterprises(lake, DAY, seen) == sorted([A, B, C, D, E, F])
    assert changed_enterprises(lake, DAY - dt.timedelta(days=1), seen) == sorted([B, D, F])
    assert changed_enterprises(lake, DAY, seen + runs) == sorted([B, D, F])
    assert changed_enterprises(lake, DAY, seen, runs=seen + runs) == sorted([A, C, E])  # only the runs named
    assert changed_enterprises(lake, DAY, [r["run_id"] for r in lake.manifest()["runs"]]) == []


def test_a_source_delivered_for_the_first_time_marks_every_enterprise(small):
    home, folder, seen = small
    deliver(home, [{"court_executions": [{"case_no": "K1", "uscc": A, "filing_date": "2025-09-01", "amount": "10",
                                          "reported_date": "2025-09-02"}]}], folder)
    assert changed_enterprises(Lake(home), DAY, seen) == sorted(CODES[:6])


def test_a_month_that_moves_what_is_known_by_d_marks_every_enterprise_and_a_late_old_bill_only_its_own(small):
    """February's bills of A, known on 10 March: every profile from then on (the anchor month, and
    so whether electricity is silent, turns on it for everyone), none before. A January bill of C
    that comes late, once February is known, marks C alone."""
    home, folder, first = small
    january = deliver(home, [{"electricity": [_bill(A, "2025-01", "2025-02-10"), _bill(B, "2025-01", "2025-02-10")]}],
                      folder)
    february = deliver(home, [{"electricity": [_bill(A, "2025-02", "2025-03-10")]}], folder)
    lake = Lake(home)
    seen = first + january
    assert changed_enterprises(lake, dt.date(2025, 3, 10), seen) == sorted(CODES[:6])
    assert changed_enterprises(lake, dt.date(2025, 3, 9), seen) == []
    deliver(home, [{"electricity": [_bill(C, "2025-01", "2025-03-12")]}], folder)
    assert changed_enterprises(Lake(home), dt.date(2025, 3, 24), seen + february) == [C]


def test_changed_rebuilds_at_the_repair_date_and_not_the_day_before_exactly_as_a_full_build(small):
    """Profiles stored as of R-1, R and R+1; a notice repairing C's penalty on R arrives a month
    after: --changed leaves R-1 as it was, rebuilds C in R and R+1, and every stored profile is
    then what a full build gives (the penalty counts on R-1, not from R); a second --changed
    rebuilds nothing, and ``dates`` limits it to the profiles named."""
    home, folder, _ = small
    repaired_on = dt.date(2025, 5, 1)
    dates = [repaired_on - dt.timedelta(days=1), repaired_on, repaired_on + dt.timedelta(days=1)]
    before = {day: build(home, day).profile for day in dates}
    deliver(home, [{"administrative_penalties": [_penalty(f"P-{C[-4:]}", C, "2025-01-10", "2025-06-01",
                                                          "2025-05-01")]}], folder)
    results = rebuild_changed(home)
    assert [(r.as_of, r.rebuilt, r.mode) for r in results] == [(dates[0], 0, "changed"), (dates[1], 1, "changed"),
                                                              (dates[2], 1, "changed")]
    store, lake = ProfileStore(home), Lake(home)
    runs = [r["run_id"] for r in lake.manifest()["runs"]]
    for day in dates:
        pd.testing.assert_frame_equal(store.read(day), compute_profile(lake, day), obj=str(day))
        assert store.info(day).lake_runs == runs
    pd.testing.assert_frame_equal(store.read(dates[0]), before[dates[0]])
    counts = {day: store.read(day).set_index("uscc").loc[C, "penalty_count_12m"] for day in dates}
    assert counts == {dates[0]: 1, dates[1]: 0, dates[2]: 0}
    assert store.info(dates[1]).rebuilt[-1]["reason"] == "data ingested since the build (--changed)"
    assert store.info(dates[0]).rebuilt == []
    assert [r.rebuilt for r in rebuild_changed(home)] == [0, 0, 0]
    deliver(home, [{"administrative_penalties": [_penalty("N-A", A, "2025-04-01", "2025-04-02")]}], folder)
    [only] = rebuild_changed(home, dates=[dates[0]])
    assert only.as_of == dates[0] and only.rebuilt == 1
    pd.testing.assert_frame_equal(store.read(dates[0]), compute_profile(lake, dates[0]))
    assert store.info(dates[1]).lake_runs == runs  # not asked: left for next time
    rebuild_changed(home)  # A's new penalty reaches R and R+1 too: each gets an entry of its own
    changed = "data ingested since the build (--changed)"
    assert [e["reason"] for e in store.info(dates[1]).rebuilt] == [changed, changed]
