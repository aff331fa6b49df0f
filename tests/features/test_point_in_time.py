"""Point-in-time invariance, source by source: a profile as of day D depends only on what had
happened and what the platform had learned by D, whatever the lake holds after D.

Every source is taken from the feature registry (the sources its features are computed from),
never from a hand list, so a source added to the registry is held to the same rule. The subtle
cases are the ones ingestion does not already rule out: a record of something that happened
before D but reported after it (the rule is the *known* date, not the event date), and, for
sources whose ingestion does not order the event and known dates (utility bills, reported
before the month they bill), a record the platform held before D of something after D.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from features.ingest.rowhash import row_hash
from features.lake import Lake
from features.profile.build import compute_profile, lake_view, load_records
from features.profile.compute import alive_on, build_partition, profiles_for
from features.profile.pointintime import (KEY, NEEDED, NEVER, OWNER, PERIOD, SEQ, Deliveries, anchor_months,
                                          day_number, delivery_calendar, spread_to_owners)
from features.registry import FEATURES
from features.schemas import SOURCES
from features.uscc import random_codes
from tests.features.profile_fixtures import records  # noqa: F401 (the fixture, by name)

PROFILE_SOURCES = sorted({source for feature in FEATURES for source in feature.sources})
"""Every source a profile feature is computed from, as the registry declares it."""
MONTHLY = [s for s in PROFILE_SOURCES if SOURCES[s].cadence == "monthly"]

FIRST_DAY, LAST_DAY = day_number("2025-01-01"), day_number("2026-06-30")
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------------------ prepared records

def _date_columns(source: str) -> list[str]:
    """The date and month columns of a source the profile reads, event and known dates first."""
    s = SOURCES[source]
    named = dict.fromkeys([s.event_date, s.known_date, *NEEDED[source]])
    return [c for c in named if s.column(c).kind in ("date", "period")]


def _ordered(source: str) -> bool:
    """Ingestion refuses a record of this source reported before its event happened."""
    s = SOURCES[source]
    return (s.event_date, s.known_date) in s.date_order


def _month_start(days) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]").astype(
        "datetime64[D]").astype(np.int64)


def _put(frame: pd.DataFrame, source: str, column: str, days) -> None:
    """Set a date column (day numbers); a month column takes its month's first day, and the
    month number beside it."""
    days = np.asarray(days, dtype=np.int64)
    if SOURCES[source].column(column).kind == "period":
        months = days.astype("datetime64[D]").astype("datetime64[M]")
        frame[column] = months.astype("datetime64[D]").astype(np.int64)
        frame[PERIOD] = months.astype(np.int64)
    else:
        frame[column] = days


def _moved(rows: pd.DataFrame, source: str, event_days) -> pd.DataFrame:
    """Copies of ``rows`` whose event is on ``event_days``, every other date moved with it."""
    s = SOURCES[source]
    out = rows.copy()
    delta = np.asarray(event_days, dtype=np.int64) - rows[s.event_date].to_numpy()
    for column in _date_columns(source):
        values = rows[column].to_numpy()
        _put(out, source, column, np.where(values == NEVER, NEVER, values + delta))
    return out


def _gap(rng: np.random.Generator, n: int) -> np.ndarray:
    """Days: often none at all (the boundary), else up to 400."""
    return np.where(rng.random(n) < 0.4, 0, rng.integers(0, 400, n))


def _fresh(rows: pd.DataFrame, source: str, rng: np.random.Generator, codes) -> pd.DataFrame:
    """The rows as new records (new keys) of enterprises among ``codes`` (of new enterprises,
    for the registry, whose records are the enterprises)."""
    out = rows.copy()
    if SOURCES[source].natural_key == ("uscc",):
        owners = np.array([f"NEW{rng.integers(0, 10**12):015d}" for _ in range(len(out))], dtype=object)
    else:
        owners = rng.choice(np.asarray(codes, dtype=object), len(out))
    out["uscc"], out[OWNER] = owners, owners
    out[KEY] = rng.integers(1, 2**63, len(out), dtype=np.int64).astype(np.uint64)
    return out


def _after(held: dict[str, pd.DataFrame], source: str, as_of: int, rng: np.random.Generator,
           codes, count: int = 12) -> pd.DataFrame:
    """``source``'s records as a lake that went on after ``as_of`` holds them."""
    s = SOURCES[source]
    frame = held[source]
    templates = frame.iloc[rng.integers(0, len(frame), count)].reset_index(drop=True)
    period_event = s.column(s.event_date).kind == "period"
    parts = []
    # (a) late news: it happened on or before as_of, the platform learned of it after as_of
    event = as_of - _gap(rng, count)
    late = _fresh(_moved(templates, source, _month_start(event) if period_event else event), source, rng, codes)
    late[s.known_date] = as_of + 1 + _gap(rng, count)
    parts.append(late)
    # (b) about a day after as_of, reported after it, or before it where ingestion lets the
    # department report ahead (a bill known before its month)
    if period_event:
        month = np.int64(as_of).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        event = (month + 1 + rng.integers(0, 12, count)).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    else:
        event = as_of + 1 + _gap(rng, count)
    ahead = _fresh(_moved(templates, source, event), source, rng, codes)
    ahead[s.known_date] = (event + _gap(rng, count)) if _ordered(source) else (as_of + rng.integers(-60, 61, count))
    parts.append(ahead)
    moved_keys = np.zeros(0, dtype=np.uint64)
    if s.accepts_corrections:
        # (c) new versions of held records reported after as_of, with any content: dates on either
        # side of as_of, a repair after it, now and then naming another enterprise
        versions = templates.copy()
        for column in _date_columns(source):
            if column == s.known_date:
                continue
            days = np.where(rng.random(count) < 0.3, NEVER, as_of - 200 + rng.integers(0, 400, count))
            if column == s.event_date or s.column(column).kind == "period":
                days = np.where(days == NEVER, as_of - 30, days)
            if column == s.repair_column:
                days = np.where(rng.random(count) < 0.5, NEVER, as_of + 1 + _gap(rng, count))
            _put(versions, source, column, days)
        versions[s.known_date] = as_of + 1 + _gap(rng, count)
        if "uscc" not in s.natural_key:
            renamed = rng.random(count) < 0.3
            versions.loc[renamed, "uscc"] = rng.choice(np.asarray(codes, dtype=object), int(renamed.sum()))
            moved_keys = np.unique(versions.loc[renamed, KEY].to_numpy())
        parts.append(versions)
    added = pd.concat(parts, ignore_index=True)
    added[SEQ] = frame[SEQ].max() + 1 + np.arange(len(added))
    # (d) what the held records say about days after as_of is said differently (or never)
    kept = frame.copy()
    for column in _date_columns(source):
        values = kept[column].to_numpy()
        later = values > as_of
        if s.column(column).kind == "period":
            month = np.int64(as_of).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
            other = (month + 1 + rng.integers(0, 12, len(kept))).astype("datetime64[M]").astype("datetime64[D]")
            _put(kept, source, column, np.where(later, other.astype(np.int64), values))
        else:
            other = np.where(rng.random(len(kept)) < 0.5, NEVER, as_of + 1 + _gap(rng, len(kept)))
            kept[column] = np.where(later, other, values)
    grown = pd.concat([kept, added], ignore_index=True)
    if len(moved_keys):  # a record whose versions name several enterprises goes to each of them
        shared_rows = grown[KEY].isin(moved_keys)
        versions_of = grown[shared_rows].drop_duplicates(SEQ)
        shared = pd.concat([versions_of[[KEY, "uscc"]].rename(columns={"uscc": OWNER}), versions_of[[KEY, OWNER]]])
        grown = pd.concat([grown[~shared_rows], spread_to_owners(versions_of, shared.drop_duplicates())],
                          ignore_index=True)
    return grown


def _known_by(records: dict[str, pd.DataFrame], source: str, as_of: int, rng: np.random.Generator, codes,
              count: int = 12) -> pd.DataFrame:
    """``source``'s records with more added that the platform knew of by ``as_of``, of events
    on or before it, whose other dates (a verification, a grant, a release, a repair) may fall
    after it: news of what is to happen, which departments whose ingestion does not order those
    dates against the reporting date may send."""
    s = SOURCES[source]
    frame = records[source]
    templates = frame.iloc[rng.integers(0, len(frame), count)].reset_index(drop=True)
    event = as_of - _gap(rng, count)
    if s.column(s.event_date).kind == "period":
        event = _month_start(event)
    news = _fresh(_moved(templates, source, event), source, rng, codes)
    news[s.known_date] = np.minimum(event + rng.integers(0, 60, count), as_of)
    news[SEQ] = frame[SEQ].max() + 1 + np.arange(count)
    return pd.concat([frame, news], ignore_index=True)


def _deliveries(records: dict[str, pd.DataFrame]) -> Deliveries:
    """What :func:`features.profile.build.lake_view` finds in a lake holding ``records``."""
    calendar = {s: delivery_calendar(records[s]["period"].to_numpy(), records[s][SOURCES[s].known_date].to_numpy())
                for s in MONTHLY}
    return Deliveries([s for s in NEEDED if len(records[s])], calendar)


def _profile(records: dict[str, pd.DataFrame], as_of: int) -> tuple[pd.DataFrame, dict[str, bool]]:
    """The profile as of a day of every enterprise alive then, and which monthly sources are
    silent (past their delivery day) that day."""
    delivered = _deliveries(records)
    silent = {s: bool(delivered.silent(s, np.array([as_of]), anchor_months(np.array([as_of])))[0]) for s in MONTHLY}
    return build_partition(records, as_of, None, delivered), silent


def test_the_profile_reads_every_source_the_registry_names():
    """Every source a registered feature is computed from is read by the profile build (and
    nothing else is), so the per-source tests below cover every source the profile reads."""
    assert PROFILE_SOURCES == sorted(NEEDED)
    assert MONTHLY, "the registry has monthly sources"


@pytest.mark.parametrize("source", PROFILE_SOURCES)
@SETTINGS
@given(as_of=st.integers(FIRST_DAY, LAST_DAY), seed=st.integers(0, 2**32 - 1))
def test_a_profile_as_of_d_is_the_same_whatever_the_lake_holds_after_d(records, source, as_of, seed):
    """For every source: records of events on or before D reported after D (from D+1 on),
    records of events after D (some reported before D where ingestion allows it), new versions
    reported after D (another enterprise, a repair after D), and any date after D in what is
    held written as another date after D or as none (what has not happened by D is the same
    as what never happens), change nothing in the profile as of D: no feature, no coverage
    flag, no enterprise's presence, and no source's delivery state (the calendar) that day."""
    rng = np.random.default_rng(seed)
    codes = alive_on(as_of, records)
    held = {**records, source: _known_by(records, source, as_of, rng, codes)}
    before, silent_before = _profile(held, as_of)
    grown = {**held, source: _after(held, source, as_of, rng, codes)}
    after, silent_after = _profile(grown, as_of)
    assert silent_after == silent_before
    pd.testing.assert_frame_equal(after, before)
    assert len(before) > 100


ORDERS = ("event first", "same day", "known first")


def _days(records: dict[str, pd.DataFrame], code: str, days: list[int]) -> pd.DataFrame:
    """The profile of one enterprise as of each of ``days`` (one pass), and whether a full
    build of each day has a row for it (it is alive then)."""
    profile = profiles_for([code] * len(days), days, records, _deliveries(records))
    profile["alive"] = [len(alive_on(day, records, [code])) == 1 for day in days]
    return profile


@pytest.mark.parametrize("source", PROFILE_SOURCES)
@SETTINGS
@given(day=st.integers(FIRST_DAY, LAST_DAY), order=st.sampled_from(ORDERS), gap=st.integers(1, 300),
       seed=st.integers(0, 2**32 - 1))
def test_a_record_counts_from_the_day_it_has_both_happened_and_been_known_and_not_a_day_before(
        records, source, day, order, gap, seed):
    """For every source, a new record of an enterprise that has none of the source (a new
    enterprise, for the registry) changes its profile as of the first day on which its event
    has happened and the platform has learned of it, that very day (``<=``, not ``<``), and
    leaves its profile as of the day before exactly as it was, whichever of the two dates comes
    last (the event, where ingestion lets a department report ahead of it)."""
    s = SOURCES[source]
    assume(order != "known first" or not _ordered(source))
    rng = np.random.default_rng(seed)
    monthly_event = s.column(s.event_date).kind == "period"
    if order == "event first":
        event = int(_month_start([day - gap])[0]) if monthly_event else day - gap
        known = day
    else:
        event = int(_month_start([day])[0]) if monthly_event else day
        known = event if order == "same day" else event - gap
    counts_from = max(event, known)
    held = records[source]
    alive = alive_on(counts_from, records)
    without = np.setdiff1d(alive.astype(str), np.r_[held["uscc"].to_numpy(), held[OWNER].to_numpy()].astype(str))
    assume(len(without) > 0 or s.natural_key == ("uscc",))  # a registry record is a new enterprise
    template = held.iloc[[int(rng.integers(0, len(held)))]].reset_index(drop=True)
    record = _fresh(_moved(template, source, [event]), source, rng, without)
    for column in _date_columns(source):  # nothing else has happened to it
        if column not in (s.event_date, s.known_date):
            _put(record, source, column, _month_start([event]) if s.column(column).kind == "period" else [NEVER])
    record[s.known_date] = known
    record[SEQ] = held[SEQ].max() + 1
    grown = {**records, source: pd.concat([held, record], ignore_index=True)}
    code = record["uscc"].iloc[0]

    with_it = _days(grown, code, [counts_from - 1, counts_from])
    without_it = _days(records, code, [counts_from - 1, counts_from])
    pd.testing.assert_series_equal(with_it.iloc[0], without_it.iloc[0], obj="the day before")
    assert not with_it.iloc[1].equals(without_it.iloc[1]), "the record counts on the day it has happened and is known"


# ------------------------------------------------------------------------------ through the lake

LIVE = dt.date(2026, 6, 20)
"""Every department has delivered its anchor month (April) by then."""
SILENT = dt.date(2026, 7, 31)
"""The city's newest months (May) are older than the anchor (June): every monthly source is silent."""


def _lake_rows(lake: Lake, source: str) -> tuple[pd.DataFrame, pa.Schema]:
    table = lake.read_arrow(source)
    return table.to_pandas(), table.schema


def _commit(lake: Lake, source: str, rows: pd.DataFrame, schema: pa.Schema) -> None:
    s = SOURCES[source]
    table = pa.Table.from_pandas(rows, schema=schema, preserve_index=False)
    run = f"late-{source}-{uuid.uuid4().hex[:8]}"
    table = (table.set_column(table.column_names.index(KEY), KEY, pa.array(row_hash(table, list(s.natural_key))))
             .set_column(table.column_names.index("_run_id"), "_run_id", pa.repeat(pa.scalar(run), len(table))))
    lake.commit_rows(source, table, {"run_id": run, "kind": "test", "sources": {source: {"accepted": len(table)}}})


def _late_rows(lake: Lake, source: str, as_of: dt.date, profile: pd.DataFrame, silent: bool, rng) -> pd.DataFrame:
    """New records of ``source`` about days on or before ``as_of`` that the platform learns of
    the day after it: for a monthly source silent on ``as_of``, the months after the newest one
    held (delivered late); otherwise records of enterprises alive on ``as_of`` that have none of
    the source (new enterprises, for the registry)."""
    s = SOURCES[source]
    rows, _ = _lake_rows(lake, source)
    day = pd.Timestamp(as_of)
    if silent:
        newest = rows["period"].max()
        last = rows[rows["period"] == newest]
        months = []
        for step in (1, 2):
            month = last.copy()
            for column in _date_columns(source):
                if column != s.known_date:
                    month[column] = month[column] + pd.DateOffset(months=step)
            months.append(month[month["period"] <= day])
        out = pd.concat(months, ignore_index=True)
        shift = pd.Series(pd.Timedelta(0), index=out.index)
    else:
        out = rows.sample(min(len(rows), 12), random_state=int(rng.integers(0, 2**31))).reset_index(drop=True)
        if s.natural_key == ("uscc",):
            out["uscc"] = random_codes(rng, len(out), entity_type="1")
        else:
            holders = set(rows["uscc"])
            out["uscc"] = rng.choice([c for c in profile["uscc"] if c not in holders], len(out))
            for column in s.natural_key:
                if s.column(column).kind == "text":
                    out[column] = out[column] + "-late"
        event = out[s.event_date]
        latest = day.to_period("M").to_timestamp() if s.column(s.event_date).kind == "period" else day
        shift = (latest - event).where(event > latest, pd.Timedelta(0))
    for column in _date_columns(source):
        if column != s.known_date:
            moved = out[column] + shift
            moved = moved.where(~(moved > day), day)  # nothing after as_of (a missing date stays missing)
            out[column] = moved.dt.to_period("M").dt.to_timestamp() if s.column(column).kind == "period" else moved
    out[s.known_date] = day + pd.Timedelta(days=1)
    assert len(out) and (out[s.event_date] <= day).all()
    return out


@pytest.mark.parametrize("as_of", [LIVE, SILENT], ids=["delivered", "past-delivery-day"])
def test_late_deliveries_through_the_lake_change_no_profile_before_the_day_they_arrive(profile_home, tmp_path, as_of):
    """Through the real build (the lake, its delivery calendar, every source of the registry):
    records of days on or before D that arrive on D+1 leave the profile as of D exactly as it
    was, and do change the profile as of D+1. Past the delivery day, months that arrive late
    leave a monthly source silent (not delivered) until the day they arrive."""
    home = tmp_path / "home"
    shutil.copytree(profile_home, home)
    lake = Lake(home)
    rng = np.random.default_rng(as_of.toordinal())
    next_day = as_of + dt.timedelta(days=1)
    before, before_next = compute_profile(lake, as_of), compute_profile(lake, next_day)
    silent_before = _silent(lake, as_of)
    if as_of == SILENT:
        assert all(silent_before.values()), "the city's monthly sources are past their delivery day"
    schemas = {}
    for source in PROFILE_SOURCES:
        _, schemas[source] = _lake_rows(lake, source)
        late = _late_rows(lake, source, as_of, before, silent_before.get(source, False), rng)
        _commit(lake, source, late, schemas[source])

    pd.testing.assert_frame_equal(compute_profile(lake, as_of), before)
    assert _silent(lake, as_of) == silent_before
    after_next = compute_profile(lake, next_day)
    assert not any(_silent(lake, next_day).values())
    for source in PROFILE_SOURCES:  # each source's late records do count from the day they arrive
        if source == "enterprise_registry":
            assert len(after_next) > len(before_next)
            continue
        columns = [f.name for f in FEATURES if source in f.sources]
        assert not after_next[columns].equals(before_next[columns]), f"{source}: the late records count on D+1"


def _silent(lake: Lake, as_of: dt.date) -> dict[str, bool]:
    delivered = lake_view(lake).delivered
    day = np.array([day_number(as_of)])
    return {s: bool(delivered.silent(s, day, anchor_months(day))[0]) for s in MONTHLY}


# ------------------------------------------------------------------------------ on hand-built lakes
# The same rules on lakes of a few records written by hand: every version of every record, and
# every request, is one the test chose, so each rule is held at its exact boundary (fast: no city).

from features.profile.pointintime import Requests, prepare, seen  # noqa: E402
from tests.features.profile_fixtures import CODES, Lake as HandLake, codes_of, day, registry  # noqa: E402

BASE = day("2026-01-26")
"""Hand-built records' dates fall in the 14 days from BASE (over a month's end), requests' one day either side."""
SPAN = 14


def _iso(days: int | None) -> str | None:
    return None if days is None else str(np.datetime64(int(days), "D"))


def _month_of(days: int) -> int:
    return int(_month_start([days])[0])


@st.composite
def _versions(draw, source: str):
    """Versions of a few records of ``source`` (key, enterprise, event, known, repair days), in
    the order they are ingested; the dates fall on a few days, so ties and boundaries are common."""
    s = SOURCES[source]
    out = []
    for key in range(draw(st.integers(1, 4))):
        owner = draw(st.integers(0, 2))
        if s.natural_key == ("uscc",):  # the code is the key: one record per enterprise
            key = owner
        fixed_event = draw(st.integers(0, SPAN))
        for _ in range(draw(st.integers(1, 3))):
            named = owner if "uscc" in s.natural_key or draw(st.booleans()) else draw(st.integers(0, 2))
            event = BASE + (fixed_event if s.event_date in s.natural_key else draw(st.integers(0, SPAN)))
            if s.column(s.event_date).kind == "period":
                event = _month_of(event)
            repair = None
            if s.repair_column and draw(st.booleans()):
                repair = BASE + draw(st.integers(0, SPAN))
            out.append({"key": key, "uscc": CODES[named], "event": event, "known": BASE + draw(st.integers(0, SPAN)),
                        "repair": repair})
    return out


def _hand_records(source: str, versions: list[dict]) -> pd.DataFrame:
    """The versions as a build prepares them (``_seq`` = ingestion order), each record spread to
    every enterprise its versions name."""
    s = SOURCES[source]
    rows = []
    for v in versions:
        row = {"uscc": v["uscc"], s.event_date: _iso(v["event"]), s.known_date: _iso(v["known"])}
        for column in s.natural_key:
            kind = s.column(column).kind
            if column == "uscc" or column == s.event_date:
                continue
            row[column] = {"text": f"K{v['key']}", "period": _iso(_month_of(BASE + 40 * v["key"])),
                           "year": 2020 + v["key"]}[kind]
        if s.repair_column:
            row[s.repair_column] = _iso(v["repair"])
        rows.append(row)
    lake = HandLake()
    for row in rows:
        lake.add(source, **row)
    prepared = lake.prepared(source)
    pairs = prepared[[KEY, "uscc"]].drop_duplicates()
    several = pairs[pairs[KEY].duplicated(keep=False)].rename(columns={"uscc": OWNER})
    return spread_to_owners(prepared, several.reset_index(drop=True))


def _expected_seen(source: str, versions: list[dict], code: str, as_of: int) -> set[int]:
    """The promise, written out plainly: which versions (by ingestion order) a request of
    ``code`` as of ``as_of`` sees."""
    s = SOURCES[source]
    out = set()
    for key in {v["key"] for v in versions}:
        mine = [(i, v) for i, v in enumerate(versions) if v["key"] == key]
        repaired = min((v["repair"] for _, v in mine if v["repair"] is not None), default=None)
        if repaired is not None and repaired <= as_of:
            continue  # repaired on or before as_of: counts nowhere from its repair date
        known = [(v["known"], i, v) for i, v in mine if v["known"] <= as_of and v["event"] <= as_of]
        if not known:
            continue
        if s.accepts_corrections:  # the newest version known by as_of (ties: ingested last), if it is ours
            _, i, v = max(known, key=lambda t: (t[0], t[1]))
            if v["uscc"] == code:
                out.add(i)
        else:
            out.update(i for _, i, v in known if v["uscc"] == code)
    return out


def _seen_by(requests: Requests, view) -> dict[tuple[str, int], set[int]]:
    out: dict[tuple[str, int], set[int]] = {}
    for q, sequence in zip(view.q, view.col(SEQ)):
        out.setdefault((str(requests.uscc[q]), int(requests.as_of[q])), set()).add(int(sequence))
    return out


def _rule_kind(source: str) -> tuple:
    """What the point-in-time rules turn on for a source: sources alike in all of it are held to them alike."""
    s = SOURCES[source]
    return (s.accepts_corrections, bool(s.repair_column), s.column(s.event_date).kind, s.natural_key == ("uscc",),
            "uscc" in s.natural_key)


ONE_OF_EACH_KIND = sorted({_rule_kind(s): s for s in reversed(PROFILE_SOURCES)}.values())
"""A source of each kind the rules tell apart (corrections, repairs, a monthly event, the code as key)."""


@pytest.mark.parametrize("source", ONE_OF_EACH_KIND)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_a_request_sees_exactly_the_newest_version_happened_and_known_by_its_day_unless_repaired_by_then(
        source, data):
    """For every source, on any few records: a request (enterprise, D) sees a record's version
    when it has happened and been known on or before D; for a source that takes corrections only
    the newest such version (reported last, ties: ingested last), and only when that version names
    the enterprise (a record moved to another enterprise leaves the first one); never a record
    that any version, whenever it was reported, says was repaired on or before D."""
    versions = data.draw(_versions(source), label="versions")
    asked = data.draw(st.lists(st.tuples(st.integers(0, 3), st.integers(-1, SPAN + 1)), min_size=1, max_size=10),
                      label="requests")
    records = _hand_records(source, versions)
    uscc = [CODES[c] for c, _ in asked]
    as_of = [BASE + d for _, d in asked]
    requests = Requests.make(uscc, as_of)
    got = _seen_by(requests, seen(requests, source, records))
    for code, day_ in zip(uscc, as_of):
        assert got.get((code, day_), set()) == _expected_seen(source, versions, code, day_), (code, _iso(day_))


def test_a_request_with_nothing_to_see_sees_nothing():
    """No records, or no requests: nothing is seen (and the columns are still there)."""
    records = HandLake().add("administrative_penalties", decision_no="X", uscc=CODES[0], decision_date="2026-01-01",
                             reported_date="2026-01-02").prepared("administrative_penalties")
    nobody = Requests.make([], [])
    assert len(seen(nobody, "administrative_penalties", records)) == 0
    empty = HandLake().prepared("administrative_penalties")
    view = seen(Requests.make([CODES[0]], [day("2026-06-30")]), "administrative_penalties", empty)
    assert len(view) == 0 and "decision_date" in view.rows.columns


def test_the_first_enterprise_of_a_partition_sees_its_records_too():
    """Requests are grouped by enterprise; the first group is as much a request as any other."""
    lake = HandLake()
    for code in CODES[:3]:
        lake.add("court_executions", case_no=f"E-{code}", uscc=code, filing_date="2026-01-05", amount=100,
                 reported_date="2026-01-06")
    records = lake.prepared("court_executions")
    requests = Requests.make(CODES[:3], [day("2026-02-01")] * 3)
    view = seen(requests, "court_executions", records)
    assert sorted(requests.uscc[view.q].tolist()) == sorted(CODES[:3])


def _month_number(text: str) -> int:
    return int(np.datetime64(text, "M").astype(np.int64))


@pytest.mark.parametrize("as_of, anchor", [("2026-03-23", "2026-01"), ("2026-03-24", "2026-02"),
                                           ("2026-03-01", "2026-01"), ("2026-03-31", "2026-02"),
                                           ("2026-01-23", "2025-11"), ("2026-01-24", "2025-12")])
def test_the_anchor_month_moves_on_exactly_on_the_delivery_day(as_of, anchor):
    """A month's returns and bills are due by the 24th of the next month: from that day on it is
    the anchor, the day before it the month before is (across a year's end too)."""
    assert anchor_months(np.array([day(as_of)])).tolist() == [_month_number(anchor)]


def _bills(months_known: list[tuple[str, str | None]]) -> Deliveries:
    """Electricity delivered as ``(month, the day its bills became known)`` pairs, for two enterprises."""
    lake = HandLake()
    for month, known in months_known:
        for code in CODES[:2]:
            lake.add("electricity", uscc=code, period=f"{month}-01", usage=1.0, billed=100, arrears=0,
                     reported_date=known)
    bills = lake.prepared("electricity")
    return Deliveries(["electricity"], {"electricity": delivery_calendar(bills["period"].to_numpy(),
                                                                         bills["reported_date"].to_numpy())})


def _silent_on(delivered: Deliveries, days: list[str]) -> list[bool]:
    as_of = np.array([day(d) for d in days])
    return delivered.silent("electricity", as_of, anchor_months(as_of)).tolist()


def test_a_monthly_source_is_silent_from_its_delivery_day_until_the_late_month_arrives_and_not_a_day_longer():
    """January's bills arrive on 10 February, February's late on 10 April (due by 24 March), an
    old December bill only in April (it moves nothing: the newest month known is what counts).
    The source is silent before its first delivery, not from the very day of it; silent from 24
    March (February is the anchor, not known yet) to 9 April, and delivered again on 10 April;
    silent from 24 April (March never arrives)."""
    delivered = _bills([("2026-01", "2026-02-10"), ("2026-02", "2026-04-10"), ("2025-12", "2026-04-11"),
                        ("2026-03", None)])
    days = ["2026-02-09", "2026-02-10", "2026-03-23", "2026-03-24", "2026-04-09", "2026-04-10", "2026-04-11",
            "2026-04-23", "2026-04-24"]
    assert _silent_on(delivered, days) == [True, False, False, True, True, False, False, False, True]


def test_a_monthly_source_whose_months_are_known_on_time_is_never_silent():
    """Every month known on the 20th of the next (before its delivery day): never silent, on the
    delivery day itself included, until the months stop (June's bills never come: silent from
    24 July); a source with no calendar is never silent."""
    on_time = _bills([(f"2026-{m:02d}", f"2026-{m + 1:02d}-20") for m in range(1, 6)])
    days = ["2026-02-20", "2026-03-24", "2026-04-23", "2026-04-24", "2026-05-31", "2026-06-24", "2026-07-23",
            "2026-07-24"]
    assert _silent_on(on_time, days) == [False] * 7 + [True]
    as_of = np.array([day("2026-04-24")])
    assert not Deliveries(["electricity"]).silent("electricity", as_of, anchor_months(as_of)).any()


def test_the_delivery_calendar_reaches_every_worker_whole():
    """Dask pickles what every partition must know: the sources delivered and the calendar both arrive."""
    import pickle

    delivered = _bills([("2026-01", "2026-02-10")])
    copy = pickle.loads(pickle.dumps(delivered))
    assert copy == delivered and isinstance(copy, Deliveries)
    assert copy.calendar.keys() == delivered.calendar.keys()
    for mine, theirs in zip(copy.calendar["electricity"], delivered.calendar["electricity"]):
        assert mine.tolist() == theirs.tolist()


def test_a_source_with_nothing_known_yet_has_an_empty_delivery_calendar_and_no_repairs():
    """Promise: a monthly source none of whose months is known yet (or with no record at all) has no
    day on which its newest month changed, and a source with repairs but no records yet gives every
    request nothing: empty, never an error that would stop the build."""
    for period, known in ((np.zeros(0, np.int64), np.zeros(0, np.int64)),
                          (np.array([20_000, 20_031]), np.array([NEVER, NEVER]))):
        days, months = delivery_calendar(period, known)
        assert days.dtype == months.dtype == np.int64 and len(days) == len(months) == 0
    nothing = HandLake().prepared("dishonest_debtors")
    view = seen(Requests.make([CODES[0], CODES[1]], [day("2026-06-30")] * 2), "dishonest_debtors", nothing)
    assert len(view) == 0 and list(view.rows.columns) == [c for c in nothing.columns if c not in ("uscc", OWNER)]


def test_a_monthly_source_is_silent_exactly_until_its_anchor_month_is_known():
    """Electricity's January becomes known on 10 February and its February on 10 March. Asked on a
    day whose anchor month is January: silent before 10 February, not from that day on (the first
    delivery counts as much as any later one); a source whose records carry no known date at all has
    delivered nothing and is silent whatever the day."""
    january, february = day("2026-01-01"), day("2026-02-01")
    known = [day("2026-02-10"), day("2026-03-10")]
    calendar = delivery_calendar(np.array([january, february]), np.array(known))
    delivered = Deliveries({"electricity"}, {"electricity": calendar})
    asked = np.array([known[0] - 1, known[0], known[1] - 1, known[1]])
    anchors = np.full(4, np.datetime64("2026-01", "M").astype(np.int64))
    assert delivered.silent("electricity", asked, anchors).tolist() == [True, False, False, False]
    february_anchor = np.full(4, np.datetime64("2026-02", "M").astype(np.int64))  # January alone is not enough
    assert delivered.silent("electricity", asked, february_anchor).tolist() == [True, True, True, False]
    unknown = delivery_calendar(np.array([january]), np.array([NEVER]))
    nothing = Deliveries({"electricity"}, {"electricity": unknown})
    assert nothing.silent("electricity", asked, anchors).tolist() == [True] * 4
    assert not Deliveries({"electricity"}).silent("electricity", asked, anchors).any()  # no calendar: never judged


def test_an_amount_left_blank_counts_as_none_never_as_a_negative_one():
    """A court case whose amount the court left blank: the amount is read as 0 (nothing owed that the
    record shows), never as a negative figure that would lower the enterprise's total."""
    records = HandLake().add("court_executions", case_no="E-1", uscc=CODES[0], filing_date="2026-01-05", amount=None,
                             reported_date="2026-01-06").prepared("court_executions")
    assert records["amount"].dtype == np.int64 and records["amount"].iloc[0] == 0


def test_a_measured_number_left_blank_is_unknown_never_zero():
    """A month's metered usage the department left blank is read as unknown (NaN, a float), so that
    it is an absence to the features, not a month of using nothing."""
    records = HandLake().add("electricity", uscc=CODES[0], account_no="E-1", period="2026-01-01", usage=None,
                             billed=0, paid=0, arrears=0, reported_date="2026-02-10").prepared("electricity")
    assert records["usage"].dtype == np.float64 and np.isnan(records["usage"].iloc[0])


def test_a_record_whose_versions_name_two_enterprises_is_copied_to_both_and_no_other_record_moves():
    """Work plan item 12: a penalty first reported against A and corrected to B is looked at from
    both A's and B's requests (each copy keeps the code its version names); C's own penalty is left
    as it was, once."""
    lake = HandLake()
    lake.add("administrative_penalties", decision_no="P-1", uscc=CODES[0], decision_date="2026-01-05",
             reported_date="2026-01-06")
    lake.add("administrative_penalties", decision_no="P-1", uscc=CODES[1], decision_date="2026-01-05",
             reported_date="2026-02-06")
    lake.add("administrative_penalties", decision_no="P-2", uscc=CODES[2], decision_date="2026-01-07",
             reported_date="2026-01-08")
    records = lake.prepared("administrative_penalties")
    moved_key = records[KEY].iloc[0]
    shared = pd.DataFrame({KEY: [moved_key, moved_key], OWNER: [CODES[0], CODES[1]]})
    spread = spread_to_owners(records, shared)
    pairs = sorted(zip(spread[KEY] == moved_key, spread[OWNER], spread["uscc"]))
    assert pairs == sorted([(True, CODES[0], CODES[0]), (True, CODES[0], CODES[1]),
                            (True, CODES[1], CODES[0]), (True, CODES[1], CODES[1]),
                            (False, CODES[2], CODES[2])])
