"""Monitoring as an analyst decides from it: a city where nothing changed is stable; a city whose
electricity company stopped delivering says retrain and names it; drift compares like with like
and says how many rows each figure rests on."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models.monitoring import (MIN_ROWS, SPARSE_SHARE, drift, drift_by, missing_by_source, monitor,
                               realised_by_grade, verdict)

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def silent_electricity_home(model_city, tmp_path_factory):
    """The model city as the lake would hold it had the electricity company delivered nothing
    after September 2025 (its monthly files from 2025-10 on never arrived)."""
    from features.ingest.run import drop_files, ingest

    home = tmp_path_factory.mktemp("silent-electricity")
    files = [(source, path) for source, path in drop_files(model_city)
             if not (source == "electricity" and path.stem[-7:] >= "2025-10")]
    assert len(files) < len(drop_files(model_city))
    ingest(home, files)
    return home


def test_a_city_where_nothing_changed_is_stable(trained, model_home):
    found = monitor(trained.bundle, model_home, AS_OF)
    assert found.verdict == "stable", found.rules
    assert found.applicants.iloc[0]["variable"] == "score"  # the score first
    assert found.applicants.iloc[0]["band"] == "stable"
    assert {"before_rows", "after_rows"} <= set(found.applicants.columns)
    assert found.applicants["before_rows"].iloc[0] < found.population["before_rows"].iloc[0]  # borrowers vs everyone
    assert not found.silent["silent"].any()
    assert found.realised.iloc[-1]["grade"] == "all" and found.realised.iloc[-1]["loans"] > 0
    assert set(found.populations) == {"training applicants", "recent applicants", "population then", "population now",
                                      "matured since training"}


def test_a_department_that_stops_delivering_means_retrain_and_is_named(trained, silent_electricity_home):
    found = monitor(trained.bundle, silent_electricity_home, AS_OF)
    assert found.verdict == "retrain"
    assert any(rule.startswith("electricity: no delivery since 2025-") for rule in found.rules), found.rules
    silent = found.silent.set_index("source")
    assert silent.loc["electricity", "silent"] and silent.loc["electricity", "silent_days"] > 200
    assert not silent.drop(index="electricity")["silent"].any()
    worst = found.missing.iloc[0]
    assert worst["source"] == "electricity" and worst["change"] >= 0.2
    electricity = found.applicants[found.applicants["variable"].str.startswith("elec_")]
    assert (electricity["band"] == "act").any()


def test_sparse_features_are_judged_by_their_non_zero_share(trained):
    rows = 2_000
    generator = np.random.default_rng(0)
    frame = trained.evaluation.frame.sample(rows, replace=True, random_state=0).reset_index(drop=True)
    sparse = next(f for f in trained.bundle.features if f.startswith("penalty_count"))
    before = frame.assign(**{sparse: (generator.random(rows) < 0.03).astype(float)})
    same = frame.assign(**{sparse: (generator.random(rows) < 0.03).astype(float)})
    tripled = frame.assign(**{sparse: (generator.random(rows) < 0.09).astype(float)})
    assert (before[sparse] == 0).mean() >= SPARSE_SHARE
    stable = drift(trained.bundle, before, same).set_index("variable").loc[sparse]
    moved = drift(trained.bundle, before, tripled).set_index("variable").loc[sparse]
    assert stable["measure"] == moved["measure"] == "non-zero share"
    assert stable["band"] == "stable" and moved["band"] == "act" and moved["value"] > 2


def test_thin_comparisons_are_shown_but_not_judged(trained):
    frame = trained.evaluation.frame
    table = drift(trained.bundle, frame.head(MIN_ROWS - 1), frame.tail(MIN_ROWS - 1))
    assert (table["band"] == "too few rows").all()
    by = drift_by(trained.bundle, frame, frame, "district_code")
    assert not by["district_code"].str.fullmatch(r"\d+").any()  # districts by name


def test_the_verdict_names_the_rule_that_produced_it(trained):
    frame = trained.evaluation.frame
    applicants = drift(trained.bundle, frame, frame)
    missing = missing_by_source(trained.bundle, frame, frame)
    realised = realised_by_grade(trained.bundle, frame)
    said, rules = verdict(applicants, applicants, missing, realised, (0.67, 1.5))
    assert said == "stable" and rules == ["no rule fired: score, sources, features and realised default all within "
                                          "their bands"]
    shifted = applicants.copy()
    shifted.loc[0, ["value", "band"]] = [0.31, "act"]
    said, rules = verdict(shifted, applicants, missing, realised, (0.67, 1.5))
    assert said == "retrain" and rules[0].startswith("applicants' score PSI 0.310")
    overcharged = realised.copy()
    overcharged.loc[overcharged["grade"] == "all", ["defaults", "realised_rate", "low", "high", "predicted_pd"]] = \
        [40, 0.10, 0.08, 0.12, 0.02]
    said, rules = verdict(applicants, applicants, missing, overcharged, (0.67, 1.5))
    assert said == "retrain" and "all matured loans since training" in rules[0]
    assert pd.isna(realised_by_grade(trained.bundle, frame.head(0)).iloc[-1]["realised_rate"])


# ---------------------------------------------------------------- as of an earlier day

EARLIER = dt.date(2026, 4, 15)
"""An as-of well inside the model city (its lake ends on 2026-06-30): in mid-month, so that loans granted
later that month are there to be wrongly seen, and late enough that some loans granted after the
champion's fitted windows have matured (12 months) by then."""


def loans_reported_on(lake_loans: pd.DataFrame, city: Path, day: dt.date) -> pd.DataFrame:
    """The banks' loan report as it read on ``day``, from the city's ground truth by the generator's
    own rule: only loans granted by then; a default (Y) once it has happened, a repayment (N) once the
    loan is 12 months old, nothing before; days past due only as far as a known default shows them."""
    from features.synth.city import GROUND_TRUTH

    truth = pd.read_parquet(Path(city) / GROUND_TRUTH / "loans.parquet").set_index("loan_no")
    on = pd.Timestamp(day)
    frame = lake_loans[lake_loans["grant_date"] <= on].reset_index(drop=True)
    known = truth.loc[frame["loan_no"]]
    defaulted = (known["defaulted_12m"] & (known["default_date"] <= on)).to_numpy()
    matured = (frame["grant_date"] + pd.DateOffset(months=12) <= on).to_numpy()
    return frame.assign(default_12m=np.where(defaulted, "Y", np.where(matured, "N", None)),
                        worst_dpd=np.where(defaulted, 90, 0),
                        reported_date=pd.Series(on, index=frame.index).astype(frame["reported_date"].dtype))


def reported_monthly(home: Path, city: Path, day: dt.date, out: Path) -> Path:
    """A home whose lake is the lake under ``home`` with, before the banks' report on its last day,
    their report as it read on ``day``: the test city's banks report once, at the end, so without
    it nothing about loans was known on ``day`` at all, and an outcome known then could not be told
    from one reported later."""
    from features.lake import MANIFEST, Lake

    shutil.copytree(Path(home) / "lake", Path(out) / "lake", ignore=shutil.ignore_patterns(".lock"))
    lake = Lake(out)
    earlier = loans_reported_on(lake.read("loan_outcomes"), city, day)
    table = pa.Table.from_pandas(earlier, schema=pq.read_schema(lake.parts("loan_outcomes")[0]), preserve_index=False)
    name = lake.stage("loan_outcomes", table)
    manifest = lake.manifest()
    manifest["lake"]["loan_outcomes"].insert(0, name)  # ingested before the later report
    manifest["runs"].insert(0, {"run_id": f"banks-report-{day}", "started": f"{day}T23:00:00"})
    (lake.root / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
    return Path(out)


def lake_as_of(home: Path, as_of: dt.date, out: Path) -> Path:
    """A home whose lake is the lake under ``home`` as it stood at the end of ``as_of``: per source
    (the banks' loan reports too), only the rows the platform had learned of by then (``known_date``
    on or before ``as_of``), in the same parts and order.

    One thing a later notice may change about an earlier day, by the point-in-time rules: a credit
    repair (or removal from a list) dated on or before ``as_of`` but reported after it applies from
    its own date (:mod:`features.profile.pointintime`). The cut would drop such a notice and so differ
    from the whole lake for a reason that is no look-ahead: a day that straddles one is refused."""
    from features.lake import Lake
    from features.schemas import SOURCES

    shutil.copytree(Path(home) / "lake", Path(out) / "lake", ignore=shutil.ignore_patterns(".lock"))
    lake, day = Lake(out), pd.Timestamp(as_of)
    for source in lake.manifest()["lake"]:
        spec, parts = SOURCES[source], lake.parts(source)
        tables = [pq.read_table(path) for path in parts]
        every = [table.to_pandas() for table in tables]
        frames = [frame[frame[spec.known_date] <= day].reset_index(drop=True) for frame in every]
        if spec.repair_column:
            dated = pd.concat(every, ignore_index=True).groupby("_key_hash")[spec.repair_column].min()
            kept = pd.concat(frames, ignore_index=True).groupby("_key_hash")[spec.repair_column].min()
            late = dated[(dated <= day) & ~(kept.reindex(dated.index) <= dated)]
            assert late.empty, f"{source}: {len(late)} repairs dated by {as_of} were reported after it; pick another day"
        for path, table, frame in zip(parts, tables, frames):
            pq.write_table(pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False), path)
    return Path(out)


def test_the_loan_report_rebuilt_for_a_day_is_the_banks_report_on_the_lakes_last_day(model_home, model_city):
    """The banks' report the as-of tests add for an earlier day follows the generator's rule: rebuilt
    for the lake's last day it is the report the lake holds (days past due aside, which nothing reads
    from it), so the earlier one is what the banks would have said then."""
    from features.lake import Lake

    held = Lake(model_home).read("loan_outcomes")
    rebuilt = loans_reported_on(held, model_city, AS_OF)
    pd.testing.assert_frame_equal(rebuilt.drop(columns="worst_dpd"), held.drop(columns="worst_dpd"))
    assert rebuilt["default_12m"].isna().any() and (rebuilt["default_12m"] == "Y").any()


def test_a_lake_cut_on_its_last_day_is_the_lake(model_home, tmp_path):
    """The cut the as-of tests compare against changes nothing when nothing came after the day: every
    source reads back as it is (so a difference they find comes from what arrived later, not from the
    copy)."""
    from features.lake import Lake
    from features.schemas import SOURCES

    cut, whole = Lake(lake_as_of(model_home, AS_OF, tmp_path / "cut")), Lake(model_home)
    for source in SOURCES:
        pd.testing.assert_frame_equal(cut.read(source), whole.read(source), obj=source)


@pytest.fixture(scope="module")
def lakes_on_an_earlier_day(model_home, model_city, tmp_path_factory) -> tuple[Path, Path]:
    """The model city's lake with the banks' report of :data:`EARLIER` (a copy: monitoring stores the
    profiles it builds), and that lake cut to :data:`EARLIER`."""
    whole = reported_monthly(model_home, model_city, EARLIER, tmp_path_factory.mktemp("whole-lake"))
    return whole, lake_as_of(whole, EARLIER, tmp_path_factory.mktemp("lake-as-of"))


@pytest.fixture(scope="module")
def monitored_on_an_earlier_day(trained, lakes_on_an_earlier_day):
    """``monitor`` as of :data:`EARLIER` on the whole lake and on the lake cut to that day."""
    whole, cut = lakes_on_an_earlier_day
    return monitor(trained.bundle, whole, EARLIER), monitor(trained.bundle, cut, EARLIER)


def test_monitoring_as_of_an_earlier_day_sees_only_what_the_lake_held_that_day(monitored_on_an_earlier_day):
    """Promise: monitoring as of a day before the lake's last sees only what was known on that day.
    Every drift figure (training borrowers against recent applicants, score first; the living
    population against itself a year before, and the rows compared), every source's missing share
    among applicants and every source's silence are the same on the whole lake as on the lake cut to
    that day, and the populations are described in the same words."""
    whole, cut = monitored_on_an_earlier_day
    assert cut.applicants["after_rows"].iloc[0] >= MIN_ROWS and len(cut.population) and len(cut.silent)
    for name in ("applicants", "population", "missing", "silent", "population_then", "population_now"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(cut, name), obj=name)
    assert (pd.to_datetime(whole.silent["last_delivery"]) <= pd.Timestamp(EARLIER)).all()
    assert {k: v for k, v in whole.populations.items() if k != "matured since training"} == \
        {k: v for k, v in cut.populations.items() if k != "matured since training"}


def test_realised_default_as_of_an_earlier_day_counts_only_outcomes_known_that_day(
        trained, model_city, monitored_on_an_earlier_day):
    """Promise: realised against predicted default as of a day counts only the loans matured by that
    day (12 months after grant), with the outcomes the banks had reported by then: per grade the same
    on the whole lake as on the lake cut to that day, and so the same verdict and rules."""
    from features.synth.city import GROUND_TRUTH

    whole, cut = monitored_on_an_earlier_day
    truth = pd.read_parquet(model_city / GROUND_TRUTH / "loans.parquet")
    split = trained.bundle.meta["split"]
    fitted_until = pd.Period(max(split[w][1] for w in ("train", "valid", "calib") if split[w][0]), "M")
    matured = truth[(truth["grant_date"].dt.to_period("M") > fitted_until)
                    & (truth["grant_date"] + pd.DateOffset(months=12) <= pd.Timestamp(EARLIER))]
    everything = cut.realised.set_index("grade").loc["all"]
    assert everything["loans"] == len(matured) > 0 and everything["defaults"] == matured["defaulted_12m"].sum() > 0
    pd.testing.assert_frame_equal(whole.realised, cut.realised, obj="realised")
    assert whole.populations["matured since training"] == cut.populations["matured since training"]
    assert (whole.verdict, whole.rules) == (cut.verdict, cut.rules)


def test_the_regulators_source_freshness_as_of_an_earlier_day_is_what_had_arrived_by_then(lakes_on_an_earlier_day):
    """Promise: the regulator's page says, per source, the newest delivery the profile's day saw
    (:meth:`features.lake.Lake.deliveries`, its only as-of input): as of an earlier day the same on
    the whole lake as on the lake cut to that day, and never a delivery after it."""
    from features.lake import Lake

    whole, cut = (Lake(home) for home in lakes_on_an_earlier_day)
    seen = whole.deliveries(EARLIER)
    assert seen == cut.deliveries(EARLIER)
    assert all(day is None or day <= EARLIER.isoformat() for day in seen.values())
    assert whole.deliveries(AS_OF) != seen  # the lake did receive more after the day
